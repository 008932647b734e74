"""Training on streamed CSV shards: the split and statistics of in-memory data, a full run."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import pytest

from cvae_tf import csv_files, input_pipeline, run_folder, simulator, training
from tests.commands import call
from tests.conftest import REPO, quick_config


@pytest.fixture(scope="module")
def shard_glob(tmp_path_factory):
    """900 events in three shards; the glob that names them."""
    folder = tmp_path_factory.mktemp("shards")
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(900, seed=21))
    for index in range(3):
        part = slice(300 * index, 300 * (index + 1))
        csv_files.write_events_csv(folder / f"ocs-{index}.csv", positions[part], momenta[part])
    return str(folder / "ocs-*.csv")


@pytest.fixture(scope="module")
def memory_and_stream_runs(shard_glob, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("runs")
    scratch = tmp_path_factory.mktemp("tmp")  # the temporary folder of the streamed parts
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(scratch))
        for loading in ("memory", "stream"):
            config = quick_config(
                shard_glob, output_dir, run_name=loading, data_loading=loading, center="com"
            )
            runs[loading] = training.train(config, verbose=0)
    runs["leftovers"] = list(scratch.glob("cvae_tf_stream_*"))
    return runs


def model_config(run_dir):
    with zipfile.ZipFile(run_dir / "model.keras") as archive:
        return json.loads(archive.read("config.json"))["config"]


def test_streamed_run_sees_the_same_parts_and_statistics(memory_and_stream_runs):
    memory, stream = memory_and_stream_runs["memory"], memory_and_stream_runs["stream"]
    assert stream.metrics["data_streamed"] and not memory.metrics["data_streamed"]
    for key in ("train_events", "validation_events", "test_events", "num_events"):
        assert stream.metrics[key] == memory.metrics[key]
    assert (
        sum(stream.metrics[key] for key in ("train_events", "validation_events", "test_events"))
        == 900
    )
    # Normalization fitted on the same training part: block-by-block statistics equal the
    # whole-table ones up to round-off.
    streamed, whole = model_config(stream.run_dir), model_config(memory.run_dir)
    for name in ("position_offset", "position_variance", "momentum_offset", "momentum_variance"):
        np.testing.assert_allclose(streamed[name], whole[name], rtol=1e-10, atol=1e-12)
    # The same test events; the models differ only by the shuffling of the training batches.
    baseline = "baseline_training_mean_per_atom_error_bohr"
    assert stream.metrics[baseline] == pytest.approx(memory.metrics[baseline], rel=1e-9)
    # Three short epochs of differently ordered batches: measured 0.039 against 0.052 bohr.
    error = "per_atom_error_bohr"
    assert stream.metrics[error] == pytest.approx(memory.metrics[error], rel=0.5)
    assert stream.metrics[error] < 0.5 * stream.metrics[baseline]


def test_streamed_run_folder_is_complete_without_row_indices(memory_and_stream_runs):
    run_dir = memory_and_stream_runs["stream"].run_dir
    for name in ("saved_model/saved_model.pb", "model.keras", "metrics.json", "history.csv"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "split.npz").exists()  # the rule and the seed give every row's part
    assert memory_and_stream_runs["leftovers"] == []  # the parts' binary copies are removed
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["val_loss"]) == 3


def test_auto_streams_only_above_the_threshold(shard_glob, tmp_path, monkeypatch):
    small = input_pipeline.load(quick_config(shard_glob, tmp_path))
    assert not small.streamed
    monkeypatch.setattr(input_pipeline, "STREAM_THRESHOLD_BYTES", 1000)
    large = input_pipeline.load(quick_config(shard_glob, tmp_path))
    assert large.streamed and large.part_sizes == small.part_sizes


def test_streaming_refusals(shard_glob, tmp_path):
    common = ["--flagfile=flags/quick.cfg", f"--output_dir={tmp_path}"]
    message = call(
        "train", *common, f"--data={shard_glob}", "--data_loading=stream", "--align_positions"
    )
    assert message.startswith("--align_positions needs the data in memory")
    message = call("train", *common, f"--data={tmp_path}/none-*.csv")
    assert "matches no file; expected CSV or Parquet files" in message
    message = call("train", *common, f"--data={shard_glob}", "--shuffle_buffer=0")
    assert message == "--shuffle_buffer=0; expected an integer ≥ 1"
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_folder_a_killed_streamed_training_left_is_removed_by_the_next_one(
    events_csv, tmp_path, monkeypatch
):
    """A SIGKILL leaves the parts' folder in $TMPDIR; the next training removes it, never one
    that a live training holds (its flock), as write_csv_atomically does with its temporaries."""
    scratch, output_dir = tmp_path / "tmp", tmp_path / "runs"
    scratch.mkdir()
    flags = [f"--data={events_csv}", f"--output_dir={output_dir}", "--run_name=killed"]
    flags += ["--data_loading=stream", "--epochs=100000", "--patience=999", "--nojit_compile"]
    process = subprocess.Popen(
        [sys.executable, "-m", "cvae_tf.train", "--flagfile=flags/quick.cfg", *flags],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    backup = run_folder.partial_path(output_dir, "killed") / training.BACKUP_DIR
    try:
        deadline = time.monotonic() + 120
        while not (backup / "training_metadata.json").exists():  # an epoch into the fit
            assert process.poll() is None and time.monotonic() < deadline, "training never ran"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    (abandoned,) = scratch.glob("cvae_tf_stream_*")
    assert (abandoned / "train.f32").is_file()

    live = scratch / "cvae_tf_stream_live"  # as a training still running holds it
    live.mkdir()
    descriptor = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        monkeypatch.setattr(tempfile, "tempdir", str(scratch))
        config = quick_config(
            events_csv, output_dir, run_name="next", data_loading="stream", epochs=1
        )
        training.train(config, verbose=0)
        # The abandoned one is gone, and so is the run's own; the live one is kept.
        assert list(scratch.glob("cvae_tf_stream_*")) == [live]
    finally:
        os.close(descriptor)
