"""Library functions behind the CLI: ``train`` and ``evaluate`` (SPEC §8, §12).

A run folder holds ``config.yaml`` (resolved settings), ``env.json`` (library versions, git
commit), ``log.csv``/``log.jsonl`` (per epoch), ``checkpoints/{last,best}.pt``, ``metrics.json``,
``valid_ranks.npy``/``test_ranks.npy`` (per-user pessimistic ranks, row = user) and
``item_embeddings.npy`` (the learned (N, w) item table of the best checkpoint).

Under ``torchrun`` (several processes) every rank runs :func:`train`; rank 0 alone writes the run
folder, and the metrics are computed from the all-gathered per-user ranks (docs/scaling.md).
While a run trains, its folder is locked (:mod:`spectran.runlock`): a second process that
trains the same folder gets :class:`spectran.runlock.RunBusy` instead of overwriting it.
"""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from spectran.errors import ConfigError, SpectranError
from spectran.eval.evaluate import rank_all_users
from spectran.eval.metrics import metrics_from_ranks
from spectran.experiment import Experiment, build_experiment, describe_protocol
from spectran.io import write_json, write_npy, write_text
from spectran.runlock import run_lock
from spectran.settings import RunSettings, resolve, to_yaml, with_defaults
from spectran.train import distributed
from spectran.train.checkpoint import load_checkpoint
from spectran.train.distributed import SINGLE, DistInfo
from spectran.train.loop import Trainer
from spectran.train.losses import make_loss
from spectran.train.sinks import make_sinks


def environment() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=5, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    import spectran

    return {"spectran": spectran.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "git_commit": commit,
            "threads": torch.get_num_threads()}


def check_run_dir(out: Path, s: RunSettings) -> None:
    """A run folder belongs to one configuration: refuse to resume a different one."""
    cfg = out / "config.yaml"
    if cfg.is_file():
        old = with_defaults(yaml.safe_load(cfg.read_text(encoding="utf-8")) or {})
        new = s.to_dict()
        for volatile in ("progress", "threads", "epochs", "max_seconds"):
            old.get("train", {}).pop(volatile, None)
            new["train"].pop(volatile, None)
        if old != new:
            raise ConfigError(f"{out}: holds a run with different settings; choose another --out")


def validator(exp: Experiment, split: str = "valid", dist: DistInfo = SINGLE):
    """model -> per-user ranks of ``split`` for every user (sharded over ranks under DDP)."""
    arrays, targets, history = exp.eval_arrays(split), exp.data.targets(split), exp.history(split)
    bs = exp.settings.eval.batch_size
    return lambda model: rank_all_users(model, exp.objective, arrays, targets, bs, exp.device, history, dist)


def make_trainer(exp: Experiment, out: Path | None = None, dinfo: DistInfo = SINGLE,
                 settings: RunSettings | None = None) -> Trainer:
    """The experiment's Trainer: the loss of its settings (``settings`` overrides exp.settings),
    validation on the valid split, checkpoints and sinks under ``out`` (None: nothing written)."""
    s = settings or exp.settings
    t = s.train
    loss = make_loss(t.loss, num_negatives=t.num_negatives, negatives=t.negatives) if t.loss == "sampled" \
        else make_loss(t.loss, chunk=t.ce_chunk) if t.loss == "ce" else make_loss(t.loss)
    sinks = make_sinks(s, out) if out is not None and dinfo.is_main else []
    return Trainer(exp.model, exp.objective, loss, exp.train_arrays(), validator(exp, "valid", dinfo),
                   s, out, exp.device, sinks=sinks, dist=dinfo)


def train(settings: RunSettings, out: str | Path, exp: Experiment | None = None) -> dict[str, Any]:
    """Train (or resume) a run in ``out`` and evaluate the best checkpoint on test once."""
    out = Path(out)
    check_run_dir(out, settings)
    # under torchrun rank 0 alone holds the lock
    with run_lock(out) if distributed.is_main_process() else contextlib.nullcontext():
        if (out / "metrics.json").is_file():
            return json.loads((out / "metrics.json").read_text())
        return _train_distributed(settings, out, exp)


def _train_distributed(settings: RunSettings, out: Path, exp: Experiment | None) -> dict[str, Any]:
    owns_group = not torch.distributed.is_initialized()
    dinfo, rank_device = distributed.init_from_env(settings.train.device)
    try:
        return _train(settings, out, exp, dinfo, rank_device)
    finally:
        if dinfo.enabled and owns_group:
            distributed.shutdown()


def _train(settings: RunSettings, out: Path, exp: Experiment | None, dinfo: DistInfo,
           rank_device: torch.device | None) -> dict[str, Any]:
    with distributed.main_first(dinfo):  # rank 0 fills the data/embedding caches first
        exp = exp or build_experiment(settings)
    if rank_device is not None:
        exp.model.to(rank_device)
        exp.device = rank_device
    if dinfo.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.yaml", to_yaml(settings))
        write_json(out / "env.json", environment() | {"world_size": dinfo.world_size})
    trainer = make_trainer(exp, out, dinfo, settings)
    trainer.resume()
    state = trainer.fit()
    trainer.load_best()
    return finish_run(exp, out, {"best_epoch": state.best_epoch, "epochs": state.epoch,
                                 "train_seconds_per_epoch": trainer.median_epoch_seconds()}, dinfo)


def finish_run(exp: Experiment, out: Path, fit: dict[str, Any], dist: DistInfo = SINGLE) -> dict[str, Any]:
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
    cold = exp.context.train_counts.numpy()[exp.data.targets("test") - 1] == 0
    if cold.any():  # test targets never seen in training (cold-start items)
        metrics["test_cold"] = {**metrics_from_ranks(test_ranks[cold], s.eval.ks), "users": int(cold.sum())}
    if dist.is_main:
        write_npy(out / "valid_ranks.npy", valid_ranks)
        write_npy(out / "test_ranks.npy", test_ranks)
        write_npy(out / "item_embeddings.npy", table)
        write_json(out / "metrics.json", metrics)  # written last: marks the run finished
    distributed.barrier(dist)  # no rank leaves before the run folder is complete
    return metrics


def load_run_settings(run_dir: str | Path) -> RunSettings:
    cfg = Path(run_dir) / "config.yaml"
    if not cfg.is_file():
        raise SpectranError(f"{run_dir}: not a run folder (no config.yaml)")
    return resolve(yaml.safe_load(cfg.read_text(encoding="utf-8")))


def load_run(run_dir: str | Path, checkpoint: str = "best") -> Experiment:
    """Rebuild a run's model and load its ``best`` (or ``last``) weights."""
    settings = load_run_settings(run_dir)
    exp = build_experiment(settings)
    state = load_checkpoint(Path(run_dir) / "checkpoints" / f"{checkpoint}.pt", map_location=exp.device)
    exp.model.load_state_dict(state["model"])
    exp.model.eval()
    return exp


def evaluate(run_dir: str | Path, split: str = "test") -> dict[str, float]:
    """Re-evaluate a finished run's best checkpoint on ``split`` (does not modify the run)."""
    if split not in ("valid", "test"):
        raise SpectranError(f"--split must be valid or test, got {split!r}")
    exp = load_run(run_dir)
    return metrics_from_ranks(validator(exp, split)(exp.model), exp.settings.eval.ks)
