"""Top-K recommendations from a trained run.

A :class:`Recommender` loads a run once (its ``best`` checkpoint) and precomputes the item table;
a batch of queries is then one backbone pass over the histories (padded to ``data.max_len``, as
in evaluation) and a top-K over the table, by chunks of items for large catalogs. Items added
after training (text but no interactions, see :mod:`spectran.serve.new_items`) are appended to
the table and are recommendable.

Ids are the dataset's ids as the user knows them, in their exact form: the integers of
``sequences.txt`` (1..N, returned as ints), or the original ids of a table source (returned as the
strings they are: ``0067`` stays ``0067``), plus the ids given to added items. A history may also
name items by the catalog's original ids (ASINs): :mod:`spectran.serve.catalog`.

>>> rec = Recommender.from_run("runs/office")            # doctest: +SKIP
>>> rec.recommend([12, 7, 33], k=3)                       # doctest: +SKIP
[(118, 9.73), (40, 9.12), (7, 8.80)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spectran.api import load_run
from spectran.errors import DataError
from spectran.model import SeqRecModel
from spectran.objectives import Objective
from spectran.serve.catalog import Catalog
from spectran.serve.new_items import load_new_items
from spectran.settings import RunSettings

TOPK_CHUNK = 262_144  # items scored at once


def topk_chunked(user: torch.Tensor, table: torch.Tensor, k: int, chunk: int = TOPK_CHUNK,
                 exclude: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` items of each row of ``user (B, w)`` against ``table (N, w)``, N items by chunks.

    ``exclude[b]``: 0-based item rows never returned for user b (repeats allowed). Returns (scores
    (B, k'), rows (B, k')) sorted by descending score, k' = min(k, N); memory is B x (chunk + k).
    """
    B, N = len(user), len(table)
    k = min(k, N)
    if exclude is not None:  # (user, row) pairs, masked in one operation per chunk
        ex_rows = (torch.cat([r.to(user.device, torch.long) for r in exclude]) if exclude
                   else torch.zeros(0, dtype=torch.long, device=user.device))
        ex_users = torch.repeat_interleave(torch.arange(len(exclude), device=user.device),
                                           torch.tensor([len(r) for r in exclude], device=user.device))
    if chunk >= N:  # one chunk: no merging
        scores = (user @ table.T).float()  # (B, N)
        if exclude is not None:
            scores[ex_users, ex_rows] = float("-inf")
        return scores.topk(k, dim=1)
    best_s = user.new_full((B, 0), float("-inf"))
    best_i = torch.zeros((B, 0), dtype=torch.long, device=user.device)
    for lo in range(0, N, chunk):
        scores = (user @ table[lo:lo + chunk].T).float()  # (B, c)
        if exclude is not None:
            inside = (ex_rows >= lo) & (ex_rows < lo + scores.shape[1])
            scores[ex_users[inside], ex_rows[inside] - lo] = float("-inf")
        s, i = scores.topk(min(k, scores.shape[1]), dim=1)
        best_s, order = torch.cat([best_s, s], dim=1).topk(min(k, best_s.shape[1] + s.shape[1]), dim=1)
        best_i = torch.cat([best_i, i + lo], dim=1).gather(1, order)
    return best_s, best_i


@dataclass(frozen=True)
class Query:
    """One user's request in table rows: ``history`` (oldest first), top ``k``, whether the
    history's items are excluded, and the rows allowed in the answer (None: every item)."""

    history: Sequence[int]
    k: int = 10
    exclude_history: bool = True
    candidates: Sequence[int] | None = None


