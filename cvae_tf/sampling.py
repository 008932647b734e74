"""Posterior sampling: K latent draws per event, the predictive mixture they make, its summary,
and the physics selection."""

from collections.abc import Callable, Iterator

import numpy as np

from cvae_tf import calibration, physics
from cvae_tf.molecule import OCS, Molecule

SELECTIONS = ("none", "energy")
SELECT_HELP = (
    "Point prediction from the K samples: none = their mean; energy = the sample whose "
    "potential energy best matches the measured kinetic energy."
)
CHUNK_EVENTS = 8192


def chunk_rows(num_events: int) -> Iterator[slice]:
    """The rows of each chunk of at most CHUNK_EVENTS events, in order: memory holds K of them."""
    for start in range(0, num_events, CHUNK_EVENTS):
        yield slice(start, start + CHUNK_EVENTS)


def posterior_samples(
    sample_once: Callable[[np.ndarray], np.ndarray], momenta_table: np.ndarray, num_samples: int
) -> np.ndarray:
    """Positions (bohr) [num_samples, events, 3n] for momenta (a.u.) [events, 3n].

    Args:
      sample_once: maps momenta [n, 3n] to one latent sample of positions [n, 3n] per row, such as
        a SavedModel's `serve` endpoint or a keras model's `predict`.
      momenta_table: raw momenta, float, [events, 3n].
      num_samples: K ≥ 1 draws per event.
    """
    chunks = []
    for rows in chunk_rows(len(momenta_table)):
        chunk = np.asarray(momenta_table[rows], dtype=np.float32)
        # One call per chunk: the chunk repeated K times, a fresh latent vector for every row.
        predicted = np.asarray(sample_once(np.tile(chunk, (num_samples, 1))))
        chunks.append(predicted.reshape(num_samples, len(chunk), -1))
    return np.concatenate(chunks, axis=1).astype(np.float64)


def compiled_moments(cvae, batch_size: int, jit_compile: bool = True) -> Callable:
    """A numpy function: momenta [n, 3n] → (means, variances) [n, 3n] of one latent draw each.

    `cvae.sample_moments` compiled once with tf.function (XLA if `jit_compile`), applied to
    `batch_size` rows at a time (batched_moments).
    """
    import tensorflow as tf  # tf.function is TensorFlow's

    # One trace for any number of rows (XLA still compiles once per distinct batch shape).
    # No AutoGraph: the model has no tensor-dependent Python control flow, and AutoGraph's
    # conversion of the replica helpers failed after a distributed run ("takes 0 positional
    # arguments but 1 was given").
    compiled = tf.function(
        cvae.sample_moments,
        input_signature=[tf.TensorSpec((None, cvae.num_features), tf.float32)],
        jit_compile=jit_compile,
        autograph=False,
    )
    return batched_moments(compiled, batch_size)


def batched_moments(sample_moments: Callable, batch_size: int) -> Callable:
    """A numpy function: momenta [n, 3n] → (means, variances) [n, 3n], `batch_size` rows a call.

    `sample_moments` maps momenta [rows, 3n] to one latent draw's decoder mean and variance side
    by side, [rows, 6n]: the CVAE's `sample_moments` or the SavedModel's `moments` endpoint.
    """

    def moments_once(momenta_table):
        both = np.concatenate(
            [
                np.asarray(sample_moments(momenta_table[start : start + batch_size]))
                for start in range(0, len(momenta_table), batch_size)
            ]
        )
        half = both.shape[1] // 2
        return both[:, :half], both[:, half:]

    return moments_once


