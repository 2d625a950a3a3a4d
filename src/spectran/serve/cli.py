"""``spectran recommend``, ``add-items``, ``export``, ``serve`` (HTTP service) and ``score`` (batch top-K)."""

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
    from spectran.serve.recommend import Query, Recommender

    rec = Recommender.from_run(args.run_dir)
    kind = "original" if args.original_ids else "auto"
    rows = rec.rows(_parse_history(args.history), "--history", kind)
    if args.k < 1:
        raise DataError(f"--k: expected a positive number of items, got {args.k}")
    top = rec.top_rows([Query(rows, args.k, not args.keep_history)])[0]
    items = [rec.catalog.describe(row, score) for row, score in top]
    if args.json:
        print(json.dumps([{"item": i["id"]} | i for i in items]))
        return 0
    s = rec.settings
    print(f"top {len(items)} of {len(rec.catalog)} items for a history of {len(rows)} "
          f"({s.data.dataset}, {s.model.backbone} + {s.model.method}; history "
          f"{'kept' if args.keep_history else 'excluded'})")
    width = max([len(str(i["id"])) for i in items] + [2])
    owidth = max([len(i["original_id"]) for i in items] + [11])
    print(f"rank  {'id':<{width}}  {'original_id':<{owidth}}  {'score':>8}  text")
    for rank, i in enumerate(items, start=1):
        text = i["text"] if len(i["text"]) <= 80 else i["text"][:79] + "…"
        print(f"{rank:>4}  {i['id']!s:<{width}}  {i['original_id']:<{owidth}}  {i['score']:>8.4f}  {text}")
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


def _cmd_serve(args: argparse.Namespace) -> int:
    from spectran.serve.requests import Limits
    from spectran.serve.server import read_token, serve

    limits = Limits(max_body=args.max_body, max_history=args.max_history, max_k=args.max_k)
    serve(args.run_dir, args.host, args.port, max_batch=1 if args.no_batching else args.max_batch,
          max_wait_ms=args.max_wait_ms, threads=args.threads, token=read_token(args.token_file), limits=limits,
          drain=args.drain)
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from spectran.serve.score import score

    done = score(args.run_dir, args.out, k=args.k, histories=args.histories, batch_size=args.batch_size,
                 exclude_history=not args.keep_history, progress=not args.no_progress)
    print(json.dumps(done))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recommend", help="top-K items for a history, from a trained run")
    p.add_argument("run_dir")
    p.add_argument("--history", required=True, help='item ids or original ids (ASINs), oldest first: "12 7 33"')
    p.add_argument("--k", type=int, default=10, help="number of items (default 10)")
    p.add_argument("--keep-history", action="store_true", help="allow items of the history in the result")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--original-ids", action="store_true",
                   help="the history holds the catalog's original ids (ASINs) only (default: ids, then original ids)")
    p.set_defaults(func=_cmd_recommend)

    p = sub.add_parser("add-items", help="add items with text but no interactions to a trained run")
    p.add_argument("run_dir")
    p.add_argument("--items", required=True, help="JSONL with 'item' (a new id) and the run's text fields")
    p.set_defaults(func=_cmd_add_items)

    p = sub.add_parser("export", help="export the item table and model weights as safetensors")
    p.add_argument("run_dir")
    p.add_argument("--out", help="folder (default RUN_DIR/export)")
    p.set_defaults(func=_cmd_export)


    p = sub.add_parser("serve", help="serve a run over HTTP: JSON recommendations, item lookup, a page at /")
    p.add_argument("run_dir")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-batch", type=int, default=64, help="most requests answered by one forward pass (default 64)")
    p.add_argument("--max-wait-ms", type=float, default=2.0,
                   help="longest a request waits for others to join its batch (default 2 ms)")
    p.add_argument("--no-batching", action="store_true", help="answer each request alone (--max-batch 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the model (default 1)")
    p.add_argument("--token-file", help="file holding the token that allows POST /items (else "
                                        "$SPECTRAN_SERVE_TOKEN; neither: adding items is off)")
    p.add_argument("--max-body", type=int, default=1 << 20, help="largest request body in bytes (default 1 MiB)")
    p.add_argument("--max-history", type=int, default=1000, help="longest history in a request (default 1000)")
    p.add_argument("--max-k", type=int, default=1000, help="largest k in a request (default 1000)")
    p.add_argument("--drain", type=float, default=30.0,
                   help="seconds SIGTERM waits for requests in flight (default 30)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("score", help="top-K for every user of the run's dataset (or a file of histories) "
                                     "to Parquet or CSV")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True, help="FILE.parquet or FILE.csv (written atomically)")
    p.add_argument("--histories", help="JSONL of {\"user\": ..., \"history\": [ids]} (default: every user "
                                       "of the dataset, full sequence)")
    p.add_argument("--k", type=int, default=10, help="items per user (default 10)")
    p.add_argument("--batch-size", type=int, default=1024, help="users per forward pass (default 1024)")
    p.add_argument("--keep-history", action="store_true", help="allow items of the history in the result")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_score)
