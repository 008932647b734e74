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


def test_mixture_summary_is_the_law_of_total_variance_by_hand():
    # Two equal components N(0, 1) and N(2, 4): mean 1, variance (0 + 4)/2 − 1 + (1 + 4)/2 = 3.5.
    means = np.array([[[0.0]], [[2.0]]])
    variances = np.array([[[1.0]], [[4.0]]])
    mean, std = sampling.mixture_summary(means, variances)
    assert mean.item() == pytest.approx(1.0)
    assert std.item() == pytest.approx(np.sqrt(3.5))


def test_draws_follow_the_mixture():
    means = np.array([[[0.0, 10.0]], [[2.0, 10.0]]])
    variances = np.array([[[1.0, 0.0]], [[4.0, 0.0]]])
    draws = sampling.draw_samples(means, variances, np.random.default_rng(0), 200_000)
    assert draws.shape == (200_000, 1, 2)
    assert draws[:, 0, 0].mean() == pytest.approx(1.0, abs=0.02)
    assert draws[:, 0, 0].var() == pytest.approx(3.5, rel=0.02)
    # The fourth central moment tells the mixture from a Gaussian of the same variance (36.75):
    # about the mixture mean 1 the components are N(−1, 1) and N(1, 4), and E[y⁴] of N(μ, σ²)
    # is μ⁴ + 6μ²σ² + 3σ⁴, so ½·(1 + 6 + 3) + ½·(1 + 24 + 48) = 41.5.
    centred = draws[:, 0, 0] - 1.0
    expected = 0.5 * (3 * 1 + 6 * 1 * 1 + 1) + 0.5 * (3 * 16 + 6 * 4 * 1 + 1)
    assert np.mean(centred**4) == pytest.approx(expected, rel=0.05)
    np.testing.assert_array_equal(draws[:, 0, 1], 10.0)  # a zero-variance coordinate stays put


def test_posterior_moments_keep_events_and_draws_apart():
    momenta = np.arange(5 * 9, dtype=np.float32).reshape(5, 9)

    def moments_once(batch):
        # One call with the 5 events repeated 3 times: row i belongs to draw i // 5.
        assert len(batch) == 15
        rows = np.arange(len(batch), dtype=np.float64)[:, None]
        return batch + 1000 * (rows // 5), np.broadcast_to(rows // 5, batch.shape)

    means, variances = sampling.posterior_moments(moments_once, momenta, 3)
    assert means.shape == variances.shape == (3, 5, 9)
    for draw in range(3):
        np.testing.assert_array_equal(means[draw], momenta + 1000 * draw)
        np.testing.assert_array_equal(variances[draw], draw)
