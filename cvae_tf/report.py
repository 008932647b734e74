"""Text formatting of evaluation results: the metrics block and tables of sample predictions."""

import math

import numpy as np

from cvae_tf.metrics import mean_relative_error
from cvae_tf.molecule import AXES, OCS, Molecule


def _position_group(fragments: Molecule) -> tuple[str, list[tuple[str, str, str]]]:
    """The report's first group: per-fragment, bond and angle errors of this molecule."""
    angles = fragments.angle_names
    return (
        "Position accuracy",
        [
            ("per_atom_error_bohr", "mean distance error per atom", "bohr"),
            *[
                (f"per_atom_error_{atom}_bohr", f"  {name}", "bohr")
                for atom, name in zip(fragments.labels, fragments.fragment_names, strict=True)
            ],
            ("atom_error_bohr2", "position MSE per coordinate", "bohr²"),
            (
                "baseline_training_mean_per_atom_error_bohr",
                "baseline: training-mean geometry",
                "bohr",
            ),
            ("superposition_rmsd_bohr", "RMSD after optimal superposition", "bohr"),
            *[
                (f"bond_{tag}_mae_bohr", f"{name} bond length, mean abs. error", "bohr")
                for tag, name in zip(fragments.bond_tags, fragments.bond_names, strict=True)
            ],
            (
                "angle_mae_degrees",
                f"{angles[0]} angle, mean abs. error"
                if len(angles) == 1
                else "bond angles, mean abs. error",
                "°",
            ),
            *[
                (f"angle_{tag}_mae_degrees", f"  {name}", "°")
                for tag, name in zip(fragments.angle_tags, angles, strict=True)
                if len(angles) > 1
            ],
        ],
    )


# (group title, [(metric key, description, unit)]) in the order the report prints them, after
# the position group.
_REPORT_GROUPS = (
    (
        "Predictive distribution (K latent draws, each the decoder's Gaussian; central intervals "
        "mean ± z·spread)",
        [
            ("num_samples", "latent samples per event", ""),
            ("mean_spread_bohr", "mean per-coordinate spread", "bohr"),
            ("coverage_50", "truth inside the 50 % interval", "(nominal 0.500)"),
            ("coverage_68", "truth inside the 68 % interval", "(nominal 0.683)"),
            ("coverage_90", "truth inside the 90 % interval", "(nominal 0.900)"),
            ("coverage_95", "truth inside the 95 % interval", "(nominal 0.950)"),
            *[
                (f"coverage_{level}_spread_bin_{bin_}", f"  {level} %, {which} third of spread", "")
                for level in ("68", "95")
                for bin_, which in ((1, "smallest"), (2, "middle"), (3, "largest"))
            ],
            ("crps_bohr", "CRPS, mean over coordinates", "bohr"),
            ("sample_mean_per_atom_error_bohr", "per-atom error, sample mean", "bohr"),
            ("energy_selected_per_atom_error_bohr", "per-atom error, energy-selected", "bohr"),
            ("sample_mean_energy_diff_1_median", "EnergyDiff₁ median, sample mean", ""),
            ("energy_selected_energy_diff_1_median", "EnergyDiff₁ median, energy-selected", ""),
        ],
    ),
    (
        "Forward consistency (predicted geometry exploded by the simulator)",
        [
            ("forward_momentum_error_median", "median |Δp|/|p|, predicted", ""),
            ("forward_momentum_error_true_median", "median |Δp|/|p|, true (floor)", ""),
        ],
    ),
    (
        "Relative errors (large wherever a true coordinate is near 0)",
        [
            ("mre_percent", "MRE, eq. (2)", "%"),
            ("mre_median_percent", "MRE median", "%"),
            ("mre_above_threshold_percent", "MRE where |real| > 0.1 bohr", "%"),
            ("mre_squared_percent", "squared relative error, eq. (3)", "%"),
        ],
    ),
    (
        "Energies (predicted positions vs. the true-position floor)",
        [
            ("kinetic_energy_mean", "mean KE of the momenta", "hartree"),
            ("potential_energy_predicted_mean", "mean PE, predicted positions", "hartree"),
            ("potential_energy_true_mean", "mean PE, true positions", "hartree"),
            ("energy_diff_1_mean", "EnergyDiff₁ mean, predicted", ""),
            ("energy_diff_1_median", "EnergyDiff₁ median, predicted", ""),
            ("energy_diff_1_true_mean", "EnergyDiff₁ mean, true (floor)", ""),
            ("energy_diff_1_true_median", "EnergyDiff₁ median, true (floor)", ""),
            ("energy_diff_2_mean", "EnergyDiff₂ mean, predicted", ""),
            ("energy_diff_2_median", "EnergyDiff₂ median, predicted", ""),
            ("energy_diff_2_true_median", "EnergyDiff₂ median, true (floor)", ""),
        ],
    ),
)


