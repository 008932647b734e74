"""Runs that reproduce, survive a kill, resume, are never silently replaced, and never keep NaN."""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest

from cvae_tf import csv_files, model, prediction, run_folder, simulator, training
from cvae_tf.errors import UserInputError
from tests.commands import call
from tests.conftest import QUICK, REPO, quick_config


def weights(run_dir):
    loaded = keras.models.load_model(run_dir / "model.keras")
    assert isinstance(loaded, model.CVAE)  # the registered class, rebuilt from its config
    return loaded.get_weights()


def hidden_entries(folder):
    return [path.name for path in folder.iterdir() if path.name.startswith(".")]


@pytest.fixture(scope="module")
def twin_runs(events_csv, tmp_path_factory):
    """Two runs with the same flags and seed; the second replaces a copy of the first.

    Returns the two run folders and what the --overwrite saw at the moment of the swap: whether
    the new run was complete and the old one still untouched.
    """
    output_dir = tmp_path_factory.mktemp("twins")
    first = training.train(quick_config(events_csv, output_dir, run_name="first"), verbose=0)
    # A run with another seed in between: the twin must not depend on what the process ran
    # before it (TensorFlow's global seed once leaked from one run into the next's shuffle).
    training.train(
        quick_config(events_csv, output_dir, run_name="other", seed=3, epochs=1), verbose=0
    )
    second = output_dir / "second"
    shutil.copytree(first.run_dir, second)
    (second / "old-marker").write_text("the run being replaced\n")
    with pytest.raises(UserInputError, match="already exists; choose another --run_name or pass"):
        training.train(quick_config(events_csv, output_dir, run_name="second"), verbose=0)
    assert (second / "old-marker").exists()

    at_swap = []
    publish = run_folder.publish

    def watched_publish(work_dir, run_dir):
        at_swap.append((work_dir / run_folder.RUN_FILE).is_file())
        at_swap.append((run_dir / "old-marker").is_file())
        publish(work_dir, run_dir)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(run_folder, "publish", watched_publish)
        training.train(
            quick_config(events_csv, output_dir, run_name="second", overwrite=True), verbose=0
        )
    return first.run_dir, second, at_swap


def test_same_flags_and_seed_give_the_same_split_weights_and_metrics(twin_runs):
    first, second, _ = twin_runs
    for part in ("train", "validation", "test"):
        np.testing.assert_array_equal(
            np.load(first / "split.npz")[part], np.load(second / "split.npz")[part]
        )
    for ours, theirs in zip(weights(first), weights(second), strict=True):
        np.testing.assert_array_equal(ours, theirs)  # measured identical, not merely close
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (first, second)]
    for key, value in metrics[0].items():
        if isinstance(value, float):
            np.testing.assert_allclose(metrics[1][key], value, rtol=1e-6, err_msg=key)
        else:
            assert metrics[1][key] == value, key


def test_predictions_are_repeatable(twin_runs, events_csv, tmp_path):
    first, _, _ = twin_runs
    outputs = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for output in outputs:
        config = prediction.PredictConfig(
            model_dir=str(first), input=str(events_csv), output=str(output), num_samples=5
        )
        prediction.predict_file(config)
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    spread = pd.read_csv(outputs[0])["cx_std"]
    assert (spread > 0).all()  # the samples do differ from each other, just reproducibly


def test_overwrite_replaces_a_run_only_once_the_new_one_is_complete(twin_runs):
    _, second, at_swap = twin_runs
    assert at_swap == [True, True]  # new run complete, old one untouched, at the swap
    assert not (second / "old-marker").exists()
    assert hidden_entries(second.parent) == []  # neither the old run nor a partial is left


