"""The bootstrap CI of a mean and the paired comparison, against hand-computed values and scipy."""

import numpy as np
import pytest
from scipy import stats

from brainseg.evaluation.statistics import (
    bootstrap_mean_ci,
    describe,
    paired_comparison,
)

A = [0.91, 0.88, 0.95, 0.79, 0.93, 0.90, 0.85, 0.97]
B = [0.93, 0.90, 0.94, 0.86, 0.96, 0.915, 0.89, 0.975]


def test_a_constant_has_a_zero_width_interval_at_its_value():
    assert bootstrap_mean_ci([0.8] * 7) == pytest.approx((0.8, 0.8))


def test_the_interval_is_seeded_and_holds_the_mean():
    low, high = bootstrap_mean_ci(A, seed=4)
    assert (low, high) == bootstrap_mean_ci(A, seed=4)
    assert (low, high) != bootstrap_mean_ci(A, seed=5)
    assert low < np.mean(A) < high


def test_the_interval_matches_scipys_percentile_bootstrap():
    values = np.random.default_rng(0).normal(0.9, 0.05, 30)
    ours = bootstrap_mean_ci(values, seed=1)
    theirs = stats.bootstrap((values,), np.mean, confidence_level=0.95, n_resamples=10_000, method="percentile", rng=np.random.default_rng(2)).confidence_interval
    width = theirs.high - theirs.low
    assert ours == pytest.approx((theirs.low, theirs.high), abs=0.05 * width)  # two Monte Carlo estimates of one interval


def test_describe_gives_mean_population_std_and_the_interval():
    summary = describe([1.0, 2.0, 3.0, 4.0])
    assert summary["n"] == 4 and summary["mean"] == 2.5 and summary["std"] == pytest.approx(np.sqrt(1.25))
    assert 1.0 <= summary["ci95_low"] < 2.5 < summary["ci95_high"] <= 4.0


@pytest.mark.parametrize("values", [[], [0.5, float("nan")]])
def test_no_values_or_a_nan_are_refused(values):
    with pytest.raises(ValueError):
        bootstrap_mean_ci(values)


def test_the_paired_comparison_matches_scipys_wilcoxon_and_the_plain_mean():
    result = paired_comparison(A, B)
    expected = stats.wilcoxon(np.array(B) - np.array(A))
    assert result["wilcoxon_statistic"] == pytest.approx(expected.statistic)
    assert result["wilcoxon_p"] == pytest.approx(expected.pvalue)
    assert result["mean_difference"] == pytest.approx(np.mean(B) - np.mean(A))
    assert result["mean_a"] == pytest.approx(np.mean(A)) and result["mean_b"] == pytest.approx(np.mean(B))
    assert (result["b_higher"], result["a_higher"], result["n"]) == (7, 1, 8)
    assert result["ci95_low"] < result["mean_difference"] < result["ci95_high"]
    # by hand: 7 of 8 differences positive, the only negative one (-0.01) has the second-smallest
    # rank (|d| = 0.005, 0.01, 0.02, ...): W = min(R+, R-) = 2, and the exact two-sided p = 2 * 3 / 256
    assert result["wilcoxon_statistic"] == 2 and result["wilcoxon_p"] == pytest.approx(6 / 256)


def test_identical_models_differ_by_nothing_with_p_one():
    result = paired_comparison(A, A)
    assert result["mean_difference"] == 0 and result["wilcoxon_p"] == 1.0 and result["ci95_low"] == result["ci95_high"] == 0
