#!/usr/bin/env bash
# GPU throughput check (issue 8): beauty, SASRec with `id` and with `spectran`, a fixed number of
# epochs each (no early stopping), mixed precision; prints per-epoch seconds, sequences/s and the
# TFLOP/s of the logits GEMM (the full-softmax head: 3 GEMMs of T x N x d per step, fwd + 2 bwd).
# Finishes in a few minutes on one H100. Exits 0 with a message when no GPU is available.
#
#   bash bench/gpu.sh                        # defaults below
#   EPOCHS=5 PRECISION=bf16 DATASET=beauty ENCODER=minilm bash bench/gpu.sh
#
# Needs the dataset (SPECTRAN_DATA, or 'spectran data fetch beauty') and, for spectran, the text encoder (or a
# cached E). ENCODER=fake (with FAKE_DIM=384, MiniLM's width) measures the same compute offline.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
EPOCHS="${EPOCHS:-5}"; PRECISION="${PRECISION:-bf16}"; DATASET="${DATASET:-beauty}"
ENCODER="${ENCODER:-minilm}"; FAKE_DIM="${FAKE_DIM:-384}"; BATCH="${BATCH:-256}"
OUT="${OUT_DIR:-$(mktemp -d /tmp/spectran_gpu.XXXXXX)}"

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "bench/gpu.sh: no CUDA GPU visible to $PY (torch.cuda.is_available() is False); nothing to measure."
  exit 0
fi
"$PY" -c 'import torch; p = torch.cuda.get_device_properties(0); print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}")'
echo "dataset=$DATASET epochs=$EPOCHS precision=$PRECISION batch=$BATCH encoder=$ENCODER out=$OUT"

for method in id spectran; do
  start=$(date +%s)
  "$PY" -m spectran train --dataset "$DATASET" --method "$method" --encoder "$ENCODER" --epochs "$EPOCHS" \
    --set train.patience=1000 --set train.precision="$PRECISION" --set train.batch_size="$BATCH" \
    --set text.fake_dim="$FAKE_DIM" --set train.device=cuda --no-progress --out "$OUT/$method" > "$OUT/$method.json"
  echo "== $method: wall $(( $(date +%s) - start )) s (data, text cache, training, evaluation)"
  "$PY" - "$OUT/$method" <<'PYEOF'
import csv, json, statistics, sys
from pathlib import Path
from spectran.api import load_run_settings
from spectran.data.batches import training_sequences
from spectran.data.prepare import prepare

run = Path(sys.argv[1])
s = load_run_settings(run)
ds = prepare(s.data)
arr = training_sequences(ds, s.data.max_len + 1)
seqs, targets = len(arr.seqs), int((arr.lengths - 1).sum())
rows = list(csv.DictReader(open(run / "log.csv")))
times = [float(r["train_seconds"]) for r in rows]
steady = statistics.median(times[1:] if len(times) > 1 else times)  # epoch 1 includes warm-up
flops = 3 * 2 * targets * ds.num_items * s.model.dim  # logits GEMMs per epoch
m = json.loads((run / "metrics.json").read_text())
print("   epoch seconds: " + " ".join(f"{t:.2f}" for t in times))
print(f"   median epoch {steady:.2f} s | {seqs / steady:,.0f} sequences/s | {targets / steady:,.0f} targets/s"
      f" | logits GEMM {flops / steady / 1e12:.2f} TFLOP/s | eval {m['eval_seconds']:.2f} s"
      f" | test ndcg@10 {m['test']['ndcg@10']:.4f} after {m['epochs']} epochs")
PYEOF
done
