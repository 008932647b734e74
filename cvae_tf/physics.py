"""Constants and energies of the OCS Coulomb explosion, in atomic units, vectorized over events.

Arrays of positions (bohr) or momenta (atomic units of momentum, m_e·bohr/t_au) are shaped
(..., 3 atoms, 3 axes) with the atoms in the order C, O, S. Energies are in hartree.
"""

import numpy as np

ATOMS = ("C", "O", "S")
ATOM_NAMES = ("Carbon", "Oxygen", "Sulfur")
AXES = ("x", "y", "z")

# Masses in electron masses, exactly as the specification (Table 1) gives them.
MASSES = np.array([21894.71361, 29164.39289, 58441.80487])
# Each fragment is doubly charged: C²⁺ + O²⁺ + S²⁺, so q_i·q_j = 4 and PE = Σ 4/r_ij.
CHARGES = np.array([2.0, 2.0, 2.0])

# Atom pairs in the order the specification writes PE: CO, CS, OS.
PAIRS = ((0, 1), (0, 2), (1, 2))

BOHR_PER_PICOMETRE = 1.0 / 52.9177210544


def kinetic_energy_per_atom(momenta: np.ndarray, masses: np.ndarray = MASSES) -> np.ndarray:
    """KE_i = Σ_xyz p_i² / (2 m_i) in hartree, shaped (..., 3 atoms)."""
    return np.sum(np.square(momenta), axis=-1) / (2.0 * masses)


def kinetic_energy(momenta: np.ndarray, masses: np.ndarray = MASSES) -> np.ndarray:
    """Total kinetic energy KE_C + KE_O + KE_S in hartree, shaped (...)."""
    return np.sum(kinetic_energy_per_atom(momenta, masses), axis=-1)


def pair_distances(positions: np.ndarray) -> np.ndarray:
    """Distances r_CO, r_CS, r_OS in bohr, shaped (..., 3)."""
    return np.stack(
        [np.linalg.norm(positions[..., i, :] - positions[..., j, :], axis=-1) for i, j in PAIRS],
        axis=-1,
    )


def potential_energy(positions: np.ndarray, charges: np.ndarray = CHARGES) -> np.ndarray:
    """Coulomb energy Σ_{i<j} q_i q_j / r_ij in hartree, shaped (...)."""
    pair_charges = np.array([charges[i] * charges[j] for i, j in PAIRS])
    return np.sum(pair_charges / pair_distances(positions), axis=-1)


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


def bond_lengths(positions: np.ndarray) -> np.ndarray:
    """Bond lengths r_CO and r_CS in bohr, shaped (..., 2)."""
    return pair_distances(positions)[..., :2]


def bend_angle(positions: np.ndarray) -> np.ndarray:
    """The O–C–S angle in degrees (180 for a linear molecule), shaped (...)."""
    to_oxygen = positions[..., 1, :] - positions[..., 0, :]
    to_sulfur = positions[..., 2, :] - positions[..., 0, :]
    cosine = np.sum(to_oxygen * to_sulfur, axis=-1) / (
        np.linalg.norm(to_oxygen, axis=-1) * np.linalg.norm(to_sulfur, axis=-1)
    )
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
