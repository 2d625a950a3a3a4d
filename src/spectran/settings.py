"""Typed settings: one dataclass per component, filled from YAML, unknown keys are errors.

A run's configuration has fixed sections (``data``, ``text``, ``model``, ``train``, ``eval``)
and two sections whose type depends on the chosen component: ``backbone`` (settings of
``model.backbone``) and ``method`` (settings of ``model.method``). :func:`resolve` turns a plain
nested mapping into a :class:`RunSettings` with every section typed and validated.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from spectran.errors import ConfigError
from spectran.text.settings import TextSettings

T = TypeVar("T")


@dataclass
class DataSettings:
    dataset: str = "office"  # a staged name (beauty, office, ...), a folder path, or "synthetic"
    data_dir: str | None = None  # root of staged datasets; else $SPECTRAN_DATA, else ../shared/data
    max_len: int = 50  # most recent items kept as input
    min_len: int = 3  # users with fewer interactions are dropped (and counted)
    cache_dir: str | None = None  # prepared arrays and embeddings; else $SPECTRAN_CACHE, else ~/.cache/spectran


@dataclass
class ModelSettings:
    backbone: str = "sasrec"
    method: str = "id"  # the item encoder (transformation)
    dim: int = 64  # d, the SR item-embedding dimension
    label: str = ""  # the name shown in reports (default: the method's name)
    # ID rows of items with no training interaction: "learn" (as any other row) or "zero" (held at
    # zero, so such items are scored by their semantic part alone: cold start; methods that fuse a
    # semantic table with an ID table only)
    unseen_ids: Literal["learn", "zero"] = "learn"


@dataclass
class TrainSettings:
    seed: int = 0
    epochs: int = 200  # maximum; early stopping usually ends sooner
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10  # epochs without validation NDCG@10 improvement before stopping
    loss: Literal["ce", "sampled", "bce"] = "ce"  # full softmax, sampled softmax, or BCE with 1 negative
    num_negatives: int = 1024  # for loss=sampled
    negatives: Literal["uniform", "in_batch"] = "uniform"  # for loss=sampled (logQ-corrected)
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast: bf16 on CPU or GPU, fp16 on GPU only
    ce_chunk: int = 0  # loss=ce: targets per block of the chunked softmax (chunk x N logits); 0 = plain (T, N)
    progress: bool = True  # tqdm progress bar
    max_seconds: float = 0.0  # stop after the epoch that passes this training time; 0 = no cap
    tensorboard: bool = False  # also log epochs to <run>/tensorboard (needs the tensorboard extra)


@dataclass
class EvalSettings:
    ks: list[int] = field(default_factory=lambda: [5, 10, 20])
    exclude_history: bool = False  # mask items already in the input sequence (RecBole: off)
    batch_size: int = 1024
    select_metric: str = "ndcg@10"  # validation metric for early stopping and best checkpoint


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


# ---------------------------------------------------------------------------------------------
# generic typed construction


def from_mapping(cls: type[T], raw: Mapping[str, Any] | None, where: str) -> T:
    """Build dataclass ``cls`` from ``raw``; unknown keys and wrong types raise ConfigError."""
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting '{unknown[0]}' (known: {', '.join(names)})")
    values = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in raw.items()}
    return cls(**values)  # type: ignore[call-arg]


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: expected one of {list(allowed)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (inner,) = get_args(tp)[:1] or (Any,)
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type {tp!r}")


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


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML) to the nested mapping ``raw``."""
    where = f"--set {assignment!r}"
    if "=" not in assignment:
        raise ConfigError(f"{where}: expected section.key=value")
    dotted, text = assignment.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    set_dotted(raw, dotted, value, where)


def resolve(raw: Mapping[str, Any]) -> RunSettings:
    """Type-check a nested mapping and return the full :class:`RunSettings`."""
    from spectran.backbones.registry import backbone_spec
    from spectran.encoders.registry import method_spec

    known = [f.name for f in dataclasses.fields(RunSettings)]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"config: unknown section '{unknown[0]}' (known: {', '.join(known)})")
    data = from_mapping(DataSettings, raw.get("data"), "data")
    text = from_mapping(TextSettings, raw.get("text"), "text")
    model = from_mapping(ModelSettings, raw.get("model"), "model")
    backbone = from_mapping(backbone_spec(model.backbone).settings, raw.get("backbone"), "backbone")
    method = from_mapping(method_spec(model.method).settings, raw.get("method"), "method")
    train = from_mapping(TrainSettings, raw.get("train"), "train")
    evals = from_mapping(EvalSettings, raw.get("eval"), "eval")
    if model.dim <= 0 or data.max_len < 2 or data.min_len < 3:
        raise ConfigError("model.dim must be > 0, data.max_len >= 2 and data.min_len >= 3")
    return RunSettings(data, text, model, backbone, method, train, evals)


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
