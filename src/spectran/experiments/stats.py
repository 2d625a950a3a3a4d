"""Paired significance tests over per-user metrics, computed by :mod:`scipy.stats`.

- :func:`wilcoxon_signed_rank`: ``scipy.stats.wilcoxon``, two-sided. Differences are rounded to
  12 decimals first, so values equal up to floating-point noise (as seed-averaged per-user
  metrics often are) count as equal; zero differences are dropped (Wilcoxon's convention,
  ``zero_method="wilcox"``). The p-value method is chosen here, not by scipy's ``"auto"`` (which
  switches to permutations for small samples with ties): ``"exact"`` when there are at most
  ``EXACT_MAX_N`` non-zero differences and no tied magnitudes, else ``"asymptotic"``, the normal
  approximation with the tie correction of the variance and no continuity correction.
- :func:`paired_t_test`: ``scipy.stats.ttest_rel``, two-sided; constant differences (zero
  variance, where scipy returns NaN) give p = 0 when non-zero and p = 1 when zero.

Both return a :class:`TestResult`; the report uses them on per-user NDCG@10 of two methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

EXACT_MAX_N = 50  # exact Wilcoxon distribution up to this many non-zero differences (no ties)
ROUND_DECIMALS = 12  # differences are rounded first, so equal magnitudes up to float noise tie


@dataclass(frozen=True)
class TestResult:
    name: str  # "wilcoxon" | "t-test"
    statistic: float  # Wilcoxon: min(W+, W-); t-test: t
    p_value: float  # two-sided
    n: int  # pairs used (Wilcoxon: non-zero differences)
    mean_difference: float  # mean of x - y over all pairs


def _differences(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired samples must be 1-d of equal length, got {x.shape} and {y.shape}")
    return x - y


def wilcoxon_signed_rank(x: np.ndarray, y: np.ndarray) -> TestResult:
    """Two-sided Wilcoxon signed-rank test of the paired samples ``x`` and ``y``."""
    d_all = _differences(x, y)
    mean_diff = float(d_all.mean()) if len(d_all) else 0.0
    d_all = np.round(d_all, ROUND_DECIMALS)  # float noise (e.g. seed-averaged metrics) is not a difference
    d = d_all[d_all != 0]
    if len(d) == 0:  # identical samples: no evidence of a difference (scipy: NaN)
        return TestResult("wilcoxon", 0.0, 1.0, 0, mean_diff)
    ties = len(np.unique(np.abs(d))) < len(d)
    method = "exact" if len(d) <= EXACT_MAX_N and not ties else "asymptotic"
    res = stats.wilcoxon(d, zero_method="wilcox", correction=False, alternative="two-sided", method=method)
    return TestResult("wilcoxon", float(res.statistic), float(res.pvalue), len(d), mean_diff)


def paired_t_test(x: np.ndarray, y: np.ndarray) -> TestResult:
    """Two-sided paired t-test of ``x`` against ``y``."""
    d = _differences(x, y)
    n = len(d)
    if n < 2:
        raise ValueError("a paired t-test needs at least 2 pairs")
    mean = float(d.mean())
    if float(d.std(ddof=1)) == 0.0:  # constant differences: certain if non-zero, no evidence if zero
        return TestResult("t-test", math.copysign(math.inf, mean) if mean else 0.0,
                          0.0 if mean else 1.0, n, mean)
    res = stats.ttest_rel(d, np.zeros_like(d), alternative="two-sided")
    return TestResult("t-test", float(res.statistic), float(res.pvalue), n, mean)


TESTS = {"wilcoxon": wilcoxon_signed_rank, "t-test": paired_t_test}


def paired_test(name: str, x: np.ndarray, y: np.ndarray) -> TestResult:
    if name not in TESTS:
        raise ValueError(f"unknown test {name!r} (known: {', '.join(TESTS)})")
    return TESTS[name](x, y)
