"""Posterior sampling: K latent draws per event, their summary, and the physics selection."""

from collections.abc import Callable

import numpy as np

from cvae_tf import physics

SELECTIONS = ("none", "energy")
CHUNK_EVENTS = 8192


def posterior_samples(
    sample_once: Callable[[np.ndarray], np.ndarray], momenta_table: np.ndarray, num_samples: int
) -> np.ndarray:
    """Positions (bohr) [num_samples, events, 9] for momenta (a.u.) [events, 9].

    Args:
      sample_once: maps momenta [n, 9] to one latent sample of positions [n, 9] per row, such as
        a SavedModel's `serve` endpoint or a keras model's `predict`.
      momenta_table: raw momenta, float, [events, 9].
      num_samples: K ≥ 1 draws per event.
    """
    chunks = []
    for start in range(0, len(momenta_table), CHUNK_EVENTS):
        chunk = np.asarray(momenta_table[start : start + CHUNK_EVENTS], dtype=np.float32)
        # One call per chunk: the chunk repeated K times, a fresh latent vector for every row.
        predicted = np.asarray(sample_once(np.tile(chunk, (num_samples, 1))))
        chunks.append(predicted.reshape(num_samples, len(chunk), -1))
    return np.concatenate(chunks, axis=1).astype(np.float64)


def select_by_energy(samples: np.ndarray, momenta_table: np.ndarray) -> np.ndarray:
    """Per event, the sample [events, 9] whose potential energy best matches the measured KE.

    For an event that starts at rest the final kinetic energy equals the initial Coulomb energy,
    so among plausible geometries the one with PE closest to KE is the most consistent.
    """
    num_samples, num_events = samples.shape[:2]
    kinetic = physics.kinetic_energy(np.reshape(momenta_table, (num_events, 3, 3)))
    potential = physics.potential_energy(np.reshape(samples, (num_samples, num_events, 3, 3)))
    best = np.argmin(np.abs(potential - kinetic), axis=0)
    return samples[best, np.arange(num_events)]


def point_prediction(samples: np.ndarray, momenta_table: np.ndarray, select: str) -> np.ndarray:
    """The reported positions [events, 9]: the sample mean, or the energy-selected sample."""
    if select == "energy":
        return select_by_energy(samples, momenta_table)
    if select == "none":
        return samples.mean(axis=0)
    raise ValueError(f"select={select!r}; expected one of {SELECTIONS}")
