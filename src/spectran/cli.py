"""Command line: a thin shell over library functions of the same names.

Core commands live here (prepare, train, evaluate); other parts of the package add theirs by
exposing ``register(subparsers)`` in one of the modules listed in ``_COMMAND_MODULES``.
Every user-facing error prints one line ``error: ...`` and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from spectran.backbones.registry import backbone_names
from spectran.encoders.registry import method_names
from spectran.errors import SpectranError
from spectran.runlock import BUSY_EXIT_CODE, RunBusy
from spectran.textable import metrics_table

if TYPE_CHECKING:
    from spectran.runfolder import RunFolder

_COMMAND_MODULES = [
    "spectran.text.cli",  # encode
    "spectran.experiments.cli",  # sweep, report
    "spectran.diagnostics.cli",  # spectrum
    "spectran.serve.cli",  # recommend, export, add-items
    "spectran.tune.cli",  # tune
    "spectran.data.cli",  # data list, data fetch, data import-amazon
    "spectran.advise.cli",  # advise
]


OUT_OF_MEMORY = ("can't allocate memory", "out of memory")  # torch's CPU and CUDA allocation failures


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by every command that builds run settings."""
    p.add_argument("--config", help="YAML file of settings (sections: data, text, model, backbone, "
                                    "method, train, eval)")
    p.add_argument("--dataset", help="staged dataset name (looked up in the data root), a dataset folder "
                                     "path, or 'synthetic'")
    p.add_argument("--data-dir", help="root folder of staged datasets (else $SPECTRAN_DATA, else "
                                      "$XDG_DATA_HOME/spectran/data, i.e. ~/.local/share/spectran/data)")
    p.add_argument("--backbone", help=" | ".join(backbone_names()))
    p.add_argument("--method", help=f"method (item encoder): {', '.join(method_names())}")
    p.add_argument("--encoder", help="text encoder: minilm | mpnet | fake | st:PATH | hf:PATH | npy:FILE")
    # numbers are read by the settings (as --set values are: 1e3, 1_000), so their errors name the setting
    p.add_argument("--dim", help="SR embedding dimension d")
    p.add_argument("--seed")
    p.add_argument("--epochs", help="maximum epochs")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any setting (repeatable)")


FLAGS = {"dataset": "data.dataset", "data_dir": "data.data_dir", "backbone": "model.backbone",
         "method": "model.method", "encoder": "text.encoder", "dim": "model.dim", "seed": "train.seed",
         "epochs": "train.epochs"}  # run flag -> the setting it sets


def settings_from_args(args: argparse.Namespace):
    from spectran.settings import from_sources

    flags = {dotted: ("--" + attr.replace("_", "-"), getattr(args, attr)) for attr, dotted in FLAGS.items()
             if getattr(args, attr, None) is not None}
    return from_sources(getattr(args, "config", None), flags, getattr(args, "overrides", []))


def _cmd_prepare(args: argparse.Namespace) -> int:
    from spectran.data.prepare import prepare

    ds = prepare(settings_from_args(args).data, refresh=args.refresh)
    print(json.dumps({k: v for k, v in ds.meta.items() if k != "sources"} | {"cache": str(ds.cache_dir)},
                     indent=2))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from spectran.api import train
    from spectran.distributed import is_main_process

    s = settings_from_args(args)
    if args.no_progress:
        s.train.progress = False
    from spectran.recipes import recipe_label, recipe_values
    from spectran.runfolder import RunFolder, not_converged
    from spectran.train.sinks import EpochLines

    recipe = recipe_values(s)
    if recipe and is_main_process():
        listed = ", ".join(f"{k}={v}" for k, v in recipe.items())
        print(f"{s.model.method}'s tuned {s.model.backbone} recipe: {listed} (model.recipe=none for the "
              "defaults every method shares)", file=sys.stderr)
    already = RunFolder(args.out).finished
    start = time.perf_counter()
    sinks = [EpochLines(s.eval.select_metric)] if args.no_progress and is_main_process() else []
    try:
        metrics = train(s, args.out, sinks=sinks)
    except KeyboardInterrupt:
        if is_main_process():
            print(interrupted_line(RunFolder(args.out)), file=sys.stderr)
        return 130
    if not is_main_process():  # under torchrun only rank 0 reports
        return 0
    s = RunFolder(args.out).read_settings()  # as trained (the data may have changed the recipe's values)
    recipe = recipe_values(s)
    unconverged = not_converged(metrics, s.train.patience)
    if args.json:
        print(json.dumps({"valid": metrics["valid"], "test": metrics["test"], "best_epoch": metrics["best_epoch"],
                          "epochs": metrics["epochs"], "converged": unconverged is None,
                          "recipe": recipe_label(s), "recipe_values": recipe, "out": args.out}, indent=2))
        return 0
    took = "already finished" if already else f"{time.perf_counter() - start:.1f} s"
    print(f"best epoch {metrics['best_epoch']} of {metrics['epochs']} ({took})")
    if unconverged is not None:
        fix = ("set train.min_epochs, in a new --out, to train past a plateau" if metrics["best_epoch"] == 1
               else "more --epochs trains on from here")
        print(f"NOT CONVERGED: {unconverged}; these figures are provisional ({fix})")
    print(metrics_table({"valid": metrics["valid"], "test": metrics["test"]}))
    listed = f" ({', '.join(f'{k}={v}' for k, v in recipe.items())})" if recipe else ""
    print(f"settings: {s.model.method} on {s.model.backbone}, {recipe_label(s)}{listed}")
    print(f"run folder: {args.out} (every metric in metrics.json)")
    return 0


def interrupted_line(folder: RunFolder) -> str:
    """What an interrupted ``train`` kept: the epoch saved in ``checkpoints/last.pt``, if any."""
    from spectran.errors import CacheError
    from spectran.train.checkpoint import load_checkpoint

    last = folder.checkpoint("last")
    try:
        epoch = load_checkpoint(last)["epoch"] if last.is_file() else None
    except CacheError:  # interrupted while writing it: the atomic write kept no half file, but say so
        epoch = None
    if epoch is None:
        return (f"interrupted before an epoch was saved in {folder.path}: the same command starts the run "
                "from the beginning")
    return f"interrupted: epoch {epoch} is saved in {last}; the same command resumes from it"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from spectran.api import evaluate

    metrics = evaluate(args.run_dir, args.split)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    ks = sorted({int(k.split("@")[1]) for k in metrics if "@" in k})
    print(f"{args.run_dir}: best checkpoint, {args.split} split, full ranking")
    print(metrics_table({args.split: metrics}, ks, ("recall", "ndcg", "mrr")))
    print(f"mean rank {metrics['mean_rank']:.1f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from spectran import __version__

    parser = argparse.ArgumentParser(prog="spectran", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"spectran {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="read, filter and cache a dataset")
    add_run_flags(p)
    p.add_argument("--refresh", action="store_true", help="rebuild the cache even if it is valid")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("train", help="train a model and evaluate it (resumes an interrupted run)")
    add_run_flags(p)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar; one line per epoch instead")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a summary")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a run's best checkpoint")
    p.add_argument("run_dir")
    p.add_argument("--split", default="test", choices=["valid", "test"])
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    p.set_defaults(func=_cmd_evaluate)

    for name in _COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RunBusy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BUSY_EXIT_CODE
    except SpectranError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:  # torch reports a failed allocation as a RuntimeError
        if not isinstance(exc, MemoryError) and not any(s in str(exc) for s in OUT_OF_MEMORY):
            raise
        print(f"error: {args.command}: out of memory (a size setting such as model.dim, data.max_len or a "
              "batch size may be too large for this machine)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
