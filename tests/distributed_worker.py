"""Trains a tiny CVAE under one tf.distribute strategy in a fresh process; saves what it learned.

Run by tests/test_distribution.py as `PYTHONPATH=. python tests/distributed_worker.py
--results=out.npz ...`, in a process of its own because logical devices and
MultiWorkerMirroredStrategy must be set up before TensorFlow's runtime starts, which the test
process did long ago. The model is compiled as training.py compiles it (Adam,
steps_per_execution=32, jit_compile=True, as far as `distribution.compile_options` allows under
the strategy) and trained on numpy arrays; with --dataset once more on a batched
tf.data.Dataset, with --sgd once more with plain SGD (which, unlike Adam, shows any error in the
scale of the replicas' summed gradients).
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cvae_tf import callbacks, distribution, simulator  # importing does not start TF's runtime
from tests.models import build_cvae

NUM_EVENTS = 1500
NUM_TRAIN = 1200
BATCH_SIZE = 64  # global: 19 steps an epoch, the last one of 48 events
EPOCHS = 3
ARCHITECTURE = dict(
    hidden_dim=8,
    num_layers=2,
    latent_dim=2,
    beta=0.5,
    l1=1e-4,
    l2=1e-3,
    seed=7,
    prior_weight=0.5,
    latent_prior="encoder_means",
)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--distribution", default="none")
    parser.add_argument("--logical_cpus", type=int, default=1, help="CPU devices to split into")
    parser.add_argument("--results", required=True, help=".npz file for this process's results")
    parser.add_argument("--run_dir", help="the run folder; only the chief writes into it")
    parser.add_argument("--dataset", action="store_true", help="also train on a tf.data.Dataset")
    parser.add_argument("--sgd", action="store_true", help="also train with plain SGD")
    parser.add_argument(
        "--no_xla",
        action="store_true",
        help="compile without XLA even on one device (XLA draws other random numbers)",
    )
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    if args.logical_cpus > 1:  # before anything starts TensorFlow's runtime
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus
        )
    strategy = distribution.make_strategy(args.distribution)  # before any other TF work
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(NUM_EVENTS, seed=3))
    positions = positions.reshape(-1, 9).astype(np.float32)
    momenta = momenta.reshape(-1, 9).astype(np.float32)
    train, validation = slice(0, NUM_TRAIN), slice(NUM_TRAIN, None)
    steps_per_execution, jit_compile = distribution.compile_options(strategy, 32, not args.no_xla)

    results = {
        "num_replicas": strategy.num_replicas_in_sync,
        "compile_options": (steps_per_execution, jit_compile),
    }
    runs = {"arrays": ((momenta[train], positions[train]), "adam")}
    if args.dataset:
        batches = tf.data.Dataset.from_tensor_slices((momenta[train], positions[train]))
        runs["dataset"] = ((batches.batch(BATCH_SIZE), None), "adam")
    if args.sgd:
        runs["sgd"] = ((momenta[train], positions[train]), "sgd")
    for name, (data, optimizer) in runs.items():
        with strategy.scope():
            cvae = build_and_compile(
                positions[train], momenta[train], optimizer, steps_per_execution, jit_compile
            )
        history = cvae.fit(
            *data,
            batch_size=None if data[1] is None else BATCH_SIZE,
            epochs=EPOCHS,
            validation_data=(momenta[validation], positions[validation]),
            callbacks=[callbacks.LatentStatisticsReset()],
            verbose=0,
        )
        results.update(describe(name, cvae, history, momenta[train], positions[train]))
    np.savez(args.results, **results)
    if args.run_dir:
        write_run_folder(cvae, args.run_dir)


def build_and_compile(train_positions, train_momenta, optimizer, steps_per_execution, jit_compile):
    """A seeded CVAE compiled as training.py compiles it (call inside the strategy's scope)."""
    keras.utils.set_random_seed(0)
    cvae = build_cvae(train_positions, train_momenta, "standard", "standard", **ARCHITECTURE)
    cvae.compile(
        optimizer=keras.optimizers.Adam(3e-3)
        if optimizer == "adam"
        else keras.optimizers.SGD(0.05),
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return cvae


def describe(name, cvae, history, momenta, positions):
    """Weights, history and latent statistics of a fitted model, keyed `name/...`."""
    results = {f"{name}/history/{key}": values for key, values in history.history.items()}
    statistics = cvae.latent_distribution
    results[f"{name}/running_latent_count"] = statistics.count.numpy()  # events of last epoch
    cvae.fit_latent_statistics(momenta, positions, batch_size=500)  # cross-replica, after fit
    results[f"{name}/latent_mean"] = statistics.mean.numpy()
    results[f"{name}/latent_std"] = statistics.std.numpy()
    encoder_means, _ = cvae.encode(
        cvae.normalize_positions(positions), cvae.normalize_momenta(momenta)
    )
    results[f"{name}/encoder_means"] = np.asarray(encoder_means)
    for index, weight in enumerate(cvae.trainable_weights):
        results[f"{name}/weights/{index}"] = weight.numpy()
    return results


def write_run_folder(cvae, run_dir):
    """The chief saves the model into the run folder; other workers into scratch, then drop it.

    A non-chief worker writes into a temporary folder of its own and deletes it, as
    TensorFlow's multi-worker guide does with `write_filepath`.
    """
    _, task_type, index = distribution.cluster_task()
    if distribution.is_chief():
        target = Path(run_dir)
    else:
        target = Path(tempfile.mkdtemp(prefix=f"cvae_tf_{task_type}_{index}_"))
    target.mkdir(parents=True, exist_ok=True)
    cvae.save_weights(target / "model.weights.h5")
    (target / "written_by.txt").write_text(f"{task_type} {index}\n")
    if not distribution.is_chief():
        shutil.rmtree(target)


if __name__ == "__main__":
    main(sys.argv[1:])
