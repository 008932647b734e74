"""Tests of the evaluation metrics against the specification's Table 2 and hand-worked examples."""

import math

import numpy as np
import pytest

from cvae_tf import metrics as metrics_module
from cvae_tf import molecule, physics, simulator
from cvae_tf.metrics import (
    evaluate_positions,
    mean_relative_error,
    per_atom_error,
    squared_relative_error,
)
from tests.expected import ERROR_AND_ENERGY_METRICS, TABLE_2_PREDICTED, TABLE_2_REAL

# Linear OCS at equilibrium along x, C at the origin: r_CO = 2.188, r_CS = 2.948, r_OS = 5.136 bohr.
EQUILIBRIUM = np.array([[0.0, 0.0, 0.0], [-2.188, 0.0, 0.0], [2.948, 0.0, 0.0]])
# 4/2.188 + 4/2.948 + 4/5.136 = 1.828154 + 1.356852 + 0.778816 hartree.
EQUILIBRIUM_PE = 3.963821867
# p_C = 100, p_O = −200, p_S = 100 a.u. along x (total zero): KE = 100²/(2·21894.71361)
# + 200²/(2·29164.39289) + 100²/(2·58441.80487) = 0.228366 + 0.685768 + 0.085555 hartree.
HAND_MOMENTA = np.array([[100.0, 0.0, 0.0], [-200.0, 0.0, 0.0], [100.0, 0.0, 0.0]])
HAND_KE = 0.9996885686


def test_mre_reproduces_the_six_table_2_entries_that_follow_from_the_formula():
    errors = mean_relative_error(TABLE_2_REAL, TABLE_2_PREDICTED)
    expected = {(0, 0): 1.55, (0, 1): 0.61, (0, 2): 6.83, (1, 0): 1.02, (1, 1): 0.41, (2, 0): 0.38}
    for (atom, axis), table_value in expected.items():
        assert round(float(errors[atom, axis]), 2) == table_value


def test_mre_of_near_zero_coordinates_is_about_zero_with_epsilon():
    # docs/physics.md, "Known slips in the specification": Table 2's 54.95, 6.13 and 11.46 %
    # dropped ε.
    errors = mean_relative_error(TABLE_2_REAL, TABLE_2_PREDICTED, epsilon=1e-10)
    for atom, axis in [(1, 2), (2, 1), (2, 2)]:
        assert errors[atom, axis] < 1e-3
    assert np.mean(errors) == pytest.approx(1.2, abs=0.05)
    # Without ε the table's own (slipped) numbers come back, which confirms the diagnosis.
    no_epsilon = mean_relative_error(TABLE_2_REAL, TABLE_2_PREDICTED, epsilon=0.0)
    assert round(float(no_epsilon[1, 2]), 2) == 54.95
    assert round(float(no_epsilon[2, 1]), 2) == 6.13
    assert round(float(no_epsilon[2, 2]), 2) == 11.46


def test_mre_and_squared_relative_error_by_hand():
    real = np.array([2.0, -4.0, 0.0])
    predicted = np.array([1.0, -3.0, 0.0])
    # |2 − 1|/2 = 50 %, |−4 + 3|/4 = 25 %, 0/ε = 0 %.
    assert mean_relative_error(real, predicted) == pytest.approx([50.0, 25.0, 0.0])
    # (1/2)²·100 = 25, (1/4)²·100 = 6.25, and finite at a zero coordinate thanks to ε.
    assert squared_relative_error(real, predicted) == pytest.approx([25.0, 6.25, 0.0])
    assert np.isfinite(squared_relative_error(np.array([0.0]), np.array([1.0]))).all()


def test_per_atom_error_of_a_known_displacement():
    predicted = EQUILIBRIUM + np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    errors = per_atom_error(EQUILIBRIUM[None], predicted[None])
    assert errors.shape == (1, 3)
    assert errors[0] == pytest.approx([5.0, 0.0, 2.0])


