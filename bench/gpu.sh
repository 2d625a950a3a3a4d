#!/usr/bin/env bash
# One GPU call (issue 19): (1) the unit tests that need CUDA, (2) the paper grid at seed 0 with as
# many concurrent sweep workers as the device holds, run folders, their archive (results without
# weights, `spectran archive`) and report under OUT_DIR, (3) a
# hard stop before BUDGET_S seconds of wall time (default 510 s, under 9 minutes) with whatever
# finished; calling it again with the same OUT_DIR skips finished runs and resumes killed ones
# from their `last` checkpoint (spectran sweep's resume).
#
#   SPECTRAN_DATA=/path/to/data bash bench/gpu.sh OUT_DIR
#
# Environment (all optional):
#   DEVICE=cuda       train.device of every run; cpu runs the same steps on the CPU (tests of this script)
#   SWEEP=sweeps/paper.yaml   SEEDS=0 (comma-separated)   FILTERS="dataset=office,beauty backbone=sasrec"
#   WORKERS           concurrent runs; default on cuda: min(CPU cores, GPU GiB / GIB_PER_RUN), else 1
#   GIB_PER_RUN=4     GPU memory reserved per worker when WORKERS is not given
#   BUDGET_S=510      wall-time budget of the whole script; TEST_S=120 cap on step (1)
#   SWEEP_S           a lower cap on the sweep's seconds (default: what the budget leaves, less 30 s)
#   PRECISION         train.precision of every run (default: the sweep's, fp32)
#   TEXT_ENCODER      text.encoder of every run (default: the sweep's; e.g. fake or npy:FILE offline).
#                     The GPU machine cannot encode with the decoder LLM (no network, the GGUF does not
#                     travel): carry the matrices made here by bench/carry_embeddings.py and name them
#                     with TEXT_ENCODER='npy:carry/gemma3-270m/{dataset}.npy' FILTERS="encoder=gemma3-270m"
#                     SWEEP=sweeps/paper_grid.yaml ({dataset} stands for each run's dataset)
#   SETS="k=v ..."    more --set overrides for every run
#   PYTHON=python3
# Exit status: 0 when the tests passed and the sweep finished or was stopped by the budget;
# non-zero when a test failed, a run failed or the sweep could not start.
set -euo pipefail
started=$(date +%s)
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
out="${1:?usage: bash bench/gpu.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"; SWEEP="${SWEEP:-sweeps/paper.yaml}"; SEEDS="${SEEDS:-0}"
BUDGET_S="${BUDGET_S:-510}"; TEST_S="${TEST_S:-120}"; GIB_PER_RUN="${GIB_PER_RUN:-4}"
log="$out/gpu_sh.log"
say() { echo "[gpu.sh $(( $(date +%s) - started ))s] $*" | tee -a "$log"; }
left() { echo $(( BUDGET_S - ($(date +%s) - started) )); }

if [[ "$DEVICE" == cuda* ]]; then
  if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    say "DEVICE=$DEVICE but torch.cuda.is_available() is False for $PY; nothing run"
    exit 2
  fi
  "$PY" -c 'import torch; p = torch.cuda.get_device_properties(0); print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}")' | tee -a "$log"
  gpu_gib=$("$PY" -c 'import torch; print(int(torch.cuda.get_device_properties(0).total_memory // 2**30))')
  cores=$(nproc)
  WORKERS="${WORKERS:-$(( gpu_gib / GIB_PER_RUN < cores ? gpu_gib / GIB_PER_RUN : cores ))}"
else
  WORKERS="${WORKERS:-1}"
fi
(( WORKERS >= 1 )) || WORKERS=1
say "device=$DEVICE sweep=$SWEEP seeds=$SEEDS workers=$WORKERS budget=${BUDGET_S}s out=$out data=${SPECTRAN_DATA:-<unset>}"

