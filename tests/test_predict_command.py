"""The exported SavedModel and `python -m cvae_tf.predict`."""

import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc

import keras
import numpy as np
import pandas as pd
import pytest

from cvae_tf import data, event_files, export, prediction
from cvae_tf.errors import UserInputError
from tests.conftest import REPO

GEOMETRY_AND_FLAG = ["r_co", "r_cs", "angle_ocs", "out_of_distribution"]


def momenta_csv(events_csv, tmp_path, rows=25, shuffle_columns=True):
    """A momenta-only CSV (columns in another order, an extra column) from the simulated set."""
    frame = pd.read_csv(events_csv).iloc[:rows]
    columns = list(data.MOMENTUM_COLUMNS)[::-1] if shuffle_columns else list(data.MOMENTUM_COLUMNS)
    momenta = frame[columns].assign(event_id=np.arange(rows))
    path = tmp_path / "momenta.csv"
    momenta.to_csv(path, index=False)
    return path, frame


def test_saved_model_matches_the_in_memory_model_for_the_same_latents(quick_run, events_csv):
    run_dir, _ = quick_run
    cvae = keras.models.load_model(run_dir / "model.keras")
    serving = export.load_saved_model(run_dir / export.SAVED_MODEL_DIR)
    momenta = data.to_table(event_files.load_events(events_csv).momenta[:40]).astype(np.float32)
    latent = np.random.default_rng(0).normal(size=(40, cvae.latent_dim)).astype(np.float32)
    np.testing.assert_allclose(
        serving.decode(momenta, latent).numpy(),
        cvae.decode_positions(momenta, latent).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    served = serving.serve(momenta).numpy()
    assert served.shape == (40, 9) and served.dtype == np.float32


def test_saved_model_loads_without_the_training_code(quick_run):
    run_dir, _ = quick_run
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({str(run_dir / 'saved_model')!r})\n"
        "out = m.serve(np.full((3, 9), 100.0, np.float32)).numpy()\n"
        "assert out.shape == (3, 9) and np.isfinite(out).all()\n"
        "assert not any(name.startswith('cvae_tf') for name in sys.modules)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd="/", timeout=300
    )
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_predict_writes_positions_in_input_order(quick_run, events_csv, tmp_path, run_command):
    run_dir, _ = quick_run
    input_path, frame = momenta_csv(events_csv, tmp_path)
    output = tmp_path / "positions.csv"
    result = run_command(
        "predict", f"--model_dir={run_dir}", f"--input={input_path}", f"--output={output}"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    predicted = pd.read_csv(output)
    # The input's columns as they were (momenta reversed, event_id), then the positions, then
    # the geometry and the flag.
    kept = [*list(data.MOMENTUM_COLUMNS)[::-1], "event_id"]
    assert list(predicted.columns) == [*kept, *data.POSITION_COLUMNS, *GEOMETRY_AND_FLAG]
    assert len(predicted) == 25
    # Row order: the same event predicted alone through the SavedModel's decoder at the
    # latent mean lies close to its row in the file (sampling spread is small).
    serving = export.load_saved_model(run_dir / export.SAVED_MODEL_DIR)
    cvae = keras.models.load_model(run_dir / "model.keras")
    momenta = frame[list(data.MOMENTUM_COLUMNS)].to_numpy(np.float32)
    at_mean = serving.decode(
        momenta, np.tile(cvae.latent_distribution.mean.numpy(), (25, 1))
    ).numpy()
    positions = predicted[list(data.POSITION_COLUMNS)].to_numpy()
    distances = np.linalg.norm(positions[:, None, :] - at_mean[None, :, :], axis=-1)
    np.testing.assert_array_equal(distances.argmin(axis=1), np.arange(25))


def test_predict_with_samples_writes_mean_and_spread(quick_run, events_csv, tmp_path, run_command):
    run_dir, _ = quick_run
    input_path, _ = momenta_csv(events_csv, tmp_path)
    output = tmp_path / "positions.csv"
    result = run_command(
        "predict",
        f"--model_dir={run_dir}",
        f"--input={input_path}",
        f"--output={output}",
        "--num_samples=8",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    predicted = pd.read_csv(output)
    std_columns = [f"{name}_std" for name in data.POSITION_COLUMNS]
    kept = [*list(data.MOMENTUM_COLUMNS)[::-1], "event_id"]
    assert list(predicted.columns) == [
        *kept,
        *data.POSITION_COLUMNS,
        *std_columns,
        *GEOMETRY_AND_FLAG,
    ]
    assert (predicted[std_columns].to_numpy() > 0).all()


def test_predict_refusals_exit_2_with_one_line(quick_run, events_csv, tmp_path, run_command):
    """Every refusal is tested in-process (test_bad_input.py); here, what the user sees of two."""
    run_dir, _ = quick_run
    input_path, _ = momenta_csv(events_csv, tmp_path)
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n")
    cases = [
        ([f"--model_dir={tmp_path}", f"--output={tmp_path / 'out.csv'}"], "has no run.json"),
        ([f"--model_dir={run_dir}", f"--output={existing}"], "pass --overwrite"),
    ]
    for arguments, message in cases:
        result = run_command("predict", f"--input={input_path}", *arguments)
        assert result.returncode == 2, (arguments, result.stderr[-2000:])
        assert message in result.stderr, (arguments, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    assert existing.read_text() == "keep me\n"
    assert not (tmp_path / "out.csv").exists()


def test_predict_with_a_garbled_fingerprint_keeps_stderr_clean(
    quick_run, events_csv, tmp_path, run_command
):
    """TensorFlow logged a damaged fingerprint.pb as an error with a traceback, then loaded."""
    run_dir, _ = quick_run
    model_dir = tmp_path / "run"
    shutil.copytree(run_dir, model_dir)
    fingerprint = model_dir / export.SAVED_MODEL_DIR / "fingerprint.pb"
    fingerprint.write_bytes(bytes(range(7, 256, 3)))  # no FingerprintDef protobuf
    output = tmp_path / "positions.csv"
    result = run_command(
        "predict", f"--model_dir={model_dir}", f"--input={events_csv}", f"--output={output}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    assert len(pd.read_csv(output)) == len(pd.read_csv(events_csv))


def test_predict_refuses_a_fifo_input_without_waiting(quick_run, tmp_path):
    """A named pipe as --input is refused by its kind: opening it would wait for a writer."""
    run_dir, _ = quick_run
    fifo = tmp_path / "momenta.csv"
    os.mkfifo(fifo)
    arguments = [f"--model_dir={run_dir}", f"--input={fifo}", f"--output={tmp_path / 'out.csv'}"]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "cvae_tf.predict", *arguments],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("predict waited on the FIFO for 60 s")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"error: data file '{fifo}' is a FIFO (named pipe), which would wait for a writer; "
        "expected a regular CSV file"
    ]


class _NumpyServing:
    """The SavedModel's endpoints in numpy, for memory accounting: mean = momenta, variance 1."""

    def serve(self, momenta):
        return np.asarray(momenta)

    def moments(self, momenta):
        momenta = np.asarray(momenta)
        return np.concatenate([momenta, np.ones_like(momenta)], axis=1)


def test_predict_streams_many_samples_in_bounded_memory(
    quick_run, events_csv, tmp_path, monkeypatch
):
    """300 events × 15,000 samples (4.5 million draws, ~2.5 GB held at once before streaming)
    stay under 1 GB of numpy memory: the chunks hold at most ROW_BUDGET draws."""
    run_dir, _ = quick_run
    input_path, _ = momenta_csv(events_csv, tmp_path, rows=300)
    monkeypatch.setattr(export, "load_saved_model", lambda *args, **kwargs: _NumpyServing())
    config = prediction.PredictConfig(
        model_dir=str(run_dir),
        input=str(input_path),
        output=str(tmp_path / "out.csv"),
        num_samples=15_000,
    )
    tracemalloc.start()
    try:
        written = prediction.predict_file(config)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written.num_events == 300
    assert peak_bytes < 1e9, f"peak {peak_bytes / 1e9:.2f} GB"
    predicted = pd.read_csv(tmp_path / "out.csv")
    np.testing.assert_allclose(predicted["cx_std"], 1.0)  # the variance-one stub, exactly
    assert len(predicted) == 300


def test_predict_refuses_an_output_the_disk_cannot_hold(
    quick_run, events_csv, tmp_path, monkeypatch
):
    """Refused up front with the figures, before the model loads or a byte is written."""
    run_dir, _ = quick_run
    input_path, _ = momenta_csv(events_csv, tmp_path, rows=25)
    free = shutil.disk_usage(tmp_path)._replace(free=1000)
    config = prediction.PredictConfig(
        model_dir=str(run_dir), input=str(input_path), output=str(tmp_path / "out.csv")
    )
    monkeypatch.setattr(shutil, "disk_usage", lambda path: free)
    with pytest.raises(UserInputError, match=r"25 events × 23 columns need about 0\.00 GB"):
        prediction.predict_file(config)
    assert not (tmp_path / "out.csv").exists()


def test_predict_refuses_more_samples_than_one_chunk_holds(tmp_path):
    """K draws of one event are the smallest chunk: a larger K is refused, not swapped."""
    with pytest.raises(UserInputError, match="--num_samples=1048577; expected at most 1,048,576"):
        prediction.PredictConfig(
            model_dir="m", input="i", output="o", num_samples=prediction.MAX_NUM_SAMPLES + 1
        )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_predict_stopped_by_a_signal_writes_nothing(quick_run, events_csv, tmp_path, signum):
    """A scheduler's SIGTERM (or a closed terminal's SIGHUP) mid-predict: 128+N, one line, no file.

    600 events tiled to 30,000 with 64 samples each: several chunks, seconds of work, so the
    signal arrives while the temporary output is being written.
    """
    run_dir, _ = quick_run
    frame = pd.read_csv(events_csv)[list(data.MOMENTUM_COLUMNS)]
    momenta = tmp_path / "momenta.csv"
    pd.concat([frame] * 50).to_csv(momenta, index=False)
    output = tmp_path / "out" / "positions.csv"
    output.parent.mkdir()
    flags = [f"--model_dir={run_dir}", f"--input={momenta}", f"--output={output}"]
    with open(tmp_path / "stderr", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "cvae_tf.predict", *flags, "--num_samples=64"],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        deadline = time.monotonic() + 120
        while not list(output.parent.glob(".positions.csv.*.tmp")):
            assert process.poll() is None, "predict ended before writing"
            assert time.monotonic() < deadline, "predict never started writing"
            time.sleep(0.02)
        process.send_signal(signum)
        process.wait(timeout=60)
    assert process.returncode == 128 + signum
    lines = [line for line in (tmp_path / "stderr").read_text().splitlines() if line]
    name = signal.Signals(signum).name
    assert lines[-1] == (
        f"interrupted by {name}: stopped before '{output}' was complete; no file was written"
    )
    assert not any("Traceback" in line for line in lines)
    assert list(output.parent.iterdir()) == []  # neither the file nor its temporary
