"""SavedModel inference speed by batch size, events/s, against what its matmuls alone allow.

Exports the default CVAE (untrained, unless --model_dir names a run: speed does not depend on
the weights) as a run does (export.export_saved_model: `serve` and `moments` fused, serving.py)
and as it did before serving.py (`cvae.call` and `cvae.sample_moments`, each one TensorFlow
graph). At each batch size the contenders alternate `--rounds` times; each figure is the median
of `--repeats` calls and the reported one the median of the rounds.

The bounds: the decoder network alone (its keras model on [batch, 13] features: matmuls, bias,
activation), its matmuls alone (13 → 256 → 128 → 64 → 2×9 for the default model, no bias,
activation, frame rotation or sampling), and one 4096×4096 matmul's GFLOP/s, the machine's
matmul throughput.

--compare_xla adds `serve` XLA-compiled throughout (tf.function(jit_compile=True) on cvae.call);
--compare_bf16 adds `serve` with the decoder network in bfloat16 (oneDNN's AMX kernels where the
CPU has them) and prints how far its positions lie from float32's for the same draws (bohr):
judge that with --model_dir, a trained run.

Run from the repository root: python -m benchmarks.bench_serve [--compare_xla] [--compare_bf16]
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

from cvae_tf import config, data, export, model, serving, simulator, training

flags.DEFINE_list(
    "batch_sizes", ["1024", "8192", "65536"], "Events per call. Default: 1024,8192,65536."
)
flags.DEFINE_integer("repeats", 15, "Timed calls per figure; the median is taken. Default: 15.")
flags.DEFINE_integer("rounds", 3, "Times the contenders alternate. Default: 3.")
flags.DEFINE_bool("compare_xla", False, "Also time `serve` XLA-compiled. Default: false.")
flags.DEFINE_bool(
    "compare_bf16", False, "Also time `serve` with a bfloat16 network. Default: false."
)
flags.DEFINE_string(
    "model_dir", "", "A run folder whose model to time; empty: an untrained default model."
)


def decoder_widths(cvae) -> list[int]:
    """The decoder's matmul widths: z ‖ momenta, the hidden layers, both heads."""
    dense = [layer for layer in cvae.decoder.layers if isinstance(layer, keras.layers.Dense)]
    hidden = [layer.units for layer in dense[:-2]]
    return [cvae.latent_dim + cvae.num_features, *hidden, 2 * cvae.num_features]


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


LOADED = []  # every SavedModel loaded: an endpoint needs its object alive


def write_endpoints(cvae, path: Path, **endpoints):
    """A SavedModel of `cvae` with the given endpoints (functions of momenta), loaded back."""
    archive = keras.export.ExportArchive()
    archive.track(cvae)
    for name, function in endpoints.items():
        archive.add_endpoint(
            name=name,
            fn=function,
            input_signature=[tf.TensorSpec((None, cvae.num_features), tf.float32)],
        )
    with export._absl_verbosity(logging.WARNING):
        archive.write_out(str(path), verbose=False)
    LOADED.append(tf.saved_model.load(str(path)))
    return LOADED[-1]


def bfloat16_network(cvae):
    """The decoder network with its matmuls, bias and activation in bfloat16, its heads float32."""
    dense = [layer for layer in cvae.decoder.layers if isinstance(layer, keras.layers.Dense)]
    weights = [(tf.cast(d.kernel, tf.bfloat16), tf.cast(d.bias, tf.bfloat16)) for d in dense]

    def network(features):
        hidden = tf.cast(features, tf.bfloat16)
        for layer, (kernel, bias) in zip(dense[:-2], weights[:-2], strict=True):
            hidden = layer.activation(tf.nn.bias_add(tf.matmul(hidden, kernel), bias))
        return [
            tf.cast(tf.nn.bias_add(tf.matmul(hidden, kernel), bias), tf.float32)
            for kernel, bias in weights[-2:]
        ]

    return network


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


def bfloat16_error(cvae, folder: Path, momenta: np.ndarray) -> np.ndarray:
    """Per-atom distances (bohr) [events, n] of bfloat16 `serve` from float32's, same draws.

    Both SavedModels start from the seed generator's state at export, hence the same draws.
    """
    served = []
    for name, network in (("float32", None), ("bf16", bfloat16_network(cvae))):
        serve, _ = serving.sampling_endpoints(cvae, network)
        loaded = write_endpoints(cvae, folder / f"error_{name}", serve=serve)
        served.append(np.asarray(loaded.serve(momenta), np.float64).reshape(len(momenta), -1, 3))
    return np.linalg.norm(served[1] - served[0], axis=-1)


