"""Normalization: statistics from the data given, invertible, safe on constant columns."""

import numpy as np
import pytest

from cvae_tf import preprocessing
from tests.models import normalization_statistics


def table(seed=0):
    rng = np.random.default_rng(seed)
    values = rng.normal(loc=[0, 5, -300], scale=[1, 0.01, 150], size=(500, 3))
    values[:, 1] = 5.0  # a constant column
    return values


@pytest.mark.parametrize("method", preprocessing.NORMALIZATIONS)
def test_forward_then_inverse_gives_the_input_back(method):
    values = table()
    forward, inverse = preprocessing.normalization_layers(
        *normalization_statistics(method, values), name="t"
    )
    normalized = forward(values.astype(np.float32)).numpy()
    assert np.all(np.isfinite(normalized))
    np.testing.assert_allclose(inverse(normalized).numpy(), values, rtol=1e-5, atol=1e-4)


def test_standard_gives_zero_mean_unit_spread_on_the_fitted_data():
    values = table()
    forward, _ = preprocessing.normalization_layers(
        *normalization_statistics("standard", values), name="t"
    )
    normalized = forward(values.astype(np.float32)).numpy()
    np.testing.assert_allclose(normalized.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(normalized.std(axis=0)[[0, 2]], 1, rtol=1e-4)
    np.testing.assert_array_equal(normalized[:, 1], 0)  # constant column: shifted, not divided


def test_minmax_maps_the_fitted_range_onto_unit_interval():
    values = table()
    offset, variance = normalization_statistics("minmax", values)
    np.testing.assert_allclose(offset, values.min(axis=0))
    scaled = (values - offset) / np.sqrt(variance)
    np.testing.assert_allclose(scaled.min(axis=0), 0)
    np.testing.assert_allclose(scaled.max(axis=0)[[0, 2]], 1)


def test_none_is_the_identity():
    offset, variance = normalization_statistics("none", table())
    np.testing.assert_array_equal(offset, 0)
    np.testing.assert_array_equal(variance, 1)


def test_unknown_method():
    with pytest.raises(ValueError, match="expected one of"):
        normalization_statistics("zscore", table())


def test_statistics_accumulated_in_batches_match_the_whole_table():
    # Uneven batches, one of a single row, and columns far from zero: the pairwise merge must
    # agree with numpy's two-pass statistics on the whole table.
    rng = np.random.default_rng(7)
    values = rng.normal(loc=[1e4, -3.0, 0.0], scale=[1e-2, 2.0, 5.0], size=(1001, 3))
    statistics = preprocessing.ColumnStatistics(3)
    for start, stop in ((0, 1), (1, 400), (400, 400), (400, 1001)):
        statistics.update(values[start:stop])
    assert statistics.count == 1001
    np.testing.assert_allclose(statistics.mean, values.mean(axis=0), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(statistics.std, values.std(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(statistics.minimum, values.min(axis=0))
    np.testing.assert_array_equal(statistics.maximum, values.max(axis=0))


def test_pairwise_merge_by_hand():
    # Batches [1, 3] and [5]: mean 3, population variance ((1-3)² + (3-3)² + (5-3)²)/3 = 8/3.
    statistics = preprocessing.ColumnStatistics(1)
    statistics.update(np.array([[1.0], [3.0]]))
    statistics.update(np.array([[5.0]]))
    np.testing.assert_allclose(statistics.mean, [3.0])
    np.testing.assert_allclose(statistics.std, [np.sqrt(8 / 3)])