def format_number(value: float) -> str:
    """4 decimals, or scientific notation for 0 < |value| < 1e-3 and |value| ≥ 1e6; ints as is."""
    if isinstance(value, int | np.integer):
        return str(value)
    value = float(value)
    if math.isfinite(value) and value != 0.0 and not 1e-3 <= abs(value) < 1e6:
        return f"{value:.4e}"
    return f"{value:.4f}"


def format_report(metrics: dict, fragments: Molecule = OCS) -> str:
    """The evaluation metrics as a readable block, one per line with its unit, in groups."""
    groups = (_position_group(fragments), *_REPORT_GROUPS)
    width = max(len(description) for _, rows in groups for _, description, _ in rows)
    lines = []
    if "num_events" in metrics:
        lines.append(f"Evaluation on {metrics['num_events']} events")
    shown = {"num_events"}
    for title, rows in groups:
        present = [row for row in rows if row[0] in metrics]
        if not present:
            continue
        lines.append(f"{title}:")
        for key, description, unit in present:
            lines.append(f"  {description:<{width}}  {format_number(metrics[key])} {unit}".rstrip())
            shown.add(key)
    # Tables (the calibration curve, the spread scale) go to metrics.json, not the text.
    others = [
        key
        for key in metrics
        if key not in shown and isinstance(metrics[key], int | float | np.number)
    ]
    if others:
        lines.append("Other:")
        lines.extend(f"  {key:<{width}}  {format_number(metrics[key])}" for key in others)
    return "\n".join(lines)


def format_sample_table(
    true_positions: np.ndarray,
    predicted_positions: np.ndarray,
    event_indices,
    fragments: Molecule = OCS,
) -> str:
    """Tables like the specification's Table 2, one per chosen event, with the event's mean MRE.

    Args:
        true_positions: True positions in bohr, (events, fragments, 3 axes).
        predicted_positions: Predicted positions in bohr, same shape.
        event_indices: Which events to show.
        fragments: the molecule, whose fragment names label the rows.

    Returns:
        The tables, separated by blank lines; MRE is eq. (2) with ε = 1e-10, in percent.
    """
    names = fragments.fragment_names
    name_width = max(8, max(len(name) for name in names) + 1)
    header = f"{'Atom':<{name_width}}{'Coordinate':<12}{'Real':>12}{'Predicted':>12}{'MRE (%)':>12}"
    blocks = []
    for event in event_indices:
        real = np.asarray(true_positions[event], dtype=float)
        predicted = np.asarray(predicted_positions[event], dtype=float)
        errors = mean_relative_error(real, predicted)
        lines = [f"Event {event}", header, "-" * len(header)]
        for atom_index, atom_name in enumerate(names):
            for axis_index, axis in enumerate(AXES):
                # Name the atom on its first row only, as Table 2 does.
                label = atom_name if axis_index == 0 else ""
                lines.append(
                    f"{label:<{name_width}}{axis:<12}"
                    f"{format_number(real[atom_index, axis_index]):>12}"
                    f"{format_number(predicted[atom_index, axis_index]):>12}"
                    f"{_format_percent(errors[atom_index, axis_index]):>12}"
                )
        lines.append(f"Average MRE across all coordinates: {_format_percent(np.mean(errors))}%")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _format_percent(value: float) -> str:
    # Two decimals as in Table 2; near-zero true coordinates give huge MREs (docs/physics.md,
    # "Known slips in the specification").
    return f"{value:.2f}" if abs(value) < 1e6 else f"{value:.2e}"


def sample_event_indices(num_events: int, num_samples: int, seed: int) -> np.ndarray:
    """Sorted distinct random event indices, min(num_samples, num_events) of them."""
    if num_events < 0 or num_samples < 0:
        raise ValueError(
            "num_events and num_samples must be ≥ 0; "
            f"received: num_events={num_events}, num_samples={num_samples}"
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_events, size=min(num_samples, num_events), replace=False))