def main(argv: list[str]) -> None:
    """Prints events/s of each contender at each batch size, and the matmul bounds."""
    del argv  # Unused.
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(20_000, seed=1))
    positions = data.to_table(positions).astype(np.float32)
    momenta = data.to_table(momenta).astype(np.float32)
    if flags.FLAGS.model_dir:
        cvae = keras.models.load_model(Path(flags.FLAGS.model_dir) / "model.keras")
    else:
        defaults = config.validate(config.TrainConfig())  # resolves the molecule (OCS)
        cvae = training.build_model(defaults, positions, momenta)
    assert isinstance(cvae, model.CVAE)  # (importing model registers CVAE for load_model)
    widths = decoder_widths(cvae)
    flops_per_event = sum(2 * rows * columns for rows, columns in itertools.pairwise(widths))
    chain = matmul_chain(widths)
    network = tf.function(lambda features: cvae.decoder(features))  # both heads
    square = tf.constant(np.random.default_rng(1).normal(size=(4096, 4096)).astype(np.float32))
    one_matmul = tf.function(lambda matrix: tf.matmul(matrix, matrix))
    rates = {}
    with tempfile.TemporaryDirectory() as folder:
        export.export_saved_model(cvae, Path(folder) / "saved_model")
        serving_now = export.load_saved_model(Path(folder) / "saved_model")
        before = write_endpoints(
            cvae, Path(folder) / "before", serve=cvae.call, moments=cvae.sample_moments
        )
        contenders = {
            "serve": serving_now.serve,
            "serve, before": before.serve,
            "moments": serving_now.moments,
            "moments, before": before.moments,
            "decode": lambda batch: serving_now.decode(
                batch, np.zeros((len(batch), cvae.latent_dim), np.float32)
            ),
        }
        if flags.FLAGS.compare_xla:
            xla = tf.function(cvae.call, jit_compile=True, autograph=False)
            contenders["serve, XLA throughout"] = write_endpoints(
                cvae, Path(folder) / "xla", serve=xla
            ).serve
        if flags.FLAGS.compare_bf16:
            serve, _ = serving.sampling_endpoints(cvae, bfloat16_network(cvae))
            contenders["serve, bf16 network"] = write_endpoints(
                cvae, Path(folder) / "bf16", serve=serve
            ).serve
        for _ in range(flags.FLAGS.rounds):
            for batch_size in (int(size) for size in flags.FLAGS.batch_sizes):
                batch = np.resize(momenta, (batch_size, cvae.num_features))
                features = tf.constant(np.resize(momenta, (batch_size, widths[0])))
                bounds = {"network alone": network, "matmuls alone": chain}
                for name, function in {**contenders, **bounds}.items():
                    argument = features if name in bounds else batch
                    rate = batch_size / seconds_per_call(function, argument)
                    rates.setdefault((name, batch_size), []).append(rate)
            gflops = 2 * 4096**3 / seconds_per_call(one_matmul, square) / 1e9
            rates.setdefault(("4096² matmul, GFLOP/s", 0), []).append(gflops)
        if flags.FLAGS.compare_bf16:
            distances = bfloat16_error(cvae, Path(folder), momenta)
    print(
        f"{'Trained' if flags.FLAGS.model_dir else 'Default'} CVAE SavedModel, median of "
        f"{flags.FLAGS.rounds} rounds × {flags.FLAGS.repeats} calls; decoder matmuls "
        f"{'→'.join(map(str, widths))}: {flops_per_event / 1e6:.3f} MFLOP per event; "
        f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}"
    )
    for (name, batch_size), values in rates.items():
        where = f"batch {batch_size:>6}" if batch_size else "one call    "
        unit = "GFLOP/s" if not batch_size else "events/s"
        print(
            f"  {name:<22} {where}: {statistics.median(values):>11,.0f} {unit} "
            f"(rounds {min(values):,.0f}–{max(values):,.0f})"
        )
    if flags.FLAGS.compare_bf16:
        print(
            f"  bf16 network's positions against float32's, same draws, {len(momenta):,} events: "
            f"per-atom distance mean {distances.mean():.3g} bohr, 99th percentile "
            f"{np.quantile(distances, 0.99):.3g}, largest {distances.max():.3g}"
        )


if __name__ == "__main__":
    app.run(main)