def test_energies_of_a_hand_worked_equilibrium_geometry():
    positions = EQUILIBRIUM[None]
    metrics = evaluate_positions(positions, positions, HAND_MOMENTA[None])
    assert metrics["potential_energy_true_mean"] == pytest.approx(EQUILIBRIUM_PE, rel=1e-9)
    assert metrics["potential_energy_predicted_mean"] == pytest.approx(EQUILIBRIUM_PE, rel=1e-9)
    assert metrics["kinetic_energy_mean"] == pytest.approx(HAND_KE, rel=1e-9)
    diff = abs(HAND_KE - EQUILIBRIUM_PE) / HAND_KE
    assert metrics["energy_diff_1_mean"] == pytest.approx(diff, rel=1e-8)
    assert metrics["energy_diff_2_median"] == pytest.approx(diff**2, rel=1e-8)


def _consistent_event():
    """Equilibrium positions and momenta (S alone moving) whose KE equals their PE exactly."""
    sulfur_momentum = math.sqrt(2.0 * 58441.80487 * EQUILIBRIUM_PE)
    momenta = np.zeros((3, 3))
    momenta[2, 1] = sulfur_momentum
    return EQUILIBRIUM.copy(), momenta


def test_energy_diff_of_consistent_data_is_zero_and_of_a_stretched_prediction_is_known():
    positions, momenta = _consistent_event()
    # Every distance doubled halves the PE: EnergyDiff₁ = |KE − KE/2|/KE = 0.5, EnergyDiff₂ = 0.25.
    stretched = 2.0 * positions
    metrics = evaluate_positions(positions[None], stretched[None], momenta[None])
    assert metrics["energy_diff_1_true_median"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["energy_diff_2_true_median"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["potential_energy_predicted_mean"] == pytest.approx(EQUILIBRIUM_PE / 2)
    assert metrics["energy_diff_1_mean"] == pytest.approx(0.5)
    assert metrics["energy_diff_2_mean"] == pytest.approx(0.25)
    perfect = evaluate_positions(positions[None], positions[None], momenta[None])
    assert perfect["energy_diff_1_mean"] == pytest.approx(0.0, abs=1e-9)
    assert perfect["atom_error_bohr2"] == 0.0
    assert perfect["mre_percent"] == 0.0


def test_evaluate_positions_means_medians_and_per_atom_errors_over_events():
    positions, momenta = _consistent_event()
    true_positions = np.stack([positions] * 3)
    all_momenta = np.stack([momenta] * 3)
    predicted = true_positions.copy()
    predicted[0, 0] += [3.0, 4.0, 0.0]  # event 0: C off by 5 bohr
    predicted[1, 2] += [0.0, 0.0, 2.0]  # event 1: S off by 2 bohr
    predicted[2] *= 2.0  # event 2: every distance doubled, EnergyDiff₁ = 0.5
    metrics = evaluate_positions(true_positions, predicted, all_momenta)

    assert metrics["num_events"] == 3
    # Event 2's displacements: C stays at the origin, O moves 2.188, S moves 2.948 bohr.
    assert metrics["per_atom_error_C_bohr"] == pytest.approx(5.0 / 3)
    assert metrics["per_atom_error_O_bohr"] == pytest.approx(2.188 / 3)
    assert metrics["per_atom_error_S_bohr"] == pytest.approx((2.0 + 2.948) / 3)
    assert metrics["per_atom_error_bohr"] == pytest.approx((5.0 + 2.0 + 2.188 + 2.948) / 9)
    squared = 9.0 + 16.0 + 4.0 + 2.188**2 + 2.948**2
    assert metrics["atom_error_bohr2"] == pytest.approx(squared / 27)
    # Events 0 and 1 change the PE too; their EnergyDiff₁ by hand from the new distances.
    r_co, r_cs = math.hypot(-2.188 - 3.0, 4.0), math.hypot(2.948 - 3.0, 4.0)
    pe_0 = 4 / r_co + 4 / r_cs + 4 / 5.136
    pe_1 = 4 / 2.188 + 4 / math.hypot(2.948, 2.0) + 4 / math.hypot(5.136, 2.0)
    diffs = sorted(abs(EQUILIBRIUM_PE - pe) / EQUILIBRIUM_PE for pe in (pe_0, pe_1))
    diffs = sorted([*diffs, 0.5])
    assert metrics["energy_diff_1_median"] == pytest.approx(diffs[1], rel=1e-6)
    assert metrics["energy_diff_1_mean"] == pytest.approx(sum(diffs) / 3, rel=1e-6)
    assert metrics["energy_diff_2_mean"] == pytest.approx(sum(d**2 for d in diffs) / 3, rel=1e-6)
    assert metrics["energy_diff_1_true_median"] == pytest.approx(0.0, abs=1e-9)


def test_evaluate_positions_returns_exactly_the_documented_plain_numbers():
    positions, momenta = _consistent_event()
    metrics = evaluate_positions(positions[None], positions[None], momenta[None])
    assert set(metrics) == {
        "mre_median_percent",
        "mre_above_threshold_percent",
        "energy_diff_1_true_mean",
        "bond_co_mae_bohr",
        "superposition_rmsd_bohr",
        "bond_cs_mae_bohr",
        "angle_mae_degrees",
        "forward_momentum_error_median",
        "forward_momentum_error_true_median",
        "energy_diff_1_true_median",
        "energy_diff_2_true_median",
        "per_atom_error_C_bohr",
        "per_atom_error_O_bohr",
        "per_atom_error_S_bohr",
        "atom_error_bohr2",
        "num_events",
        *ERROR_AND_ENERGY_METRICS,
    }
    assert all(type(value) in (float, int) for value in metrics.values())


def test_evaluate_positions_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3, 3\)"):
        evaluate_positions(np.zeros((2, 3, 3)), np.zeros((3, 3, 3)), np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="at least one event"):
        evaluate_positions(np.zeros((0, 3, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3, 3)))


def test_bond_and_angle_errors_by_hand():
    linear = np.array([[0.0, 0.0, 0.0], [-2.188, 0.0, 0.0], [2.948, 0.0, 0.0]])
    bent = np.array([[0.0, 0.0, 0.0], [-2.0, 0.0, 0.0], [0.0, 3.0, 0.0]])  # 90°, r = 2 and 3
    momenta = np.ones((2, 3, 3)) * 100
    metrics = evaluate_positions(np.stack([linear, linear]), np.stack([linear, bent]), momenta)
    assert metrics["bond_co_mae_bohr"] == pytest.approx(0.188 / 2)
    assert metrics["bond_cs_mae_bohr"] == pytest.approx(0.052 / 2)
    assert metrics["angle_mae_degrees"] == pytest.approx(90.0 / 2)


def test_forward_consistency_of_a_scaled_geometry_follows_coulomb_scaling():
    """Scaling every distance by s scales the final momenta by s^(-1/2): error |s^(-1/2) − 1|."""
    from cvae_tf import simulator

    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(50, seed=1))
    exact = metrics_module.forward_momentum_error(positions, momenta)
    assert np.max(exact) < 1e-7
    for scale in (0.5, 1.1, 2.0):
        errors = metrics_module.forward_momentum_error(positions * scale, momenta)
        np.testing.assert_allclose(errors, abs(scale**-0.5 - 1), rtol=1e-6)
    metrics = evaluate_positions(positions, positions * 2.0, momenta)
    assert metrics["forward_momentum_error_median"] == pytest.approx(1 - 2**-0.5, rel=1e-6)
    assert metrics["forward_momentum_error_true_median"] < 1e-7


