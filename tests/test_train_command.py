"""`python -m cvae_tf.train` end to end on a few hundred events, and its refusals."""

import json

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from absl import flags

from cvae_tf import csv_files, data, event_files, frames, split, train
from cvae_tf.molecule import OCS
from tests.conftest import REPO
from tests.expected import ERROR_AND_ENERGY_METRICS


def test_run_folder_holds_everything(quick_run):
    run_dir, _ = quick_run
    for name in (
        "saved_model/saved_model.pb",
        "model.keras",
        "config.json",
        "metrics.json",
        "history.csv",
        "history.json",
        "split.npz",
        "learning_curve_first_10_epochs.png",
        "learning_curve_remaining_epochs.png",
        "calibration_curve.png",
        "parity.png",
        "atom_errors.png",
        "geometry_distributions.png",
        "posterior_samples.png",
        "test_predictions.csv",
        "report.txt",
        "flags.cfg",
        "molecule.json",
        "run.json",
    ):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "logs").rglob("events.out.tfevents.*"))  # TensorBoard
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")]  # no partial left


def test_config_json_records_every_flag(quick_run, events_csv):
    """config.json holds every flag the train command defines, each with the value it ran with."""
    run_dir, _ = quick_run
    recorded = json.loads((run_dir / "config.json").read_text())
    flag_values = flags.FlagValues()
    train.define_flags(flag_values)
    flag_values(["train", f"--flagfile={REPO / 'flags' / 'quick.cfg'}", f"--data={events_csv}"])
    assert set(recorded) == set(flag_values)
    for name in recorded:
        if name not in ("output_dir", "run_name"):  # set on the quick run's command line
            expected = flag_values[name].value
            if name in ("position_columns", "momentum_columns") and not expected:
                # Empty means the molecule's columns; config.json records them resolved.
                expected = list(getattr(OCS, name))
            assert recorded[name] == expected, name
    assert recorded["hidden_dim"] == 16 and recorded["epochs"] == 3  # from the quick flagfile
    assert recorded["momentum_columns"] == list(data.MOMENTUM_COLUMNS)


def test_split_indices_partition_the_events(quick_run):
    run_dir, _ = quick_run
    saved = np.load(run_dir / "split.npz")
    together = np.concatenate([saved["train"], saved["validation"], saved["test"]])
    np.testing.assert_array_equal(np.sort(together), np.arange(600))
    # Each row's part is the hash rule's (tests/test_split.py checks the rule itself).
    parts = split.split_parts(np.arange(600), 0.7, 0.15, seed=0)
    for part, name in enumerate(split.PART_NAMES):
        np.testing.assert_array_equal(saved[name], np.flatnonzero(parts == part))


def test_report_is_printed_and_written(quick_run):
    run_dir, result = quick_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (
        metrics["num_events"]
        == metrics["test_events"]
        == len(np.load(run_dir / "split.npz")["test"])
    )
    assert metrics["data_streamed"] is False
    for key in ERROR_AND_ENERGY_METRICS:
        assert np.isfinite(metrics[key]), key
    assert "mean distance error per atom" in result.stdout
    assert "Average MRE across all coordinates" in result.stdout
    assert "learning_curve_first_10_epochs.png" in result.stdout
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["loss"]) == metrics["epochs_trained"] <= 3


def test_report_has_the_calibration_a_forecaster_reports(quick_run):
    run_dir, result = quick_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for level in ("50", "68", "90", "95"):
        assert 0 <= metrics[f"coverage_{level}"] <= 1
        assert f"truth inside the {level} % interval" in result.stdout
    for level in ("68", "95"):
        for third in (1, 2, 3):
            assert 0 <= metrics[f"coverage_{level}_spread_bin_{third}"] <= 1
    # CRPS per coordinate and its mean; never below zero, at most the mean absolute error.
    per_coordinate = [metrics[f"crps_{atom}{axis}_bohr"] for atom in "CSO" for axis in "xyz"]
    assert metrics["crps_bohr"] == pytest.approx(np.mean(per_coordinate))
    assert min(per_coordinate) > 0
    curve = metrics["calibration_curve"]
    assert len(curve["nominal"]) == len(curve["observed"]) == 20
    assert np.all(np.diff(curve["observed"]) >= 0)  # wider intervals never cover less
    assert len(metrics["spread_scale"]) == 9 and min(metrics["spread_scale"]) >= 0
    assert "calibration_curve.png" in result.stdout


def test_history_has_like_for_like_training_figures_and_the_learning_rate(quick_run):
    run_dir, _ = quick_run
    history = json.loads((run_dir / "history.json").read_text())
    for name in ("atom_error", "reconstruction", "mse"):
        assert len(history[f"train_prior_{name}"]) == len(history[f"val_{name}"])
        assert np.isfinite(history[f"train_prior_{name}"]).all()
    assert history["learning_rate"][0] == pytest.approx(1e-3)


