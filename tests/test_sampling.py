"""Posterior sampling: shapes and row order across chunks, the energy selection by hand."""

import numpy as np
import pytest

from cvae_tf import physics, sampling


def test_samples_keep_event_order_across_chunks(monkeypatch):
    monkeypatch.setattr(sampling, "CHUNK_EVENTS", 7)
    momenta = np.arange(20 * 9, dtype=np.float32).reshape(20, 9)
    draws = iter(range(1000))

    def sample_once(batch):
        # Row i of the batch gets momenta + a distinct draw: rows must map back to their event.
        return batch + np.array([[next(draws)] for _ in range(len(batch))], dtype=np.float32)

    samples = sampling.posterior_samples(sample_once, momenta, num_samples=4)
    assert samples.shape == (4, 20, 9)
    offsets = samples - momenta[None]
    np.testing.assert_array_equal(offsets, np.broadcast_to(offsets[..., :1], offsets.shape))
    assert len(np.unique(offsets[..., 0])) == 80  # a fresh draw per event and sample


def test_energy_selection_picks_the_sample_matching_the_kinetic_energy():
    linear = np.array([[0.0, 0.0, 0.0], [-2.188, 0.0, 0.0], [2.948, 0.0, 0.0]])
    pe = physics.potential_energy(linear)  # 3.9638 hartree
    # Momenta with KE = PE: carbon alone, p² / 2m = PE.
    momenta = np.zeros((1, 3, 3))
    momenta[0, 0, 0] = np.sqrt(2 * physics.MASSES[0] * pe)
    samples = np.stack([linear * 1.2, linear, linear * 0.7]).reshape(3, 1, 9)
    selected = sampling.select_by_energy(samples, momenta.reshape(1, 9))
    np.testing.assert_array_equal(selected, linear.reshape(1, 9))
    mean = sampling.point_prediction(samples, momenta.reshape(1, 9), "none")
    np.testing.assert_allclose(mean, (linear * (1.2 + 1 + 0.7) / 3).reshape(1, 9))
    with pytest.raises(ValueError, match="expected one of"):
        sampling.point_prediction(samples, momenta.reshape(1, 9), "best")
