"""``spectran score RUN --out FILE``: top-K for every user, written to Parquet or CSV.

The users are those of the run's dataset (each user's whole sequence is the history: what to
recommend next) or the lines of a JSONL file of ``{"user": ..., "history": [ids]}``. They are
scored by chunks of ``batch_size`` users, one forward pass per chunk
(:meth:`spectran.serve.recommend.Recommender.top_rows`), and written chunk by chunk to a temporary
file renamed onto ``FILE`` at the end: an interrupted run leaves no partial file.

One row per (user, rank): ``user`` (the dataset's user position, 0-based, in the order of the
prepared dataset; or the file's ``user`` as text), ``rank`` (1..k), ``id``, ``original_id`` and
``score``. ``id`` is text in both formats (an integer id reads as its digits).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from spectran.errors import ConfigError, DataError
from spectran.io import atomic_path
from spectran.serve.recommend import Query, Recommender

COLUMNS = ("user", "rank", "id", "original_id", "score")


def dataset_histories(rec: Recommender) -> tuple[list[str], list[list[int]]]:
    """Every user of the run's dataset (position as text) and their whole sequence as table rows."""
    from spectran.data.prepare import prepare

    ds = prepare(rec.settings.data)
    return ([str(u) for u in range(ds.num_users)],
            [(ds.sequence(u) - 1).tolist() for u in range(ds.num_users)])


def file_histories(rec: Recommender, path: str | Path) -> tuple[list[str], list[list[int]]]:
    """Users and history rows of a JSONL of ``{"user": ..., "history": [ids]}``; errors name the row."""
    from spectran.data.source import iter_jsonl
    from spectran.serve.catalog import UnknownItem

    p = Path(path)
    if not p.is_file():
        raise DataError(f"--histories {p}: not found (expected JSONL of {{\"user\": ..., \"history\": [ids]}})")
    users, rows = [], []
    for row, record in iter_jsonl(p):
        user, history = record.get("user"), record.get("history")
        if user is None or isinstance(user, (dict, list)):
            raise DataError(f"{p}:{row}: expected a 'user' (a string or a number), got {user!r}")
        if not isinstance(history, list) or not history:
            raise DataError(f"{p}:{row}: expected a non-empty 'history' list of item ids, got {history!r}")
        try:
            rows.append(rec.catalog.rows(history, "history"))
        except UnknownItem as exc:
            raise DataError(f"{p}:{row}: {exc}") from None
        users.append(str(user))
    if not users:
        raise DataError(f"{p}: no histories")
    return users, rows


class _Writer:
    """Chunks of rows appended to a Parquet or CSV file."""

    def __init__(self, path: Path, fmt: str):
        self.fmt, self.path = fmt, path
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            self.pa = pa
            self.schema = pa.schema([("user", pa.string()), ("rank", pa.int32()), ("id", pa.string()),
                                     ("original_id", pa.string()), ("score", pa.float32())])
            self.parquet = pq.ParquetWriter(str(path), self.schema)
        else:
            self.fh = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
            self.csv = csv.writer(self.fh)
            self.csv.writerow(COLUMNS)

    def write(self, columns: dict[str, list[Any]]) -> None:
        if self.fmt == "parquet":
            self.parquet.write_table(self.pa.table(columns, schema=self.schema))
        else:
            self.csv.writerows(zip(*(columns[c] for c in COLUMNS), strict=True))

    def close(self) -> None:
        if self.fmt == "parquet":
            self.parquet.close()
        else:
            self.fh.close()


def _format(out: Path) -> str:
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--out {out}: expected a .parquet or .csv file name")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError(f"--out {out}: Parquet needs pyarrow (pip install 'spectran[parquet]'); "
                              "or write .csv") from None
    return fmt


def score(run_dir: str | Path, out: str | Path, k: int = 10, histories: str | Path | None = None,
          batch_size: int = 1024, exclude_history: bool = True, progress: bool = True,
          rec: Recommender | None = None) -> dict[str, Any]:
    """Write the top-``k`` of every user to ``out``; returns a summary (users, rows, users/s)."""
    out = Path(out)
    fmt = _format(out)
    if k < 1:
        raise ConfigError(f"--k: expected a positive number of items, got {k}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size: expected a positive integer, got {batch_size}")
    rec = rec or Recommender.from_run(run_dir)
    users, rows = file_histories(rec, histories) if histories is not None else dataset_histories(rec)
    start, written = time.perf_counter(), 0
    with atomic_path(out) as tmp, tqdm(total=len(users), unit="user", disable=not progress,
                                       desc=f"score {out.name}") as bar:
        writer = _Writer(tmp, fmt)
        try:
            for lo in range(0, len(users), batch_size):
                chunk = rows[lo:lo + batch_size]
                tops = rec.top_rows([Query(h, k, exclude_history) for h in chunk])
                columns: dict[str, list[Any]] = {c: [] for c in COLUMNS}
                for user, top in zip(users[lo:lo + batch_size], tops, strict=True):
                    for rank, (row, value) in enumerate(top, start=1):
                        columns["user"].append(user)
                        columns["rank"].append(rank)
                        columns["id"].append(rec.catalog.labels[row])
                        columns["original_id"].append(rec.catalog.originals[row])
                        columns["score"].append(value)
                writer.write(columns)
                written += len(columns["user"])
                bar.update(len(chunk))
        finally:
            writer.close()
    seconds = time.perf_counter() - start
    return {"out": str(out), "users": len(users), "rows": written, "k": k, "seconds": round(seconds, 2),
            "users_per_s": round(len(users) / seconds, 1) if seconds > 0 else None}