def test_mre_above_threshold_and_median_by_hand():
    real = np.array([[[1.0, 2.0, 1e-16], [4.0, -1.0, 0.05], [0.5, 1e-3, 10.0]]])
    predicted = real.copy()
    predicted[0, 0, 0] = 1.1  # 10 %
    predicted[0, 1, 0] = 4.2  # 5 %
    predicted[0, 1, 2] = 0.1  # 100 %, but |real| = 0.05 is under the threshold
    predicted[0, 0, 2] = 1e-9  # ≈ 1000 %: a near-zero coordinate, excluded above the threshold
    metrics = evaluate_positions(real, predicted, np.ones_like(real) * 100)
    # Above 0.1 bohr: 1.0, 2.0, 4.0, -1.0, 0.5, 10.0 → errors 10, 0, 5, 0, 0, 0.
    assert metrics["mre_above_threshold_percent"] == pytest.approx(15.0 / 6)
    assert metrics["mre_median_percent"] == pytest.approx(0.0)


def test_geometry_errors_of_every_bond_and_angle_of_a_five_fragment_molecule():
    chbrclf = molecule.load("chbrclf")
    true = np.asarray(chbrclf.reference_geometry)[None]
    predicted = true.copy()
    # H 0.1 bohr further out along C–H: that bond 0.1 bohr longer, every angle unchanged.
    predicted[0, 1] *= 1 + 0.1 / np.linalg.norm(true[0, 1])
    errors = metrics_module.geometry_errors(true, predicted, chbrclf)
    assert errors["bond_ch_mae_bohr"] == pytest.approx(0.1)
    for bond in ("cbr", "ccl", "cf"):
        assert errors[f"bond_{bond}_mae_bohr"] == pytest.approx(0.0, abs=1e-12)
    assert errors["angle_mae_degrees"] == pytest.approx(0.0, abs=1e-5)
    # Turning F about C by 2° in the Cl–C–F plane changes that angle by 2°: tetrahedral,
    # arccos(−1/3) = 109.47° becomes 111.47°.
    c, cl, f = true[0, 0], true[0, 3], true[0, 4]
    normal = np.cross(cl - c, f - c)
    normal /= np.linalg.norm(normal)
    turn = np.radians(2.0)
    # Rodrigues' rotation of F about the normal, away from Cl.
    direction = np.sign(np.dot(np.cross(normal, f - c), cl - c))
    axis = -direction * normal
    v = f - c
    turned = (
        v * np.cos(turn)
        + np.cross(axis, v) * np.sin(turn)
        + axis * np.dot(axis, v) * (1 - np.cos(turn))
    )
    bent = true.copy()
    bent[0, 4] = c + turned
    angles = physics.bond_angles(bent, chbrclf.angles)
    names = chbrclf.angle_names
    assert angles[0, names.index("Cl–C–F")] == pytest.approx(np.degrees(np.arccos(-1 / 3)) + 2.0)
    errors = metrics_module.geometry_errors(true, bent, chbrclf)
    assert errors["angle_clcf_mae_degrees"] == pytest.approx(2.0)
    assert errors["bond_cf_mae_bohr"] == pytest.approx(0.0, abs=1e-12)


def test_evaluate_positions_names_every_fragment_of_the_molecule():
    chbrclf = molecule.load("chbrclf")
    true = np.asarray(chbrclf.reference_geometry)[None].repeat(4, axis=0)
    momenta = simulator.explode(true, masses=chbrclf.mass_array, charges=chbrclf.charge_array)
    shifted = true + np.array([0.0, 0.0, 0.05])  # every fragment 0.05 bohr off
    results = evaluate_positions(true, shifted, momenta, chbrclf)
    for label in ("C", "H", "Br", "Cl", "F"):
        assert results[f"per_atom_error_{label}_bohr"] == pytest.approx(0.05)
    assert results["superposition_rmsd_bohr"] == pytest.approx(0.0, abs=1e-9)
    # The true geometry explodes into the momenta: its energy floor is the integrator's.
    assert results["energy_diff_1_true_median"] < 1e-8
    with pytest.raises(ValueError, match=r"\(events, 5, 3\)"):
        evaluate_positions(true[:, :3], shifted[:, :3], momenta[:, :3], chbrclf)
