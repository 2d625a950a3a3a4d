"""Typed settings: one dataclass per component, filled from YAML, unknown keys are errors.

A run's configuration has fixed sections (``data``, ``text``, ``model``, ``train``, ``eval``)
and two sections whose type depends on the chosen component: ``backbone`` (settings of
``model.backbone``) and ``method`` (settings of ``model.method``). :func:`resolve` turns a plain
nested mapping into a :class:`RunSettings` with every section typed and validated.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from spectran.errors import ConfigError, expect
from spectran.registry import BACKBONES, METHODS
from spectran.text.settings import DEVICE_PATTERN, TextSettings
from spectran.typed import from_mapping, read_number

# field metadata, read by :func:`marked`: a setting that never makes two runs different (speed,
# output, folders), and one that bounds how long a run trains (a finished run trains on when more
# is asked; runs with different budgets are still different configurations in a report)
BOOKKEEPING = {"distinguishes": False}
BUDGET = {"budget": True}


@dataclass
class DataSettings:
    dataset: str = "office"  # a staged name (beauty, office, ...), a folder path, or "synthetic"
    # root of staged datasets; else $SPECTRAN_DATA, else the per-user data folder
    # $XDG_DATA_HOME/spectran/data (~/.local/share/spectran/data when XDG_DATA_HOME is unset)
    data_dir: str | None = field(default=None, metadata=BOOKKEEPING)
    max_len: int = 50  # most recent items kept as input
    min_len: int = 3  # users with fewer interactions are dropped (and counted)
    # prepared arrays and embeddings; else $SPECTRAN_CACHE, else ~/.cache/spectran
    cache_dir: str | None = field(default=None, metadata=BOOKKEEPING)

    def validate(self) -> None:
        expect(bool(self.dataset.strip()), "data.dataset", "a staged name, a dataset folder or 'synthetic'",
               self.dataset)
        expect(self.max_len >= 2, "data.max_len", "an integer >= 2", self.max_len)
        expect(self.min_len >= 3, "data.min_len", "an integer >= 3 (a training, a validation and a test item)",
               self.min_len)


@dataclass
class ModelSettings:
    backbone: str = "sasrec"
    method: str = "id"  # how items become embeddings (its item encoder: encoders/)
    dim: int = 64  # d, the SR item-embedding dimension
    label: str = ""  # the name shown in reports (default: the method's name)
    # ID rows of items with no training interaction: "learn" (as any other row) or "zero" (held at
    # zero, so such items are scored by their semantic part alone: cold start; methods that fuse a
    # semantic table with an ID table only)
    unseen_ids: Literal["learn", "zero"] = "learn"
    # where the settings a config leaves out come from: "method" = the method's tuned recipe for
    # this backbone where it has one (svd_frozen, spectran and rlmrec on sasrec, docs/tuning.md),
    # else the field defaults, and on a sparse catalog (fewer than SPARSE_PER_ITEM interactions per
    # item) the recipe's sparse-catalog variant where the method has one (spectran: svd_frozen's
    # regularisation), applied by :func:`for_catalog` once the data is read; "dense" = the recipe
    # whatever the catalog; "none" = the field defaults for every method (as every table measured
    # before the recipes existed). It does not itself distinguish runs: the values it supplies do,
    # and a run folder's config.yaml holds them all
    recipe: Literal["method", "dense", "none"] = field(default="method", metadata=BOOKKEEPING)

    def validate(self) -> None:
        expect(self.dim >= 1, "model.dim", "an integer >= 1", self.dim)


@dataclass
class TrainSettings:
    seed: int = 0
    epochs: int = field(default=200, metadata=BUDGET)  # maximum; early stopping usually ends sooner
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10  # epochs without validation NDCG@10 improvement before stopping
    # no early stop before this epoch: a run whose validation sits on a plateau for its first
    # epochs (some recipes, unscaled inputs) is not stopped before it starts to learn; 0 = off
    min_epochs: int = 0
    loss: Literal["ce", "sampled", "bce"] = "ce"  # full softmax, sampled softmax, or BCE with 1 negative
    num_negatives: int = 1024  # for loss=sampled
    negatives: Literal["uniform", "in_batch"] = "uniform"  # for loss=sampled (logQ-corrected)
    threads: int = field(default=0, metadata=BOOKKEEPING)  # torch intra-op threads; 0 = torch's default
    # torch's deterministic algorithms (warn where an op has none): with a fixed thread count, torch
    # version and device, the same command gives bitwise-identical metrics and checkpoints
    deterministic: bool = field(default=True, metadata=BOOKKEEPING)
    device: str = field(default="auto", metadata=BOOKKEEPING)  # auto, cpu, cuda, cuda:N
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast: bf16 on CPU or GPU, fp16 on GPU only
    ce_chunk: int = 0  # loss=ce: targets per block of the chunked softmax (chunk x N logits); 0 = plain (T, N)
    progress: bool = field(default=True, metadata=BOOKKEEPING)  # tqdm progress bar
    # stop after the epoch that passes this training time; 0 = no cap
    max_seconds: float = field(default=0.0, metadata=BUDGET)
    # also log epochs to <run>/tensorboard (needs the tensorboard extra)
    tensorboard: bool = field(default=False, metadata=BOOKKEEPING)

    def validate(self) -> None:
        expect(0 <= self.seed < 2**32, "train.seed", "an integer in 0..2^32-1", self.seed)
        expect(self.epochs >= 1, "train.epochs", "an integer >= 1", self.epochs)
        expect(self.batch_size >= 1, "train.batch_size", "an integer >= 1", self.batch_size)
        expect(self.lr > 0, "train.lr", "a learning rate > 0", self.lr)
        expect(self.weight_decay >= 0, "train.weight_decay", "a number >= 0", self.weight_decay)
        expect(self.patience >= 1, "train.patience", "an integer >= 1 (epochs without improvement)",
               self.patience)
        expect(self.min_epochs >= 0, "train.min_epochs", "an integer >= 0 (0 = off)", self.min_epochs)
        expect(self.num_negatives >= 1, "train.num_negatives", "an integer >= 1", self.num_negatives)
        expect(self.threads >= 0, "train.threads", "an integer >= 0 (0 = torch's default)", self.threads)
        expect(re.fullmatch(DEVICE_PATTERN, self.device) is not None, "train.device",
               "auto, cpu, cuda or cuda:N", self.device)
        expect(self.max_seconds >= 0, "train.max_seconds", "a number of seconds >= 0 (0 = no cap)",
               self.max_seconds)


@dataclass
class EvalSettings:
    ks: list[int] = field(default_factory=lambda: [5, 10, 20])
    exclude_history: bool = False  # mask items already in the input sequence (RecBole: off)
    batch_size: int = field(default=1024, metadata=BOOKKEEPING)
    select_metric: str = "ndcg@10"  # validation metric for early stopping and best checkpoint

    def validate(self) -> None:
        expect(bool(self.ks) and all(k >= 1 for k in self.ks), "eval.ks", "a non-empty list of integers >= 1",
               self.ks)
        expect(len(set(self.ks)) == len(self.ks), "eval.ks", "distinct cut-offs", self.ks)
        expect(self.batch_size >= 1, "eval.batch_size", "an integer >= 1", self.batch_size)
        found = re.fullmatch(r"(ndcg|recall|mrr)@(\d+)", self.select_metric)
        expect(found is not None, "eval.select_metric", "ndcg@K, recall@K or mrr@K", self.select_metric)
        expect(int(found.group(2)) in self.ks, "eval.select_metric",
               f"a cut-off K listed in eval.ks {self.ks}", self.select_metric)


@dataclass
class RunSettings:
    data: DataSettings = field(default_factory=DataSettings)
    text: TextSettings = field(default_factory=TextSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    backbone: Any = None  # settings dataclass of model.backbone
    method: Any = None  # settings dataclass of model.method
    train: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Every section's ranges and combinations (a ConfigError naming the setting)."""
        for section in (self.data, self.text, self.model, self.train, self.eval):
            section.validate()
        check_component(self.backbone, "backbone")
        check_component(self.method, "method")
        self.backbone.validate(self.model.dim)