class Recommender:
    """A loaded run: model, objective and the (N [+ M], w) table of every recommendable item."""

    def __init__(self, model: SeqRecModel, objective: Objective, table: torch.Tensor, max_len: int,
                 catalog: Catalog, chunk: int = TOPK_CHUNK, settings: RunSettings | None = None):
        self.model, self.max_len, self.chunk, self.settings = model.eval(), max_len, chunk, settings
        self.num_trained = model.num_items
        self.table = table  # (N + M, w)
        self.catalog = catalog  # ids, original ids and texts of the rows
        self._objective = objective
        self.objective = objective.for_table(len(table))

    @classmethod
    def from_run(cls, run_dir: str | Path, checkpoint: str = "best") -> Recommender:
        exp = load_run(run_dir, checkpoint)
        with torch.no_grad():
            table = exp.model.item_table().float()  # (N, w)
        ds = exp.data
        labels = [str(x) for x in ds.item_ids] if ds.item_ids else [str(i) for i in range(1, ds.num_items + 1)]
        catalog = Catalog.from_records(labels, ds.item_records, int_ids=not ds.item_ids)
        rec = cls(exp.model, exp.objective, table, exp.settings.data.max_len, catalog, settings=exp.settings)
        added = load_new_items(run_dir)
        if added is not None:
            rec.append(added.labels, added.texts, added.embeddings)
        return rec

    @property
    def labels(self) -> list[str]:
        return self.catalog.labels

    @property
    def row_of(self) -> dict[str, int]:
        return self.catalog.row_of

    def append(self, labels: list[str], texts: list[str], embeddings: torch.Tensor) -> None:
        """Make added items recommendable (in memory; :mod:`spectran.serve.add_items` saves them)."""
        self.table = torch.cat([self.table, embeddings.to(self.table.device, self.table.dtype)])
        self.catalog.extend(labels, texts)
        self.objective = self._objective.for_table(len(self.table))

    def rows(self, history: Sequence[object], field: str = "history", kind: str = "auto") -> list[int]:
        """User-facing ids (or original ids) -> 0-based table rows; an unknown id is a DataError naming it."""
        if not history:
            raise DataError(f"{field}: empty (expected at least one item id)")
        return self.catalog.rows(history, field, kind)

    @torch.no_grad()
    def user_vectors(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        """(B, w) user representations of B histories of rows, in one backbone pass."""
        L = self.max_len
        seqs = np.zeros((len(histories), L), dtype=np.int64)  # item ids (row + 1), 0 = padding
        lengths = np.zeros(len(histories), dtype=np.int64)
        for b, rows in enumerate(histories):
            recent = np.asarray(rows, dtype=np.int64)[-L:]
            seqs[b, :len(recent)] = recent + 1
            lengths[b] = len(recent)
        device = self.table.device
        inputs, positions = self.objective.query(torch.from_numpy(seqs).to(device),
                                                 torch.from_numpy(lengths).to(device))
        return self.model.hidden_at(inputs, self.table, positions)

    @torch.no_grad()
    def top_rows(self, queries: Sequence[Query]) -> list[list[tuple[int, float]]]:
        """(row, score) of each query's top-k, best first: one forward pass for every query."""
        for q in queries:
            if not q.history:
                raise DataError("history: empty (expected at least one item id)")
            if q.k < 1:
                raise DataError(f"k: expected a positive number of items, got {q.k}")
        users = self.user_vectors([q.history for q in queries])  # (B, w)
        device = self.table.device
        out: list[list[tuple[int, float]]] = [[] for _ in queries]
        full = [b for b, q in enumerate(queries) if q.candidates is None]
        if full:
            exclude = [torch.tensor(queries[b].history if queries[b].exclude_history else [], dtype=torch.long)
                       for b in full]
            k = max(queries[b].k for b in full)
            scores, top = topk_chunked(users if len(full) == len(queries) else users[full], self.table, k,
                                       self.chunk, exclude)
            for j, (rows, values) in enumerate(zip(top.tolist(), scores.tolist(), strict=True)):
                k = queries[full[j]].k
                out[full[j]] = [(r, s) for r, s in zip(rows[:k], values[:k], strict=True) if s != float("-inf")]
        for b, q in enumerate(queries):
            if q.candidates is None:
                continue
            cand = sorted(set(q.candidates) - (set(q.history) if q.exclude_history else set()))
            if not cand:
                continue
            idx = torch.tensor(cand, dtype=torch.long, device=device)
            scores = (users[b:b + 1] @ self.table[idx].T).float()[0]
            s, i = scores.topk(min(q.k, len(cand)))
            out[b] = [(cand[j], v) for j, v in zip(i.tolist(), s.tolist(), strict=True)]
        return out

    def recommend(self, history: list[int | str], k: int = 10, exclude_history: bool = True,
                  candidates: list[int | str] | None = None) -> list[tuple[int | str, float]]:
        """Top-``k`` (item id, score) for a user who interacted with ``history`` (oldest first);
        ``candidates``: only these items may be recommended."""
        if k < 1:
            raise DataError(f"k: expected a positive number of items, got {k}")
        cand = None if candidates is None else self.catalog.rows(candidates, "candidates")
        query = Query(self.rows(history), k, exclude_history, cand)
        return [(self.catalog.item_id(r), s) for r, s in self.top_rows([query])[0]]


def recommend(run_dir: str | Path, history: list[int | str], k: int = 10,
              exclude_history: bool = True) -> list[tuple[int | str, float]]:
    """One-shot :meth:`Recommender.recommend` (loads the run; keep a Recommender for many queries)."""
    return Recommender.from_run(run_dir).recommend(history, k, exclude_history)
