"""The training loop: epochs, early stopping on validation, `last`/`best` checkpoints, resume.

Data order, masking and negatives of epoch e come from a generator seeded with (seed, e), and the
global RNG (dropout) is re-seeded from (seed, e, rank) at the start of every epoch, so a run
killed at any point and resumed from `last` follows exactly the same path as an uninterrupted one.

Several processes (``torchrun``): the model is wrapped in DDP; every rank builds the same global
batch and trains on its slice, with the loss scaled so that the averaged gradient equals the
one-process gradient (see spectran.distributed). Rank 0 alone writes logs and checkpoints.
Mixed precision (``train.precision``): bf16 autocasts the forward pass (backbone, item encoder and
loss GEMMs) on CPU or GPU, fp16 on GPU only (with a GradScaler); parameters, their gradients, the
optimiser state and the loss reduction stay fp32, and validation runs outside autocast (fp32
scores, see spectran.eval.evaluate).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from spectran.data.batches import SequenceArrays, iterate_batches
from spectran.distributed import SINGLE, DistInfo, all_sum, barrier, broadcast_flag
from spectran.errors import ConfigError
from spectran.eval.metrics import metrics_from_ranks
from spectran.io import atomic_path
from spectran.model import SeqRecModel
from spectran.objectives import Objective, TrainBatch
from spectran.runfolder import RunFolder
from spectran.settings import RunSettings
from spectran.train.checkpoint import load_trained, save_checkpoint
from spectran.train.losses import Loss
from spectran.train.sinks import Sink, epoch_line

EvalFn = Callable[[SeqRecModel], np.ndarray]  # model -> per-user validation ranks


@dataclass
class FitState:
    epoch: int = 0  # epochs completed
    best_epoch: int = 0
    best_score: float = -1.0
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class TrainStep(nn.Module):
    """One step's loss as a module forward, so that DDP can wrap it and synchronise gradients.

    Returns the loss *sum* over the targets of this batch (and the auxiliary loss times the number
    of sequences); the trainer divides by the global counts.
    """

    def __init__(self, model: SeqRecModel, loss: Loss):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, batch: TrainBatch, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        table = self.model.item_table()  # (N, w): once per step, shared by input and head
        hidden = self.model.hidden(batch.inputs, table)  # (B, L, w)
        sel = batch.targets != 0
        count = int(sel.sum())
        if count == 0:  # a rank's slice of a last, tiny batch: take part in the gradient all-reduce
            return hidden.sum() * 0 + table.sum() * 0, hidden.new_zeros(())
        main = self.loss(hidden[sel], batch.targets[sel], table, generator) * count
        extra = self.model.item_encoder.auxiliary_loss(batch, hidden)
        return main, (extra * len(batch.inputs) if extra is not None else main.new_zeros(()))


def make_optimizer(model: SeqRecModel, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam, or AdamW when ``weight_decay`` > 0, with the item encoder's
    :meth:`~spectran.encoders.base.ItemEncoder.undecayed_parameters` in a group without decay."""
    if weight_decay <= 0:
        return torch.optim.Adam(model.parameters(), lr=lr)
    kept = {id(p) for p in model.item_encoder.undecayed_parameters() if p.requires_grad}
    if not kept:
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    groups = [{"params": [p for p in model.parameters() if id(p) not in kept]},
              {"params": [p for p in model.parameters() if id(p) in kept], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)


class Trainer:
    def __init__(self, model: SeqRecModel, objective: Objective, loss: Loss, train: SequenceArrays,
                 validate: EvalFn, settings: RunSettings, run_dir: Path | None, device: torch.device,
                 sinks: list[Sink] | None = None, dist: DistInfo = SINGLE):
        self.model, self.objective, self.loss = model, objective, loss
        self.train_arrays, self.validate = train, validate
        self.s, self.device, self.dist = settings, device, dist
        self.run_dir = run_dir if dist.is_main else None  # only rank 0 writes
        self.resume_dir = run_dir  # every rank resumes
        t = settings.train
        self.optimizer = make_optimizer(model, t.lr, t.weight_decay)
        self.state = FitState()
        self.sinks = (sinks or []) if dist.is_main else []
        self.step = TrainStep(model, loss)
        if dist.enabled:
            ids = [device.index] if device.type == "cuda" else None
            # the extra pass over the graph that finds unused parameters, only for models that can have them
            unused = model.item_encoder.parameters_may_go_unused()
            self.step = DDP(self.step, device_ids=ids, find_unused_parameters=unused)
        if t.precision == "fp16" and device.type != "cuda":
            raise ConfigError(f"train.precision=fp16 needs a CUDA device, got {device} (use bf16 or fp32)")
        self.use_amp = t.precision != "fp32"
        self.amp_dtype = torch.bfloat16 if t.precision == "bf16" else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and t.precision == "fp16")

    # -- checkpoints ---------------------------------------------------------------------------
    def _ckpt(self, name: str, folder: Path | None = None) -> Path | None:
        folder = folder or self.run_dir
        return None if folder is None else RunFolder(folder).checkpoint(name)

    def _save_last(self) -> None:
        path = self._ckpt("last")
        if path is None:
            return
        st = self.state
        save_checkpoint(path, {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "epoch": st.epoch, "best_epoch": st.best_epoch,
            "best_score": st.best_score, "bad_epochs": st.bad_epochs,
            "history": json.dumps(st.history), "settings": self.s.to_dict()})

    def resume(self) -> bool:
        """Continue from `last` if it exists (every rank); returns whether it did."""
        path = self._ckpt("last", self.resume_dir)
        if path is None or not path.is_file():
            return False
        ck = load_trained(self.model, path, self.s, map_location=self.device)
        self.optimizer.load_state_dict(ck["optimizer"])
        if ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        self.state = FitState(ck["epoch"], ck["best_epoch"], ck["best_score"], ck["bad_epochs"],
                              json.loads(ck["history"]))
        self._write_log()
        return True

    # -- one epoch -----------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> float:
        """One pass over the training users; returns the mean loss per target of the epoch."""
        t, d = self.s.train, self.dist
        epoch_seed = t.seed * 1_000_003 + epoch
        gen = torch.Generator().manual_seed(epoch_seed)  # data order and masking: the same on every rank
        # negatives of sampled losses and dropout: per epoch and per rank
        loss_gen = torch.Generator().manual_seed(epoch_seed * 65_537 + 2 * d.rank + 1)
        torch.manual_seed(epoch_seed * 65_537 + 2 * d.rank)
        arr = self.train_arrays
        n = len(arr.seqs)
        self.model.train()
        total, targets_seen = 0.0, 0
        batches = iterate_batches(n, t.batch_size, gen)
        bar = tqdm(batches, total=(n + t.batch_size - 1) // t.batch_size, desc=f"epoch {epoch + 1}",
                   disable=not (t.progress and d.is_main), leave=False, dynamic_ncols=True)
        for step, idx in enumerate(bar):
            ix = idx.numpy()
            # every rank builds the same global batch (same generator draws), then keeps its slice
            full = self.objective.train_batch(torch.from_numpy(arr.users[ix]), torch.from_numpy(arr.seqs[ix]),
                                              torch.from_numpy(arr.lengths[ix]), gen)
            n_targets, n_seqs = int((full.targets != 0).sum()), len(ix)
            part = slice(d.rank, None, d.world_size)
            batch = TrainBatch(full.users[part], full.inputs[part].to(self.device),
                               full.targets[part].to(self.device))
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                main, extra = self.step(batch, loss_gen)
            # mean over the global batch; DDP averages gradients over ranks, hence the world size
            loss = (main / n_targets + extra / n_seqs) * d.world_size
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += float(main.detach())
            targets_seen += int((batch.targets != 0).sum())
            if (step + 1) % 10 == 0:
                bar.set_postfix(loss=f"{total / max(targets_seen, 1):.4f}")
        total, targets_seen = all_sum([total, targets_seen], d)
        return total / max(targets_seen, 1)

    # -- the whole fit -------------------------------------------------------------------------
    def fit(self) -> FitState:
        t, st = self.s.train, self.state
        metric = self.s.eval.select_metric
        started = time.perf_counter() - sum(h["train_seconds"] for h in st.history)
        try:
            while st.epoch < t.epochs and (st.bad_epochs < t.patience or st.epoch < t.min_epochs):
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
                        save_checkpoint(path, {"model": self.model.state_dict(), "epoch": st.epoch,
                                               "settings": self.s.to_dict()})
                else:
                    st.bad_epochs += 1
                row = {"epoch": st.epoch, "loss": loss, "train_seconds": t1 - t0, "valid_seconds": t2 - t1,
                       **{f"valid_{k}": v for k, v in valid.items()}, "best": improved}
                st.history.append(row)
                self._write_log()
                self._save_last()  # before the sinks: one that ends the run (pruning) leaves this epoch resumable
                for sink in self.sinks:
                    sink.log(row)
                if t.progress and self.dist.is_main:
                    tqdm.write(epoch_line(row, metric))
                if broadcast_flag(bool(t.max_seconds) and time.perf_counter() - started > t.max_seconds, self.dist):
                    break
        finally:  # a sink's exception (a pruned trial) or an interrupt still closes every sink
            for sink in self.sinks:
                sink.close()
        return st

    def load_best(self) -> None:
        barrier(self.dist)  # rank 0 may still be writing the last `best`
        path = self._ckpt("best", self.resume_dir)
        if path is not None and path.is_file():
            load_trained(self.model, path, self.s, map_location=self.device)

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
        folder = RunFolder(self.run_dir)
        with atomic_path(folder.log_csv) as tmp:
            lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in rows]
            tmp.write_text("\n".join(lines) + "\n")
        with atomic_path(folder.log_jsonl) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
