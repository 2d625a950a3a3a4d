"""Cost of an item encoder against the plain ID table (issue 4): seconds per training epoch,
test evaluation time and adapter parameters, measured in one process with the epochs of the
methods interleaved (id, spectran, id, spectran, ...) so that a noisy shared machine slows both
alike; the ratio of medians is the figure to quote.

    python bench/bench_method_cost.py --dataset office --methods id spectran svd_frozen --epochs 5 --threads 2
    python bench/bench_method_cost.py --dataset office --methods id spectran --recipe none
    python bench/bench_method_cost.py --dataset office --encoder npy:runs/planted/office-tail64.npy \
        --methods id spectran svd_frozen --threads 1

Protocol: seed 0, SASRec, d = 64, MiniLM unless ``--encoder`` names another E, full-softmax CE,
each method at its defaults (with ``--recipe method``, the default: the methods' tuned recipes
where they have one, e.g. spectran at batch 64; ``--recipe none``: every method at batch 256, lr 1e-3); evaluation =
full ranking of every test user (pessimistic ties, history not excluded). The SVD of E is cached
before timing starts. SpecTran's row names the rule its ``position_by`` resolved to (``auto`` picks
informative or signal when the model is built).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def build(dataset: str, encoder: str, method: str, threads: int, recipe: str):
    from spectran.api import make_trainer, validator
    from spectran.assemble import assemble_run
    from spectran.settings import resolve

    s = resolve({"data": {"dataset": dataset}, "text": {"encoder": encoder},
                 "model": {"method": method, "recipe": recipe},
                 "train": {"progress": False, "threads": threads}})
    exp = assemble_run(s)
    return exp, make_trainer(exp), validator(exp, "test")


def adapter_parameters(encoder, num_items: int) -> int:
    """Learnable parameters of the item encoder except its per-item tables (one row per item: ID
    tables, PCA-initialised tables), i.e. what the adapter itself adds."""
    return sum(p.numel() for p in encoder.parameters() if p.requires_grad
               and not (p.ndim == 2 and p.shape[0] == num_items))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="office")
    p.add_argument("--encoder", default="minilm", help="text.encoder, e.g. npy:FILE for a planted E")
    p.add_argument("--methods", nargs="+", default=["id", "spectran"])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-repeats", type=int, default=7)
    p.add_argument("--recipe", choices=["method", "none"], default="method",
                   help="model.recipe: each method at its defaults (its tuned recipe where it has one) "
                        "or every method at the shared defaults")
    a = p.parse_args(argv)
    runs = {m: build(a.dataset, a.encoder, m, a.threads, a.recipe) for m in a.methods}
    seconds: dict[str, list[float]] = {m: [] for m in a.methods}
    for epoch in range(a.epochs):
        for m, (_, trainer, _) in runs.items():
            t0 = time.perf_counter()
            trainer.train_epoch(epoch)
            seconds[m].append(time.perf_counter() - t0)
    evals: dict[str, list[float]] = {m: [] for m in a.methods}
    for _ in range(a.eval_repeats):
        for m, (exp, _, test) in runs.items():
            exp.model.eval()
            t0 = time.perf_counter()
            test(exp.model)
            evals[m].append(time.perf_counter() - t0)
    from spectran.encoders.spectran import SpecTran

    base = a.methods[0]
    epoch_base, eval_base = statistics.median(seconds[base]), statistics.median(evals[base])
    print(f"{a.dataset}, E = {a.encoder}, seed 0, {a.epochs} interleaved epochs, "
          f"{a.eval_repeats} interleaved test evaluations, "
          f"{a.threads} threads, model.recipe={a.recipe}; medians\n")
    print(f"| method | s/epoch | x {base} | test eval s | x {base} | adapter params |")
    print("|---|---|---|---|---|---|")
    for m, (exp, _, _) in runs.items():
        ep, ev = statistics.median(seconds[m]), statistics.median(evals[m])
        encoder = exp.model.item_encoder
        name = f"{m} ({encoder.position_rule})" if isinstance(encoder, SpecTran) else m
        print(f"| {name} | {ep:.2f} | {ep / epoch_base:.2f} | {ev:.3f} | {ev / eval_base:.2f} "
              f"| {adapter_parameters(encoder, exp.data.num_items):,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
