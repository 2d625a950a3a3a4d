"""Assemble one run from its settings: data, semantic embeddings, SVD, model, objective.

This is the preparation layer: every file read and every fit (text encoding, SVD) happens here,
and the model modules receive ready tensors.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from spectran.backbones.registry import backbone_spec
from spectran.data.batches import SequenceArrays, eval_sequences, history_items, training_sequences
from spectran.data.prepare import PreparedDataset, prepare
from spectran.distributed import pick_device
from spectran.encoders.base import ItemContext
from spectran.encoders.fusion import Fusion
from spectran.encoders.registry import method_spec
from spectran.errors import ConfigError
from spectran.model import SeqRecModel
from spectran.objectives import Objective
from spectran.settings import RunSettings


@dataclass
class AssembledRun:
    settings: RunSettings
    data: PreparedDataset
    model: SeqRecModel
    objective: Objective
    context: ItemContext
    device: torch.device

    def train_arrays(self) -> SequenceArrays:
        return training_sequences(self.data, self.settings.data.max_len + self.objective.extra_width)

    def eval_arrays(self, split: str) -> SequenceArrays:
        return eval_sequences(self.data, split, self.settings.data.max_len)

    def to(self, device: torch.device) -> None:
        self.model.to(device)
        self.device = device

    def history(self, split: str) -> list[np.ndarray] | None:
        return history_items(self.data, split) if self.settings.eval.exclude_history else None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_deterministic(on: bool) -> None:
    """Switch torch's deterministic algorithms on or off for this process (``train.deterministic``).

    The model gathers item rows with ``F.embedding``, whose CPU backward is reproducible at any
    thread count; this switch covers any other op with a non-deterministic default (CPU
    ``index_put_`` with accumulation; on CUDA, atomics-based kernels and cuBLAS workspaces, hence
    the ``CUBLAS_WORKSPACE_CONFIG`` it sets when unset). Ops without a deterministic version warn."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)


def semantic_matrix(s: RunSettings, ds: PreparedDataset) -> np.ndarray:
    """E (N, D) for the dataset's items, from the embedding cache (encoded on demand)."""
    from spectran.text.api import load_or_encode

    return load_or_encode(ds, s.text, progress=s.train.progress)


def item_context(s: RunSettings, ds: PreparedDataset, needs_text: bool, needs_basis: bool) -> ItemContext:
    semantic = basis = None
    if needs_text or needs_basis:
        E = semantic_matrix(s, ds)
        semantic = torch.from_numpy(np.ascontiguousarray(E, dtype=np.float32))
        if needs_basis:
            from spectran.spectral.basis import load_or_compute_basis

            basis = load_or_compute_basis(E, ds, s.text, center=method_spec(s.model.method).center_basis(s.method))
    counts = torch.from_numpy(ds.train_item_counts())
    pairs = torch.from_numpy(ds.train_transitions()) if needs_basis else None
    return ItemContext(ds.num_items, s.model.dim, semantic, basis, counts, s.train.seed, pairs)


def zero_unseen_ids(encoder: torch.nn.Module, unseen: torch.Tensor, method: str) -> None:
    """model.unseen_ids = zero: hold the ID rows of never-trained items at zero (see Fusion.zero_ids)."""
    fusions = [m for m in encoder.modules() if isinstance(m, Fusion) and m.id_table is not None]
    if not fusions:
        raise ConfigError(f"model.unseen_ids=zero: method '{method}' has no ID table fused with a "
                          "semantic table (use it with mlp, moe, whiten_mlp, svd_frozen or spectran)")
    for fusion in fusions:
        fusion.zero_ids(unseen)


def assemble_run(s: RunSettings, data: PreparedDataset | None = None,
                 device: torch.device | None = None) -> AssembledRun:
    """The run ``s`` describes, on ``device`` (default: the one ``train.device`` names)."""
    if s.train.threads > 0:
        torch.set_num_threads(s.train.threads)
    make_deterministic(s.train.deterministic)
    ds = data if data is not None else prepare(s.data)
    mspec, bspec = method_spec(s.model.method), backbone_spec(s.model.backbone)
    ctx = item_context(s, ds, mspec.needs_text, mspec.needs_basis)
    seed_everything(s.train.seed)  # model initialisation depends on the seed only
    encoder = mspec.build(s.method, ctx)
    if s.model.unseen_ids == "zero":
        zero_unseen_ids(encoder, ctx.train_counts == 0, s.model.method)
    backbones = [bspec.build(s.backbone, s.model.dim, s.data.max_len) for _ in range(encoder.num_views)]
    objective = bspec.objective(s.backbone, ds.num_items)
    model = SeqRecModel(encoder, backbones, ds.num_items, s.model.dim, masked=objective.mask_token)
    device = device if device is not None else pick_device(s.train.device)
    return AssembledRun(s, ds, model.to(device), objective, ctx, device)


def describe_protocol(s: RunSettings, ds: PreparedDataset) -> dict[str, Any]:
    return {
        "split": "leave-one-out by time (last item test, second to last validation)",
        "candidates": f"full ranking over all {ds.num_items} items",
        "ties": "pessimistic (equal scores count against the target)",
        "exclude_history": s.eval.exclude_history,
        "select": f"best validation {s.eval.select_metric}; test evaluated once on that checkpoint",
        "dataset": ds.name, "users": ds.num_users, "items": ds.num_items,
        "users_dropped": ds.meta.get("users_dropped", 0), "max_len": s.data.max_len,
        "encoder": s.text.encoder if method_spec(s.model.method).needs_text else None,
        "dim": s.model.dim, "seed": s.train.seed, "backbone": s.model.backbone, "method": s.model.method,
        "label": s.model.label or s.model.method,
    }
