"""Other molecules and channels end to end: simulate, train, the run folder's molecule, predict."""

import json

import numpy as np
import pandas as pd
import pytest

from cvae_tf import config, csv_files, export, run_folder, simulator, training
from cvae_tf.errors import UserInputError
from cvae_tf.molecule import MoleculeConfig
from tests.commands import call
from tests.conftest import QUICK

CHBRCLF_COLUMNS = [f"{atom}{axis}" for atom in ("c", "h", "br", "cl", "f") for axis in "xyz"]


@pytest.fixture(scope="module")
def chbrclf_csv(tmp_path_factory):
    """600 simulated CHBrClF⁵⁺ events (reference geometry prior) with the molecule's columns."""
    path = tmp_path_factory.mktemp("chbrclf") / "chbrclf.csv"
    simulation = simulator.SimulationConfig(
        600, seed=3, molecule=MoleculeConfig(molecule="chbrclf")
    )
    positions, momenta = simulator.simulate_events(simulation)
    fragments = simulation.fragments
    csv_files.write_events_csv(
        path, positions, momenta, fragments.position_columns, fragments.momentum_columns
    )
    return path


@pytest.fixture(scope="module")
def chbrclf_run(chbrclf_csv, tmp_path_factory):
    """A quick in-process training on the five-fragment data."""
    output_dir = tmp_path_factory.mktemp("chbrclf_runs")
    values = {
        **QUICK,
        "data": str(chbrclf_csv),
        "output_dir": str(output_dir),
        "run_name": "chbrclf",
        "molecule": "chbrclf",
        "check_data": True,
    }
    return training.train(config.from_dict(values), verbose=0)


def test_a_five_fragment_run_reports_every_fragment_bond_and_angle(chbrclf_run):
    text, results = chbrclf_run.report, chbrclf_run.metrics
    for name in ("Carbon", "Hydrogen", "Bromine", "Chlorine", "Fluorine"):
        assert name in text
    assert "C–Br bond length, mean abs. error" in text and "Cl–C–F" in text
    for key in ("per_atom_error_Br_bohr", "bond_ch_mae_bohr", "angle_hcbr_mae_degrees"):
        assert np.isfinite(results[key]), key
    # The mean geometry of the training part is a bad guess; even 3 epochs do far better.
    assert results["per_atom_error_bohr"] < results["baseline_training_mean_per_atom_error_bohr"]
    assert set(results) >= {f"crps_{label}{axis}_bohr" for label in ("H", "Cl") for axis in "xyz"}


def test_the_run_folder_and_the_saved_model_carry_the_molecule(chbrclf_run):
    run_dir = chbrclf_run.run_dir
    written = json.loads((run_dir / run_folder.MOLECULE_FILE).read_text())
    assert written["atoms"] == ["C", "H", "Br", "Cl", "F"] and written["charges"] == [1] * 5
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["position_columns"] == CHBRCLF_COLUMNS
    assert recorded["momentum_columns"] == ["p" + name for name in CHBRCLF_COLUMNS]
    serving = export.load_saved_model(run_dir / export.SAVED_MODEL_DIR)
    assert export.saved_molecule(serving) == run_folder.read_molecule(run_dir)
    assert serving.serve(np.zeros((2, 15), np.float32)).shape == (2, 15)


def test_predict_on_five_fragment_momenta_writes_the_molecule_columns(
    chbrclf_run, chbrclf_csv, tmp_path, run_command
):
    momenta = pd.read_csv(chbrclf_csv)[["p" + name for name in CHBRCLF_COLUMNS]]
    momenta.head(50).to_csv(tmp_path / "momenta.csv", index=False)
    result = run_command(
        "predict",
        f"--model_dir={chbrclf_run.run_dir}",
        f"--input={tmp_path / 'momenta.csv'}",
        f"--output={tmp_path / 'positions.csv'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    predicted = pd.read_csv(tmp_path / "positions.csv")
    # The input's columns first, kept as they were, then the molecule's position columns.
    assert list(predicted.columns[:30]) == list(momenta.columns) + CHBRCLF_COLUMNS
    assert len(predicted) == 50
    assert {"r_ch", "r_cbr", "angle_clcf", "out_of_distribution"} <= set(predicted.columns)


def test_ocs_data_is_refused_by_a_five_fragment_training_in_one_line(events_csv, tmp_path):
    values = {**QUICK, "data": str(events_csv), "output_dir": str(tmp_path), "molecule": "chbrclf"}
    with pytest.raises(UserInputError, match=r"lacks columns \['hx'") as error:
        training.train(config.from_dict(values), verbose=0)
    assert "\n" not in str(error.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--charges=1,1,1",), "--data is empty, so the embedded OCS data would be used"),
        (("--molecule=chbrclf", "--data=x.csv"), "--data='x.csv' is not a file"),
        (("--charges=1,1",), "--charges has 2 values for 3 fragments"),
        (("--atoms=C,O,S,H",), "--atoms names 4 fragments but --molecule=ocs has 3"),
        (("--molecule=nh3",), "--molecule='nh3' is neither a built-in molecule"),
        (("--molecule=chbrclf", "--position_columns=cx,cy,cz"), "expected 15 distinct names"),
    ],
)
def test_bad_molecule_flags_for_train_are_one_line(flags, message, tmp_path):
    assert message in call("train", *flags, f"--output_dir={tmp_path}")
    assert not any(tmp_path.iterdir())