def posterior_moments(
    moments_once: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    momenta_table: np.ndarray,
    num_samples: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's means (bohr) and variances (bohr²) [num_samples, events, 3n] of K draws.

    Args:
      moments_once: maps momenta [n, 3n] to one latent draw's decoder (mean, variance) per row,
        such as `compiled_moments(cvae)` or a SavedModel's `moments` endpoint split in two.
      momenta_table: raw momenta, float, [events, 3n].
      num_samples: K ≥ 1 latent draws per event.
    """
    chunk = np.asarray(momenta_table, dtype=np.float32)
    means, variances = moments_once(np.tile(chunk, (num_samples, 1)))
    shape = (num_samples, len(chunk), -1)
    return (
        np.reshape(means, shape).astype(np.float64),
        np.reshape(variances, shape).astype(np.float64),
    )


def mixture_summary(means: np.ndarray, variances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation [events, 3n] of the equal mixture of K Gaussians.

    Mean = mean of the means; variance = variance of the means (what the latent draws spread)
    + mean of the variances (the decoder's own spread), the law of total variance.
    """
    return means.mean(axis=0), np.sqrt(means.var(axis=0) + variances.mean(axis=0))


def draw_samples(
    means: np.ndarray, variances: np.ndarray, rng: np.random.Generator, num_samples: int
) -> np.ndarray:
    """`num_samples` draws [num_samples, events, 3n] from the mixture: a component, then noise."""
    components = rng.integers(0, len(means), size=(num_samples, means.shape[1]))
    rows = np.arange(means.shape[1])
    chosen_means, chosen_variances = means[components, rows], variances[components, rows]
    return chosen_means + np.sqrt(chosen_variances) * rng.standard_normal(chosen_means.shape)


def predictive_chunks(
    moments_once: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    momenta_table: np.ndarray,
    num_samples: int,
    rng: np.random.Generator,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray, np.ndarray]]:
    """(rows, mean, std, draws) of the predictive mixture, CHUNK_EVENTS events at a time.

    K = num_samples latent draws per event make the mixture (mixture_summary); `draws` are
    max(K, 2) samples of it [draws, rows, 3n], for the CRPS and the energy selection. Memory
    holds K draws of one chunk.
    """
    for rows in chunk_rows(len(momenta_table)):
        means, variances = posterior_moments(moments_once, momenta_table[rows], num_samples)
        mean, std = mixture_summary(means, variances)
        yield rows, mean, std, draw_samples(means, variances, rng, max(num_samples, 2))


def predictive_summary(
    moments_once: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    momenta_table: np.ndarray,
    num_samples: int,
    rng: np.random.Generator,
    *,
    select_energy: bool = True,
    truth_table: np.ndarray | None = None,
    fragments: Molecule = OCS,
    keep_draws_of: np.ndarray | None = None,
    events_done: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Per event [events, 3n] the predictive mixture's "mean" and "std" (bohr), a chunk at a time.

    Also "energy", the energy-selected draw (select_by_energy), if `select_energy`; "crps",
    each coordinate's CRPS (bohr) against the true positions `truth_table` [events, 3n], if given;
    and "kept_draws", the mixture's draws [max(K, 2), len(keep_draws_of), 3n] of the events at the
    sorted indices `keep_draws_of`, if given (only theirs are kept: memory holds one chunk's).
    `events_done`, if given, is called with the events summarized so far after each chunk (a
    progress bar's update).
    """
    summaries = {"mean": [], "std": []}
    if select_energy:
        summaries["energy"] = []
    if truth_table is not None:
        summaries["crps"] = []
    if keep_draws_of is not None:
        keep_draws_of = np.asarray(keep_draws_of, dtype=np.int64)
        summaries["kept_draws"] = [np.zeros((max(num_samples, 2), 0, momenta_table.shape[1]))]
    for rows, mean, std, draws in predictive_chunks(moments_once, momenta_table, num_samples, rng):
        summaries["mean"].append(mean)
        summaries["std"].append(std)
        if keep_draws_of is not None:
            kept = keep_draws_of[(keep_draws_of >= rows.start) & (keep_draws_of < rows.stop)]
            summaries["kept_draws"].append(draws[:, kept - rows.start])
        if select_energy:
            summaries["energy"].append(select_by_energy(draws, momenta_table[rows], fragments))
        if truth_table is not None:
            summaries["crps"].append(calibration.crps_from_samples(draws, truth_table[rows]))
        if events_done is not None:
            events_done(min(rows.stop, len(momenta_table)))
    # Events run along the first axis of every summary, along the second of the draws.
    return {
        name: np.concatenate(values, axis=1 if name == "kept_draws" else 0)
        for name, values in summaries.items()
    }


def select_by_energy(
    samples: np.ndarray, momenta_table: np.ndarray, fragments: Molecule = OCS
) -> np.ndarray:
    """Per event, the sample [events, 3n] whose potential energy best matches the measured KE.

    For an event that starts at rest the final kinetic energy equals the initial Coulomb energy
    (with the molecule's masses and charges), so among plausible geometries the one with PE
    closest to KE is the most consistent.
    """
    num_samples, num_events = samples.shape[:2]
    shape = (fragments.num_fragments, 3)
    kinetic = physics.kinetic_energy(
        np.reshape(momenta_table, (num_events, *shape)), fragments.mass_array
    )
    potential = physics.potential_energy(
        np.reshape(samples, (num_samples, num_events, *shape)), fragments.charge_array
    )
    best = np.argmin(np.abs(potential - kinetic), axis=0)
    return samples[best, np.arange(num_events)]
