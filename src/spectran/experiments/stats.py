"""Paired significance tests over per-user metrics (numpy + math only; scipy is not needed).

- :func:`wilcoxon_signed_rank`: the Wilcoxon signed-rank test (Wilcoxon 1945), two-sided. Zero
  differences are dropped (Wilcoxon's convention, scipy's ``zero_method="wilcox"``); tied
  magnitudes get average ranks (differences are rounded to 12 decimals first, so values equal up to
  floating-point noise, as seed-averaged per-user metrics often are, count as ties). Exact null
  distribution when there are at most ``EXACT_MAX_N`` non-zero differences and no ties, else the
  normal approximation with the tie correction of the variance and no continuity correction (as
  scipy's ``method="approx"``).
- :func:`paired_t_test`: Student's paired t-test, two-sided, p from the t distribution through the
  regularised incomplete beta function (continued fraction, Numerical Recipes §6.4).

Both return a :class:`TestResult`; the report uses them on per-user NDCG@10 of two methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

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


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, ties sharing the average of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        stop = start
        while stop + 1 < len(values) and sorted_vals[stop + 1] == sorted_vals[start]:
            stop += 1
        ranks[order[start:stop + 1]] = (start + stop) / 2.0 + 1.0
        start = stop + 1
    return ranks


def _exact_wilcoxon_p(w_plus: float, n: int) -> float:
    """Two-sided exact p of the signed-rank statistic: counts of subsets of {1..n} by rank sum."""
    total = n * (n + 1) // 2
    counts = np.zeros(total + 1, dtype=np.float64)
    counts[0] = 1.0
    for k in range(1, n + 1):  # add rank k to every subset
        counts[k:] = counts[k:] + counts[:-k].copy()
    probs = counts / 2.0 ** n
    t = min(w_plus, total - w_plus)
    p = 2.0 * probs[: math.floor(t + 1e-9) + 1].sum()
    return float(min(1.0, p))


def wilcoxon_signed_rank(x: np.ndarray, y: np.ndarray) -> TestResult:
    """Two-sided Wilcoxon signed-rank test of the paired samples ``x`` and ``y``."""
    d_all = _differences(x, y)
    mean_diff = float(d_all.mean()) if len(d_all) else 0.0
    d_all = np.round(d_all, ROUND_DECIMALS)  # float noise (e.g. seed-averaged metrics) is not a difference
    d = d_all[d_all != 0]
    n = len(d)
    if n == 0:  # identical samples: no evidence of a difference
        return TestResult("wilcoxon", 0.0, 1.0, 0, mean_diff)
    ranks = average_ranks(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    w_minus = float(ranks[d < 0].sum())
    statistic = min(w_plus, w_minus)
    _, tie_counts = np.unique(np.abs(d), return_counts=True)
    has_ties = bool((tie_counts > 1).any())
    if n <= EXACT_MAX_N and not has_ties:
        return TestResult("wilcoxon", statistic, _exact_wilcoxon_p(w_plus, n), n, mean_diff)
    mean = n * (n + 1) / 4.0
    var = n * (n + 1) * (2 * n + 1) / 24.0 - float((tie_counts ** 3 - tie_counts).sum()) / 48.0
    if var <= 0:
        return TestResult("wilcoxon", statistic, 1.0, n, mean_diff)
    z = (statistic - mean) / math.sqrt(var)
    return TestResult("wilcoxon", statistic, min(1.0, math.erfc(abs(z) / math.sqrt(2.0))), n, mean_diff)


def _betacf(a: float, b: float, x: float, max_iter: int = 300, eps: float = 1e-15) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, max_iter + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    return min(1.0, betainc(df / 2.0, 0.5, df / (df + t * t)))


def paired_t_test(x: np.ndarray, y: np.ndarray) -> TestResult:
    """Two-sided paired t-test of ``x`` against ``y``."""
    d = _differences(x, y)
    n = len(d)
    if n < 2:
        raise ValueError("a paired t-test needs at least 2 pairs")
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    if sd == 0.0:  # constant differences: certain if non-zero, no evidence if zero
        return TestResult("t-test", math.copysign(math.inf, mean) if mean else 0.0,
                          0.0 if mean else 1.0, n, mean)
    t = mean / (sd / math.sqrt(n))
    return TestResult("t-test", t, t_two_sided_p(t, n - 1), n, mean)


TESTS = {"wilcoxon": wilcoxon_signed_rank, "t-test": paired_t_test}


def paired_test(name: str, x: np.ndarray, y: np.ndarray) -> TestResult:
    if name not in TESTS:
        raise ValueError(f"unknown test {name!r} (known: {', '.join(TESTS)})")
    return TESTS[name](x, y)
