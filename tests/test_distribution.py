"""tf.distribute: strategies from flags and TF_CONFIG, and real mirrored and multi-worker runs.

The runs happen in subprocesses (tests/distributed_worker.py): logical CPU devices and
MultiWorkerMirroredStrategy must be set up before TensorFlow's runtime starts, and it started in
this process long ago. They are all launched together when the module's first run test needs
them, so that their start-up overlaps.

Tolerance. With the batch kept global, a run on several replicas makes the same updates as one
device: each replica's loss is its share of the global batch's mean, the optimizer sums the
replicas' gradients, and each replica keeps its rows of the global batch's latent noise. What is
left is the order of float32 sums (gradients summed over replicas, means split in two): after
57 steps the weights differed by at most 3e-7 of their largest magnitude with a fixed-variance
decoder; the Gaussian decoder's learned variance weighs residuals by 1/σ² and Adam amplifies
the round-off of near-zero gradients: up to 1.2e-4 without and 1.5e-3 with the hybrid
objective's second decoder pass (measured). RTOL = 5e-3 of each array's largest magnitude
still catches each mistake we made or considered (measured on the mirrored run):
replicas drawing the same latent noise (weights 3.5-11% off; re-checked with the Gaussian
decoder and RTOL = 5e-3: still caught), each replica's loss a mean over
its own half rather than a share of the global batch, so the summed gradient doubles (SGD
weights 180% off; the logged loss 2×; Adam, nearly blind to a gradient's scale, 3.5e-4 off
and left to the other two),
running latent sums kept per replica (600 of 1200 events counted) or summed by keras'
assign_add (33554352). The single-device reference is compiled without XLA: under XLA
TensorFlow draws other random numbers than its own kernels do.
"""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from cvae_tf import distribution
from cvae_tf.errors import UserInputError
from tests.conftest import REPO, free_ports, wait_or_fail

WORKER = REPO / "tests" / "distributed_worker.py"
NUM_TRAIN = 1200  # distributed_worker.NUM_TRAIN
RTOL = 5e-3  # of each array's largest magnitude; see the module docstring
TIMEOUT_S = 300  # a hung collective fails the test instead of blocking CI


# Strategies, TF_CONFIG and the batch rule, driven directly.


def test_none_is_tensorflows_default_strategy():
    strategy = distribution.make_strategy("none")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_unknown_strategy_is_a_user_error():
    with pytest.raises(UserInputError, match=r"--distribution='horovod'; expected one of none"):
        distribution.make_strategy("horovod")


def _config(cluster, task_type, index):
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


WORKERS = {"worker": ["127.0.0.1:1000", "127.0.0.1:1001"]}


@pytest.mark.parametrize(
    "tf_config, problem",
    [
        (None, "is not set"),
        ("{cluster: worker}", "is not JSON"),
        (json.dumps({"cluster": WORKERS}), "needs both a 'cluster' and a 'task'"),
        (json.dumps({"task": {"type": "worker", "index": 0}}), "needs both"),
        (_config({"ps": ["h:1"], **WORKERS}, "worker", 0), "job 'ps'"),
        (_config({"worker": "h:1"}, "worker", 0), "expected ['host:port', ...]"),
        (_config({"chief": ["a:1", "b:1"], **WORKERS}, "chief", 0), "2 chiefs"),
        (_config(WORKERS, "worker", 2), "task 'worker' 2 is not in the cluster"),
        (_config(WORKERS, "chief", 0), "task 'chief' 0 is not in the cluster"),
        (json.dumps({"cluster": WORKERS, "task": {"type": "worker"}}), "task={'type'"),
    ],
)
def test_bad_tf_config_is_a_one_line_user_error(monkeypatch, tf_config, problem):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(UserInputError) as error:
        distribution.make_strategy("multi_worker")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("TF_CONFIG ") and problem in message
    assert message.endswith(f"expected JSON like {distribution.TF_CONFIG_SHAPE}")


@pytest.mark.parametrize(
    "cluster, task_type, index, chief",
    [
        (WORKERS, "worker", 0, True),  # no chief job: worker 0 is the chief
        (WORKERS, "worker", 1, False),
        ({"chief": ["127.0.0.1:999"], **WORKERS}, "chief", 0, True),
        ({"chief": ["127.0.0.1:999"], **WORKERS}, "worker", 0, False),
    ],
)
def test_chief_is_the_chief_task_else_worker_0(cluster, task_type, index, chief):
    assert distribution.is_chief(_config(cluster, task_type, index)) is chief


def test_without_tf_config_this_process_is_the_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribution.is_chief()
    assert distribution.cluster_task() is None


def test_batch_and_learning_rate_stay_global_unless_scaled():
    assert distribution.scaled_batch_and_learning_rate(256, 1e-3, 4, scale=False) == (256, 1e-3)
    # Goyal et al.: per-replica batch kept, learning rate × replicas.
    assert distribution.scaled_batch_and_learning_rate(256, 1e-3, 4, scale=True) == (1024, 4e-3)
    assert distribution.scaled_batch_and_learning_rate(256, 1e-3, 1, scale=True) == (256, 1e-3)
    with pytest.raises(UserInputError, match=r"--batch_size=2 is smaller than the 4 replicas"):
        distribution.scaled_batch_and_learning_rate(2, 1e-3, 4, scale=False)


