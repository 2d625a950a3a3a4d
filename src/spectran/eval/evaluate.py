"""Full-ranking evaluation of a model over every user of a split.

Every user is evaluated exactly once; the item table is computed once per evaluation (inference
costs what the backbone costs). Candidates are the N real items; with ``exclude_history`` the
items of the user's history other than the target are removed from the candidates.
"""

from __future__ import annotations

import numpy as np
import torch

from spectran.data.batches import SequenceArrays
from spectran.eval.metrics import pessimistic_ranks
from spectran.model import SeqRecModel
from spectran.train.objectives import Objective


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
                 table: torch.Tensor | None = None, rows: np.ndarray | None = None) -> np.ndarray:
    """Pessimistic rank of each user's target among all N items; ``rows`` selects a subset."""
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
        scores = model.scores(user, table).float()  # (B, N)
        tgt = torch.from_numpy(targets[idx] - 1).to(device)
        if history is not None:
            _mask_history(scores, [history[i] for i in idx], tgt)
        ranks[start:start + len(idx)] = pessimistic_ranks(scores, tgt).cpu().numpy()
    model.train(was_training)
    return ranks


def _mask_history(scores: torch.Tensor, histories: list[np.ndarray], targets: torch.Tensor) -> None:
    rows = np.concatenate([np.full(len(h), i) for i, h in enumerate(histories)]) if histories else []
    if len(rows) == 0:
        return
    cols = torch.from_numpy(np.concatenate(histories) - 1).to(scores.device)
    rows_t = torch.from_numpy(rows).to(scores.device)
    keep = cols != targets[rows_t]  # the target itself stays a candidate
    scores[rows_t[keep], cols[keep]] = float("-inf")
