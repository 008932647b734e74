"""Training events/s of the project's default CVAE against a plain eager PyTorch loop of it.

The same simulated events (made once, handed to PyTorch in a file), the same normalization
statistics, widths, activation, loss terms, Adam learning rate and batch size
(benchmarks/torch_cvae.py). The PyTorch half runs as a subprocess of `--torch_python`, a
virtualenv with benchmarks/requirements-torch.txt, so PyTorch never enters the project's
environment. The two alternate `--rounds` times in one run, a fresh model each time; each
round's figure is the median of its epochs after a warm-up epoch (XLA compilation, PyTorch's
first allocations), and the ratio is the median of the rounds' ratios: fair on a shared machine.
PyTorch's OpenMP threads wait for each other at every operation, so on a machine whose cores
other work also uses its figure can collapse (to a tenth and below, seen here); `--threads=1`
compares the two frameworks one core each, free of that.

Run from the repository root:
  python -m benchmarks.bench_vs_torch --torch_python=/tmp/torch_venv/bin/python
"""

import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from cvae_tf import cli  # noqa: F401  (first: the commands' TensorFlow environment, as in a run)

# isort: split
import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks.timing import EpochTimer
from cvae_tf import callbacks, config, data, fit_inputs, preprocessing, simulator, training

flags.DEFINE_string(
    "torch_python", None, "Python of a virtualenv with benchmarks/requirements-torch.txt."
)
flags.DEFINE_integer(
    "num_events", 35_000, "Training events (the default set's 70 %). Default: 35000."
)
flags.DEFINE_integer(
    "epochs", 4, "Timed epochs per round and contender, after one warm-up. Default: 4."
)
flags.DEFINE_integer("rounds", 3, "Times the two contenders alternate. Default: 3.")
flags.DEFINE_integer(
    "threads",
    0,
    "Threads of each framework's operations (TensorFlow's intra-op pool, torch.set_num_threads); "
    "0 = each framework's default (every core). Default: 0.",
)
flags.mark_flag_as_required("torch_python")

TORCH_LOOP = Path(__file__).with_name("torch_cvae.py")


def project_seconds(defaults, positions, momenta, epochs: int) -> tuple[list[float], float]:
    """Each epoch's seconds of the project's training path, and the last epoch's mean loss."""
    optimization = defaults.optimization
    cvae = training.build_model(defaults, positions, momenta)
    cvae.compile(
        optimizer=keras.optimizers.Adam(optimization.learning_rate),
        steps_per_execution=optimization.steps_per_execution,
        jit_compile=optimization.jit_compile,
    )
    timer = EpochTimer()
    history = cvae.fit(
        **fit_inputs.training_inputs(momenta, positions, optimization.batch_size, defaults),
        epochs=epochs,
        callbacks=[callbacks.LatentStatisticsReset(), timer],
        verbose=0,
    )
    return timer.seconds, history.history["loss"][-1]


def torch_seconds(events_file: Path, epochs: int) -> tuple[list[float], float, str]:
    """Each epoch's seconds of the PyTorch loop, its last batch's loss, and torch's version."""
    result = subprocess.run(
        [
            flags.FLAGS.torch_python,
            str(TORCH_LOOP),
            str(events_file),
            str(epochs),
            str(flags.FLAGS.threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    return report["seconds"], report["loss"], report["torch"]


def main(argv: list[str]) -> None:
    """Prints each round's events/s of both, their medians and the median ratio."""
    del argv  # Unused.
    if flags.FLAGS.threads:  # before TensorFlow's runtime starts
        tf.config.threading.set_intra_op_parallelism_threads(flags.FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(flags.FLAGS.threads)
    defaults = config.validate(config.TrainConfig())  # resolves the molecule (OCS)
    model, optimization = defaults.model, defaults.optimization
    positions, momenta = simulator.simulate_events(
        simulator.SimulationConfig(flags.FLAGS.num_events, seed=1)
    )
    positions = data.to_table(positions).astype(np.float32)
    momenta = data.to_table(momenta).astype(np.float32)
    fragments = defaults.data.molecule.frame_fragments
    position_statistics, momentum_statistics = preprocessing.frame_statistics(
        model.frame, positions, momenta, fragments
    )
    epochs = 1 + flags.FLAGS.epochs
    print(
        f"Default CVAE ({model.hidden_dim}×2^i, {model.num_layers} layers, {model.activation}, "
        f"frame {model.frame}, prior_weight {model.prior_weight}, nll_beta {model.nll_beta}), "
        f"{len(momenta)} events, batch {optimization.batch_size}, Adam "
        f"{optimization.learning_rate}, threads {flags.FLAGS.threads or 'default'}; median of "
        f"{flags.FLAGS.epochs} epochs after a warm-up; TF_ENABLE_ONEDNN_OPTS="
        f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS')}:"
    )
    rates = {"project": [], "torch": []}
    with tempfile.TemporaryDirectory() as folder:
        events_file = Path(folder) / "events.npz"
        statistics_arrays = {
            f"{name}_{part}": value
            for name, column_statistics in (
                ("position", position_statistics),
                ("momentum", momentum_statistics),
            )
            for part, value in zip(
                ("offset", "variance"),
                column_statistics.normalization(getattr(defaults.data, f"{name}_norm")),
                strict=True,
            )
        }
        np.savez(
            events_file,
            momenta=momenta,
            positions=positions,
            fragments=np.asarray(fragments),
            **statistics_arrays,
        )
        for round_index in range(flags.FLAGS.rounds):
            ours, our_loss = project_seconds(defaults, positions, momenta, epochs)
            theirs, their_loss, torch_version = torch_seconds(events_file, epochs)
            rates["project"].append(len(momenta) / statistics.median(ours[1:]))
            rates["torch"].append(len(momenta) / statistics.median(theirs[1:]))
            print(
                f"  round {round_index + 1}: project (steps_per_execution="
                f"{optimization.steps_per_execution}, XLA {optimization.jit_compile}) "
                f"{rates['project'][-1]:>9,.0f} events/s, PyTorch {torch_version} eager "
                f"{rates['torch'][-1]:>9,.0f} events/s: "
                f"{rates['project'][-1] / rates['torch'][-1]:.2f}× (final loss {our_loss:.2f} "
                f"against {their_loss:.2f} nats)"
            )
    ratios = [ours / theirs for ours, theirs in zip(rates["project"], rates["torch"], strict=True)]
    ratio = statistics.median(ratios)
    print(
        f"  median: project {statistics.median(rates['project']):,.0f} events/s, PyTorch "
        f"{statistics.median(rates['torch']):,.0f} events/s, ratio {ratio:.2f}× "
        f"(rounds {min(ratios):.2f}–{max(ratios):.2f}×)"
    )


if __name__ == "__main__":
    app.run(main)
