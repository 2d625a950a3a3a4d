"""Library functions behind the CLI: ``train`` and ``evaluate``.

:class:`spectran.runfolder.RunFolder` names the files of the run folder they write and read.

Running ``train`` again on a folder resumes an interrupted run; on a finished run it returns its
metrics, or trains on when more ``train.epochs`` are asked of a run that stopped at its epoch cap.
Data that changed since the run started is refused, naming what changed.

Under ``torchrun`` (several processes) every rank runs :func:`train`; rank 0 alone writes the run
folder, and the metrics are computed from the all-gathered per-user ranks (docs/scaling.md).
While a run trains, its folder is locked (:mod:`spectran.runlock`): a second process that
trains the same folder gets :class:`spectran.runlock.RunBusy` instead of overwriting it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spectran import distributed
from spectran.assemble import AssembledRun, assemble_run, describe_protocol
from spectran.data.prepare import PreparedDataset, prepare
from spectran.distributed import SINGLE, DistInfo
from spectran.errors import ConfigError, DataError, SpectranError
from spectran.eval.evaluate import rank_all_users
from spectran.eval.metrics import metrics_from_ranks
from spectran.io import write_json
from spectran.recipes import SPARSE_PER_ITEM, for_catalog, recipe_values
from spectran.runfolder import RunFolder
from spectran.runlock import run_lock
from spectran.settings import RunSettings
from spectran.train.checkpoint import load_trained
from spectran.train.loop import Trainer
from spectran.train.losses import make_loss
from spectran.train.sinks import Sink, make_sinks


def environment(device: torch.device | None = None) -> dict[str, Any]:
    """What a run needs to be reproduced bitwise: versions, thread count, device, CPU model."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import spectran

    return {"spectran": spectran.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "git_commit": commit,
            "threads": torch.get_num_threads(), "deterministic": torch.are_deterministic_algorithms_enabled(),
            "device": device_name(device), "cpu": cpu_model()}


def device_name(device: torch.device | None) -> str | None:
    if device is None:
        return None
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def cpu_model() -> str:
    """The CPU's model name (results can differ between CPU models: other vector kernels)."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text(errors="replace").splitlines() if info.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def check_run_dir(out: Path, s: RunSettings) -> None:
    """A run folder belongs to one configuration: refuse to resume a different one (the settings
    marked on their field as not distinguishing runs, and the training budget, may change)."""
    diff = RunFolder(out).different_settings(s)
    if diff is not None:
        key, old, new = diff
        raise ConfigError(f"{out}: holds a run with different settings ({key} is {old!r} there, {new!r} now); "
                          "choose another --out", setting=key)


def validator(exp: AssembledRun, split: str = "valid", dist: DistInfo = SINGLE):
    """model -> per-user ranks of ``split`` for every user (sharded over ranks under DDP)."""
    arrays, targets, history = exp.eval_arrays(split), exp.data.targets(split), exp.history(split)
    bs = exp.settings.eval.batch_size
    return lambda model: rank_all_users(model, exp.objective, arrays, targets, bs, exp.device, history, dist)


def make_trainer(exp: AssembledRun, out: Path | None = None, dinfo: DistInfo = SINGLE,
                 settings: RunSettings | None = None, sinks: Sequence[Sink] = ()) -> Trainer:
    """The assembled run's Trainer: the loss of its settings (``settings`` overrides exp.settings),
    validation on the valid split, checkpoints and sinks under ``out`` (None: nothing written);
    ``sinks`` are added to the settings' own (rank 0 only)."""
    s = settings or exp.settings
    t = s.train
    loss = make_loss(t.loss, num_negatives=t.num_negatives, negatives=t.negatives) if t.loss == "sampled" \
        else make_loss(t.loss, chunk=t.ce_chunk) if t.loss == "ce" else make_loss(t.loss)
    own = make_sinks(s, out) if out is not None and dinfo.is_main else []
    return Trainer(exp.model, exp.objective, loss, exp.train_arrays(), validator(exp, "valid", dinfo),
                   s, out, exp.device, sinks=own + list(sinks), dist=dinfo)


