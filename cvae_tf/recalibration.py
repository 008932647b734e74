"""The spread recalibration: one factor per coordinate on the decoder's σ, from held-out data."""

import math

import keras
import numpy as np
from keras import ops


def spread_scale(
    residual_squared: np.ndarray,
    latent_variance: np.ndarray,
    decoder_variance: np.ndarray,
    tolerance: float = 1e-10,
) -> np.ndarray:
    """Per column, the decoder-spread factor s ≥ 0 that makes the predictive variance match.

    Solves mean over events of residual_squared / (latent_variance + s²·decoder_variance) = 1,
    the Gaussian maximum-likelihood "σ scaling" of Laves et al. (2020) (variance matching), to
    recalibrate a decoder's spread on a validation split: the total predictive variance is the
    spread of the latent-sampled means plus the decoder's own variance scaled by s².

    Args:
        residual_squared: (truth − predictive mean)² in bohr², (events, columns), ≥ 0.
        latent_variance: Variance from the latent samples in bohr², ≥ 0; broadcast against
            residual_squared (a scalar 0 for none).
        decoder_variance: Decoder variance in bohr², > 0; broadcast against residual_squared.
        tolerance: Relative tolerance on s for the iterative solution, > 0.

    Returns:
        s per column, (columns,), float64. Where the latent variance is 0 throughout a column
        s² = mean(residual_squared / decoder_variance) exactly; where the latent variance alone
        already covers the residuals (the mean is ≤ 1 at s = 0) s is 0.
    """
    residual_squared = np.asarray(residual_squared, dtype=float)
    if residual_squared.ndim != 2 or residual_squared.shape[0] == 0:
        raise ValueError(
            "residual_squared must have the shape (events ≥ 1, columns); received "
            f"{residual_squared.shape}"
        )
    try:
        latent, decoder = (
            np.broadcast_to(np.asarray(value, dtype=float), residual_squared.shape)
            for value in (latent_variance, decoder_variance)
        )
    except ValueError as error:
        raise ValueError(
            "latent_variance and decoder_variance must broadcast to residual_squared's shape "
            f"{residual_squared.shape}; received {np.shape(latent_variance)} and "
            f"{np.shape(decoder_variance)}"
        ) from error
    for name, value in (("residual_squared", residual_squared), ("latent_variance", latent)):
        if not np.all(value >= 0) or not np.all(np.isfinite(value)):
            raise ValueError(
                f"{name} must be finite and ≥ 0; received minimum {float(np.min(value))!r}"
            )
    if not np.all(decoder > 0) or not np.all(np.isfinite(decoder)):
        raise ValueError(
            f"decoder_variance must be finite and > 0; received minimum {float(np.min(decoder))!r}"
        )
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0; received: {tolerance!r}")

    scale = np.zeros(residual_squared.shape[1])
    for column in range(residual_squared.shape[1]):
        scale[column] = _column_scale(
            residual_squared[:, column], latent[:, column], decoder[:, column], tolerance
        )
    return scale


def _column_scale(
    residual_squared: np.ndarray, latent: np.ndarray, decoder: np.ndarray, tolerance: float
) -> float:
    """spread_scale's s for one column of events (1-D arrays, already checked)."""
    closed_form = math.sqrt(float(np.mean(residual_squared / decoder)))
    if not np.any(latent > 0):
        return closed_form
    # At s = 0 an event without latent variance contributes r/0: +inf if r > 0, else nothing.
    at_zero = np.divide(
        residual_squared,
        latent,
        out=np.where(residual_squared > 0, np.inf, 0.0),
        where=latent > 0,
    )
    if np.mean(at_zero) <= 1.0:
        return 0.0

    def excess(s: float) -> float:
        """Mean normalised squared residual minus 1; decreasing in s."""
        return float(np.mean(residual_squared / (latent + s * s * decoder))) - 1.0

    # Upper bracket: a latent variance ≥ 0 only lowers the mean, so the closed form (where the
    # mean without latent variance is exactly 1) has excess < 0. It is > 0, since excess(0) > 0.
    high = closed_form
    # Lower bracket by stepping down in decades; the root is > 0 because excess(0) > 0.
    low = high / 10.0
    while excess(low) < 0.0:
        high = low
        low /= 10.0
        if low < 1e-300 * closed_form:
            # The root is below any representable fraction of the decoder spread: none of it
            # is wanted.
            return 0.0
    # Bisection on log s: relative tolerance is what matters for a multiplicative factor, and
    # the geometric midpoint halves log(high/low) each step whatever the scale.
    while high / low - 1.0 > tolerance:
        middle = math.sqrt(low * high)
        if excess(middle) > 0.0:
            low = middle
        else:
            high = middle
    return math.sqrt(low * high)


def fit_spread_scale(cvae, batches, num_samples: int = 32) -> np.ndarray:
    """Sets the CVAE's `spread_scale` so its predictive spread matches the residuals of `batches`.

    For (momenta, positions) batches [n, 9] of a split the model never trained on (the
    validation split), K latent draws per event give, per model-frame coordinate in normalized
    units, the predictive mean m (mean of the decoder means), the latent part of the variance a
    (their variance) and the decoder's b (its mean variance); the scale s solves
    mean((x − m)²/(a + s²·b)) = 1, the maximum-likelihood "σ scaling" of a Gaussian predictive
    (spread_scale). Returns s [9].
    """
    residual_squared, latent_variance, decoder_variance = [], [], []
    # Its own generator, seeded afresh: the factor depends on the weights and the data only, not
    # on how many draws training (or a distributed run's copy) made before.
    generator = keras.random.SeedGenerator(cvae.seed)
    for momenta, positions in batches:
        normalized_momenta, normalized_positions = cvae.normalized_inputs(
            ops.convert_to_tensor(momenta, dtype=cvae.compute_dtype),
            ops.convert_to_tensor(positions, dtype=cvae.compute_dtype),
        )
        means, variances = [], []
        for _ in range(num_samples):
            latent_vectors = cvae.latent_distribution.sample(
                ops.shape(normalized_momenta)[0], seed=generator
            )
            mean, log_variance = cvae.decode_gaussian(latent_vectors, normalized_momenta)
            means.append(ops.convert_to_numpy(mean).astype(np.float64))
            variances.append(np.exp(ops.convert_to_numpy(log_variance).astype(np.float64)))
        means = np.stack(means)
        target = ops.convert_to_numpy(normalized_positions).astype(np.float64)
        residual_squared.append(np.square(target - means.mean(axis=0)))
        latent_variance.append(means.var(axis=0))
        decoder_variance.append(np.mean(variances, axis=0))
    scale = spread_scale(
        np.concatenate(residual_squared),
        np.concatenate(latent_variance),
        np.concatenate(decoder_variance),
    )
    cvae.spread_scale.assign(scale.astype(np.float32))
    return scale
