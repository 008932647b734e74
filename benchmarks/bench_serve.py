"""SavedModel inference speed by batch size, events/s, against what its matmuls alone allow.

Exports the default CVAE (untrained: speed does not depend on the weights) as a run does
(export.export_saved_model) and, with --compare_xla, a copy whose endpoints are XLA-compiled
(tf.function(jit_compile=True)). At each batch size the contenders alternate `--rounds` times;
each figure is the median of `--repeats` calls and the reported one the median of the rounds.

The bound: the decoder's matmuls alone (13 → 256 → 128 → 64 → 2×9 for the default model, no
bias, activation, frame rotation or sampling) at each batch size, and one 4096×4096 matmul's
GFLOP/s, the machine's matmul throughput.

Run from the repository root: python -m benchmarks.bench_serve [--compare_xla]
"""

import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

from cvae_tf import cli  # noqa: F401  (first: the commands' TensorFlow environment, as in a run)

# isort: split
import keras
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from cvae_tf import config, data, export, model, simulator, training

flags.DEFINE_list(
    "batch_sizes", ["1024", "8192", "65536"], "Events per call. Default: 1024,8192,65536."
)
flags.DEFINE_integer("repeats", 15, "Timed calls per figure; the median is taken. Default: 15.")
flags.DEFINE_integer("rounds", 3, "Times the contenders alternate. Default: 3.")
flags.DEFINE_bool("compare_xla", False, "Also time XLA-compiled endpoints. Default: false.")


def decoder_widths(defaults, features: int) -> list[int]:
    """The decoder's matmul widths: z ‖ momenta, the hidden layers, both heads."""
    sizes = model.hidden_layer_sizes(defaults.model.hidden_dim, defaults.model.num_layers)
    return [defaults.model.latent_dim + features, *sizes[::-1], 2 * features]


def matmul_chain(widths: list[int]):
    """A tf.function multiplying [batch, widths[0]] through random kernels of `widths`."""
    rng = np.random.default_rng(0)
    kernels = [
        tf.constant(rng.normal(size=(rows, columns)).astype(np.float32))
        for rows, columns in itertools.pairwise(widths)
    ]

    @tf.function
    def chain(features):
        for kernel in kernels:
            features = tf.matmul(features, kernel)
        return features

    return chain


def xla_export(cvae, path: Path):
    """The `serve` endpoint alone, XLA-compiled: what export_saved_model would make with XLA."""
    archive = keras.export.ExportArchive()
    archive.track(cvae)
    archive.add_endpoint(
        name="serve",
        fn=tf.function(cvae.call, jit_compile=True, autograph=False),
        input_signature=[tf.TensorSpec((None, cvae.num_features), tf.float32)],
    )
    with export._absl_verbosity(logging.WARNING):
        archive.write_out(str(path), verbose=False)
    return tf.saved_model.load(str(path))


def seconds_per_call(function, *arguments) -> float:
    """Median seconds of `repeats` calls, results fetched, after two untimed calls."""
    for _ in range(2):
        np.asarray(function(*arguments))
    durations = []
    for _ in range(flags.FLAGS.repeats):
        started = time.perf_counter()
        np.asarray(function(*arguments))
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def main(argv: list[str]) -> None:
    """Prints events/s of `serve` and `decode` at each batch size, and the matmul bound."""
    del argv  # Unused.
    defaults = config.validate(config.TrainConfig())  # resolves the molecule (OCS)
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(20_000, seed=1))
    positions = data.to_table(positions).astype(np.float32)
    momenta = data.to_table(momenta).astype(np.float32)
    cvae = training.build_model(defaults, positions, momenta)
    widths = decoder_widths(defaults, cvae.num_features)
    flops_per_event = sum(2 * rows * columns for rows, columns in itertools.pairwise(widths))
    chain = matmul_chain(widths)
    square = tf.constant(np.random.default_rng(1).normal(size=(4096, 4096)).astype(np.float32))
    one_matmul = tf.function(lambda matrix: tf.matmul(matrix, matrix))
    rates = {}
    with tempfile.TemporaryDirectory() as folder:
        export.export_saved_model(cvae, Path(folder) / "saved_model")
        serving = export.load_saved_model(Path(folder) / "saved_model")
        contenders = {
            "serve": serving.serve,
            "decode": lambda batch: serving.decode(
                batch, np.zeros((len(batch), cvae.latent_dim), np.float32)
            ),
        }
        if flags.FLAGS.compare_xla:
            with_xla = xla_export(cvae, Path(folder) / "xla")  # held: .serve needs its object
            contenders["serve, XLA"] = with_xla.serve
        for _ in range(flags.FLAGS.rounds):
            for batch_size in (int(size) for size in flags.FLAGS.batch_sizes):
                batch = np.resize(momenta, (batch_size, cvae.num_features))
                features = tf.constant(np.resize(momenta, (batch_size, widths[0])))
                for name, function in {**contenders, "matmuls alone": chain}.items():
                    argument = features if name == "matmuls alone" else batch
                    rate = batch_size / seconds_per_call(function, argument)
                    rates.setdefault((name, batch_size), []).append(rate)
            gflops = 2 * 4096**3 / seconds_per_call(one_matmul, square) / 1e9
            rates.setdefault(("4096² matmul, GFLOP/s", 0), []).append(gflops)
    print(
        f"Default CVAE SavedModel, median of {flags.FLAGS.rounds} rounds × {flags.FLAGS.repeats} "
        f"calls; decoder matmuls {'→'.join(map(str, widths))}: {flops_per_event / 1e6:.3f} "
        f"MFLOP per event; TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}"
    )
    for (name, batch_size), values in rates.items():
        where = f"batch {batch_size:>6}" if batch_size else "one call    "
        unit = "GFLOP/s" if not batch_size else "events/s"
        print(
            f"  {name:<22} {where}: {statistics.median(values):>11,.0f} {unit} "
            f"(rounds {min(values):,.0f}–{max(values):,.0f})"
        )


if __name__ == "__main__":
    app.run(main)