def train(settings: RunSettings, out: str | Path, exp: AssembledRun | None = None,
          sinks: Sequence[Sink] = ()) -> dict[str, Any]:
    """Train (or resume) a run in ``out`` and evaluate the best checkpoint on test once.

    ``exp``: the run already assembled from ``settings`` (else built here). ``sinks`` get every
    epoch's log row after the trainer's own logs (e.g. the tuner's pruning sink, whose exception
    ends the run there: the folder keeps its logs and `last` checkpoint)."""
    out = Path(out)
    settings.validate()  # settings built or changed in Python skip resolve's checks
    # the device is picked once, here; under torchrun rank 0 alone holds the run's lock
    with (distributed.session(settings.train.device) as (dinfo, device),
          run_lock(out) if dinfo.is_main else contextlib.nullcontext()):
        with distributed.main_first(dinfo):  # rank 0 fills the data cache first
            data = exp.data if exp is not None else prepare(settings.data)
        settings = settings_for_data(settings, data, announce=dinfo.is_main)
        check_run_dir(out, settings)
        metrics = finished_metrics(out, settings)
        if metrics is not None:
            return metrics
        with distributed.main_first(dinfo):  # rank 0 fills the embedding caches first
            if exp is None or exp.settings != settings:
                exp = assemble_run(settings, data, device=device)
        exp.to(device)
        if dinfo.is_main:
            check_run_data(out, exp.data)
        trainer = make_trainer(exp, out, dinfo, settings, sinks)
        if trainer.resume() and dinfo.is_main:  # from `last`; one trained with other settings is refused here
            st = trainer.state
            print(f"resuming {out} after epoch {st.epoch} (best epoch so far {st.best_epoch}; "
                  f"{settings.train.epochs - st.epoch} epochs left at most)", file=sys.stderr, flush=True)
        if dinfo.is_main:
            start_run_folder(RunFolder(out), settings, exp.data, dinfo, device)
        state = trainer.fit()
        trainer.load_best()
        fit = {"best_epoch": state.best_epoch, "epochs": state.epoch,
               "train_seconds_per_epoch": trainer.median_epoch_seconds()}
        return finish_run(exp, out, fit, dinfo)


def settings_for_data(settings: RunSettings, data: PreparedDataset, announce: bool = False) -> RunSettings:
    """``settings`` for this dataset (:func:`spectran.recipes.for_catalog`: the recipe's
    sparse-catalog variant on a sparse catalog); ``announce`` prints what changed to stderr."""
    adapted = for_catalog(settings, len(data.items), data.num_items)
    if announce and adapted != settings:
        before = recipe_values(settings)
        changed = ", ".join(f"{k}={v}" for k, v in recipe_values(adapted).items() if before.get(k) != v)
        print(f"a sparse catalog ({len(data.items) / max(1, data.num_items):.1f} interactions per item, fewer than "
              f"{SPARSE_PER_ITEM:g}): {settings.model.method}'s sparse-catalog recipe sets {changed} "
              "(model.recipe=dense keeps the recipe)", file=sys.stderr, flush=True)
    return adapted


def start_run_folder(folder: RunFolder, settings: RunSettings, data: PreparedDataset, dinfo: DistInfo,
                     device: torch.device | None = None) -> None:
    """Write what the run is (settings, data identity, environment); a finished run trained on
    is unfinished until its metrics are written again."""
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.unfinish()
    write_json(folder.data, data_identity(data))
    folder.write_settings(settings)
    folder.write_env(environment(device) | {"world_size": dinfo.world_size})


def finished_metrics(out: Path, s: RunSettings) -> dict[str, Any] | None:
    """The metrics of a finished run in ``out`` when they answer ``s``: None when there is no
    finished run, or when ``s`` asks for more epochs than a run that stopped at its epoch cap
    (it trains on); fewer epochs than it trained, or changed data, are an error."""
    folder = RunFolder(out)
    if not folder.finished:
        return None
    metrics = folder.read_metrics()
    done, best = metrics.get("epochs"), metrics.get("best_epoch")
    if not (isinstance(done, int) and isinstance(best, int)):  # not written by train: nothing to train on
        return metrics
    if s.train.epochs < done:
        raise ConfigError(f"{out}: the finished run trained {done} epochs; train.epochs={s.train.epochs} "
                          "asks for fewer (choose another --out)", setting="train.epochs")
    if folder.data.is_file():
        from spectran.data.prepare import prepare

        check_run_data(out, prepare(s.data))
    cap = int(folder.raw_config().get("train", {}).get("epochs", done))
    stopped_early = done - best >= s.train.patience or done < cap  # patience, or train.max_seconds
    return metrics if stopped_early or s.train.epochs <= cap else None