# (1) the CUDA unit tests (skipped, with the reason, where there is no CUDA device)
say "step 1: tests/test_cuda.py"
test_rc=0
timeout --kill-after=10 "$TEST_S" "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py \
  > "$out/tests_cuda.txt" 2>&1 || test_rc=$?
tail -n 12 "$out/tests_cuda.txt" | tee -a "$log"
# pytest exits 5 when every test was skipped or none collected (no CUDA): not a failure
if (( test_rc != 0 && test_rc != 5 )); then say "step 1: tests FAILED (exit $test_rc), see $out/tests_cuda.txt"; fi

# (2) the grid, (3) stopped before the budget; the report leaves 30 s of the budget
args=(sweep "$SWEEP" --out "$out/runs" --workers "$WORKERS" --filter "seed=$SEEDS"
      --no-progress --set "train.device=$DEVICE")
for f in ${FILTERS:-}; do args+=(--filter "$f"); done
[[ -n "${PRECISION:-}" ]] && args+=(--set "train.precision=$PRECISION")
[[ -n "${TEXT_ENCODER:-}" ]] && args+=(--set "text.encoder=$TEXT_ENCODER")
for kv in ${SETS:-}; do args+=(--set "$kv"); done
"$PY" -m spectran "${args[@]}" --dry-run > "$out/plan.txt" 2>&1 || { cat "$out/plan.txt"; say "sweep plan failed"; exit 3; }
say "step 2: $(tail -n 1 "$out/plan.txt"), $(grep -c '^done' "$out/plan.txt" || true) already done"
sweep_s=$(( $(left) - 30 ))
if [[ -n "${SWEEP_S:-}" ]] && (( SWEEP_S < sweep_s )); then sweep_s=$SWEEP_S; fi
sweep_rc=0
if (( sweep_s > 0 )); then
  say "step 2: spectran ${args[*]}  (stopped after ${sweep_s}s)"
  timeout --signal=TERM --kill-after=15 "$sweep_s" "$PY" -m spectran "${args[@]}" > "$out/sweep.txt" 2>&1 || sweep_rc=$?
  tail -n 5 "$out/sweep.txt" | tee -a "$log"
else
  say "step 2: no time left for the sweep"; sweep_rc=124
fi
case $sweep_rc in
  0) say "step 2: every run of the grid finished" ;;
  124|137) say "step 3: budget reached; unfinished runs resume on the next call with the same OUT_DIR" ;;
  *) say "step 2: sweep exit $sweep_rc (failed runs have error.txt in their folder)" ;;
esac
if "$PY" -m spectran "${args[@]}" --dry-run > "$out/state.txt" 2>&1; then
  say "state: $(cut -c1-20 "$out/state.txt" | sed 's/ *$//' | grep -v ' runs$' | sort | uniq -c | tr -s ' ' | paste -sd, -)"
else
  say "state listing failed: $(tail -n 1 "$out/state.txt")"
fi
if find "$out/runs" -name metrics.json -print -quit 2>/dev/null | grep -q .; then
  # the results without weights: what comes back from the machine and gets committed
  if timeout 60 "$PY" -m spectran archive "$out/runs" --out "$out/archive" > "$out/archive.txt" 2>&1; then
    say "archive: $out/archive ($(tail -n 1 "$out/archive.txt"))"
  else
    say "archive failed: $(tail -n 1 "$out/archive.txt")"
  fi
  if timeout 60 "$PY" -m spectran report "$out/runs" --group-by backbone --extras --out "$out/report.md" \
      > "$out/report.txt" 2>&1; then
    say "report: $out/report.md"
  else
    say "report failed: $(tail -n 1 "$out/report.txt")"
  fi
else
  say "no finished run yet: no report"
fi
say "wall $(( $(date +%s) - started ))s"
if (( test_rc != 0 && test_rc != 5 )); then exit 1; fi
case $sweep_rc in 0|124|137) exit 0 ;; *) exit "$sweep_rc" ;; esac
