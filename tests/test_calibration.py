"""Tests of the calibration measures against hand-worked cases and independent scipy results."""

import math
import re

import numpy as np
import pytest
from scipy import integrate, special, stats

from cvae_tf.calibration import (
    LEVELS,
    calibration_curve,
    coverage_by_spread,
    crps_from_samples,
    interval_coverage,
)


def gaussian_crps(mean, spread, truth):
    """The closed-form CRPS of N(mean, spread²), spread > 0 (Gneiting & Raftery 2007), bohr.

    CRPS = spread·[w(2Φ(w) − 1) + 2φ(w) − 1/√π], w = (truth − mean)/spread: the exact value the
    sampled estimator is checked against (itself checked against the defining integral below).
    """
    w = (truth - mean) / spread
    density = stats.norm.pdf(w)
    return spread * (w * special.erf(w / math.sqrt(2)) + 2 * density - 1 / math.sqrt(math.pi))


def gaussian_case(events: int, columns: int, seed: int) -> tuple[np.ndarray, ...]:
    """Truth drawn from N(mean, spread²) with heteroscedastic spreads: a calibrated predictive."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(0.0, 3.0, size=(events, columns))
    spread = rng.uniform(0.1, 2.0, size=(events, columns))
    truth = mean + spread * rng.standard_normal((events, columns))
    return truth, mean, spread


# --- interval_coverage -----------------------------------------------------------------------


def test_levels_are_the_nominal_central_probabilities_with_68_at_one_sigma():
    assert LEVELS == {"50": 0.50, "68": 0.682689492, "90": 0.90, "95": 0.95}
    assert stats.norm.ppf((1 + LEVELS["68"]) / 2) == pytest.approx(1.0, abs=1e-8)


def test_interval_coverage_counts_residuals_at_known_multiples_of_the_spread():
    # z: 0.674 (50 %), 1.000 (68 %), 1.645 (90 %), 1.960 (95 %). Residuals in units of the
    # spread: 0.1 and 0.6 lie in all four intervals, 0.9 in three, 1.5 in two, 1.8 in one, 3.0
    # in none; |0| ≤ z·0 is inside every interval and 0.1 against a zero spread inside none.
    multiples = np.array([0.1, -0.6, 0.9, -1.5, 1.8, -3.0])
    spread = np.array([0.5, 2.0, 1.0, 0.25, 3.0, 1.5])
    mean = np.array([1.0, -2.0, 0.0, 4.0, 0.5, 0.0])
    truth = mean + multiples * spread
    truth = np.concatenate([truth, [7.0, 7.1]]).reshape(4, 2)
    mean = np.concatenate([mean, [7.0, 7.0]]).reshape(4, 2)
    spread = np.concatenate([spread, [0.0, 0.0]]).reshape(4, 2)

    result = interval_coverage(truth, mean, spread)

    assert set(result) == {
        "coverage_50",
        "coverage_68",
        "coverage_90",
        "coverage_95",
        "mean_spread_bohr",
    }
    assert result["coverage_50"] == pytest.approx(3 / 8)
    assert result["coverage_68"] == pytest.approx(4 / 8)
    assert result["coverage_90"] == pytest.approx(5 / 8)
    assert result["coverage_95"] == pytest.approx(6 / 8)
    assert result["mean_spread_bohr"] == pytest.approx(8.25 / 8)


def test_interval_coverage_of_a_calibrated_gaussian_is_nominal():
    truth, mean, spread = gaussian_case(events=1_000_000 // 9, columns=9, seed=1)

    result = interval_coverage(truth, mean, spread)

    for name, probability in LEVELS.items():
        assert result[f"coverage_{name}"] == pytest.approx(probability, abs=0.005)
    assert result["mean_spread_bohr"] == pytest.approx(1.05, abs=0.005)


def test_interval_coverage_accepts_events_by_atoms_by_axes():
    truth, mean, spread = gaussian_case(events=300, columns=9, seed=2)
    flat = interval_coverage(truth, mean, spread)
    shaped = interval_coverage(*(a.reshape(300, 3, 3) for a in (truth, mean, spread)))
    assert shaped == flat


@pytest.mark.parametrize(
    ("truth", "mean", "spread", "message"),
    [
        (np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 3)), "(3, 3)"),
        (np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)), "(0, 2)"),
        (np.zeros(2), np.zeros(2), np.array([1.0, -0.5]), "-0.5"),
        (np.zeros(2), np.zeros(2), np.array([1.0, np.nan]), "nan"),
    ],
)
def test_interval_coverage_refuses_bad_input_naming_it(truth, mean, spread, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        interval_coverage(truth, mean, spread)


# --- coverage_by_spread ----------------------------------------------------------------------


def test_coverage_by_spread_is_nominal_in_every_bin_when_the_spread_is_right_per_event():
    truth, mean, spread = gaussian_case(events=200_000, columns=3, seed=3)

    result = coverage_by_spread(truth, mean, spread, bins=3)

    assert sorted(result) == sorted(
        f"coverage_{name}_spread_bin_{number}" for name in ("68", "95") for number in (1, 2, 3)
    )
    for number in (1, 2, 3):
        assert result[f"coverage_68_spread_bin_{number}"] == pytest.approx(0.6827, abs=0.006)
        assert result[f"coverage_95_spread_bin_{number}"] == pytest.approx(0.95, abs=0.004)


def test_coverage_by_spread_exposes_a_spread_ranked_the_wrong_way_round():
    # True noise σ spans 0.5 … 2 bohr and the predicted spread is 1/σ, the same range in reverse:
    # the smallest predicted spreads belong to the noisiest events.
    events = 120_000
    rng = np.random.default_rng(4)
    sigma = rng.permutation(np.linspace(0.5, 2.0, events))
    mean = np.zeros(events)
    truth = sigma * rng.standard_normal(events)
    spread = 1.0 / sigma

    result = coverage_by_spread(truth[:, None], mean[:, None], spread[:, None], bins=3)

    # Independent expectation: bin 1 holds the third of events with the largest σ, and an event
    # is covered with probability 2Φ(z·spread/σ) − 1.
    by_sigma = np.sort(sigma)[::-1]
    for name, z in (("68", 1.0), ("95", stats.norm.ppf(0.975))):
        for number, part in enumerate(np.array_split(by_sigma, 3), start=1):
            expected = np.mean(2 * stats.norm.cdf(z / part**2) - 1)
            assert result[f"coverage_{name}_spread_bin_{number}"] == pytest.approx(
                expected, abs=0.012
            )
    # Far below nominal (0.68, 0.95) where the model is most confident, above it where least.
    assert result["coverage_68_spread_bin_1"] < 0.35
    assert result["coverage_95_spread_bin_1"] < 0.6
    assert result["coverage_68_spread_bin_3"] > 0.85
    assert result["coverage_95_spread_bin_3"] > 0.98


def test_coverage_by_spread_ranks_each_column_by_its_own_spread_and_averages_columns():
    # Column 0: spreads 1, 2, 3, 4; events 2 and 3 miss by 10 bohr, outside even 1.96·4.
    # Column 1: spreads 4, 3, 2, 1, so its smallest-spread half is events 3 and 2; event 3 misses.
    truth = np.array([[0.0, 0.0], [0.0, 0.0], [10.0, 0.0], [10.0, 10.0]])
    mean = np.zeros((4, 2))
    spread = np.array([[1.0, 4.0], [2.0, 3.0], [3.0, 2.0], [4.0, 1.0]])

    result = coverage_by_spread(truth, mean, spread, bins=2)

    # Bin 1: column 0 covers 2/2, column 1 covers 1/2 → 0.75. Bin 2: 0/2 and 2/2 → 0.5.
    for name in ("68", "95"):
        assert result[f"coverage_{name}_spread_bin_1"] == pytest.approx(0.75)
        assert result[f"coverage_{name}_spread_bin_2"] == pytest.approx(0.5)


def test_coverage_by_spread_keys_for_other_bin_counts_and_event_shapes():
    truth, mean, spread = gaussian_case(events=10, columns=9, seed=5)
    shaped = [a.reshape(10, 3, 3) for a in (truth, mean, spread)]

    result = coverage_by_spread(*shaped, bins=4)

    assert len(result) == 8
    assert list(result) == [f"coverage_68_spread_bin_{n}" for n in (1, 2, 3, 4)] + [
        f"coverage_95_spread_bin_{n}" for n in (1, 2, 3, 4)
    ]
    assert coverage_by_spread(truth, mean, spread, bins=4) == result
    # Ten events in four groups: 3, 3, 2, 2, so every per-column value is a multiple of 1/6.
    for value in result.values():
        assert 0.0 <= value <= 1.0
        assert value * 9 * 6 == pytest.approx(round(value * 9 * 6))


@pytest.mark.parametrize("bins", [0, 11, 2.5, True])
def test_coverage_by_spread_refuses_a_bad_bin_count_naming_it(bins):
    truth, mean, spread = gaussian_case(events=10, columns=2, seed=6)
    with pytest.raises(ValueError, match=re.escape(repr(bins))):
        coverage_by_spread(truth, mean, spread, bins=bins)


# --- calibration_curve and its plot ----------------------------------------------------------


def test_calibration_curve_of_a_calibrated_gaussian_follows_the_diagonal():
    truth, mean, spread = gaussian_case(events=100_000, columns=9, seed=7)

    nominal, observed = calibration_curve(truth, mean, spread)

    np.testing.assert_allclose(nominal[:-1], np.arange(1, 20) * 0.05)
    assert nominal[-1] == 0.99
    assert observed.shape == nominal.shape == (20,)
    np.testing.assert_allclose(observed, nominal, atol=0.01)


def test_calibration_curve_of_a_spread_twice_too_wide():
    truth, mean, spread = gaussian_case(events=100_000, columns=9, seed=8)
    levels = [0.1, 0.3, 0.5, 0.68, 0.8, 0.9]

    nominal, observed = calibration_curve(truth, mean, 2 * spread, levels=levels)

    np.testing.assert_array_equal(nominal, levels)
    z = stats.norm.ppf((1 + np.array(levels)) / 2)
    np.testing.assert_allclose(observed, 2 * stats.norm.cdf(2 * z) - 1, atol=0.003)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1])
def test_calibration_curve_refuses_levels_outside_the_open_unit_interval(level):
    truth, mean, spread = gaussian_case(events=10, columns=2, seed=9)
    with pytest.raises(ValueError, match=re.escape(repr(level))):
        calibration_curve(truth, mean, spread, levels=[0.5, level])


# --- CRPS ------------------------------------------------------------------------------------


def brute_force_fair_crps(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The fair CRPS estimator with the O(K²) double sum written out."""
    count = samples.shape[0]
    first = np.mean(np.abs(samples - truth), axis=0)
    pairs = np.abs(samples[:, None] - samples[None, :]).sum(axis=(0, 1))
    return first - pairs / (2 * count * (count - 1))