def data_identity(ds: PreparedDataset) -> dict[str, Any]:
    return {"name": ds.name, "checksum": ds.meta["checksum"], "sources": ds.meta.get("sources", {}),
            "users": ds.num_users, "items": ds.num_items, "interactions": len(ds.items)}


def check_run_data(out: Path, ds: PreparedDataset) -> None:
    """Refuse to resume or reuse a run whose data changed since it started, saying what changed."""
    path = RunFolder(out).data
    if not path.is_file():
        return
    old, new = json.loads(path.read_text(encoding="utf-8")), data_identity(ds)
    if old.get("checksum") == new["checksum"]:
        return
    changes = []
    sources_old, sources_new = old.get("sources", {}), new["sources"]
    for name in sorted(set(sources_old) | set(sources_new)):
        if sources_old.get(name) != sources_new.get(name):
            state = "added" if name not in sources_old else "removed" if name not in sources_new else "changed"
            changes.append(f"{name} {state}")
    changes += [f"{key} {old.get(key)} -> {new[key]}" for key in ("users", "items", "interactions")
                if old.get(key) != new[key]]
    what = ", ".join(changes) or "the prepared sequences differ"
    raise DataError(f"{out}: the data changed since this run was trained ({what}); train it in another --out, "
                    "or delete the folder to start over")


def finish_run(exp: AssembledRun, out: Path, fit: dict[str, Any], dist: DistInfo = SINGLE) -> dict[str, Any]:
    """Evaluate valid and test once on the loaded (best) model; write ranks, embeddings, metrics.

    Under DDP every rank takes part in the evaluation and returns the metrics; rank 0 writes.
    """
    s = exp.settings
    valid_ranks = validator(exp, "valid", dist)(exp.model)
    t0 = time.perf_counter()
    test_ranks = validator(exp, "test", dist)(exp.model)
    eval_seconds = time.perf_counter() - t0
    with torch.no_grad():
        exp.model.eval()
        table = exp.model.item_table().float().cpu().numpy()
    metrics = {
        "valid": metrics_from_ranks(valid_ranks, s.eval.ks),
        "test": metrics_from_ranks(test_ranks, s.eval.ks),
        **fit, "eval_seconds": eval_seconds,
        "params": sum(p.numel() for p in exp.model.parameters() if p.requires_grad),
        "protocol": describe_protocol(s, exp.data),
    }
    if exp.context.semantic is not None:  # which matrix E: re-encoding on another machine may differ
        digest = hashlib.sha256(exp.context.semantic.cpu().numpy().tobytes())
        metrics["protocol"]["embeddings_sha256"] = digest.hexdigest()
    cold = exp.context.train_counts.numpy()[exp.data.targets("test") - 1] == 0
    if cold.any():  # test targets never seen in training (cold-start items)
        metrics["test_cold"] = {**metrics_from_ranks(test_ranks[cold], s.eval.ks), "users": int(cold.sum())}
    if dist.is_main:  # metrics.json written last: marks the run finished
        RunFolder(out).write_results({"valid": valid_ranks, "test": test_ranks}, table, metrics)
    distributed.barrier(dist)  # no rank leaves before the run folder is complete
    return metrics


def load_run_settings(run_dir: str | Path) -> RunSettings:
    return RunFolder(run_dir).read_settings()


def load_run(run_dir: str | Path, checkpoint: str = "best") -> AssembledRun:
    """Rebuild a run's model and load its ``best`` (or ``last``) weights; a checkpoint trained
    with other settings than the run's config.yaml is refused."""
    folder = RunFolder(run_dir)
    settings = folder.read_settings()
    path = folder.checkpoint(checkpoint)
    exp = assemble_run(settings)
    load_trained(exp.model, path, settings, map_location=exp.device)
    exp.model.eval()
    return exp


def evaluate(run_dir: str | Path, split: str = "test") -> dict[str, float]:
    """Re-evaluate a finished run's best checkpoint on ``split`` (does not modify the run)."""
    if split not in ("valid", "test"):
        raise SpectranError(f"--split must be valid or test, got {split!r}")
    exp = load_run(run_dir)
    return metrics_from_ranks(validator(exp, split)(exp.model), exp.settings.eval.ks)
