"""Calibration of predictive spreads: coverage, coverage by spread, calibration curve, CRPS."""

from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

# Nominal probabilities of the central intervals the report checks, keyed by report name; "68" is
# the exact ±1σ probability erf(1/√2), so its z-score is 1 to within 1e-9.
LEVELS = {"50": 0.50, "68": 0.682689492, "90": 0.90, "95": 0.95}

# Default nominal levels of the calibration curve: 0.05 … 0.95 in steps of 0.05, then 0.99 for
# the far tail, where an over-confident model fails first.
DEFAULT_CURVE_LEVELS = np.append(np.linspace(0.05, 0.95, 19), 0.99)


def _z_score(probability: float) -> float:
    """Half-width in standard deviations of the central Gaussian interval of this probability."""
    if not 0.0 < probability < 1.0:
        raise ValueError(
            f"a central-interval probability must lie in (0, 1); received: {probability!r}"
        )
    return NormalDist().inv_cdf((1.0 + probability) / 2.0)


def _check_predictive(
    truth: np.ndarray, mean: np.ndarray, spread: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three arrays as float64 after checking shapes match, events ≥ 1 and spread ≥ 0."""
    truth = np.asarray(truth, dtype=float)
    mean = np.asarray(mean, dtype=float)
    spread = np.asarray(spread, dtype=float)
    if not truth.shape == mean.shape == spread.shape or truth.ndim == 0:
        raise ValueError(
            "truth, mean and spread must share one shape (events, ...); received: "
            f"{truth.shape}, {mean.shape}, {spread.shape}"
        )
    if truth.shape[0] == 0:
        raise ValueError(f"at least one event is needed; received shape {truth.shape}")
    # Written as "not all ≥ 0" so that NaN spreads are refused too (np.min then reports nan).
    if not np.all(spread >= 0):
        raise ValueError(
            f"spread must be ≥ 0 everywhere; received minimum {float(np.min(spread))!r}"
        )
    return truth, mean, spread


def interval_coverage(truth: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> dict[str, float]:
    """How often the truth lies in the central Gaussian intervals mean ± z_p·spread of LEVELS.

    Args:
        truth: True positions in bohr, (events, ...), e.g. (events, 9) or (events, 3, 3).
        mean: Predictive mean in bohr, same shape.
        spread: Predictive standard deviation per coordinate in bohr, same shape, ≥ 0.

    Returns:
        `coverage_50`, `coverage_68`, `coverage_90` and `coverage_95`: fractions of all
        coordinates of all events with |truth − mean| ≤ z_p·spread (ideally the nominal p), and
        `mean_spread_bohr`, the average predicted spread.
    """
    truth, mean, spread = _check_predictive(truth, mean, spread)
    deviation = np.abs(truth - mean)
    result = {
        f"coverage_{name}": float(np.mean(deviation <= _z_score(probability) * spread))
        for name, probability in LEVELS.items()
    }
    result["mean_spread_bohr"] = float(np.mean(spread))
    return result


def coverage_by_spread(
    truth: np.ndarray, mean: np.ndarray, spread: np.ndarray, bins: int = 3
) -> dict[str, float]:
    """68 % and 95 % coverage within equal-count groups of events ranked by predicted spread.

    A model can be calibrated on average yet wrong per event (too narrow where it is confident,
    too wide where it is not); the overall coverage hides that, this exposes it. Each coordinate
    column (everything after the event axis, flattened) is ranked by its own spread, because the
    spreads of different coordinates live on different scales; the per-column coverages of a
    group are then averaged over the columns with equal weight.

    Args:
        truth: True positions in bohr, (events, ...).
        mean: Predictive mean in bohr, same shape.
        spread: Predictive standard deviation per coordinate in bohr, same shape, ≥ 0.
        bins: Number of groups, 1 ≤ bins ≤ events; sizes differ by at most one event.

    Returns:
        `coverage_68_spread_bin_1` … `coverage_68_spread_bin_{bins}` and the same for 95; bin 1
        holds the events with the smallest predicted spread.
    """
    truth, mean, spread = _check_predictive(truth, mean, spread)
    events = truth.shape[0]
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or not 1 <= bins <= events:
        raise ValueError(
            f"bins must be an integer between 1 and the number of events ({events}); "
            f"received: {bins!r}"
        )
    deviation = np.abs(truth - mean).reshape(events, -1)
    spread = spread.reshape(events, -1)
    # A stable sort keeps tied spreads in event order, so the grouping is reproducible.
    order = np.argsort(spread, axis=0, kind="stable")
    groups = np.array_split(np.arange(events), bins)
    result = {}
    for name in ("68", "95"):
        inside = deviation <= _z_score(LEVELS[name]) * spread
        ranked = np.take_along_axis(inside, order, axis=0)
        for number, rows in enumerate(groups, start=1):
            per_column = np.mean(ranked[rows], axis=0)
            result[f"coverage_{name}_spread_bin_{number}"] = float(np.mean(per_column))
    return result


def calibration_curve(
    truth: np.ndarray,
    mean: np.ndarray,
    spread: np.ndarray,
    levels: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed against nominal coverage of central Gaussian intervals mean ± z_p·spread.

    Args:
        truth: True positions in bohr, (events, ...).
        mean: Predictive mean in bohr, same shape.
        spread: Predictive standard deviation per coordinate in bohr, same shape, ≥ 0.
        levels: Nominal probabilities p in (0, 1); default 0.05, 0.10, …, 0.95 and 0.99.

    Returns:
        (nominal, observed), 1-D float arrays of one length: the levels and the fraction of all
        coordinates of all events inside each interval. Observed below nominal means the
        predicted spread is too narrow (over-confident).
    """
    truth, mean, spread = _check_predictive(truth, mean, spread)
    nominal = np.array(DEFAULT_CURVE_LEVELS if levels is None else levels, dtype=float).ravel()
    if nominal.size == 0:
        raise ValueError(f"levels must hold at least one probability; received: {levels!r}")
    deviation = np.abs(truth - mean)
    observed = np.array([np.mean(deviation <= _z_score(p) * spread) for p in nominal])
    return nominal, observed


def crps_from_samples(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score of a sampled predictive, per event and coordinate.

    CRPS(F, y) = E|X − y| − ½ E|X − X'| for X, X' independent draws from F; it is a proper
    scoring rule (Gneiting & Raftery 2007): lower is better, and its expectation is minimal when
    the predictive distribution is the true one. It has the units of the positions (bohr) and
    reduces to the absolute error for a point prediction. This is the unbiased ("fair")
    estimator, mean_k |X_k − y| − Σ_{i,j} |X_i − X_j| / (2K(K − 1)), whose expectation is the
    CRPS of the distribution the K samples come from; the plain estimator with K² in the
    denominator favours too-narrow predictives at small K.

    Args:
        samples: K ≥ 1 samples of the positions in bohr, (K, *truth.shape). K = 1 gives
            |X − y| (the pairwise term needs two samples and is taken as 0).
        truth: True positions in bohr, (events, ...).

    Returns:
        CRPS in bohr, same shape as truth.
    """
    samples = np.asarray(samples, dtype=float)
    truth = np.asarray(truth, dtype=float)
    if samples.ndim != truth.ndim + 1 or samples.shape[1:] != truth.shape or len(samples) == 0:
        raise ValueError(
            "samples must have the shape (K ≥ 1, *truth.shape); received samples "
            f"{samples.shape} and truth {truth.shape}"
        )
    count = samples.shape[0]
    absolute_error = np.mean(np.abs(samples - truth), axis=0)
    if count == 1:
        return absolute_error
    # Σ_{i,j} |X_i − X_j| = 2 Σ_i (2i − K + 1) X_(i) over the sorted samples (0-based rank i):
    # X_(i) is the larger of a pair i times and the smaller K − 1 − i times. O(K log K), not K².
    ordered = np.sort(samples, axis=0)
    weights = (2.0 * np.arange(count) - count + 1.0).reshape((count,) + (1,) * truth.ndim)
    pairwise = 2.0 * np.sum(weights * ordered, axis=0)
    return absolute_error - pairwise / (2.0 * count * (count - 1))
