"""Energies and geometry checked against hand-worked numbers."""

import numpy as np
import pytest

from cvae_tf import physics


def linear_ocs(r_co=2.188, r_cs=2.948):
    """O at −x, C at the origin, S at +x: the equilibrium geometry of docs/physics.md (bohr)."""
    return np.array([[0.0, 0.0, 0.0], [-r_co, 0.0, 0.0], [r_cs, 0.0, 0.0]])


def test_masses_are_the_specifications():
    np.testing.assert_array_equal(physics.MASSES, [21894.71361, 29164.39289, 58441.80487])


def test_potential_energy_of_equilibrium_geometry():
    # 4/2.188 + 4/2.948 + 4/5.136 by hand: 1.828154 + 1.356852 + 0.778816 = 3.963822 hartree.
    assert physics.potential_energy(linear_ocs()) == pytest.approx(3.963822, abs=2e-6)


def test_pair_distances_and_bond_lengths():
    np.testing.assert_allclose(physics.pair_distances(linear_ocs()), [2.188, 2.948, 5.136])
    np.testing.assert_allclose(physics.bond_lengths(linear_ocs()), [2.188, 2.948])


def test_kinetic_energy_per_atom_by_hand():
    momenta = np.array([[100.0, 0.0, 0.0], [0.0, 200.0, 0.0], [0.0, 0.0, -300.0]])
    expected = [
        100.0**2 / (2 * 21894.71361),
        200.0**2 / (2 * 29164.39289),
        300.0**2 / (2 * 58441.80487),
    ]
    np.testing.assert_allclose(physics.kinetic_energy_per_atom(momenta), expected)
    assert physics.kinetic_energy(momenta) == pytest.approx(sum(expected))


def test_vectorized_over_events():
    positions = np.stack([linear_ocs(), linear_ocs(1.0, 1.0)])
    potential = physics.potential_energy(positions)
    assert potential.shape == (2,)
    assert potential[1] == pytest.approx(4 + 4 + 2)  # r = 1, 1, 2 bohr.


def test_energy_differences():
    assert physics.energy_diff_1(4.0, 3.0) == pytest.approx(0.25)
    assert physics.energy_diff_2(4.0, 3.0) == pytest.approx(0.0625)
    assert physics.energy_diff_1(4.0, 5.0) == pytest.approx(0.25)


def test_bend_angle_and_center_of_mass():
    assert physics.bend_angle(linear_ocs()) == pytest.approx(180.0)
    right_angle = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert physics.bend_angle(right_angle) == pytest.approx(90.0)
    com = physics.center_of_mass(right_angle)
    total = sum(physics.MASSES)
    np.testing.assert_allclose(com, [physics.MASSES[1] / total, 2 * physics.MASSES[2] / total, 0])
