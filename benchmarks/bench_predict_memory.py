"""Peak memory (RSS) and wall time of `python -m cvae_tf.predict` on many events and samples.

Run from the repository root:
  python -m benchmarks.bench_predict_memory [--num_events=5000000] [--num_samples=100]
Trains the quick flagfile's model on 2,000 simulated events, tiles simulated momenta into a CSV of
--num_events rows, and predicts with --num_samples latent draws per event; target: ≤ 2 GB.
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

from cvae_tf import csv_files, data, simulator

flags.DEFINE_integer("num_events", 5_000_000, "Events in the momenta CSV. Default: 5000000.")
flags.DEFINE_integer("num_samples", 100, "predict's --num_samples. Default: 100.")

_TRAINING_EVENTS = 2_000
_DISTINCT_EVENTS = 50_000  # simulated once, then tiled: simulating millions would dominate
# Measured in a child of its own: RUSAGE_CHILDREN of this process would include the training.
_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)


def write_momenta(path: Path, num_events: int) -> None:
    """A momenta-only CSV of `num_events` rows: simulated events tiled, streamed to the file."""
    _, momenta = simulator.simulate_events(simulator.SimulationConfig(_DISTINCT_EVENTS, seed=3))
    table = data.to_table(momenta)

    def frames():
        for start in range(0, num_events, _DISTINCT_EVENTS):
            rows = table[: min(_DISTINCT_EVENTS, num_events - start)]
            yield csv_files.events_frame(None, rows.reshape(-1, 3, 3))

    csv_files.write_csv_atomically(path, frames())


def main(argv):
    del argv  # Unused.
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        positions, momenta = simulator.simulate_events(
            simulator.SimulationConfig(_TRAINING_EVENTS, seed=5)
        )
        csv_files.write_events_csv(folder / "events.csv", positions, momenta)
        subprocess.run(
            [sys.executable, "-m", "cvae_tf.train", "--flagfile=flags/quick.cfg",
             f"--data={folder / 'events.csv'}", f"--output_dir={folder}", "--run_name=quick"],
            check=True, capture_output=True, env=environment,
        )  # fmt: skip
        write_momenta(folder / "momenta.csv", flags.FLAGS.num_events)
        input_mb = (folder / "momenta.csv").stat().st_size / 1e6
        command = [
            sys.executable, "-m", "cvae_tf.predict", f"--model_dir={folder / 'quick'}",
            f"--input={folder / 'momenta.csv'}", f"--output={folder / 'positions.csv'}",
            f"--num_samples={flags.FLAGS.num_samples}",
        ]  # fmt: skip
        start = time.perf_counter()
        measured = subprocess.run(
            [sys.executable, "-c", _MEASURE, *command],
            capture_output=True, text=True, env=environment, check=True,
        )  # fmt: skip
        wall_s = time.perf_counter() - start
        peak_kib, code = (int(value) for value in measured.stdout.split()[-2:])
        output_mb = (folder / "positions.csv").stat().st_size / 1e6 if code == 0 else 0.0
    print(
        f"predict {flags.FLAGS.num_events:,} events × {flags.FLAGS.num_samples} samples "
        f"(input {input_mb:,.0f} MB, output {output_mb:,.0f} MB): exit {code}, peak RSS "
        f"{peak_kib / 2**20:.2f} GiB, wall {wall_s:,.1f} s"
    )
    if code:
        print(measured.stderr[-2000:], file=sys.stderr)
    return code


if __name__ == "__main__":
    app.run(main)