def test_crps_from_two_samples_worked_by_hand():
    # mean |X − y| = 0.5; Σ|X_i − X_j| over ordered pairs = 2, / (2·2·1) = 0.5; CRPS = 0.
    samples = np.array([[0.0], [1.0]])
    np.testing.assert_allclose(crps_from_samples(samples, np.array([0.0])), [0.0], atol=1e-15)


def test_crps_from_three_samples_worked_by_hand():
    # Samples 0, 1, 3 and y = 2: mean |X − y| = (2 + 1 + 1)/3 = 4/3; ordered pairs sum to
    # 2·(1 + 3 + 2) = 12, / (2·3·2) = 1; CRPS = 1/3. The order of the samples does not matter.
    for order in ([0.0, 1.0, 3.0], [3.0, 0.0, 1.0]):
        samples = np.array(order).reshape(3, 1, 1)
        result = crps_from_samples(samples, np.array([[2.0]]))
        assert result.shape == (1, 1)
        assert result[0, 0] == pytest.approx(1 / 3)


def test_crps_from_a_single_sample_is_the_absolute_error():
    samples = np.array([[[1.0, -2.0], [0.5, 3.0]]])
    truth = np.array([[0.0, 1.0], [0.5, 1.0]])
    np.testing.assert_array_equal(crps_from_samples(samples, truth), [[1.0, 3.0], [0.0, 2.0]])


