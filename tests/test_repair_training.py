"""Issue 7's acceptance: a CVAE on repaired data beats the same CVAE on the raw data ≥ 10×."""

import pandas as pd
import pytest

from cvae_tf import config, data, simulator, training
from tests import commands
from tests.frame_mismatch import frame_mismatched_events


@pytest.fixture(scope="module")
def mismatched_csv(tmp_path_factory):
    """3000 events whose positions and momenta live in different frames, positions translated."""
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(3000, seed=21))
    bad, *_ = frame_mismatched_events(positions, momenta, seed=1)
    path = tmp_path_factory.mktemp("mismatched") / "events.csv"
    data.write_events_csv(path, bad.positions, bad.momenta)
    return path


def test_repaired_data_trains_ten_times_better_bond_lengths(mismatched_csv, tmp_path, capsys):
    same_cvae = config.from_dict(
        dict(
            data=str(mismatched_csv),
            hidden_dim=32,
            num_layers=3,
            latent_dim=2,
            learning_rate=3e-3,
            batch_size=128,
            epochs=15,  # 15 × 128 steps (--min_epoch_steps): as many as 100 passes of 17 batches
            patience=15,
            output_dir=str(tmp_path),
            num_display_samples=0,
            num_samples=2,
        )
    )
    raw = training.train(config.replace(same_cvae, run_name="raw"), verbose=0).metrics
    printed = capsys.readouterr().out
    assert "different frames" in printed and "--center=com --align_positions" in printed
    repaired_run = training.train(
        config.replace(
            same_cvae, run_name="repaired", align_positions=True, center="com", check_data=False
        ),
        verbose=0,
    )
    repaired = repaired_run.metrics
    printed = capsys.readouterr().out
    assert "Aligned positions to their momenta" in printed
    assert "Data check" not in printed  # --nocheck_data skips the check
    assert "centre-of-mass relative (--center=com)" in repaired_run.report
    momenta_only = tmp_path / "momenta.csv"
    pd.read_csv(mismatched_csv)[list(data.MOMENTUM_COLUMNS)].iloc[:5].to_csv(momenta_only)
    assert (
        commands.call(
            "predict",
            f"--model_dir={repaired_run.run_dir}",
            f"--input={momenta_only}",
            f"--output={tmp_path / 'positions.csv'}",
        )
        is None
    )
    assert "relative to each event's centre of mass" in capsys.readouterr().out
    for bond in ("bond_co_mae_bohr", "bond_cs_mae_bohr"):
        assert repaired[bond] * 10 <= raw[bond], (bond, repaired[bond], raw[bond])
    assert repaired["superposition_rmsd_bohr"] * 10 <= raw["superposition_rmsd_bohr"]
