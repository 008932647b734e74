"""Evaluation metrics of predicted positions: relative errors, per-atom distances and energies."""

import numpy as np

from cvae_tf import alignment, simulator
from cvae_tf.physics import (
    ATOMS,
    bend_angle,
    bond_lengths,
    energy_diff_1,
    energy_diff_2,
    kinetic_energy,
    potential_energy,
)

EPSILON = 1e-10  # The specification's ε in eq. (2).
# MRE is also reported over coordinates with |real| above this: near-zero coordinates make it
# explode whatever the accuracy (docs/physics.md, "Known slips in the specification"), and OCS
# coordinates are ~0.3–3 bohr otherwise.
MRE_THRESHOLD_BOHR = 0.1


def mean_relative_error(
    real: np.ndarray, predicted: np.ndarray, epsilon: float = EPSILON
) -> np.ndarray:
    """Elementwise |real − predicted| / (|real| + ε) × 100, in percent (specification eq. 2)."""
    real = np.asarray(real, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    return np.abs(real - predicted) / (np.abs(real) + epsilon) * 100.0


def squared_relative_error(
    real: np.ndarray, predicted: np.ndarray, epsilon: float = EPSILON
) -> np.ndarray:
    """Elementwise ((real − predicted) / (|real| + ε))² × 100, in percent (eq. 3).

    The specification writes eq. (3) without ε; the same ε guard as eq. (2) keeps it finite where
    a true coordinate is zero.
    """
    real = np.asarray(real, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    return np.square((real - predicted) / (np.abs(real) + epsilon)) * 100.0


def per_atom_error(real_positions: np.ndarray, predicted_positions: np.ndarray) -> np.ndarray:
    """Euclidean distance between true and predicted position of each atom, in bohr, (events, 3)."""
    return np.linalg.norm(np.asarray(real_positions) - np.asarray(predicted_positions), axis=-1)


def forward_momentum_error(predicted_positions: np.ndarray, momenta: np.ndarray) -> np.ndarray:
    """Per event |p(explode(predicted)) − p_measured| / |p_measured|, norms over all 9 components.

    Explodes the predicted geometry from rest with the simulator: how well the prediction
    reproduces what the detector saw (≈ 0 for a perfect prediction of an event from rest).
    """
    exploded = simulator.explode(np.asarray(predicted_positions, dtype=float))
    return alignment.relative_mismatch(exploded, momenta)


def evaluate_positions(
    true_positions: np.ndarray, predicted_positions: np.ndarray, momenta: np.ndarray
) -> dict[str, float]:
    """All evaluation metrics of a set of predictions, in original units (bohr, hartree, %).

    Args:
        true_positions: True positions in bohr, (events, 3 atoms C/O/S, 3 axes).
        predicted_positions: Predicted positions in bohr, same shape.
        momenta: Measured final momenta in atomic units, same shape.

    Returns:
        Plain Python numbers by name: relative errors in percent (means over all coordinates of
        all events), energies in hartree (means over events), EnergyDiff means and medians over
        events for the predicted and (as the floor) the true positions, per-atom errors in bohr,
        the position MSE in bohr² and the number of events (an int).
    """
    true_positions = np.asarray(true_positions, dtype=float)
    predicted_positions = np.asarray(predicted_positions, dtype=float)
    momenta = np.asarray(momenta, dtype=float)
    shapes = {a.shape for a in (true_positions, predicted_positions, momenta)}
    if len(shapes) != 1 or true_positions.ndim != 3 or true_positions.shape[1:] != (3, 3):
        raise ValueError(
            "true_positions, predicted_positions and momenta must share the shape (events, 3, 3); "
            f"received: {true_positions.shape}, {predicted_positions.shape}, {momenta.shape}"
        )
    if true_positions.shape[0] == 0:
        raise ValueError("evaluate_positions needs at least one event; received 0")

    kinetic = kinetic_energy(momenta)
    potential_predicted = potential_energy(predicted_positions)
    potential_true = potential_energy(true_positions)
    atom_errors = per_atom_error(true_positions, predicted_positions)
    relative_errors = mean_relative_error(true_positions, predicted_positions)
    away_from_zero = np.abs(true_positions) > MRE_THRESHOLD_BOHR
    bond_errors = np.abs(bond_lengths(predicted_positions) - bond_lengths(true_positions))

    metrics = {
        "mre_percent": np.mean(relative_errors),
        "mre_median_percent": np.median(relative_errors),
        "mre_above_threshold_percent": np.mean(relative_errors[away_from_zero])
        if away_from_zero.any()
        else np.nan,
        "mre_squared_percent": np.mean(squared_relative_error(true_positions, predicted_positions)),
        "kinetic_energy_mean": np.mean(kinetic),
        "potential_energy_predicted_mean": np.mean(potential_predicted),
        "potential_energy_true_mean": np.mean(potential_true),
        "energy_diff_1_mean": np.mean(energy_diff_1(kinetic, potential_predicted)),
        "energy_diff_1_median": np.median(energy_diff_1(kinetic, potential_predicted)),
        "energy_diff_2_mean": np.mean(energy_diff_2(kinetic, potential_predicted)),
        "energy_diff_2_median": np.median(energy_diff_2(kinetic, potential_predicted)),
        # The same for the true positions: what a perfect prediction would score, given how far
        # the simulated momenta are from full energy conservation.
        "energy_diff_1_true_mean": np.mean(energy_diff_1(kinetic, potential_true)),
        "energy_diff_1_true_median": np.median(energy_diff_1(kinetic, potential_true)),
        "energy_diff_2_true_median": np.median(energy_diff_2(kinetic, potential_true)),
        "per_atom_error_bohr": np.mean(atom_errors),
        **{
            f"per_atom_error_{atom}_bohr": np.mean(atom_errors[:, index])
            for index, atom in enumerate(ATOMS)
        },
        "atom_error_bohr2": np.mean(np.square(true_positions - predicted_positions)),
        "superposition_rmsd_bohr": np.mean(
            alignment.superposition_rmsd(predicted_positions, true_positions)
        ),
        "bond_co_mae_bohr": np.mean(bond_errors[:, 0]),
        "bond_cs_mae_bohr": np.mean(bond_errors[:, 1]),
        "angle_mae_degrees": np.mean(
            np.abs(bend_angle(predicted_positions) - bend_angle(true_positions))
        ),
        "forward_momentum_error_median": np.median(
            forward_momentum_error(predicted_positions, momenta)
        ),
        "forward_momentum_error_true_median": np.median(
            forward_momentum_error(true_positions, momenta)
        ),
    }
    result = {name: float(value) for name, value in metrics.items()}
    result["num_events"] = int(true_positions.shape[0])
    return result
