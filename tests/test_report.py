"""Tests of the text report and the sample-prediction tables."""

import numpy as np
import pytest

from cvae_tf.report import (
    format_number,
    format_report,
    format_sample_table,
    sample_event_indices,
)
from tests.expected import TABLE_2_PREDICTED, TABLE_2_REAL


def _table_for_table_2() -> str:
    true_positions = np.stack([np.zeros((3, 3)), TABLE_2_REAL])
    predicted_positions = np.stack([np.zeros((3, 3)), TABLE_2_PREDICTED])
    return format_sample_table(true_positions, predicted_positions, [1])


def test_sample_table_reproduces_table_2_rows():
    table = _table_for_table_2()
    lines = table.splitlines()
    assert lines[0] == "Event 1"
    assert lines[1].split() == ["Atom", "Coordinate", "Real", "Predicted", "MRE", "(%)"]
    rows = [line.split() for line in lines[3:12]]
    # Each atom named once, on its x row, as in Table 2.
    assert [row[0] for row in rows if row[0] in {"Carbon", "Oxygen", "Sulfur"}] == [
        "Carbon",
        "Oxygen",
        "Sulfur",
    ]
    assert rows[0] == ["Carbon", "x", "1.2801", "1.3000", "1.55"]
    assert rows[2] == ["z", "-0.0644", "-0.0600", "6.83"]
    assert rows[6] == ["Sulfur", "x", "4.1056", "4.0900", "0.38"]
    # Near-zero coordinates in scientific notation, MRE ≈ 0 with ε (the table's 54.95 was a slip).
    assert rows[5] == ["z", "2.2200e-16", "1.0000e-16", "0.00"]
    # (1.5546 + 0.6090 + 6.8323 + 1.0247 + 0.4147 + 0.3800) / 9 = 1.2017 %.
    assert lines[12] == "Average MRE across all coordinates: 1.20%"


def test_sample_table_has_one_block_per_event():
    positions = np.ones((5, 3, 3))
    table = format_sample_table(positions, 1.1 * positions, [0, 3])
    blocks = table.split("\n\n")
    assert [block.splitlines()[0] for block in blocks] == ["Event 0", "Event 3"]
    assert all(block.endswith("Average MRE across all coordinates: 10.00%") for block in blocks)


def test_format_number():
    assert format_number(1.28014) == "1.2801"
    assert format_number(-0.0644) == "-0.0644"
    assert format_number(2.22e-16) == "2.2200e-16"
    assert format_number(0.0) == "0.0000"
    assert format_number(2.5e7) == "2.5000e+07"
    assert format_number(7) == "7"


def test_report_contains_every_metric_with_its_unit_in_groups():
    metrics = {
        "mre_percent": 12.5,
        "mre_squared_percent": 3.25,
        "kinetic_energy_mean": 3.9638,
        "potential_energy_predicted_mean": 3.75,
        "potential_energy_true_mean": 3.875,
        "energy_diff_1_mean": 0.0625,
        "energy_diff_1_median": 0.0525,
        "energy_diff_2_mean": 0.0078,
        "energy_diff_2_median": 0.0061,
        "energy_diff_1_true_median": 2.3e-7,
        "energy_diff_2_true_median": 5.29e-14,
        "per_atom_error_bohr": 0.125,
        "per_atom_error_C_bohr": 0.1,
        "per_atom_error_O_bohr": 0.15,
        "per_atom_error_S_bohr": 0.125,
        "atom_error_bohr2": 0.0225,
        "num_events": 1500,
    }
    report = format_report(metrics)
    lines = report.splitlines()
    assert lines[0] == "Evaluation on 1500 events"
    expected_lines = {
        "mre_percent": "12.5000 %",
        "mre_squared_percent": "3.2500 %",
        "kinetic_energy_mean": "3.9638 hartree",
        "potential_energy_predicted_mean": "3.7500 hartree",
        "potential_energy_true_mean": "3.8750 hartree",
        "energy_diff_1_mean": "0.0625",
        "energy_diff_1_median": "0.0525",
        "energy_diff_2_mean": "0.0078",
        "energy_diff_2_median": "0.0061",
        "energy_diff_1_true_median": "2.3000e-07",
        "energy_diff_2_true_median": "5.2900e-14",
        "per_atom_error_bohr": "0.1250 bohr",
        "per_atom_error_C_bohr": "0.1000 bohr",
        "per_atom_error_O_bohr": "0.1500 bohr",
        "per_atom_error_S_bohr": "0.1250 bohr",
        "atom_error_bohr2": "0.0225 bohr²",
    }
    for key, ending in expected_lines.items():
        assert sum(line.endswith(ending) for line in lines) >= 1, key
    # One metric per line: 1 header + 3 group titles + 16 metrics.
    assert len(lines) == 20
    titles = [line for line in lines if line.endswith(":")]
    assert [t.split()[0] for t in titles] == ["Position", "Relative", "Energies"]
    assert report.index("Position accuracy") < report.index("0.1250 bohr")
    assert report.index("Energies") < report.index("3.9638 hartree")


def test_report_lists_unknown_metrics_and_skips_missing_groups():
    report = format_report({"mre_percent": 1.5, "coverage_77": 0.875})
    assert "Position accuracy" not in report
    assert "1.5000 %" in report
    assert "Other:" in report and "coverage_77" in report and "0.8750" in report


def test_report_leaves_tables_to_metrics_json():
    """The calibration curve and the spread scale are lists: in metrics.json, not the text."""
    report = format_report(
        {
            "coverage_90": 0.875,
            "calibration_curve": {"nominal": [0.5], "observed": [0.4]},
            "spread_scale": [1.0] * 9,
        }
    )
    assert "truth inside the 90 % interval       0.8750 (nominal 0.900)" in report
    assert "calibration_curve" not in report and "spread_scale" not in report


def test_sample_event_indices_are_distinct_reproducible_and_in_range():
    indices = sample_event_indices(100, 10, seed=3)
    assert len(indices) == 10 and len(set(indices.tolist())) == 10
    assert indices.min() >= 0 and indices.max() < 100
    assert np.array_equal(indices, sample_event_indices(100, 10, seed=3))
    assert not np.array_equal(indices, sample_event_indices(100, 10, seed=4))
    assert sorted(sample_event_indices(5, 10, seed=0).tolist()) == [0, 1, 2, 3, 4]


def test_sample_event_indices_rejects_negative_counts():
    with pytest.raises(ValueError, match="num_samples=-1"):
        sample_event_indices(10, -1, seed=0)
