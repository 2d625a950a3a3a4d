"""Top-K recommendations from a trained run.

A :class:`Recommender` loads a run once (its ``best`` checkpoint) and precomputes the item table;
each query is then one backbone pass over the history and a top-K over the table, by chunks of
items for large catalogs. Items added after training (text but no interactions, see
:mod:`spectran.serve.new_items`) are appended to the table and are recommendable.

Ids are the dataset's ids as the user knows them, in their exact form: the integers of
``sequences.txt`` (1..N, returned as ints), or the original ids of a table source (returned as the
strings they are: ``0067`` stays ``0067``), plus the ids given to added items.

>>> rec = Recommender.from_run("runs/office")            # doctest: +SKIP
>>> rec.recommend([12, 7, 33], k=3)                       # doctest: +SKIP
[(118, 9.73), (40, 9.12), (7, 8.80)]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from spectran.api import load_run
from spectran.errors import DataError
from spectran.eval.evaluate import user_representations
from spectran.model import SeqRecModel
from spectran.objectives import Objective
from spectran.serve.new_items import load_new_items
from spectran.settings import RunSettings

TOPK_CHUNK = 262_144  # items scored at once


def topk_chunked(user: torch.Tensor, table: torch.Tensor, k: int, chunk: int = TOPK_CHUNK,
                 exclude: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` items of each row of ``user (B, w)`` against ``table (N, w)``, N items by chunks.

    ``exclude[b]``: 0-based item rows never returned for user b. Returns (scores (B, k'),
    rows (B, k')) sorted by descending score, k' = min(k, N); memory is B x (chunk + k).
    """
    B, N = len(user), len(table)
    k = min(k, N)
    best_s = user.new_full((B, 0), float("-inf"))
    best_i = torch.zeros((B, 0), dtype=torch.long, device=user.device)
    for lo in range(0, N, chunk):
        scores = (user @ table[lo:lo + chunk].T).float()  # (B, c)
        if exclude is not None:
            for b, rows in enumerate(exclude):
                inside = rows[(rows >= lo) & (rows < lo + scores.shape[1])] - lo
                scores[b, inside] = float("-inf")
        s, i = scores.topk(min(k, scores.shape[1]), dim=1)
        best_s, order = torch.cat([best_s, s], dim=1).topk(min(k, best_s.shape[1] + s.shape[1]), dim=1)
        best_i = torch.cat([best_i, i + lo], dim=1).gather(1, order)
    return best_s, best_i


class Recommender:
    """A loaded run: model, objective and the (N [+ M], w) table of every recommendable item."""

    def __init__(self, model: SeqRecModel, objective: Objective, table: torch.Tensor, max_len: int,
                 labels: list[str], chunk: int = TOPK_CHUNK, settings: RunSettings | None = None,
                 int_ids: bool = False):
        self.model, self.max_len, self.chunk, self.settings = model.eval(), max_len, chunk, settings
        self.int_ids = int_ids  # ids are the integers of sequences.txt: returned as ints
        self.num_trained = model.num_items
        self.table = table  # (N + M, w)
        self.labels = labels  # user-facing id of row i
        self.row_of = {label: i for i, label in enumerate(labels)}
        self.objective = objective.for_table(len(table))

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best") -> Recommender:
        exp = load_run(run_dir, checkpoint)
        with torch.no_grad():
            table = exp.model.item_table().float()  # (N, w)
        ds = exp.data
        labels = [str(x) for x in ds.item_ids] if ds.item_ids else [str(i) for i in range(1, ds.num_items + 1)]
        added = load_new_items(run_dir)
        if added is not None:
            table = torch.cat([table, added.embeddings.to(table.device)])
            labels += added.labels
        return cls(exp.model, exp.objective, table, exp.settings.data.max_len, labels, settings=exp.settings,
                   int_ids=not ds.item_ids)

    def rows(self, history: list[int | str]) -> list[int]:
        """User-facing ids -> 0-based table rows; an unknown id is a DataError naming it."""
        if not history:
            raise DataError("--history: empty (expected at least one item id)")
        out = []
        for pos, item in enumerate(history):
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise DataError(f"--history: item {item!r} (position {pos + 1}) is a {type(item).__name__} "
                                "(expected an id: a string, or an integer of sequences.txt)")
            row = self.row_of.get(str(item))
            if row is None:
                raise DataError(f"--history: item {item!r} (position {pos + 1}) is not in the catalog "
                                f"(known ids: {self.labels[0]}..{self.labels[-1]}, {len(self.labels)} items)")
            out.append(row)
        return out

    @torch.no_grad()
    def recommend(self, history: list[int | str], k: int = 10,
                  exclude_history: bool = True) -> list[tuple[int | str, float]]:
        """Top-``k`` (item id, score) for a user who interacted with ``history`` (oldest first)."""
        if k < 1:
            raise DataError(f"--k: expected a positive number of items, got {k}")
        rows = self.rows(history)
        device = self.table.device
        seq = torch.tensor([r + 1 for r in rows[-self.max_len:]], dtype=torch.long, device=device)
        seqs, lengths = seq[None, :], torch.tensor([len(seq)], device=device)  # (1, L), (1,)
        user = user_representations(self.model, self.objective, seqs, lengths, self.table)  # (1, w)
        exclude = [torch.tensor(sorted(set(rows)), device=device)] if exclude_history else None
        scores, top = topk_chunked(user, self.table, k, self.chunk, exclude)
        return [(self.item_id(self.labels[i]), float(s))
                for s, i in zip(scores[0].tolist(), top[0].tolist(), strict=True) if np.isfinite(s)]

    def item_id(self, label: str) -> int | str:
        """The id of a table row as the user knows it: an int for the integer ids of sequences.txt
        (and added ids in that same form), else the exact string."""
        return int(label) if self.int_ids and label.isdigit() and str(int(label)) == label else label


def recommend(run_dir: str | Path, history: list[int | str], k: int = 10,
              exclude_history: bool = True) -> list[tuple[int | str, float]]:
    """One-shot :meth:`Recommender.recommend` (loads the run; keep a Recommender for many queries)."""
    return Recommender.from_run(run_dir).recommend(history, k, exclude_history)
