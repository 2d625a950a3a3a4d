"""Small aligned plain-text tables for what the CLI prints."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[bool] | None = None) -> str:
    """Columns padded to their widest cell; ``right[i]`` aligns column i to the right (numbers)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    align = list(right) if right is not None else [False] * len(header)
    lines = []
    for r in cells:
        parts = [c.rjust(w) if a else c.ljust(w) for c, w, a in zip(r, widths, align, strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def metrics_table(splits: dict[str, dict[str, float]], ks: Sequence[int] = (10, 20),
                  families: Sequence[str] = ("recall", "ndcg")) -> str:
    """Rows = splits, columns = Recall@k / NDCG@k for each k present in the metrics."""
    names = {"recall": "Recall", "ndcg": "NDCG", "mrr": "MRR"}
    cols = [(f, k) for k in ks for f in families if all(f"{f}@{k}" in m for m in splits.values())]
    header = ["", *(f"{names.get(f, f)}@{k}" for f, k in cols)]
    rows = [[split, *(f"{m[f'{f}@{k}']:.4f}" for f, k in cols)] for split, m in splits.items()]
    return format_table(header, rows, [False] + [True] * len(cols))
