"""Benchmark `spectran data fetch` from a loopback mirror: seconds per set, download vs build.

    SPECTRAN_DATA=/path/to/staged .venv/bin/python bench/bench_fetch.py --datasets beauty office --repeats 3

Protocol: the staged sets' raw/ files are decompressed into a temporary tree laid out as the
mirror expects (``<owner>/<repo>/<commit>/<path>``) and served by ``http.server`` on 127.0.0.1
in a thread of this process. Each repeat fetches into a fresh, empty data root without a
progress bar; "fetch s" is the whole call (download + SHA-256 + build + SOURCE.md + rename),
"download s" the same files fetched alone with the package's downloader. Medians over the
repeats. Prints a markdown table and writes it to ``--out``.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from spectran.data.catalog import CATALOG
from spectran.data.download import download
from spectran.data.fetch import fetch


def staged_raw(folder: Path, name: str) -> Path:
    ds = folder.name
    for candidate in (name, f"{ds.capitalize()}_{name}", f"{ds}_{name}"):
        if (folder / "raw" / f"{candidate}.gz").is_file():
            return folder / "raw" / f"{candidate}.gz"
    raise SystemExit(f"{folder}: no staged raw copy of {name}")


def lay_out_mirror(staged: Path, names: list[str], tree: Path) -> int:
    total = 0
    for name in names:
        for f in CATALOG[name].files:
            dest = tree / f.mirror_path
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(gzip.decompress(staged_raw(staged / name, f.name).read_bytes()))
            total += dest.stat().st_size
    return total


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["beauty"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="bench/results/fetch.md")
    args = ap.parse_args()
    if not os.environ.get("SPECTRAN_DATA"):
        raise SystemExit("set SPECTRAN_DATA to a folder of staged sets with their raw/ files")
    staged = Path(os.environ["SPECTRAN_DATA"])
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "mirror"
        lay_out_mirror(staged, args.datasets, tree)
        handler = functools.partial(QuietHandler, directory=str(tree))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        rows = []
        try:
            for name in args.datasets:
                ds = CATALOG[name]
                fetch_s, download_s = [], []
                for r in range(args.repeats):
                    root = Path(tmp) / f"root-{name}-{r}"
                    t0 = time.perf_counter()
                    result = fetch(name, root, mirror=url, progress=False)
                    fetch_s.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    for f in ds.files:
                        download(f.url_from(url), Path(tmp) / "dl" / f.name, f.sha256, label=f.name, progress=False)
                    download_s.append(time.perf_counter() - t0)
                rows.append((name, len(ds.files), ds.download_bytes or 0, result.stats["interactions"],
                             statistics.median(download_s), statistics.median(fetch_s)))
                print(f"{name}: fetch {fetch_s}, download {download_s}", file=sys.stderr)
        finally:
            server.shutdown()
            server.server_close()
    lines = [f"# spectran data fetch from a loopback mirror ({platform.python_version()}, "
             f"{os.cpu_count()} CPUs, median of {args.repeats})", "",
             "`SPECTRAN_DATA=... python bench/bench_fetch.py --datasets " + " ".join(args.datasets)
             + f" --repeats {args.repeats}`", "",
             "| set | files | MiB | interactions | download s | fetch s (download + verify + build) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {k} | {b / 2**20:.1f} | {i:,} | {d:.2f} | {f:.2f} |" for n, k, b, i, d, f in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
