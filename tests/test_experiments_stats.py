"""Paired significance tests: hand-computed cases and agreement with scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spectran.experiments.stats import average_ranks, betainc, paired_t_test, paired_test, wilcoxon_signed_rank


def test_average_ranks_share_ties():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


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


def test_wilcoxon_drops_zero_differences_and_identical_samples():
    x = np.array([1.0, 2.0, 3.0])
    assert wilcoxon_signed_rank(x, x).p_value == 1.0
    res = wilcoxon_signed_rank(np.array([1.0, 2, 3, 4, 5, 7]), np.array([0.0, 0, 0, 0, 0, 7]))
    assert res.n == 5 and res.p_value == pytest.approx(2 / 32)


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


def test_betainc_closed_forms():
    assert betainc(1.0, 1.0, 0.3) == pytest.approx(0.3)  # uniform CDF
    assert betainc(2.0, 1.0, 0.5) == pytest.approx(0.25)  # x^2
    assert betainc(0.5, 0.5, 0.5) == pytest.approx(0.5)  # symmetric


@pytest.mark.parametrize("n", [8, 30, 400])
def test_agrees_with_scipy(n):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = x + rng.normal(0.3, 1.0, size=n)
    ours, ref = wilcoxon_signed_rank(x, y), stats.wilcoxon(x, y)
    assert ours.statistic == pytest.approx(ref.statistic)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    t, tref = paired_t_test(x, y), stats.ttest_rel(x, y)
    assert t.statistic == pytest.approx(tref.statistic) and t.p_value == pytest.approx(tref.pvalue, rel=1e-9)


def test_wilcoxon_ties_match_scipy_normal_approximation():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=200).astype(float)  # many zero and tied differences
    y = rng.integers(0, 4, size=200).astype(float)
    ref = stats.wilcoxon(x, y, method="approx", correction=False)
    assert wilcoxon_signed_rank(x, y).p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_unknown_test_name():
    with pytest.raises(ValueError, match="unknown test"):
        paired_test("anova", np.ones(3), np.ones(3))
