"""The momentum frame: proper rotations, hand-worked axes, equivariance, no NaN when degenerate."""

import numpy as np
import pytest

from cvae_tf import frames, molecule, physics, simulator
from tests.models import build_cvae


def random_rotations(count, seed):
    return simulator.random_rotations(count, np.random.default_rng(seed))


def frame(momenta):
    return np.asarray(frames.momentum_frame(np.asarray(momenta, dtype=np.float64)))


def test_hand_worked_axes():
    momenta = np.array([[[0.0, 0.0, 5.0], [100.0, 0.0, 0.0], [-100.0, 0.0, 0.0]]])
    # x̂ ∥ p_O − p_S = (200, 0, 0); ŷ ∥ p_C⊥ = (0, 0, 5); ẑ = x̂ × ŷ = (0, −1, 0).
    np.testing.assert_allclose(frame(momenta)[0], [[1, 0, 0], [0, 0, 1], [0, -1, 0]], atol=1e-9)


def test_rotations_are_proper_and_orthonormal():
    momenta = np.random.default_rng(0).normal(size=(500, 3, 3)) * 200
    rotations = frame(momenta)
    np.testing.assert_allclose(
        rotations @ rotations.transpose(0, 2, 1), np.eye(3)[None].repeat(500, 0), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-12)


def test_events_from_rest_lie_in_the_frame_plane():
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(300, seed=2))
    rotations = frame(momenta)
    in_frame_momenta = np.asarray(frames.to_frame(rotations, momenta))
    in_frame_positions = np.asarray(frames.to_frame(rotations, positions))
    np.testing.assert_allclose(in_frame_momenta[..., 2], 0, atol=1e-9 * 400)
    np.testing.assert_allclose(in_frame_positions[..., 2], 0, atol=1e-7)
    assert np.all(in_frame_momenta[:, 0, 1] >= 0)  # p_C on the +y side by construction
    relative = in_frame_momenta[:, 1] - in_frame_momenta[:, 2]
    np.testing.assert_allclose(relative[:, 1:], 0, atol=1e-9 * 400)
    # Rotation keeps lengths and energies.
    np.testing.assert_allclose(
        physics.potential_energy(in_frame_positions), physics.potential_energy(positions)
    )


def test_frame_coordinates_do_not_depend_on_the_lab_orientation():
    _, momenta = simulator.simulate_events(simulator.SimulationConfig(100, seed=3))
    turn = random_rotations(100, seed=4)
    turned = np.einsum("bij,baj->bai", turn, momenta)
    original = np.asarray(frames.to_frame(frame(momenta), momenta))
    again = np.asarray(frames.to_frame(frame(turned), turned))
    np.testing.assert_allclose(again, original, atol=1e-6)  # 1e-6 a.u. of ~400 a.u.


def test_round_trip():
    vectors = np.random.default_rng(5).normal(size=(50, 3, 3))
    rotations = frame(np.random.default_rng(6).normal(size=(50, 3, 3)))
    back = frames.from_frame(rotations, frames.to_frame(rotations, vectors))
    np.testing.assert_allclose(np.asarray(back), vectors, atol=1e-12)


@pytest.mark.parametrize(
    "carbon",
    [[0.0, 0.0, 0.0], [50.0, 0.0, 0.0], [-1e-12, 0.0, 0.0]],
    ids=["carbon at rest", "carbon along x", "carbon almost along x"],
)
def test_collinear_momenta_give_a_finite_proper_frame(carbon):
    momenta = np.array([[carbon, [300.0, 0.0, 0.0], [-300.0, 0.0, 0.0]]])
    for dtype in (np.float64, np.float32):
        rotations = np.asarray(frames.momentum_frame(momenta.astype(dtype)))
        assert np.all(np.isfinite(rotations))
        np.testing.assert_allclose(rotations[0] @ rotations[0].T, np.eye(3), atol=1e-5)
        np.testing.assert_allclose(rotations[0, 0], [1, 0, 0], atol=1e-6)


