"""``spectran recommend``, ``spectran add-items`` and ``spectran export``."""

from __future__ import annotations

import argparse
import json

from spectran.errors import DataError


def _parse_history(text: str) -> list[str]:
    """Item ids exactly as written (``0067`` stays ``0067``)."""
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise DataError("--history: empty (expected item ids separated by spaces, oldest first)")
    return tokens


def _cmd_recommend(args: argparse.Namespace) -> int:
    from spectran.serve.recommend import Recommender

    rec = Recommender.from_run(args.run_dir)
    items = rec.recommend(_parse_history(args.history), k=args.k, exclude_history=not args.keep_history)
    if args.json:
        print(json.dumps([{"item": i, "score": s} for i, s in items]))
    else:
        for rank, (item, score) in enumerate(items, start=1):
            print(f"{rank}\t{item}\t{score:.4f}")
    return 0


def _cmd_add_items(args: argparse.Namespace) -> int:
    from spectran.serve.add_items import add_items

    added = add_items(args.run_dir, args.items)
    print(json.dumps({"added": len(added), "ids": added[:20] + (["..."] if len(added) > 20 else [])}))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from spectran.serve.export import export

    print(json.dumps(export(args.run_dir, args.out), indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recommend", help="top-K items for a history, from a trained run")
    p.add_argument("run_dir")
    p.add_argument("--history", required=True, help='item ids, oldest first: "12 7 33"')
    p.add_argument("--k", type=int, default=10, help="number of items (default 10)")
    p.add_argument("--keep-history", action="store_true", help="allow items of the history in the result")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_recommend)

    p = sub.add_parser("add-items", help="add items with text but no interactions to a trained run")
    p.add_argument("run_dir")
    p.add_argument("--items", required=True, help="JSONL with 'item' (a new id) and the run's text fields")
    p.set_defaults(func=_cmd_add_items)

    p = sub.add_parser("export", help="export the item table and model weights as safetensors")
    p.add_argument("run_dir")
    p.add_argument("--out", help="folder (default RUN_DIR/export)")
    p.set_defaults(func=_cmd_export)
