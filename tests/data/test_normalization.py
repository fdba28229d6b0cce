"""HU windowing and z-scoring against plain numpy."""

import numpy as np
import pytest

from brainseg.data.normalization import (
    ct_statistics,
    normalize_hu,
    window_hu,
    zscore_hu,
)


def test_window_clips_then_scales_to_unit_range():
    hu = np.array([-1000.0, -100.0, 900.0, 1900.0, 3000.0])
    np.testing.assert_allclose(window_hu(hu, (-100, 1900)), [0.0, 0.0, 0.5, 1.0, 1.0])
    assert window_hu(hu, (-100, 1900)).dtype == np.float32


def test_a_window_with_low_not_below_high_is_refused():
    with pytest.raises(ValueError, match="low < high"):
        window_hu(np.zeros(3), (100, 100))


def test_zscore_uses_foreground_percentiles_and_moments():
    rng = np.random.default_rng(0)
    images = [np.concatenate([np.full(500, -1000.0), rng.normal(40, 10, 1000)]) for _ in range(3)]
    stats = ct_statistics(images)
    foreground = np.concatenate([image[image > -500] for image in images])
    low, high = np.percentile(foreground, [0.5, 99.5])
    assert stats["low"] == pytest.approx(low) and stats["high"] == pytest.approx(high)
    assert stats["mean"] == pytest.approx(np.clip(foreground, low, high).mean())
    normalized = zscore_hu(foreground, stats)
    assert abs(normalized.mean()) < 0.01 and normalized.std() == pytest.approx(1.0, abs=0.01)


def test_zscore_without_training_statistics_is_an_error():
    with pytest.raises(ValueError, match="statistics"):
        normalize_hu(np.zeros(3), "zscore", (-100, 1900))
    with pytest.raises(ValueError, match="unknown normalization"):
        normalize_hu(np.zeros(3), "minmax", (-100, 1900))