def test_several_replicas_compile_without_xla_and_one_step_per_execution():
    one, two = (types.SimpleNamespace(num_replicas_in_sync=n) for n in (1, 2))
    assert distribution.compile_options(one, 32, True) == (32, True)
    assert distribution.compile_options(two, 32, True) == (1, False)


# Real runs, all launched at once.


def _launch(results, *args, env=None):
    """A worker process writing `results`, its output in a log beside them (a pipe could fill)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    environment.pop("TF_CONFIG", None)
    with open(results.with_suffix(".log"), "w") as log:
        return subprocess.Popen(
            [sys.executable, str(WORKER), f"--results={results}", *args],
            cwd=REPO,
            env={**environment, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _finish(process, results):
    """The results of a worker process, once it has exited 0 within the timeout."""
    wait_or_fail(process, process.args, TIMEOUT_S)
    assert process.returncode == 0, results.with_suffix(".log").read_text()[-3000:]
    return dict(np.load(results))


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Every run this module checks, started together; {name: (process, results path)}."""
    folder = tmp_path_factory.mktemp("distributed")
    scratch = folder / "tmp"  # non-chief workers' temporary folders land here
    scratch.mkdir()
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    runs = {}
    for name, args, env in [
        ("single", ["--dataset", "--sgd", "--no_xla"], None),
        ("mirrored", ["--distribution=mirrored", "--logical_cpus=2", "--dataset", "--sgd"], None),
        *(
            (
                f"worker{index}",
                ["--distribution=multi_worker", f"--run_dir={folder / 'run'}"],
                {"TF_CONFIG": _config(cluster, "worker", index), "TMPDIR": str(scratch)},
            )
            for index in range(2)
        ),
    ]:
        results = folder / f"{name}.npz"
        runs[name] = (_launch(results, *args, env=env), results)
    yield runs, folder
    for process, _ in runs.values():
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def single(launched):
    runs, _ = launched
    return _finish(*runs["single"])


def _assert_close(actual, expected, what):
    for key in expected:
        if key.startswith(what):
            scale = np.max(np.abs(expected[key]))
            np.testing.assert_allclose(actual[key], expected[key], rtol=0, atol=RTOL * scale)


def _assert_latent_statistics_are_the_encoders(results, run):
    """The latent prior after fit_latent_statistics against numpy on the encoder means."""
    encoder_means = results[f"{run}/encoder_means"].astype(np.float64)
    np.testing.assert_allclose(results[f"{run}/latent_mean"], encoder_means.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(results[f"{run}/latent_std"], encoder_means.std(axis=0), rtol=1e-4)


def test_mirrored_on_two_cpus_makes_the_single_device_updates(launched, single):
    runs, _ = launched
    mirrored = _finish(*runs["mirrored"])
    assert mirrored["num_replicas"] == 2 and single["num_replicas"] == 1
    assert tuple(mirrored["compile_options"]) == (1, False)
    for run in ("arrays", "dataset", "sgd"):
        # The running statistics counted every event of the last epoch, not one replica's half.
        assert mirrored[f"{run}/running_latent_count"] == NUM_TRAIN
        for what in ("weights", "history", "latent_mean", "latent_std"):
            _assert_close(mirrored, single, f"{run}/{what}")
        _assert_latent_statistics_are_the_encoders(mirrored, run)


def test_two_workers_train_alike_and_only_the_chief_writes(launched, single):
    runs, folder = launched
    workers = [_finish(*runs[f"worker{index}"]) for index in range(2)]
    assert workers[0]["num_replicas"] == 2
    for key in workers[0]:
        if "/weights/" in key or "/latent_" in key:
            np.testing.assert_array_equal(workers[0][key], workers[1][key])
    for what in ("weights", "history", "latent_mean", "latent_std"):
        _assert_close(workers[0], single, f"arrays/{what}")
    assert workers[0]["arrays/running_latent_count"] == NUM_TRAIN
    _assert_latent_statistics_are_the_encoders(workers[0], "arrays")
    run_dir = folder / "run"
    assert sorted(path.name for path in run_dir.iterdir()) == ["model.weights.h5", "written_by.txt"]
    assert (run_dir / "written_by.txt").read_text() == "worker 0\n"
    assert not any((folder / "tmp").iterdir())  # worker 1 removed its scratch folder


def test_multi_worker_strategy_must_come_before_tensorflow_starts(tmp_path):
    """TensorFlow refuses MultiWorkerMirroredStrategy once an operation has run."""
    (port,) = free_ports(1)
    script = (
        "import tensorflow as tf\n"
        "from cvae_tf import distribution\n"
        "tf.constant(1.0) + 1.0\n"
        "distribution.make_strategy('multi_worker')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_CONFIG": _config({"worker": [f"127.0.0.1:{port}"]}, "worker", 0),
        },
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode != 0
    assert "MultiWorkerMirroredStrategy must be created before any other TensorFlow" in (
        result.stderr
    )
    assert "Collective ops must be configured at program startup" in result.stderr
