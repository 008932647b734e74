"""Kabsch rotations, superposition RMSD, centring, positions aligned to their momenta's frame."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cvae_tf import alignment, data, metrics, physics, simulator
from cvae_tf.errors import UserInputError
from tests.frame_mismatch import apply, axes_frame, frame_mismatched_events  # noqa: F401


@pytest.fixture(scope="module")
def simulated():
    return simulator.simulate_events(simulator.SimulationConfig(500, seed=11))


def test_kabsch_recovers_a_known_rotation():
    rng = np.random.default_rng(0)
    rotations = simulator.random_rotations(200, rng)
    source = rng.normal(size=(200, 5, 3))
    recovered = alignment.kabsch_rotations(source, apply(rotations, source))
    np.testing.assert_allclose(recovered, rotations, atol=1e-12)


def test_kabsch_matches_scipy_on_noisy_weighted_points():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(50, 4, 3))
    target = apply(simulator.random_rotations(50, rng), source) + rng.normal(0, 0.3, (50, 4, 3))
    weights = np.array([1.0, 2.0, 0.5, 3.0])
    rotations = alignment.kabsch_rotations(source, target, weights)
    for event in range(50):
        # scipy's align_vectors(a, b, w) minimizes Σ w |a − R b|²: a = target, b = source.
        reference, _ = Rotation.align_vectors(target[event], source[event], weights)
        np.testing.assert_allclose(rotations[event], reference.as_matrix(), atol=1e-10)


def test_kabsch_fixes_the_reflection_of_planar_points():
    # Points in the xy-plane matched to themselves: V Uᵀ may be the mirror diag(1, 1, −1), which
    # maps them equally well; the sign fix must return the identity, a proper rotation.
    planar = np.array([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [-1.0, -2.0, 0.0]]]).repeat(3, axis=0)
    rotations = alignment.kabsch_rotations(planar, planar)
    np.testing.assert_allclose(rotations, np.eye(3)[None].repeat(3, axis=0), atol=1e-12)


def test_kabsch_gives_the_best_proper_rotation_for_a_mirror_image():
    tetrahedron = np.array([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1]])
    tetrahedron = tetrahedron * [1.0, 2.0, 3.0]  # unequal axes: no symmetry to hide a reflection
    mirrored = tetrahedron * [1.0, 1.0, -1.0]
    rotation = alignment.kabsch_rotations(tetrahedron[None], mirrored[None])[0]
    assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-12)
    reference, _ = Rotation.align_vectors(mirrored, tetrahedron)
    np.testing.assert_allclose(rotation, reference.as_matrix(), atol=1e-10)


def test_kabsch_ignores_points_of_zero_weight():
    rng = np.random.default_rng(2)
    rotations = simulator.random_rotations(10, rng)
    source = rng.normal(size=(10, 4, 3))
    target = apply(rotations, source)
    target[:, 3] += 50.0  # an outlier the weights switch off
    recovered = alignment.kabsch_rotations(source, target, np.array([1.0, 1.0, 1.0, 0.0]))
    np.testing.assert_allclose(recovered, rotations, atol=1e-12)


def test_rotation_angles_of_rotations_about_z():
    angles = np.radians([0.0, 30.0, 90.0, 179.0])
    cos, sin = np.cos(angles), np.sin(angles)
    zero, one = np.zeros(4), np.ones(4)
    rotations = np.stack(
        [
            np.stack([cos, -sin, zero], -1),
            np.stack([sin, cos, zero], -1),
            np.stack([zero, zero, one], -1),
        ],
        axis=-2,
    )
    np.testing.assert_allclose(alignment.rotation_angles(rotations), [0, 30, 90, 179], atol=1e-6)


def test_superposition_rmsd_of_a_rotated_and_translated_copy_is_zero():
    rng = np.random.default_rng(3)
    true = rng.normal(size=(100, 3, 3)) * 2
    moved = apply(simulator.random_rotations(100, rng), true) + rng.normal(0, 5, (100, 1, 3))
    np.testing.assert_allclose(alignment.superposition_rmsd(moved, true), 0.0, atol=1e-12)


def test_superposition_rmsd_of_a_symmetric_stretch():
    # True atoms at x = −1, 0, +1 bohr; the prediction stretches both ends by d. No rotation or
    # translation reduces that: RMSD = √((d² + 0 + d²) / 3) = d·√(2/3).
    stretch = 0.3
    true = np.array([[[-1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    predicted = true * [1.0 + stretch, 1.0, 1.0]
    rotation = simulator.random_rotations(1, np.random.default_rng(4))
    predicted = apply(rotation, predicted) + np.array([4.0, -2.0, 7.0])
    np.testing.assert_allclose(
        alignment.superposition_rmsd(predicted, true), [stretch * np.sqrt(2 / 3)], rtol=1e-12
    )


def test_center_positions_puts_the_mass_weighted_mean_at_the_origin():
    positions = np.random.default_rng(5).normal(size=(20, 3, 3)) + 10.0
    centred = alignment.center_positions(positions)
    np.testing.assert_allclose(np.einsum("nak,a->nk", centred, physics.MASSES), 0.0, atol=1e-9)
    np.testing.assert_allclose(centred - centred[:, :1], positions - positions[:, :1], atol=1e-12)


def test_align_events_undoes_the_frame_mismatch(simulated):
    positions, momenta = simulated
    bad, _, momentum_frames, _ = frame_mismatched_events(positions, momenta)
    aligned, residual = alignment.align_events(bad)
    assert np.max(residual) < 1e-9  # measured ≈ 3e-15: the simulator reproduces itself
    # The consistent answer, computed without the library: the true COM-centred positions in the
    # momenta's frame.
    np.testing.assert_allclose(aligned.positions, apply(momentum_frames, positions), atol=1e-8)
    assert aligned.momenta is bad.momenta
    assert np.median(metrics.forward_momentum_error(bad.positions, bad.momenta)) > 0.1  # before


def test_align_events_leaves_consistent_events_unchanged(simulated):
    positions, momenta = simulated
    aligned, residual = alignment.align_events(data.Events(positions, momenta))
    np.testing.assert_allclose(aligned.positions, positions, atol=1e-8)
    assert np.max(residual) < 1e-9


def test_align_events_refuses_coincident_atoms(simulated):
    positions, momenta = simulated
    positions = positions.copy()
    positions[[3, 7]] = 1.0  # all three atoms at one point: the Coulomb force is infinite
    with pytest.raises(UserInputError, match=r"2 events \(data rows 4, 8\) have coincident"):
        alignment.align_events(data.Events(positions, momenta))
