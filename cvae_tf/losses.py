"""The CVAE's loss terms: Gaussian NLL, β-NLL and KL (nats), kernel norms, position errors."""

import math

from keras import ops

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(targets, mean, log_variance, summed: bool = True):
    """−log N(targets; mean, exp(log_variance)) per event, summed over the last axis (nats).

    With `summed=False`, per coordinate: ½·[(x − μ)²/σ² + log σ² + log 2π].
    """
    per_coordinate = 0.5 * (
        ops.square(targets - mean) * ops.exp(-log_variance) + log_variance + LOG_2PI
    )
    return ops.sum(per_coordinate, axis=-1) if summed else per_coordinate


def gaussian_kl(latent_mean, latent_log_var):
    """KL(N(μ, σ²) ‖ N(0, 1)) per event, summed over the latent dimensions (nats)."""
    return -0.5 * ops.sum(
        1.0 + latent_log_var - ops.square(latent_mean) - ops.exp(latent_log_var), axis=-1
    )


def reconstruction(targets, mean, log_variance, batch_mean, nll_beta: float = 0.0):
    """(the NLL per event, the term optimized) of a batch, in nats and normalized units.

    The term optimized is the NLL itself, or with `nll_beta` > 0 β-NLL (Seitzer et al. 2022):
    each coordinate's NLL weighted by its stop-gradient variance^nll_beta. `batch_mean` averages
    over the batch (distribution.batch_mean).
    """
    per_coordinate = gaussian_nll(targets, mean, log_variance, summed=False)
    nll = batch_mean(ops.sum(per_coordinate, axis=-1))
    if not nll_beta:
        return nll, nll
    weight = ops.stop_gradient(ops.exp(nll_beta * log_variance))
    return nll, batch_mean(ops.sum(weight * per_coordinate, axis=-1))


def kernel_norms(kernels):
    """(Σ|w|, Σw²) over `kernels`, for the tracked `l1` and `l2` (the penalties are keras')."""
    l1 = ops.sum(ops.stack([ops.sum(ops.abs(kernel)) for kernel in kernels]))
    l2 = ops.sum(ops.stack([ops.sum(ops.square(kernel)) for kernel in kernels]))
    return l1, l2


def position_errors(targets, mean, position_scale, batch_mean):
    """`mse` (normalized units) and `atom_error` (bohr) of the decoder's mean [batch, 3n].

    `position_scale` [3n] is bohr² per normalized unit². `atom_error` is the mean distance
    between true and predicted atom, the report's per-atom error (distances do not depend on
    the frame): early stopping watches what the report measures. The normalized MSE weighs an
    out-of-plane coordinate of 10⁻³ bohr like a bond of 2 bohr, and a squared error lets a
    handful of hard events (near-linear molecules) decide the figure.
    """
    squared = ops.square(targets - mean)
    squared_bohr = ops.reshape(squared * position_scale, (-1, squared.shape[-1] // 3, 3))
    return {
        "mse": batch_mean(squared),
        "atom_error": batch_mean(ops.sqrt(ops.sum(squared_bohr, axis=-1))),
    }
