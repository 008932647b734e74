"""The loss terms against scipy, closed forms and hand-worked gradients."""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from cvae_tf import losses


def test_gaussian_nll_against_scipy_log_density():
    rng = np.random.default_rng(3)
    targets, mean = rng.normal(size=(2, 50, 9))
    log_variance = rng.uniform(-6, 2, size=(50, 9))
    expected = -scipy.stats.norm.logpdf(targets, mean, np.exp(0.5 * log_variance))
    np.testing.assert_allclose(
        losses.gaussian_nll(targets, mean, log_variance).numpy(), expected.sum(axis=-1), rtol=1e-10
    )
    per_coordinate = losses.gaussian_nll(targets, mean, log_variance, summed=False).numpy()
    np.testing.assert_allclose(per_coordinate, expected, rtol=1e-10)


def test_gaussian_kl_against_a_monte_carlo_estimate():
    """KL(q ‖ p) = E_q[log q − log p], estimated from 400,000 draws of q = N(μ, σ²)."""
    mean, log_var = np.array([[0.7, -1.2]]), np.array([[-0.5, 0.8]])
    std = np.exp(0.5 * log_var)
    draws = mean + std * np.random.default_rng(5).normal(size=(400_000, 2))
    log_ratio = scipy.stats.norm.logpdf(draws, mean, std) - scipy.stats.norm.logpdf(draws)
    expected = log_ratio.sum(axis=-1).mean()
    assert float(losses.gaussian_kl(mean, log_var)[0]) == pytest.approx(expected, abs=0.01)


def test_beta_nll_reports_the_nll_and_weights_its_gradient_by_the_variance():
    """∂/∂μ of β-NLL is the NLL's gradient (μ − x)/σ² times (σ²)^β, σ² held fixed (Seitzer)."""
    targets = tf.constant([[1.0, -2.0]], tf.float64)
    mean = tf.Variable([[0.5, 0.0]], dtype=tf.float64)
    log_variance = tf.constant([[np.log(4.0), np.log(0.25)]], tf.float64)
    with tf.GradientTape() as tape:
        nll, optimized = losses.reconstruction(targets, mean, log_variance, tf.reduce_mean, 0.5)
    gradient = tape.gradient(optimized, mean).numpy()
    # By hand: (μ − x)/σ² = (−0.5/4, 2/0.25) = (−0.125, 8); × σ^(2·0.5) = × (2, 0.5).
    np.testing.assert_allclose(gradient, [[-0.25, 4.0]], rtol=1e-12)
    expected_nll = -scipy.stats.norm.logpdf([1.0, -2.0], [0.5, 0.0], [2.0, 0.5]).sum()
    assert float(nll) == pytest.approx(expected_nll, rel=1e-12)
    plain, same = losses.reconstruction(targets, mean, log_variance, tf.reduce_mean)
    assert float(plain) == float(same) == pytest.approx(expected_nll, rel=1e-12)


def test_kernel_norms_by_hand():
    kernels = [np.array([[1.0, -2.0]]), np.array([[3.0], [-0.5]])]
    l1, l2 = losses.kernel_norms(kernels)
    assert float(l1) == pytest.approx(1 + 2 + 3 + 0.5)
    assert float(l2) == pytest.approx(1 + 4 + 9 + 0.25)


def test_position_errors_in_bohr_by_hand():
    """One event: C off by (3, 4, 0) normalized units at 1 bohr per unit, O and S exact."""
    targets = np.zeros((1, 9))
    mean = np.array([[3.0, 4.0, 0.0, 0, 0, 0, 0, 0, 0]])
    scale = np.ones(9)  # bohr² per normalized unit²
    errors = losses.position_errors(targets, mean, scale, np.mean)
    assert float(errors["mse"]) == pytest.approx(25.0 / 9)
    assert float(errors["atom_error"]) == pytest.approx(5.0 / 3)  # (5 + 0 + 0) / 3 atoms
    # Twice the bohr per normalized unit: distances double, the normalized MSE does not change.
    doubled = losses.position_errors(targets, mean, 4.0 * scale, np.mean)
    assert float(doubled["atom_error"]) == pytest.approx(10.0 / 3)
    assert float(doubled["mse"]) == pytest.approx(25.0 / 9)
