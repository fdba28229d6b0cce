"""Uncertainty of per-case scores: a seeded bootstrap CI of the mean and the paired comparison of two models.

Cases, not pixels, are the unit: a mean Dice over 40 test cases is an estimate, and the
interval says how far another 40 cases could move it. The bootstrap resamples cases with
replacement (``n_resamples`` times, seeded, so the same table always gives the same interval)
and takes the percentile interval of the resampled means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

N_RESAMPLES = 10_000
CONFIDENCE = 0.95


def bootstrap_mean_ci(
    values: Sequence[float], confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``.

    Args:
        values: one number per case (at least one; NaN is refused).
        confidence: coverage of the interval. Defaults to 0.95.
        n_resamples: resamples of the cases. Defaults to 10000.
        seed: the resampling seed; the same values and seed give the same interval. Defaults to 0.

    Raises:
        ValueError: no values, a NaN among them, or a confidence outside (0, 1).
    """
    values = np.asarray(values, float)
    if values.size == 0 or np.isnan(values).any():
        raise ValueError(f"bootstrap needs at least one value and no NaN, got {values.size} value(s)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):  # 1000 resamples at a time: bounded memory for large tables
        count = min(1000, n_resamples - start)
        means[start : start + count] = values[rng.integers(0, values.size, (count, values.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def describe(values: Sequence[float], seed: int = 0) -> dict[str, float]:
    """``n``, ``mean``, ``std`` (population, as ``summarize``) and the bootstrap 95% CI of the mean."""
    values = np.asarray(values, float)
    low, high = bootstrap_mean_ci(values, seed=seed)
    return {"n": int(values.size), "mean": float(values.mean()), "std": float(values.std()), "ci95_low": low, "ci95_high": high}


def paired_comparison(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict[str, float]:
    """B minus A, case by case: mean difference with its bootstrap 95% CI, and the paired
    Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided, zero differences dropped).

    Returns:
        ``n``, ``mean_a``, ``mean_b``, ``mean_difference``, ``ci95_low``, ``ci95_high``,
        ``b_higher`` and ``a_higher`` (cases), ``wilcoxon_statistic``, ``wilcoxon_p``
        (1.0 when every difference is 0: nothing to test).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need one value per case in both, got {a.size} and {b.size}")
    difference = b - a
    low, high = bootstrap_mean_ci(difference, seed=seed)
    if np.any(difference != 0):
        test = stats.wilcoxon(b, a)
        statistic, p_value = float(test.statistic), float(test.pvalue)
    else:
        statistic, p_value = 0.0, 1.0
    return {
        "n": int(a.size),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "mean_difference": float(difference.mean()),
        "ci95_low": low,
        "ci95_high": high,
        "b_higher": int((difference > 0).sum()),
        "a_higher": int((difference < 0).sum()),
        "wilcoxon_statistic": statistic,
        "wilcoxon_p": p_value,
    }
