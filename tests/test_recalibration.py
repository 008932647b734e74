"""The spread recalibration factor against closed forms and independent root finding."""

import math
import re

import numpy as np
import pytest
from scipy import optimize

from cvae_tf.recalibration import spread_scale


def test_spread_scale_recovers_a_decoder_spread_twice_too_narrow():
    sigma = np.array([0.2, 1.0, 3.0])
    residual = np.random.default_rng(13).normal(0.0, 2 * sigma, size=(100_000, 3))
    decoder_variance = np.broadcast_to(sigma**2, residual.shape)

    scale = spread_scale(residual**2, np.zeros_like(residual), decoder_variance)

    np.testing.assert_allclose(scale, 2.0, rtol=0.01)


def test_spread_scale_closed_form_without_latent_variance():
    # r²/b = 2/1 and 12/2: mean 4, s = 2.
    scale = spread_scale(np.array([[2.0], [12.0]]), 0.0, np.array([[1.0], [2.0]]))
    assert scale.dtype == np.float64
    assert scale.shape == (1,)
    assert scale[0] == 2.0


def test_spread_scale_with_constant_residuals_and_latent_variance():
    # r²/(a + s²b) = 1 for every event: s² = (r² − a)/b → (5 − 1)/4, (10 − 1)/1, (3 − 2)/0.25.
    residual_squared = np.tile([5.0, 10.0, 3.0], (6, 1))
    latent = np.tile([1.0, 1.0, 2.0], (6, 1))
    decoder = np.tile([4.0, 1.0, 0.25], (6, 1))

    scale = spread_scale(residual_squared, latent, decoder)

    np.testing.assert_allclose(scale, [1.0, 3.0, 2.0], rtol=1e-9)


def test_spread_scale_with_an_event_without_latent_variance():
    # r² = 2, 2; a = 1, 0; b = 1: (2/(1 + t) + 2/t)/2 = 1 ⇔ t² − t − 1 = 0, t = s² = golden ratio.
    scale = spread_scale(np.array([[2.0], [2.0]]), np.array([[1.0], [0.0]]), 1.0)
    assert scale[0] == pytest.approx(math.sqrt((1 + math.sqrt(5)) / 2), rel=1e-9)


def test_spread_scale_is_zero_where_the_latent_variance_alone_covers_the_residuals():
    # Column 0: r²/a averages exactly 1. Column 1: r² = 0. Column 2: r² below a everywhere.
    residual_squared = np.array([[1.0, 0.0, 0.5], [3.0, 0.0, 1.0]])
    latent = np.array([[2.0, 1.0, 1.0], [2.0, 0.0, 2.0]])

    scale = spread_scale(residual_squared, latent, 1.0)

    np.testing.assert_array_equal(scale, [0.0, 0.0, 0.0])


def test_spread_scale_solves_the_matching_equation_column_by_column():
    rng = np.random.default_rng(14)
    events, columns = 500, 9
    latent = rng.uniform(0.0, 0.5, size=(events, columns))
    decoder = rng.uniform(0.1, 1.0, size=(events, columns))
    residual_squared = rng.normal(0.0, 1.5, size=(events, columns)) ** 2

    scale = spread_scale(residual_squared, latent, decoder)

    assert scale.shape == (columns,)
    for column in range(columns):
        r, a, b = residual_squared[:, column], latent[:, column], decoder[:, column]

        def excess(s, r=r, a=a, b=b):
            return np.mean(r / (a + s * s * b)) - 1

        expected = optimize.brentq(excess, 1e-6, 100.0, xtol=1e-14, rtol=1e-13)
        assert scale[column] == pytest.approx(expected, rel=1e-9)
        # Each column alone gives the same answer, and reversing the columns reverses the result.
        alone = spread_scale(r[:, None], a[:, None], b[:, None])
        assert alone[0] == pytest.approx(scale[column], rel=1e-12)
    reversed_scale = spread_scale(residual_squared[:, ::-1], latent[:, ::-1], decoder[:, ::-1])
    np.testing.assert_allclose(reversed_scale, scale[::-1], rtol=1e-12)


@pytest.mark.parametrize(
    ("residual_squared", "latent", "decoder", "message"),
    [
        (np.ones(3), 0.0, 1.0, "(3,)"),
        (np.ones((2, 3)), np.zeros((2, 2)), 1.0, "(2, 2)"),
        (np.array([[1.0, -4.0]]), 0.0, 1.0, "-4.0"),
        (np.ones((2, 2)), -0.5, 1.0, "-0.5"),
        (np.ones((2, 2)), 0.0, np.array([1.0, 0.0]), "0.0"),
    ],
)
def test_spread_scale_refuses_bad_input_naming_it(residual_squared, latent, decoder, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        spread_scale(residual_squared, latent, decoder)


def test_spread_scale_refuses_a_non_positive_tolerance():
    with pytest.raises(ValueError, match=re.escape("-1e-05")):
        spread_scale(np.ones((2, 2)), 0.0, 1.0, tolerance=-1e-5)