def test_crps_from_samples_matches_the_quadratic_double_sum():
    rng = np.random.default_rng(11)
    samples = rng.normal(size=(7, 5, 3, 3)) * rng.uniform(0.1, 3.0, size=(5, 3, 3))
    truth = rng.normal(size=(5, 3, 3))

    result = crps_from_samples(samples, truth)

    assert result.shape == truth.shape
    np.testing.assert_allclose(result, brute_force_fair_crps(samples, truth), rtol=1e-12)


def test_crps_from_many_gaussian_samples_agrees_with_the_closed_form():
    # Four truths at 0, 0.5, 1.5 and 3 standard deviations from μ = 1.2, σ = 0.7 bohr, each
    # scored 1000 times with K = 2000 fresh samples; the fair estimator is unbiased, so the mean
    # over repetitions converges on the Gaussian CRPS.
    mu, sigma, repetitions = 1.2, 0.7, 1000
    truth = np.broadcast_to(mu + sigma * np.array([0.0, 0.5, 1.5, 3.0]), (repetitions, 4))
    samples = np.random.default_rng(12).normal(mu, sigma, size=(2000, repetitions, 4))

    estimated = crps_from_samples(samples, truth).mean(axis=0)

    exact = gaussian_crps(np.full(4, mu), np.full(4, sigma), truth[0])
    np.testing.assert_allclose(estimated, exact, rtol=3e-3)


@pytest.mark.parametrize(
    ("mu", "sigma", "y"), [(0.0, 1.0, 0.0), (1.5, 0.3, 1.1), (-2.0, 2.5, 4.0), (0.2, 0.05, 0.26)]
)
def test_gaussian_crps_equals_the_integral_of_the_squared_cdf_difference(mu, sigma, y):
    # CRPS(F, y) = ∫ (F(x) − 1{x ≥ y})² dx, split at y where the indicator jumps.
    def below(x):
        return stats.norm.cdf(x, mu, sigma) ** 2

    def above(x):
        return (1 - stats.norm.cdf(x, mu, sigma)) ** 2

    left, _ = integrate.quad(below, -np.inf, y, epsabs=1e-13, epsrel=1e-12)
    right, _ = integrate.quad(above, y, np.inf, epsabs=1e-13, epsrel=1e-12)

    result = gaussian_crps(np.array([mu]), np.array([sigma]), np.array([y]))

    assert result[0] == pytest.approx(left + right, rel=1e-8)


def test_gaussian_crps_at_the_mean_is_sigma_times_root_two_minus_one_over_root_pi():
    sigma = np.array([0.1, 1.0, 4.0])
    result = gaussian_crps(np.full(3, 2.0), sigma, np.full(3, 2.0))
    np.testing.assert_allclose(result, sigma * (math.sqrt(2) - 1) / math.sqrt(math.pi), rtol=1e-14)