def test_momentum_frame_model_predictions_follow_the_molecule():
    """Turning the momenta turns the prediction the same way: the rotation back is right."""
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(200, seed=7))
    tables = [np.reshape(a, (-1, 9)).astype(np.float32) for a in (positions, momenta)]
    cvae = build_cvae(
        *tables, "standard", "standard", hidden_dim=8, num_layers=2, latent_dim=2, frame="momentum"
    )
    turn = random_rotations(200, seed=8)
    turned = np.einsum("bij,baj->bai", turn, momenta).reshape(-1, 9).astype(np.float32)
    latent = np.random.default_rng(9).normal(size=(200, 2)).astype(np.float32)
    predicted = cvae.decode_positions(tables[1], latent).numpy().reshape(-1, 3, 3)
    predicted_turned = cvae.decode_positions(turned, latent).numpy().reshape(-1, 3, 3)
    np.testing.assert_allclose(
        predicted_turned, np.einsum("bij,baj->bai", turn, predicted), atol=2e-4
    )


# Four and five fragments: the frame comes from the molecule's chosen three (a, b, c).

CHBRCLF = molecule.load("chbrclf")  # frame (Br, Cl, F) = fragments (2, 3, 4)


def test_hand_worked_axes_from_the_chosen_fragments_of_five():
    momenta = np.zeros((1, 5, 3))
    momenta[0, 2] = [0.0, 30.0, 0.0]  # Br
    momenta[0, 3] = [0.0, -10.0, 0.0]  # Cl: x̂ ∥ p_Br − p_Cl = (0, 40, 0)
    momenta[0, 4] = [7.0, 3.0, 0.0]  # F: its part ⊥ x̂ is (7, 0, 0), so ŷ = (1, 0, 0)
    momenta[0, 1] = [0.0, 0.0, 500.0]  # H and C play no part
    rotations = np.asarray(frames.momentum_frame(momenta, CHBRCLF.frame_fragments))
    # ẑ = x̂ × ŷ = (0, 1, 0) × (1, 0, 0) = (0, 0, −1).
    np.testing.assert_allclose(rotations[0], [[0, 1, 0], [1, 0, 0], [0, 0, -1]], atol=1e-12)


@pytest.mark.parametrize("num_fragments", [4, 5])
def test_frames_of_four_and_five_fragments_are_proper_and_lab_independent(num_fragments):
    rng = np.random.default_rng(num_fragments)
    momenta = rng.normal(size=(200, num_fragments, 3)) * 100
    fragments = (2, 3, 1) if num_fragments == 4 else CHBRCLF.frame_fragments
    rotations = np.asarray(frames.momentum_frame(momenta, fragments))
    np.testing.assert_allclose(
        rotations @ rotations.transpose(0, 2, 1), np.eye(3)[None].repeat(200, 0), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-12)
    turned = np.einsum("bij,baj->bai", random_rotations(200, seed=9), momenta)
    table = momenta.reshape(200, -1)
    turned_table = turned.reshape(200, -1)
    original = np.asarray(
        frames.rotate_table(frames.table_rotations("momentum", table, fragments), table)
    )
    again = np.asarray(
        frames.rotate_table(
            frames.table_rotations("momentum", turned_table, fragments), turned_table
        )
    )
    assert original.shape == (200, 3 * num_fragments)
    np.testing.assert_allclose(again, original, atol=1e-3)  # keras ops in float32: 1e-5 relative


def test_degenerate_five_fragment_events_give_finite_frames():
    momenta = np.zeros((3, 5, 3))
    momenta[:, 2] = [300.0, 0.0, 0.0]
    momenta[:, 3] = [-300.0, 0.0, 0.0]
    momenta[1, 4] = [50.0, 0.0, 0.0]  # F along x̂: no perpendicular part
    momenta[2, 3] = momenta[2, 2]  # p_Br = p_Cl: no x̂ at all
    for dtype in (np.float64, np.float32):
        rotations = np.asarray(
            frames.momentum_frame(momenta.astype(dtype), CHBRCLF.frame_fragments)
        )
        assert np.all(np.isfinite(rotations))
        np.testing.assert_allclose(rotations[0] @ rotations[0].T, np.eye(3), atol=1e-5)
        np.testing.assert_allclose(rotations[1] @ rotations[1].T, np.eye(3), atol=1e-5)
