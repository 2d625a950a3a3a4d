"""The training loop: epochs, early stopping on validation, `last`/`best` checkpoints, resume.

Data order, masking and negatives of epoch e come from a generator seeded with (seed, e), and the
global RNG (dropout) is saved in every `last` checkpoint, so a run killed after epoch k and
resumed follows exactly the same path as an uninterrupted one.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from spectran.data.batches import SequenceArrays, iterate_batches
from spectran.eval.metrics import metrics_from_ranks
from spectran.io import atomic_path
from spectran.model import SeqRecModel
from spectran.settings import RunSettings
from spectran.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from spectran.train.losses import Loss
from spectran.train.objectives import Objective
from spectran.train.sinks import Sink

EvalFn = Callable[[SeqRecModel], np.ndarray]  # model -> per-user validation ranks


@dataclass
class FitState:
    epoch: int = 0  # epochs completed
    best_epoch: int = 0
    best_score: float = -1.0
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    def __init__(self, model: SeqRecModel, objective: Objective, loss: Loss, train: SequenceArrays,
                 validate: EvalFn, settings: RunSettings, run_dir: Path | None, device: torch.device,
                 sinks: list[Sink] | None = None):
        self.model, self.objective, self.loss = model, objective, loss
        self.train_arrays, self.validate = train, validate
        self.s, self.run_dir, self.device = settings, run_dir, device
        t = settings.train
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay) \
            if t.weight_decay > 0 else torch.optim.Adam(model.parameters(), lr=t.lr)
        self.state = FitState()
        self.sinks = sinks or []
        self.aux = getattr(model.item_encoder, "auxiliary_loss", None)

    # -- checkpoints ---------------------------------------------------------------------------
    def _ckpt(self, name: str) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "checkpoints" / f"{name}.pt"

    def _save_last(self) -> None:
        path = self._ckpt("last")
        if path is None:
            return
        st = self.state
        save_checkpoint(path, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "rng": rng_state(), "epoch": st.epoch, "best_epoch": st.best_epoch,
            "best_score": st.best_score, "bad_epochs": st.bad_epochs,
            "history": json.dumps(st.history)})

    def resume(self) -> bool:
        """Continue from `last` if it exists; returns whether it did."""
        path = self._ckpt("last")
        if path is None or not path.is_file():
            return False
        ck = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        set_rng_state(ck["rng"])
        self.state = FitState(ck["epoch"], ck["best_epoch"], ck["best_score"], ck["bad_epochs"],
                              json.loads(ck["history"]))
        self._write_log()
        return True

    # -- one epoch -----------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> float:
        t = self.s.train
        gen = torch.Generator().manual_seed(t.seed * 1_000_003 + epoch)
        arr = self.train_arrays
        n = len(arr.seqs)
        self.model.train()
        total, count = 0.0, 0
        batches = iterate_batches(n, t.batch_size, gen)
        bar = tqdm(batches, total=(n + t.batch_size - 1) // t.batch_size, desc=f"epoch {epoch + 1}",
                   disable=not t.progress, leave=False, dynamic_ncols=True)
        use_amp = self.device.type == "cuda" and t.precision != "fp32"
        amp_dtype = torch.bfloat16 if t.precision == "bf16" else torch.float16
        for idx in bar:
            batch = self.objective.train_batch(torch.from_numpy(arr.users[idx.numpy()]),
                                               torch.from_numpy(arr.seqs[idx.numpy()]),
                                               torch.from_numpy(arr.lengths[idx.numpy()]), gen)
            inputs, targets = batch.inputs.to(self.device), batch.targets.to(self.device)
            with torch.autocast(self.device.type, dtype=amp_dtype, enabled=use_amp):
                table = self.model.item_table()  # (N, w): once per step, shared by input and head
                hidden = self.model.hidden(inputs, table)  # (B, L, w)
                sel = targets != 0
                loss = self.loss(hidden[sel], targets[sel], table, gen)
                if self.aux is not None:
                    batch.inputs, batch.targets = inputs, targets
                    extra = self.aux(batch, hidden)
                    if extra is not None:
                        loss = loss + extra
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            count += 1
            if count % 10 == 0:
                bar.set_postfix(loss=f"{total / count:.4f}")
        return total / max(count, 1)

    # -- the whole fit -------------------------------------------------------------------------
    def fit(self) -> FitState:
        t, st = self.s.train, self.state
        metric = self.s.eval.select_metric
        started = time.perf_counter() - sum(h["train_seconds"] for h in st.history)
        while st.epoch < t.epochs and st.bad_epochs < t.patience:
            t0 = time.perf_counter()
            loss = self.train_epoch(st.epoch)
            t1 = time.perf_counter()
            valid = metrics_from_ranks(self.validate(self.model), self.s.eval.ks)
            t2 = time.perf_counter()
            st.epoch += 1
            improved = valid[metric] > st.best_score
            if improved:
                st.best_score, st.best_epoch, st.bad_epochs = valid[metric], st.epoch, 0
                path = self._ckpt("best")
                if path is not None:
                    save_checkpoint(path, {"model": self.model.state_dict(), "epoch": st.epoch})
            else:
                st.bad_epochs += 1
            row = {"epoch": st.epoch, "loss": loss, "train_seconds": t1 - t0, "valid_seconds": t2 - t1,
                   **{f"valid_{k}": v for k, v in valid.items()}, "best": improved}
            st.history.append(row)
            self._write_log()
            for sink in self.sinks:
                sink.log(row)
            self._save_last()
            if t.progress:
                tqdm.write(f"epoch {st.epoch:3d}  loss {loss:.4f}  valid {metric} {valid[metric]:.4f}"
                           f"  ({t1 - t0:.1f}s + {t2 - t1:.1f}s){'  *' if improved else ''}")
            if t.max_seconds and time.perf_counter() - started > t.max_seconds:
                break
        for sink in self.sinks:
            sink.close()
        return st

    def load_best(self) -> None:
        path = self._ckpt("best")
        if path is not None and path.is_file():
            self.model.load_state_dict(load_checkpoint(path, map_location=self.device)["model"])

    def median_epoch_seconds(self) -> float:
        times = [h["train_seconds"] for h in self.state.history]
        return statistics.median(times) if times else 0.0

    # -- per-epoch log (CSV + JSONL) -----------------------------------------------------------
    def _write_log(self) -> None:
        """Rewrite both logs from the history (atomic; a resumed run drops nothing and repeats nothing)."""
        if self.run_dir is None or not self.state.history:
            return
        rows = self.state.history
        keys = list(rows[0])
        with atomic_path(self.run_dir / "log.csv") as tmp:
            lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in rows]
            tmp.write_text("\n".join(lines) + "\n")
        with atomic_path(self.run_dir / "log.jsonl") as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
