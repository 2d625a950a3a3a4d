"""Full-ranking evaluation of a model over every user of a split.

Every user is evaluated exactly once; the item table is computed once per evaluation (inference
costs what the backbone costs). Candidates are the N real items; with ``exclude_history`` the
items of the user's history other than the target are removed from the candidates.

Scores are fp32: ranking runs with autocast disabled, even when training used bf16. A bf16 score
keeps 8 significant bits, so scores within a relative 2^-8 (0.4 %) of each other can round to one
value and tie, and under the pessimistic tie rule a tie counts against the target (rank changes).

Large catalogs: when N exceeds ``item_chunk`` the (B, N) score matrix is never formed; ranks are
accumulated chunk by chunk of items (memory B x item_chunk). Under DDP (:func:`rank_all_users`)
each rank scores a disjoint share of the users and the ranks are all-gathered.
"""

from __future__ import annotations

import numpy as np
import torch

from spectran.data.batches import SequenceArrays
from spectran.distributed import SINGLE, DistInfo, gather_rows, local_rows
from spectran.errors import SpectranError
from spectran.eval.metrics import pessimistic_ranks
from spectran.model import SeqRecModel
from spectran.objectives import Objective

ITEM_CHUNK = 262_144  # items scored at once; beyond this the ranks are accumulated by chunks


@torch.no_grad()
def user_representations(model: SeqRecModel, objective: Objective, seqs: torch.Tensor,
                         lengths: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(B, L) histories -> (B, V * d) user representations."""
    inputs, positions = objective.query(seqs, lengths)
    h = model.hidden(inputs, table)  # (B, L', V * d)
    return h[torch.arange(len(h), device=h.device), positions]


@torch.no_grad()
def rank_targets(model: SeqRecModel, objective: Objective, arrays: SequenceArrays, targets: np.ndarray,
                 batch_size: int, device: torch.device, history: list[np.ndarray] | None = None,
                 table: torch.Tensor | None = None, rows: np.ndarray | None = None,
                 item_chunk: int = ITEM_CHUNK) -> np.ndarray:
    """Pessimistic rank of each user's target among all N items; ``rows`` selects a subset."""
    with torch.autocast(device.type, enabled=False):
        return _rank_targets(model, objective, arrays, targets, batch_size, device, history, table, rows,
                             item_chunk)


def _rank_targets(model: SeqRecModel, objective: Objective, arrays: SequenceArrays, targets: np.ndarray,
                  batch_size: int, device: torch.device, history: list[np.ndarray] | None,
                  table: torch.Tensor | None, rows: np.ndarray | None, item_chunk: int) -> np.ndarray:
    was_training = model.training
    model.eval()
    if table is None:
        table = model.item_table()
    rows = np.arange(len(arrays.seqs)) if rows is None else rows
    ranks = np.empty(len(rows), dtype=np.int64)
    for start in range(0, len(rows), batch_size):
        idx = rows[start:start + batch_size]
        seqs = torch.from_numpy(arrays.seqs[idx]).to(device)
        lengths = torch.from_numpy(arrays.lengths[idx]).to(device)
        user = user_representations(model, objective, seqs, lengths, table)
        tgt = torch.from_numpy(targets[idx] - 1).to(device)
        hist = None if history is None else [history[i] for i in idx]
        if len(table) <= item_chunk:
            scores = model.scores(user, table).float()  # (B, N)
            if hist is not None:
                _mask_history(scores, hist, tgt)
            batch_ranks = pessimistic_ranks(scores, tgt)
        else:
            batch_ranks = _chunked_ranks(model, user, table, tgt, hist, item_chunk)
        ranks[start:start + len(idx)] = batch_ranks.cpu().numpy()
    model.train(was_training)
    return ranks


def rank_all_users(model: SeqRecModel, objective: Objective, arrays: SequenceArrays, targets: np.ndarray,
                   batch_size: int, device: torch.device, history: list[np.ndarray] | None = None,
                   dist: DistInfo = SINGLE) -> np.ndarray:
    """:func:`rank_targets` over every user; under DDP each rank scores its share, then all-gather."""
    n = len(arrays.seqs)
    if not dist.enabled:
        return rank_targets(model, objective, arrays, targets, batch_size, device, history)
    rows = local_rows(n, dist)
    local = rank_targets(model, objective, arrays, targets, batch_size, device, history, rows=rows)
    return gather_rows(local, n, dist)


def _chunked_ranks(model: SeqRecModel, user: torch.Tensor, table: torch.Tensor, tgt: torch.Tensor,
                   hist: list[np.ndarray] | None, chunk: int) -> torch.Tensor:
    """Pessimistic ranks without the (B, N) matrix: count higher/equal items chunk by chunk.

    The target's score is read from the very GEMM call (same operands, same shapes) that the
    counting pass repeats, so ties are judged on identical arithmetic; its own column is then
    excluded from the counts. Chunks holding some target are therefore scored twice.
    """
    B, N = len(user), len(table)
    target_score = torch.empty(B, device=user.device)
    owner = tgt // chunk
    for c in owner.unique().tolist():
        rows = (owner == c).nonzero().squeeze(1)
        scores = model.scores(user, table[c * chunk:(c + 1) * chunk]).float()  # (B, chunk)
        target_score[rows] = scores[rows, tgt[rows] - c * chunk]
    if not torch.isfinite(target_score).all():
        raise SpectranError("non-finite score for an evaluation target (the model produced NaN/inf)")
    beaten = torch.zeros(B, dtype=torch.int64, device=user.device)
    for lo in range(0, N, chunk):
        scores = model.scores(user, table[lo:lo + chunk]).float()  # (B, chunk)
        inside = (tgt >= lo) & (tgt < lo + len(scores[0]))
        scores[inside.nonzero().squeeze(1), (tgt[inside] - lo)] = float("-inf")  # not the target itself
        if hist is not None:
            _mask_history(scores, [h[(h - 1 >= lo) & (h - 1 < lo + chunk)] - lo for h in hist], tgt - lo)
        beaten += (scores >= target_score[:, None]).sum(dim=1)
    return 1 + beaten


def _mask_history(scores: torch.Tensor, histories: list[np.ndarray], targets: torch.Tensor) -> None:
    rows = np.concatenate([np.full(len(h), i) for i, h in enumerate(histories)]) if histories else []
    if len(rows) == 0:
        return
    cols = torch.from_numpy(np.concatenate(histories) - 1).to(scores.device)
    rows_t = torch.from_numpy(rows).to(scores.device)
    keep = cols != targets[rows_t]  # the target itself stays a candidate
    scores[rows_t[keep], cols[keep]] = float("-inf")
