"""Peak memory and training throughput of one epoch on a CSV too large to load comfortably.

Runs `python -m cvae_tf.train --data=<csv> --data_loading=stream --epochs=1` as a user would, in
a fresh process per run, and reports its peak resident memory (the whole command: statistics
pass, training, validation, evaluation, saving) and the epoch's training events/s from keras'
own epoch timing. With --compare_events it also trains on the first events of the same kind
in memory and streamed, in the same session, for the streaming overhead as a ratio.

Run from the repository root (the 5,000,000-event file, 1.3 GB, is simulated on first use into
the cache folder and reused):

  python -m benchmarks.bench_streaming [--num_events=5000000] [--repeats=3]
"""

import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from absl import app, flags

from cvae_tf import default_data

flags.DEFINE_integer("num_events", 5_000_000, "Events in the streamed CSV. Default: 5000000.")
flags.DEFINE_string("data", "", "An existing CSV to stream instead of the simulated one.")
flags.DEFINE_integer("repeats", 3, "Runs of each measurement; medians are reported. Default: 3.")
flags.DEFINE_integer(
    "compare_events",
    1_000_000,
    "Events for the in-memory vs streamed comparison (0 skips it). Default: 1000000.",
)
flags.DEFINE_integer("seed", 1, "Seed of the simulated file. Default: 1.")

# Run the peak-memory measurement in its own process: RUSAGE_CHILDREN covers every process the
# wrapper waited for, i.e. exactly one training command.
_MEASURED = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print('peak_rss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)
_EPOCH_LINE = re.compile(r"^(\d+)/\1 - (\d+)s - (\d+)ms/step", re.MULTILINE)


def simulated_csv(num_events: int, seed: int) -> Path:
    """A cached CSV of `num_events` simulated events (written once with the simulate command)."""
    path = default_data.cache_dir() / "benchmarks" / f"ocs_{num_events}_seed{seed}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"simulating {num_events} events into {path} ...", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cvae_tf.simulate",
                f"--num_events={num_events}",
                f"--seed={seed}",
                f"--output={path}",
            ],
            check=True,
        )
    return path


def first_events(source: Path, num_events: int) -> Path:
    """A CSV of the first `num_events` rows of `source`, beside it (cached)."""
    path = source.with_name(f"{source.stem}_first{num_events}.csv")
    if not path.exists():
        with open(source) as stream, open(path.with_suffix(".tmp"), "w") as out:
            for _ in range(num_events + 1):
                out.write(stream.readline())
        path.with_suffix(".tmp").rename(path)
    return path


def train_once(csv: Path, loading: str, output_dir: Path, run_name: str) -> dict:
    """One `cvae_tf.train` run of one epoch: its peak RSS (MiB) and training events/s."""
    command = [
        sys.executable, "-c", _MEASURED,
        sys.executable, "-m", "cvae_tf.train", f"--data={csv}", f"--data_loading={loading}",
        "--epochs=1", "--nocheck_data", f"--output_dir={output_dir}", f"--run_name={run_name}",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"training failed:\n{result.stderr[-3000:]}")
    steps, seconds, milliseconds_per_step = (
        int(value) for value in _EPOCH_LINE.search(result.stdout).groups()
    )
    metrics = _read_metrics(output_dir / run_name)
    # keras prints whole seconds; steps × ms/step is as coarse. Take the finer of the two.
    epoch_seconds = max(seconds, steps * milliseconds_per_step / 1000)
    peak_kib = int(re.search(r"peak_rss_kib (\d+)", result.stdout).group(1))
    return {
        "peak_rss_mib": peak_kib / 1024,
        "events_per_second": metrics["train_events"] / epoch_seconds,
        "train_events": metrics["train_events"],
    }


def _read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def main(argv: list[str]) -> None:
    """Measures and prints the figures the README quotes."""
    del argv  # Unused.
    options = flags.FLAGS
    csv = Path(options.data) if options.data else simulated_csv(options.num_events, options.seed)
    with tempfile.TemporaryDirectory() as scratch:
        output_dir = Path(scratch)
        streamed = [
            train_once(csv, "stream", output_dir, f"stream-{index}")
            for index in range(options.repeats)
        ]
        print(
            f"{csv.name}: {streamed[0]['train_events']} training events streamed, one epoch, "
            f"median of {options.repeats} runs\n"
            f"  peak resident memory  {median_of(streamed, 'peak_rss_mib'):8.0f} MiB "
            f"(max {max(run['peak_rss_mib'] for run in streamed):.0f})\n"
            f"  training throughput   {median_of(streamed, 'events_per_second'):8,.0f} events/s"
        )
        if not options.compare_events:
            return
        smaller = first_events(csv, options.compare_events)
        runs = {"memory": [], "stream": []}
        for index in range(options.repeats):  # alternated, so machine noise hits both alike
            for loading in runs:
                runs[loading].append(
                    train_once(smaller, loading, output_dir, f"{loading}-small-{index}")
                )
        memory, stream = (median_of(runs[k], "events_per_second") for k in ("memory", "stream"))
        print(
            f"{smaller.name}: {runs['memory'][0]['train_events']} training events, one epoch, "
            f"median of {options.repeats} runs\n"
            f"  in memory  {memory:8,.0f} events/s, peak "
            f"{median_of(runs['memory'], 'peak_rss_mib'):.0f} MiB\n"
            f"  streamed   {stream:8,.0f} events/s, peak "
            f"{median_of(runs['stream'], 'peak_rss_mib'):.0f} MiB\n"
            f"  streamed / in memory: {stream / memory:.2f}"
        )


if __name__ == "__main__":
    app.run(main)
