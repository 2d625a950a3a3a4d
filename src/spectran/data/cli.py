"""``spectran data``: list the known datasets, fetch them, import an Amazon review dump."""

from __future__ import annotations

import argparse
from pathlib import Path

from spectran.data.catalog import CATALOG
from spectran.data.fetch import data_root, fetch, is_complete, mirror_from_env
from spectran.textable import format_table, human_bytes


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _cmd_list(args: argparse.Namespace) -> int:
    root = data_root(args.data_dir)
    rows = []
    for name, ds in CATALOG.items():
        repos = ", ".join(dict.fromkeys(f.repo for f in ds.files))
        rows.append([name, _n(ds.users), _n(ds.items), _n(ds.interactions), human_bytes(ds.download_bytes),
                     "recorded" if ds.verified else "unknown", "yes" if is_complete(root / name) else "no", repos])
    print(f"data root: {root}")
    print(format_table(["name", "users", "items", "interactions", "download", "sha256", "present", "source"],
                       rows, [False, True, True, True, True, False, False, False]))
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    root = data_root(args.data_dir)
    mirror = mirror_from_env(args.mirror)
    for name in args.names:
        r = fetch(name, root, mirror=mirror, force=args.force, trust_first_download=args.trust_first_download,
                  progress=False if args.no_progress else None, timeout=args.timeout)
        counts = f"{r.stats['users']:,} users, {r.stats['items']:,} items, {r.stats['interactions']:,} interactions"
        if r.fetched:
            print(f"{name}: built {r.folder} ({counts}) in {r.seconds:.1f} s")
        else:
            print(f"{name}: already present at {r.folder} ({counts}); --force rebuilds it")
    return 0


def _cmd_import_amazon(args: argparse.Namespace) -> int:
    from spectran.data.amazon import ImportSettings, import_amazon

    settings = ImportSettings(ratings=args.ratings, meta=args.meta, min_rating=args.min_rating, core=args.core,
                              text_fields=tuple(t.strip() for t in args.text.split(",") if t.strip()))
    # a bare name goes under the data root, anything with a path separator is a folder
    out = Path(args.out) if Path(args.out).name != args.out else data_root(args.data_dir) / args.out
    stats = import_amazon(settings, out, force=args.force)
    rating = f"rating >= {args.min_rating:g}, " if args.min_rating is not None else ""
    print(f"{out}: {stats['users']:,} users, {stats['items']:,} items, {stats['interactions']:,} interactions "
          f"after {rating}{args.core}-core")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="list, fetch or import datasets (docs/data.md)")
    verbs = p.add_subparsers(dest="data_command", required=True)

    def root_flag(q: argparse.ArgumentParser) -> None:
        q.add_argument("--data-dir", help="data root (else $SPECTRAN_DATA, else the per-user data folder)")

    q = verbs.add_parser("list", help="every known dataset, its source and size, and whether it is present")
    root_flag(q)
    q.set_defaults(func=_cmd_list)

    q = verbs.add_parser("fetch", help="download the pinned sources, check their SHA-256, build the folder")
    q.add_argument("names", nargs="+", choices=list(CATALOG), metavar="NAME", help=", ".join(CATALOG))
    root_flag(q)
    q.add_argument("--mirror", help="base URL of a copy: a file is fetched from <base>/<owner>/<repo>/<commit>/"
                                    "<path> (else $SPECTRAN_MIRROR)")
    q.add_argument("--force", action="store_true", help="rebuild a set that is already present")
    q.add_argument("--trust-first-download", action="store_true",
                   help="accept files whose SHA-256 the package does not record (sports, yelp)")
    q.add_argument("--timeout", type=float, default=60.0, help="seconds without data before a download fails")
    q.add_argument("--no-progress", action="store_true", help="no progress bars")
    q.set_defaults(func=_cmd_fetch)

    q = verbs.add_parser("import-amazon", help="a dataset folder from an Amazon review dump (2014 or 2018)")
    q.add_argument("--ratings", required=True, help="2014 ratings CSV (user,item,rating,timestamp) or 2018 "
                                                    "reviews JSON lines; .gz is read as gzip")
    q.add_argument("--meta", required=True, help="metadata: one Python-literal or JSON object per line (.gz ok)")
    q.add_argument("--out", required=True, help="dataset name under the data root, or a folder path")
    root_flag(q)
    q.add_argument("--min-rating", type=float, help="keep ratings >= R before the k-core filter")
    q.add_argument("--core", type=int, default=5, help="k of the iterative k-core filter (default 5)")
    q.add_argument("--text", default="title,brand,categories", help="metadata fields joined into the item text")
    q.add_argument("--force", action="store_true", help="replace an existing folder")
    q.set_defaults(func=_cmd_import_amazon)
