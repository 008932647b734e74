"""Training throughput and SavedModel inference speed of the default CVAE, events/s.

Compares keras' per-batch execution (steps_per_execution=1, no XLA) with the defaults
(steps_per_execution=32, XLA) in one run, so the ratio is fair on a shared machine.

Run from the repository root: python -m benchmarks.bench_training [--num_events=35000]
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

from cvae_tf import cli  # noqa: F401  (first: the commands' TensorFlow environment, as in a run)

# isort: split
import keras
import numpy as np
from absl import app, flags

from benchmarks.timing import EpochTimer
from cvae_tf import callbacks, config, data, export, simulator, training

flags.DEFINE_integer(
    "num_events", 35_000, "Training events (the default set's 70 %). Default: 35000."
)
flags.DEFINE_integer("epochs", 5, "Timed epochs per setting, after one warm-up epoch. Default: 5.")
flags.DEFINE_integer("repeats", 7, "Timed SavedModel calls; the median is reported. Default: 7.")
flags.DEFINE_integer("inference_batch", 8192, "Events per SavedModel call. Default: 8192.")


def training_speed(defaults, positions, momenta, steps_per_execution, jit_compile) -> float:
    """Median events/s of training epochs (after a warm-up epoch that compiles)."""
    cvae = training.build_model(defaults, positions, momenta)
    cvae.compile(
        optimizer=keras.optimizers.Adam(defaults.optimization.learning_rate),
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    timer = EpochTimer()
    cvae.fit(
        momenta,
        positions,
        batch_size=defaults.optimization.batch_size,
        epochs=1 + flags.FLAGS.epochs,
        callbacks=[callbacks.LatentStatisticsReset(), timer],
        verbose=0,
    )
    return len(momenta) / statistics.median(timer.seconds[1:])


def inference_speed(defaults, positions, momenta) -> float:
    """Median events/s of the exported SavedModel's `serve` at the inference batch size."""
    cvae = training.build_model(defaults, positions, momenta)
    batch = np.resize(momenta, (flags.FLAGS.inference_batch, 9))
    with tempfile.TemporaryDirectory() as folder:
        export.export_saved_model(cvae, Path(folder) / "saved_model")
        serving = export.load_saved_model(Path(folder) / "saved_model")
        serving.serve(batch)  # trace and warm up
        durations = []
        for _ in range(flags.FLAGS.repeats):
            started = time.perf_counter()
            serving.serve(batch).numpy()
            durations.append(time.perf_counter() - started)
    return len(batch) / statistics.median(durations)


def main(argv: list[str]) -> None:
    """Prints events/s for both execution settings and for SavedModel inference."""
    del argv  # Unused.
    defaults = config.validate(config.TrainConfig())  # resolves the molecule (OCS)
    optimization = defaults.optimization
    positions, momenta = simulator.simulate_events(
        simulator.SimulationConfig(flags.FLAGS.num_events, seed=1)
    )
    positions = data.to_table(positions).astype(np.float32)
    momenta = data.to_table(momenta).astype(np.float32)
    print(
        f"Default CVAE ({defaults.model.hidden_dim}×2^i, {defaults.model.num_layers} layers, "
        f"frame {defaults.model.frame}), {len(momenta)} events, batch "
        f"{defaults.optimization.batch_size}, TF_ENABLE_ONEDNN_OPTS="
        f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS')}:"
    )
    before = training_speed(defaults, positions, momenta, 1, False)
    print(f"  training, keras per-batch (steps_per_execution=1, no XLA): {before:>9,.0f} events/s")
    after = training_speed(
        defaults, positions, momenta, optimization.steps_per_execution, optimization.jit_compile
    )
    print(
        f"  training, defaults (steps_per_execution={optimization.steps_per_execution}, XLA):"
        f"       {after:>9,.0f} events/s  ({after / before:.2f}×)"
    )
    served = inference_speed(defaults, positions, momenta)
    print(f"  SavedModel serve, batch {flags.FLAGS.inference_batch}:  {served:>9,.0f} events/s")


if __name__ == "__main__":
    app.run(main)
