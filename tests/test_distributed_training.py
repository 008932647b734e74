"""`python -m cvae_tf.train --distribution=...` end to end: run folders and single-device results.

The distributed runs are subprocesses started together (two logical CPU devices must be set up,
and MultiWorkerMirroredStrategy created, before TensorFlow's runtime starts, long past in this
process); their single-device references train in this process. tests/test_distribution.py
checks the model's distributed step itself.
"""

import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

from cvae_tf import model, training
from tests.conftest import QUICK, REPO, free_ports, quick_config, wait_or_fail

TIMEOUT_S = 300
# Same data, seed, global batch and learning rate: the replicas' summed gradients are the
# single-device ones up to float32 summation order, which the decoder's learned variance
# amplifies (measured up to ~1e-4 of each array's scale; see tests/test_distribution.py).
TOLERANCE = 1e-3


def _train_command(events_csv, output_dir, run_name, *extra):
    args = [f"--{name}={value}" for name, value in QUICK.items() if not isinstance(value, bool)]
    args += ["--nojit_compile", "--nocheck_data", "--steps_per_execution=1"]
    return [
        *args,
        f"--data={events_csv}",
        f"--output_dir={output_dir}",
        f"--run_name={run_name}",
        *extra,
    ]


def _launch(folder, name, command, env=None):
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    environment.pop("TF_CONFIG", None)
    with open(folder / f"{name}.log", "w") as log:  # a pipe could fill and block the process
        return subprocess.Popen(
            command, cwd=REPO, env={**environment, **(env or {})}, stdout=log, stderr=log
        )


def _finish(process, folder, name):
    wait_or_fail(process, name, TIMEOUT_S)
    log = (folder / f"{name}.log").read_text()
    assert process.returncode == 0, log[-3000:]
    return log


@pytest.fixture(scope="module")
def runs(events_csv, tmp_path_factory):
    """Mirrored on two logical CPUs (data in memory) and two workers (data streamed)."""
    folder = tmp_path_factory.mktemp("distributed")
    mirrored = _launch(
        folder,
        "mirrored",
        [
            sys.executable,
            str(REPO / "tests" / "with_logical_cpus.py"),
            "2",
            "train",
            *_train_command(events_csv, folder / "mirrored_runs", "run", "--distribution=mirrored"),
        ],
    )
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [
        _launch(
            folder,
            f"worker{index}",
            [
                sys.executable,
                "-m",
                "cvae_tf.train",
                *_train_command(
                    events_csv,
                    folder / "worker_runs",
                    "run",
                    "--distribution=multi_worker",
                    "--data_loading=stream",
                ),
            ],
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                )
            },
        )
        for index in range(2)
    ]
    logs = {"mirrored": _finish(mirrored, folder, "mirrored")}
    for index, process in enumerate(workers):
        logs[f"worker{index}"] = _finish(process, folder, f"worker{index}")
    return folder, logs


def _single_device(events_csv, tmp_path_factory, **changes):
    output_dir = tmp_path_factory.mktemp("single")
    config = quick_config(events_csv, output_dir, run_name="run", steps_per_execution=1, **changes)
    return training.train(config, verbose=0).run_dir


def _weights(run_dir):
    loaded = keras.models.load_model(run_dir / "model.keras")
    assert isinstance(loaded, model.CVAE)  # the registered class, rebuilt from its config
    return loaded.get_weights()


def _assert_close(run_dir, reference_dir):
    for actual, expected in zip(_weights(run_dir), _weights(reference_dir), strict=True):
        scale = max(np.max(np.abs(expected)), 1e-6)
        np.testing.assert_allclose(actual, expected, rtol=0, atol=TOLERANCE * scale)
    history = json.loads((run_dir / "history.json").read_text())
    expected = json.loads((reference_dir / "history.json").read_text())
    for key in ("loss", "val_loss", "reconstruction"):
        np.testing.assert_allclose(history[key], expected[key], rtol=TOLERANCE)


def test_mirrored_run_on_two_devices_matches_one_device(runs, events_csv, tmp_path_factory):
    folder, logs = runs
    run_dir = folder / "mirrored_runs" / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["global_batch_size"] == QUICK["batch_size"]
    assert (run_dir / "saved_model" / "saved_model.pb").is_file()
    assert "Run saved in" in logs["mirrored"]
    _assert_close(run_dir, _single_device(events_csv, tmp_path_factory))


def test_two_workers_train_alike_and_only_the_chief_writes(runs, events_csv, tmp_path_factory):
    folder, logs = runs
    output_dir = folder / "worker_runs"
    # One run folder, the chief's; the other worker's hidden folder is gone.
    assert [path.name for path in output_dir.iterdir()] == ["run"]
    run_dir = output_dir / "run"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["data_streamed"]
    assert "Run saved in" in logs["worker0"]
    assert "the chief evaluates and writes the run folder" in logs["worker1"]
    with zipfile.ZipFile(run_dir / "model.keras") as archive:
        assert json.loads(archive.read("config.json"))["config"]["hidden_dim"] == 16
    _assert_close(run_dir, _single_device(events_csv, tmp_path_factory, data_loading="stream"))


def test_multi_worker_without_tf_config_is_refused(tmp_path, events_csv, run_command):
    # Refused before any work, in one line, rather than training alone as one worker.
    result = run_command(
        "train", *_train_command(events_csv, tmp_path, "run", "--distribution=multi_worker")
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: --distribution=multi_worker needs the TF_CONFIG")
    assert list(tmp_path.iterdir()) == []