# ---------------------------------------------------------------------------------------------
# run settings: YAML + flags + --set overrides


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f"{p}:{line + 1}" if line is not None else str(p)
        raise ConfigError(f"{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping of sections at the top level")
    return raw


def set_dotted(raw: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    """Set ``section.key`` (any depth) in the nested mapping ``raw``, creating sections."""
    keys = dotted.strip().split(".")
    if len(keys) < 2 or not all(keys):
        raise ConfigError(f"{where}: expected section.key=value")
    node = raw
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: '{key}' is not a section")
        node = child
    node[keys[-1]] = copy.deepcopy(value)


def parse_override(assignment: str) -> tuple[str, Any]:
    """``section.key=value`` -> (dotted key, value parsed as YAML)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    dotted, text = assignment.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return dotted.strip(), value


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML) to the nested mapping ``raw``."""
    dotted, value = parse_override(assignment)
    set_dotted(raw, dotted, value, f"--set {assignment!r}")


def _same(a: Any, b: Any) -> bool:
    """Two given values of one setting agree (``--dim 32`` and ``model.dim=32.0`` do)."""
    x, y = read_number(a), read_number(b)
    return x == y if x is not None and y is not None else a == b


def from_sources(config: str | None, flags: Mapping[str, tuple[str, Any]], overrides: list[str]) -> RunSettings:
    """Run settings from a YAML file, then flags (``{dotted key: (flag, value)}``), then ``--set``
    assignments. A flag and a ``--set`` (or two ``--set``) that give one setting different values
    are an error; an invalid value is reported with where it came from."""
    raw: dict[str, Any] = load_yaml(config) if config else {}
    source = {f"{sec}.{key}": config for sec, values in raw.items() if isinstance(values, dict) for key in values}
    source |= dict.fromkeys(raw, config)
    given: dict[str, tuple[str, Any]] = {}
    for dotted, (flag, value) in flags.items():
        set_dotted(raw, dotted, value, flag)
        source[dotted] = f"{flag} {value}"
        given[dotted] = (f"{flag} {value}", value)
    for assignment in overrides:
        dotted, value = parse_override(assignment)
        if dotted in given and not _same(given[dotted][1], value):
            raise ConfigError(f"{given[dotted][0]} and --set {assignment} give {dotted} different values "
                              "(give one of them)", setting=dotted)
        set_dotted(raw, dotted, value, f"--set {assignment!r}")
        source[dotted] = given[dotted][0] if dotted in given else f"--set {assignment}"
        given.setdefault(dotted, (f"--set {assignment}", value))
    try:
        return resolve(raw)
    except ConfigError as exc:
        key = re.sub(r"\[\d+\]", "", exc.setting or "")
        while key and key not in source:
            key = key.rpartition(".")[0]
        if not key:
            raise
        raise ConfigError(f"{source[key]}: {exc}", setting=exc.setting) from None


def resolve(raw: Mapping[str, Any]) -> RunSettings:
    """Type-check and validate a nested mapping and return the full :class:`RunSettings`: every
    setting's range and the combinations of settings are checked here, before anything is read
    or written."""
    known = [f.name for f in dataclasses.fields(RunSettings)]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"config: unknown section '{unknown[0]}' (known: {', '.join(known)})",
                          setting=unknown[0])
    data = from_mapping(DataSettings, raw.get("data"), "data")
    text = from_mapping(TextSettings, raw.get("text"), "text")
    model = from_mapping(ModelSettings, raw.get("model"), "model")
    try:
        backbone_spec = BACKBONES.spec(model.backbone)
    except ConfigError as exc:
        raise ConfigError(f"model.backbone: {exc}", setting="model.backbone") from None
    try:
        method_spec = METHODS.spec(model.method)
    except ConfigError as exc:
        raise ConfigError(f"model.method: {exc}", setting="model.method") from None
    raw = with_recipe(raw, method_spec.recipes.get(model.backbone, {}) if model.recipe != "none" else {})
    backbone = from_mapping(backbone_spec.settings, raw.get("backbone"), "backbone")
    method = from_mapping(method_spec.settings, raw.get("method"), "method")
    train = from_mapping(TrainSettings, raw.get("train"), "train")
    evals = from_mapping(EvalSettings, raw.get("eval"), "eval")
    settings = RunSettings(data, text, model, backbone, method, train, evals)
    settings.validate()
    return settings


