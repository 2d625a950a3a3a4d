"""Paired significance tests: hand-computed cases, the chosen p-value method, and a committed result."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from spectran.api import train
from spectran.experiments.collect import find_runs
from spectran.experiments.report import mean_user_ndcg
from spectran.experiments.stats import paired_t_test, paired_test, wilcoxon_signed_rank
from spectran.experiments.sweep import apply_filters, expand, load_sweep

ROOT = Path(__file__).resolve().parents[1]


def test_wilcoxon_all_positive_known_case():
    # 5 positive differences: W- = 0; exactly 1 of 2^5 sign patterns has W- = 0, two-sided p = 2/32
    res = wilcoxon_signed_rank(np.array([1.0, 2, 3, 4, 5]), np.zeros(5))
    assert res.statistic == 0.0
    assert res.p_value == pytest.approx(2 / 32)
    assert res.n == 5 and res.mean_difference == pytest.approx(3.0)


def test_wilcoxon_hand_computed_statistic():
    # differences 1, -2, 3, 4: W+ = 1 + 3 + 4 = 8, W- = 2, statistic = 2. Under H0 each of the 16
    # sign patterns is equally likely; 3 of them have a rank sum <= 2 ({}, {1}, {2}): p = 2 * 3/16
    res = wilcoxon_signed_rank(np.array([1.0, -2, 3, 4]), np.zeros(4))
    assert res.statistic == 2.0
    assert res.p_value == pytest.approx(2 * 3 / 16)


def test_wilcoxon_small_sample_with_ties_uses_the_normal_approximation():
    # |d| = 1, 1, 2, 3 tie: average ranks 1.5, 1.5, 3, 4; W+ = 6, W- = 4, T = 4. Not scipy's "auto"
    # (which permutes small tied samples) but the normal approximation with the tie correction:
    # mean n(n+1)/4 = 5, var n(n+1)(2n+1)/24 - (2^3 - 2)/48 = 7.375, no continuity correction
    res = wilcoxon_signed_rank(np.array([1.0, 1, 2, -3]), np.zeros(4))
    z = (4 - 5) / math.sqrt(7.375)
    assert res.statistic == 4.0
    assert res.p_value == pytest.approx(math.erfc(abs(z) / math.sqrt(2)), rel=1e-12)


def test_wilcoxon_float_noise_is_a_tie_and_zeros_are_dropped():
    x = np.array([1.0, 2.0, 3.0])
    assert wilcoxon_signed_rank(x, x).p_value == 1.0
    res = wilcoxon_signed_rank(np.array([1.0, 2, 3, 4, 5, 7]), np.array([0.0, 0, 0, 0, 0, 7]))
    assert res.n == 5 and res.p_value == pytest.approx(2 / 32)
    # 0.1 + 0.2 - 0.3 is 5.6e-17, not a difference; 0.3 and 0.1 + 0.2 are one tied magnitude
    noisy = wilcoxon_signed_rank(np.array([0.1 + 0.2, 0.3, 0.5]), np.array([0.3, 0.0, 0.0]))
    assert noisy.n == 2


def test_paired_t_known_case():
    # d = 1..5: mean 3, sd sqrt(2.5), t = 3 / (sqrt(2.5)/sqrt(5)) = 3 * sqrt(2) = 4.2426, df 4
    res = paired_t_test(np.arange(1.0, 6.0), np.zeros(5))
    assert res.statistic == pytest.approx(3 * math.sqrt(2))
    assert res.p_value == pytest.approx(0.0132356, abs=1e-6)  # t-table: P(|T_4| >= 4.2426)


def test_paired_t_degenerate_cases():
    assert paired_t_test(np.ones(4), np.ones(4)).p_value == 1.0
    assert paired_t_test(np.ones(4) * 2, np.ones(4)).p_value == 0.0
    with pytest.raises(ValueError):
        paired_t_test(np.ones(1), np.ones(1))


def test_unknown_test_name():
    with pytest.raises(ValueError, match="unknown test"):
        paired_test("anova", np.ones(3), np.ones(3))


def test_the_committed_smoke_significance_is_reproduced(tmp_path):
    """docs/results/data/smoke/report_significance.csv was written by the hand-written tests; retrain
    the two rows it compares (synthetic data, seconds) and test their per-user NDCG@10 again."""
    with (ROOT / "docs/results/data/smoke/report_significance.csv").open(encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    planned = apply_filters(expand(load_sweep(ROOT / "sweeps/smoke.yaml"), tmp_path, threads=1),
                            [f"label={row['ours']},{row['baseline']}"])
    assert len(planned) == 4  # two rows x two seeds
    for run in planned:
        train(run.settings, run.folder)
    found = find_runs([tmp_path])
    records = {label: [r for r in found if r.label == label] for label in (row["ours"], row["baseline"])}
    x, y = mean_user_ndcg(records[row["ours"]]), mean_user_ndcg(records[row["baseline"]])
    if (float(x.mean()), float(y.mean())) != (float(row["ours_ndcg@10"]), float(row["baseline_ndcg@10"])):
        pytest.skip("training on this machine gives other ranks than the committed smoke run "
                    f"(NDCG@10 {x.mean()!r} / {y.mean()!r}); nothing to compare the test with")
    res = paired_test(row["test"], x, y)
    assert res.statistic == float(row["statistic"])
    assert res.p_value == pytest.approx(float(row["p_value"]), rel=1e-12)