def test_exchange_swaps_two_folders_with_or_without_renameat2(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        (folder / "name").write_text(folder.name)
    run_folder.exchange(first, second)
    assert (first / "name").read_text() == "second" and (second / "name").read_text() == "first"

    class NoRenameat2:  # a C library without it (macOS, old glibc)
        def __init__(self, *args, **kwargs):
            pass

    monkeypatch.setattr(run_folder.ctypes, "CDLL", NoRenameat2)
    run_folder.exchange(first, second)
    assert (first / "name").read_text() == "first" and (second / "name").read_text() == "second"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first", "second"]


def test_a_partial_folder_in_use_is_never_taken_over(tmp_path):
    partial = run_folder.partial_path(tmp_path, "busy")
    with run_folder.locked_partial(partial, fresh=True):
        for fresh in (True, False):  # --overwrite, --resume
            with (
                pytest.raises(UserInputError, match="is being written by a training that is still"),
                run_folder.locked_partial(partial, fresh=fresh),
            ):
                pass
        assert partial.is_dir()
    with run_folder.locked_partial(partial, fresh=False):  # free again once released
        pass


def test_divergence_stops_with_the_epoch_and_the_likely_cause(events_csv, tmp_path):
    diverging = quick_config(
        events_csv,
        tmp_path,
        run_name="diverged",
        learning_rate=1e6,
        position_norm="none",
        momentum_norm="none",
    )
    with pytest.raises(UserInputError) as error:
        training.train(diverging, verbose=0)
    assert str(error.value) == (
        "training diverged in epoch 1: the training loss became nan; likely a --learning_rate "
        "too high (1e+06; try 100000) or unnormalized data (--position_norm=none "
        "--momentum_norm=none; try standard); no model was kept"
    )
    assert list(tmp_path.iterdir()) == []  # neither a run folder nor a partial one


def test_constant_columns_train_without_dividing_by_zero(tmp_path):
    # Molecules in the xy-plane: z of every position and momentum is exactly 0.
    positions, momenta = simulator.simulate_events(
        simulator.SimulationConfig(300, seed=3, orientation="fixed")
    )
    assert not positions[..., 2].any() and not momenta[..., 2].any()
    path = tmp_path / "planar.csv"
    csv_files.write_events_csv(path, positions, momenta)
    result = training.train(
        quick_config(
            path,
            tmp_path / "runs",
            run_name="planar",
            frame="lab",
            position_norm="standard",
            momentum_norm="minmax",
        ),
        verbose=0,
    )
    assert np.isfinite(result.metrics["per_atom_error_bohr"])
    history = json.loads((result.run_dir / "history.json").read_text())
    assert np.isfinite(history["loss"]).all()


class InterruptAt(keras.callbacks.Callback):
    """Ctrl-C as keras sees it: a KeyboardInterrupt at the start of an epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_ctrl_c_keeps_the_partial_run_for_resume_and_overwrite_restarts_it(
    events_csv, tmp_path, monkeypatch
):
    stack = training._callback_stack
    monkeypatch.setattr(
        training, "_callback_stack", lambda *args: [*stack(*args), InterruptAt(epoch=2)]
    )
    interrupted = quick_config(events_csv, tmp_path, run_name="run", epochs=10)
    with pytest.raises(KeyboardInterrupt, match="continue with --run_name=run --resume"):
        training.train(interrupted, verbose=0)
    partial = run_folder.partial_path(tmp_path, "run")
    assert os.listdir(tmp_path) == [partial.name]
    monkeypatch.setattr(training, "_callback_stack", stack)

    args = ["train", f"--data={events_csv}", f"--output_dir={tmp_path}", "--run_name=run"]
    args += [f"--{name}={value}" for name, value in QUICK.items() if not isinstance(value, bool)]
    args += ["--nojit_compile", "--nocheck_data"]
    assert call(*args) == (
        f"'{partial}' holds an unfinished run of 'run' (interrupted, or still running); pass "
        "--resume to continue it or --overwrite to start afresh"
    )
    assert call(*args, "--resume", "--hidden_dim=32") == (
        f"--resume: the unfinished run in '{partial}' was started with --hidden_dim=16, not 32; "
        "resume with the same flags (only --epochs and the evaluation flags may change) or "
        "pass --overwrite to start afresh"
    )
    other_data = tmp_path.parent / f"{tmp_path.name}-other.csv"
    pd.read_csv(events_csv).iloc[::-1].to_csv(other_data, index=False)  # the events reordered
    assert call(*args, "--resume", f"--data={other_data}").startswith(
        "--resume: the data differ from those the unfinished run"
    )
    assert os.listdir(tmp_path) == [partial.name]  # refusals keep the unfinished run

    assert call(*args, "--overwrite", "--epochs=2") is None
    assert os.listdir(tmp_path) == ["run"]
    recorded = json.loads((tmp_path / "run" / run_folder.RUN_FILE).read_text())
    assert recorded["resumed_at_epochs"] == []


def test_killed_training_leaves_nothing_predict_accepts_and_resumes(
    events_csv, quick_run, tmp_path, capsys
):
    flags = _long_training_flags(events_csv, tmp_path)
    metadata = _backup_metadata(tmp_path)
    process = _start_long_training(flags, stderr=subprocess.DEVNULL)
    try:
        _wait_for_epochs(process, metadata, 2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    completed = _completed_epochs(metadata)

    partial = run_folder.partial_path(tmp_path, "long")
    assert os.listdir(tmp_path) == [partial.name]  # no run folder under the run name
    for model_dir in (partial, tmp_path / "long"):
        message = call("predict", f"--model_dir={model_dir}", f"--input={events_csv}", "--output=x")
        assert "partial folder of an unfinished training" in message or "is not a folder" in message
    assert "pass --resume to continue it or --overwrite" in call("train", *flags)

    capsys.readouterr()
    assert call("train", *flags, "--resume", f"--epochs={completed + 2}") is None
    printed = capsys.readouterr().out
    assert f"Resuming the unfinished run at epoch {completed + 1}" in printed
    assert "Epoch 1/" not in printed and f"Epoch {completed + 1}/{completed + 2}" in printed
    run_dir = tmp_path / "long"
    assert os.listdir(tmp_path) == ["long"]
    assert json.loads((run_dir / run_folder.RUN_FILE).read_text())["resumed_at_epochs"] == [
        completed + 1
    ]
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == list(range(completed + 2))  # every epoch, once each
    assert len(json.loads((run_dir / "history.json").read_text())["loss"]) == completed + 2
    assert not (run_dir / training.BACKUP_DIR).exists()
    uninterrupted, _ = quick_run
    assert sorted(os.listdir(run_dir)) == sorted(os.listdir(uninterrupted))  # the same kind
    output = tmp_path.parent / f"{tmp_path.name}-positions.csv"
    assert (
        call("predict", f"--model_dir={run_dir}", f"--input={events_csv}", f"--output={output}")
        is None
    )


def _long_training_flags(events_csv, output_dir) -> list[str]:
    """The quick flagfile's training, run "long" into `output_dir`, without early stopping."""
    return [
        f"--flagfile={REPO / 'flags' / 'quick.cfg'}",
        f"--data={events_csv}",
        f"--output_dir={output_dir}",
        "--run_name=long",
        "--nojit_compile",
        "--nocheck_data",
        "--patience=999",
    ]


def _backup_metadata(output_dir):
    """keras BackupAndRestore's epoch record in the "long" run's partial folder."""
    partial = run_folder.partial_path(output_dir, "long")
    return partial / training.BACKUP_DIR / "training_metadata.json"


def _start_long_training(flags, **popen) -> subprocess.Popen:
    """`python -m cvae_tf.train` for (nearly) ever, in a subprocess."""
    return subprocess.Popen(
        [sys.executable, "-m", "cvae_tf.train", *flags, "--epochs=100000"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.DEVNULL,
        **popen,
    )


def _wait_for_epochs(process: subprocess.Popen, metadata, epochs: int) -> None:
    """Polls until the backup records `epochs` completed epochs (two minutes' deadline)."""
    deadline = time.monotonic() + 120
    while not _completed_epochs(metadata) >= epochs:
        assert process.poll() is None and time.monotonic() < deadline, "training never ran"
        time.sleep(0.02)


def _completed_epochs(metadata) -> int:
    try:
        return json.loads(metadata.read_text())["epoch"]
    except (OSError, ValueError):  # not written yet, or caught mid-write
        return 0


def test_sigterm_keeps_the_partial_run_says_how_to_resume_and_exits_143(events_csv, tmp_path):
    """SLURM's SIGTERM at a time limit ends training as Ctrl-C does, with the code 128 + 15."""
    partial = run_folder.partial_path(tmp_path, "long")
    metadata = _backup_metadata(tmp_path)
    process = _start_long_training(
        _long_training_flags(events_csv, tmp_path),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL),
    )
    try:
        _wait_for_epochs(process, metadata, 1)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert stderr.splitlines()[-1] == (
        f"interrupted by SIGTERM: training interrupted; its last completed epoch is kept in "
        f"'{partial}': continue with --run_name=long --resume, or restart with --overwrite"
    )
    assert "Traceback" not in stderr
    assert os.listdir(tmp_path) == [partial.name]  # no run folder under the run name
    assert _completed_epochs(metadata) >= 1  # the backup a --resume starts from


def test_a_file_size_limit_set_during_training_ends_with_one_line_and_keeps_the_partial_run(
    events_csv, tmp_path
):
    """h5py, failing inside keras' first epoch checkpoint, flooded stderr and crashed (SIGSEGV)."""
    partial = run_folder.partial_path(tmp_path, "long")
    process = _start_long_training(
        _long_training_flags(events_csv, tmp_path), stderr=subprocess.PIPE, text=True
    )
    try:
        # CSVLogger opens history.csv when fit begins: the first checkpoint is still to come.
        deadline = time.monotonic() + 120
        while not (partial / training.HISTORY_FILE).exists():
            assert process.poll() is None and time.monotonic() < deadline, "training never ran"
            time.sleep(0.01)
        # A real ulimit -f, set on the running training: below its checkpoint (89 kB), above
        # its history and TensorBoard files (a few kB).
        _, hard = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (50_000, hard))
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 2, stderr[-3000:]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[0].startswith(f"error: cannot write '{partial / training.BACKUP_DIR}"), lines
    assert "above the file-size limit (ulimit -f) of 0.05 MB" in lines[0]
    assert lines[0].endswith(
        f"the run so far is kept in '{partial}': once the fault is fixed, continue with "
        "--run_name=long --resume, or restart with --overwrite"
    )
    assert os.listdir(tmp_path) == [partial.name]  # no run folder under the run name
    assert (partial / run_folder.RESUME_FILE).is_file()  # what a --resume checks


