#!/bin/bash
# Every beauty report and spectrum under docs/results/data from the paper sweep's beauty/sasrec runs:
#   spectran sweep sweeps/paper.yaml --out runs/paper --filter data.dataset=beauty --filter model.backbone=sasrec
#   bash bench/beauty_reports.sh runs/paper/beauty/sasrec
set -euo pipefail
R=${1:?usage: bench/beauty_reports.sh RUNS_DIR (e.g. runs/paper/beauty/sasrec)}
OUT=${2:-docs/results/data}
rows="id,mlp,moe,whiten_mlp,whiten_mlp 1 layer,rlmrec,llmesr,pca_init,svd_frozen,alphafuse,spectran"
# methods: spectran's gain and test against the best baseline
spectran report "$R" --extras --filter "label=$rows" --rows "$rows" --out "$OUT/beauty.md"
# the ablations with every seed, against full SpecTran's seeds (gain over the best variant)
abl="spectran,spectran w/o attention,spectran w/o position,spectran softmax,spectran fixed lambda,spectran learned beta"
spectran report "$R" --extras --filter "label=$abl" --against all --out "$OUT/beauty_ablations_seeds.md"
IFS=, read -ra labels <<< "$rows"
folders=("${labels[@]// /-}")  # the sweep's folder of a label: spaces become dashes
spectran spectrum "${folders[@]/#/$R/}" --out "$OUT/beauty_spectrum.png"
