"""The exported SavedModel and `python -m cvae_tf.predict`."""

import subprocess
import sys

import keras
import numpy as np
import pandas as pd

from cvae_tf import csv_files, data, export


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
    momenta = data.to_table(csv_files.load_events(events_csv).momenta[:40]).astype(np.float32)
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
    assert list(predicted.columns) == list(data.POSITION_COLUMNS)
    assert len(predicted) == 25
    # Row order: the same event predicted alone through the SavedModel's decoder at the
    # latent mean lies close to its row in the file (sampling spread is small).
    serving = export.load_saved_model(run_dir / export.SAVED_MODEL_DIR)
    cvae = keras.models.load_model(run_dir / "model.keras")
    momenta = frame[list(data.MOMENTUM_COLUMNS)].to_numpy(np.float32)
    at_mean = serving.decode(
        momenta, np.tile(cvae.latent_distribution.mean.numpy(), (25, 1))
    ).numpy()
    distances = np.linalg.norm(predicted.to_numpy()[:, None, :] - at_mean[None, :, :], axis=-1)
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
    assert list(predicted.columns) == [*data.POSITION_COLUMNS, *std_columns]
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