def test_existing_run_name_is_refused(quick_run, events_csv, run_command):
    run_dir, _ = quick_run
    before = sorted(p.name for p in run_dir.iterdir())
    result = run_command(
        "train",
        "--flagfile=flags/quick.cfg",
        f"--data={events_csv}",
        f"--output_dir={run_dir.parent}",
        "--run_name=quick",
    )
    assert result.returncode == 2
    assert "already exists" in result.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == before


@pytest.mark.parametrize(
    "flag, message",
    [
        # End to end through a real process (exit code, stderr); tests/test_bad_input.py runs
        # every bad flag in-process.
        ("--hidden_dim=0", "--hidden_dim=0; expected an integer ≥ 1"),
        ("--no_such_flag=1", "no_such_flag"),
    ],
)
def test_bad_flags_exit_2_with_one_line_and_write_nothing(
    flag, message, tmp_path, events_csv, run_command
):
    result = run_command("train", f"--data={events_csv}", f"--output_dir={tmp_path / 'runs'}", flag)
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_columns_in_data_exit_2(tmp_path, events_csv, run_command):
    result = run_command(
        "train",
        f"--data={events_csv}",
        f"--output_dir={tmp_path / 'runs'}",
        "--momentum_columns=px1,py1,pz1,px2,py2,pz2,px3,py3,pz3",
    )
    assert result.returncode == 2
    assert "lacks columns ['px1'" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_normalization_is_fitted_on_the_training_split_only(quick_run, events_csv):
    run_dir, _ = quick_run
    cvae = keras.models.load_model(run_dir / "model.keras")
    train_rows = np.load(run_dir / "split.npz")["train"]
    events = event_files.load_events(events_csv)
    rotations = frames.momentum_frame(events.momenta[train_rows])  # the default frame
    in_frame = np.asarray(frames.to_frame(rotations, events.positions[train_rows])).reshape(-1, 9)
    np.testing.assert_allclose(
        np.ravel(cvae.normalize_positions.mean), in_frame.mean(axis=0), rtol=1e-5, atol=1e-6
    )
    everything = np.asarray(
        frames.to_frame(frames.momentum_frame(events.momenta), events.positions)
    )
    assert not np.allclose(
        np.ravel(cvae.normalize_positions.mean),
        everything.reshape(-1, 9).mean(axis=0),
        rtol=1e-5,
        atol=1e-6,
    )


def test_test_predictions_table_holds_truth_prediction_and_spread(quick_run, events_csv):
    run_dir, result = quick_run
    table = pd.read_csv(run_dir / "test_predictions.csv")
    columns = list(data.POSITION_COLUMNS)
    expected = [f"true_{name}" for name in columns] + columns + [f"{name}_std" for name in columns]
    assert list(table.columns) == expected
    # The true positions are the test rows of the data file, in order.
    test_rows = np.load(run_dir / "split.npz")["test"]
    np.testing.assert_array_equal(
        table[[f"true_{name}" for name in columns]].to_numpy(),
        csv_files.read_columns(events_csv, columns)[test_rows],
    )
    # The predictions are those the report measured: the same per-atom error.
    metrics = json.loads((run_dir / "metrics.json").read_text())
    true = table[[f"true_{name}" for name in columns]].to_numpy().reshape(-1, 3, 3)
    predicted = table[columns].to_numpy().reshape(-1, 3, 3)
    per_atom = np.linalg.norm(predicted - true, axis=-1).mean()
    assert per_atom == pytest.approx(metrics["per_atom_error_bohr"], rel=1e-6)
    assert (table[[f"{name}_std" for name in columns]].to_numpy() > 0).all()
    # report.txt: the data check's verdict (quick.cfg checks the data), then the test report,
    # each as printed.
    verdict, evaluation = (run_dir / "report.txt").read_text().split("\n\nEvaluation on ", 1)
    assert verdict.startswith("Data check on ") and verdict in result.stdout
    assert "mean distance error per atom" in evaluation
    assert "Evaluation on " + evaluation.strip() in result.stdout


def test_tensorboard_has_the_figures_test_metrics_and_hyperparameters(quick_run):
    run_dir, _ = quick_run
    (events_file,) = (run_dir / "logs").glob("events.out.tfevents.*")
    tags, plugins = set(), set()
    for event in tf.compat.v1.train.summary_iterator(str(events_file)):
        for value in event.summary.value:
            tags.add(value.tag)
            plugins.add(value.metadata.plugin_data.plugin_name)
    for stem in ("parity", "atom_errors", "geometry_distributions", "posterior_samples"):
        assert f"test/{stem}" in tags
    assert "test/calibration_curve" in tags and "test/per_atom_error_bohr" in tags
    assert {"images", "scalars", "hparams"} <= plugins
