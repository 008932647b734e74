"""evaluate() on a stub model whose decoder knows the answer: every figure worked out by hand."""

import numpy as np
import pytest
import tensorflow as tf

from cvae_tf import config, data, evaluation, physics, simulator

GEOMETRY = np.array([[0.0, 0.0, 0.0], [-2.188, 0.0, 0.0], [2.948, 0.0, 0.0]])  # bohr
SPREAD = 0.05  # bohr, the stub decoder's standard deviation


class ExactDecoder:
    """Every latent draw decodes to GEOMETRY with variance SPREAD², whatever the momenta."""

    num_features = 9  # coordinates a table: 3 fragments × 3 axes, as a CVAE's

    def sample_moments(self, momenta):
        rows = tf.shape(momenta)[0]
        mean = tf.tile(tf.constant(GEOMETRY.reshape(1, 9), tf.float32), [rows, 1])
        return tf.concat([mean, tf.fill([rows, 9], SPREAD**2)], axis=1)


def test_metrics_of_a_decoder_that_predicts_the_true_geometry():
    positions = np.broadcast_to(GEOMETRY, (300, 3, 3)).copy()
    test = data.Events(positions, simulator.explode(positions))
    run_config = config.replace(
        config.TrainConfig(), num_samples=16, num_display_samples=1, jit_compile=False
    )
    shifted = GEOMETRY + np.array([0.1, 0.0, 0.0])  # every atom 0.1 bohr off
    results, text = evaluation.evaluate(ExactDecoder(), test, shifted, run_config)
    assert results["per_atom_error_bohr"] == pytest.approx(0.0, abs=1e-6)
    assert results["baseline_training_mean_per_atom_error_bohr"] == pytest.approx(0.1)
    assert results["sample_mean_per_atom_error_bohr"] == pytest.approx(0.0, abs=1e-6)
    # The truth sits at the mean of every component: inside every central interval.
    assert results["coverage_68"] == results["coverage_95"] == 1.0
    # CRPS of N(μ, σ²) at y = μ: σ(√2 − 1)/√π; the fair estimator on 16 draws scatters ~1 %.
    crps = SPREAD * (np.sqrt(2) - 1) / np.sqrt(np.pi)
    assert results["crps_bohr"] == pytest.approx(crps, rel=0.05)
    kinetic = physics.kinetic_energy(test.momenta)
    assert results["kinetic_energy_mean"] == pytest.approx(kinetic.mean())
    assert "Positions in the data's own origin (--center=none)." in text
