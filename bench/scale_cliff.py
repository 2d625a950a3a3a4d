"""Where large frozen semantic rows break training (issues 4, 5): a few epochs per scale.

The SVD family adds frozen rows ``scale * U_hat[:, :d] * g(sigma_bar)`` to a small N(0, 0.02) ID
table. When those rows are large, the first logits are dominated by semantic similarity to the
input items, the loss starts far above log N, and within an epoch or two the model learns to
ignore the semantic part altogether (validation NDCG@10 falls to the level of a random ranking),
recovering slowly or never. This prints, per scale, the RMS row norm of the frozen table (what
decides it), the first epoch's loss and validation NDCG@10 after each epoch, so a user can check
the margin of the default scale on their own data before a full run. ``--method whiten_mlp``
does the same for WhitenRec's whitened coordinates (``method.scale`` there too); its RMS row norm
is that of the item table at initialisation (its projection of the scaled whitened E; ``--layers``
sets the projection's depth).

    python bench/scale_cliff.py --dataset office --scales 0.3 0.5 0.6 0.7 --epochs 3 --threads 2
    python bench/scale_cliff.py --dataset office --scales 0.1 0.3 --weighting one
    python bench/scale_cliff.py --dataset office --method whiten_mlp --scales 1 0.3 --epochs 4 --layers 1

Protocol: seed 0, SASRec defaults, d = 64, MiniLM, full ranking, pessimistic ties, history not
excluded; "collapsed" = validation NDCG@10 of a later epoch below half of epoch 1's.
"""

from __future__ import annotations

import argparse
import math
import sys
import time


def run(dataset: str, method: str, scale: float, weighting: str, epochs: int, threads: int,
        layers: int | None = None) -> dict:
    import torch

    from spectran.api import make_trainer
    from spectran.assemble import assemble_run
    from spectran.eval.metrics import metrics_from_ranks
    from spectran.settings import resolve

    extra = {"weighting": weighting} if method == "svd_frozen" else {}
    if method == "whiten_mlp" and layers is not None:
        extra["layers"] = layers
    s = resolve({"data": {"dataset": dataset}, "text": {"encoder": "minilm"},
                 "model": {"method": method}, "method": {"scale": scale, **extra},
                 "train": {"progress": False, "threads": threads}})
    exp = assemble_run(s)
    trainer = make_trainer(exp)
    encoder = exp.model.item_encoder
    with torch.no_grad():  # svd_frozen: its frozen rows; whiten_mlp: its whole initial table
        frozen = encoder.frozen if method == "svd_frozen" else encoder.eval()()
        encoder.train()
    out = {"rms": float(frozen.norm(dim=1).pow(2).mean().sqrt()), "valid": [], "loss": math.nan}
    t0 = time.perf_counter()
    for epoch in range(epochs):
        loss = trainer.train_epoch(epoch)
        if epoch == 0:
            out["loss"] = loss
        with torch.no_grad():
            out["valid"].append(metrics_from_ranks(trainer.validate(exp.model), [10])["ndcg@10"])
    out["seconds"] = time.perf_counter() - t0
    out["log_n"] = math.log(exp.data.num_items)
    out["collapsed"] = any(v < 0.5 * out["valid"][0] for v in out["valid"][1:])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="office")
    p.add_argument("--method", choices=["svd_frozen", "whiten_mlp"], default="svd_frozen")
    p.add_argument("--scales", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    p.add_argument("--weighting", choices=["sigma", "one"], default="sigma")
    p.add_argument("--layers", type=int, help="whiten_mlp: Linear layers of its projection (default: the method's)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    if a.layers is not None and a.method != "whiten_mlp":
        p.error("--layers applies to --method whiten_mlp only")
    cols = " | ".join(f"valid N@10 ep{e + 1}" for e in range(a.epochs))
    what = (f"g = {'sigma_bar' if a.weighting == 'sigma' else '1'}" if a.method == "svd_frozen"
            else f"no ID table, {a.layers or 'default'} layer(s)")
    print(f"{a.dataset}, {a.method}, {what}, seed 0\n")
    print(f"| scale | RMS row norm | epoch-1 loss (log N) | {cols} | collapsed | seconds |")
    print("|---|---|---|" + "---|" * a.epochs + "---|---|")
    for scale in a.scales:
        r = run(a.dataset, a.method, scale, a.weighting, a.epochs, a.threads, a.layers)
        valid = " | ".join(f"{v:.4f}" for v in r["valid"])
        print(f"| {scale:g} | {r['rms']:.2f} | {r['loss']:.2f} ({r['log_n']:.2f}) | {valid} | "
              f"{'yes' if r['collapsed'] else 'no'} | {r['seconds']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
