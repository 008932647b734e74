"""Energies, distances and angles of exploding fragments, in atomic units, vectorized over events.

Arrays of positions (bohr) or momenta (atomic units of momentum, m_e·bohr/t_au) are shaped
(..., fragments, 3 axes) with the fragments in their molecule's order (molecule.Molecule; OCS:
C, O, S). Energies are in hartree. Masses and charges default to the specification's OCS,
C²⁺ + O²⁺ + S²⁺.
"""

import numpy as np

from cvae_tf import molecule
from cvae_tf.molecule import AXES, pair_distances

__all__ = ["AXES", "pair_distances"]

MASSES = molecule.OCS.mass_array
# Each OCS fragment is doubly charged: C²⁺ + O²⁺ + S²⁺, so q_i·q_j = 4 and PE = Σ 4/r_ij.
CHARGES = molecule.OCS.charge_array

BOHR_PER_PICOMETRE = 1.0 / 52.9177210544
HARTREE_IN_EV = 27.211386245988


def kinetic_energy_per_atom(momenta: np.ndarray, masses: np.ndarray = MASSES) -> np.ndarray:
    """KE_i = Σ_xyz p_i² / (2 m_i) in hartree, shaped (..., fragments)."""
    return np.sum(np.square(momenta), axis=-1) / (2.0 * masses)


def kinetic_energy(momenta: np.ndarray, masses: np.ndarray = MASSES) -> np.ndarray:
    """Total kinetic energy Σ_i KE_i in hartree, shaped (...): the kinetic energy release."""
    return np.sum(kinetic_energy_per_atom(momenta, masses), axis=-1)


def pair_charge_products(charges: np.ndarray = CHARGES) -> np.ndarray:
    """q_i·q_j for every pair i < j (molecule.all_pairs order), shaped (pairs,)."""
    first, second = np.array(molecule.all_pairs(len(charges))).T
    charges = np.asarray(charges, dtype=np.float64)
    return charges[first] * charges[second]


def potential_energy(positions: np.ndarray, charges: np.ndarray = CHARGES) -> np.ndarray:
    """Coulomb energy Σ_{i<j} q_i q_j / r_ij in hartree, shaped (...)."""
    return np.sum(pair_charge_products(charges) / pair_distances(positions), axis=-1)


def energy_diff_1(kinetic: np.ndarray, potential: np.ndarray) -> np.ndarray:
    """EnergyDiff₁ = |KE − PE| / |KE| (dimensionless)."""
    return np.abs(kinetic - potential) / np.abs(kinetic)


def energy_diff_2(kinetic: np.ndarray, potential: np.ndarray) -> np.ndarray:
    """EnergyDiff₂ = ((KE − PE) / KE)² (dimensionless)."""
    return np.square((kinetic - potential) / kinetic)


def center_of_mass(positions: np.ndarray, masses: np.ndarray = MASSES) -> np.ndarray:
    """Mass-weighted mean position in bohr, shaped (..., 3 axes)."""
    return np.einsum("...ak,a->...k", positions, masses) / np.sum(masses)


def total_momentum(momenta: np.ndarray) -> np.ndarray:
    """Σ_i p_i, shaped (..., 3 axes)."""
    return np.sum(momenta, axis=-2)


def bond_lengths(
    positions: np.ndarray, bonds: tuple[tuple[int, int], ...] = molecule.OCS.bonds
) -> np.ndarray:
    """Length in bohr of each bond (i, j), shaped (..., bonds); OCS: r_CO, r_CS."""
    first, second = np.array(bonds).T
    return np.linalg.norm(positions[..., first, :] - positions[..., second, :], axis=-1)


def bond_angles(
    positions: np.ndarray, angles: tuple[tuple[int, int, int], ...] = molecule.OCS.angles
) -> np.ndarray:
    """Angle i–vertex–k in degrees (180 = collinear) of each triple, shaped (..., angles)."""
    first, vertex, last = np.array(angles).T
    to_first = positions[..., first, :] - positions[..., vertex, :]
    to_last = positions[..., last, :] - positions[..., vertex, :]
    cosine = np.sum(to_first * to_last, axis=-1) / (
        np.linalg.norm(to_first, axis=-1) * np.linalg.norm(to_last, axis=-1)
    )
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def bend_angle(positions: np.ndarray) -> np.ndarray:
    """The O–C–S angle of OCS positions in degrees (180 for a linear molecule), shaped (...)."""
    return bond_angles(positions)[..., 0]