class LimitFileSizeAtTrainEnd(keras.callbacks.Callback):
    """Sets a real ulimit -f (RLIMIT_FSIZE's soft limit) on this process when fit ends."""

    def __init__(self, limit_bytes):
        super().__init__()
        self.limit_bytes = limit_bytes

    def on_train_end(self, logs=None):
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit_bytes, hard))


def test_a_savedmodel_write_tensorflow_fails_is_one_line_and_keeps_the_partial_run(
    events_csv, tmp_path, monkeypatch
):
    """TensorFlow's own write failed as a traceback (OutOfRangeError: File too large)."""
    stack = training._callback_stack
    # 120 kB: room for the calibration curve (42 kB) and model.keras (90 kB), not for the
    # SavedModel's graph, saved_model.pb (190 kB), which TensorFlow writes itself.
    monkeypatch.setattr(
        training,
        "_callback_stack",
        lambda *args: [*stack(*args), LimitFileSizeAtTrainEnd(120_000)],
    )
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        with pytest.raises(UserInputError) as error:
            training.train(quick_config(events_csv, tmp_path, run_name="run", epochs=2), verbose=0)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    partial = run_folder.partial_path(tmp_path, "run")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write '{partial}") and "(ulimit -f) was reached" in message
    assert "continue with --run_name=run --resume" in message
    assert os.listdir(tmp_path) == [partial.name]
    assert (partial / training.BACKUP_DIR / "latest.weights.h5").is_file()