def with_recipe(raw: Mapping[str, Any], recipe: Mapping[str, Any]) -> Mapping[str, Any]:
    """``raw`` with each ``section.key`` of ``recipe`` filled in where ``raw`` gives that setting no
    value (a section that is not a mapping is left for its own error)."""
    if not recipe:
        return raw
    out = copy.deepcopy(dict(raw))
    for dotted, value in recipe.items():
        section, key = dotted.split(".", 1)
        if out.get(section) is None:
            out[section] = {}
        given = out[section]
        if isinstance(given, dict) and key not in given:
            given[key] = copy.deepcopy(value)
    return out


COUNTS = ("layers", "heads", "experts", "inner")  # component settings that count something there must be one of


def check_component(settings: Any, where: str) -> None:
    """The rules every backbone and method setting follows: an integer is a size or a count
    (>= 0, where 0 means "derived", as the field comments say; ``layers``, ``heads``, ``experts``
    and ``inner`` >= 1), a number named ``*dropout`` is a probability in [0, 1), one named
    ``*_share`` a fraction in [0, 1] and one named ``*_std`` a standard deviation >= 0."""
    for f in dataclasses.fields(settings):
        value, name = getattr(settings, f.name), f"{where}.{f.name}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if f.name.endswith("dropout"):
            expect(0 <= value < 1, name, "a dropout probability in [0, 1)", value)
        elif f.name.endswith("_share"):
            expect(0 <= value <= 1, name, "a fraction in [0, 1]", value)
        elif f.name.endswith("_std"):
            expect(value >= 0, name, "a standard deviation >= 0", value)
        elif isinstance(value, int):
            least = 1 if f.name in COUNTS else 0
            expect(value >= least, name, f"an integer >= {least}", value)


def with_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A stored run config with every setting it lacks at its current default (settings added
    after the run was made default to the old behaviour); as written when this version cannot
    resolve it (a method, backbone or key it does not know)."""
    try:
        return resolve(raw).to_dict()
    except ConfigError:
        return dict(raw)


def to_yaml(settings: RunSettings) -> str:
    return yaml.safe_dump(settings.to_dict(), sort_keys=False)


def marked(key: str, value: Any) -> frozenset[str]:
    """Dotted names of the fixed sections' settings whose field metadata has ``key: value``
    (``marked("distinguishes", False)``: the BOOKKEEPING ones; ``marked("budget", True)``)."""
    sections = [(name, tp) for name, tp in typing.get_type_hints(RunSettings).items() if dataclasses.is_dataclass(tp)]
    return frozenset(f"{name}.{f.name}" for name, tp in sections for f in dataclasses.fields(tp)
                     if key in f.metadata and f.metadata[key] == value)
