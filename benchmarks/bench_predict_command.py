"""Events per second of `python -m cvae_tf.predict`, end to end, from CSV and from Parquet.

Run from the repository root:

    python -m benchmarks.bench_predict_command [--num_events=1000000] [--repeats=3]
        [--formats=csv,parquet] [--num_samples=1] [--baseline=REV] [--model_dir=RUN]

Predicts the simulate command's events (positions and momenta, so the input's position columns
are kept as `<name>_input`) with a trained run (--model_dir, else the quick flagfile's model
trained on 2,000 events here), into CSV. Every combination runs once a round, round after
round, and the median is reported; `--baseline` runs that git revision's command in the same
rounds and says whether it wrote the same bytes.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

from benchmarks.revisions import REPOSITORY, digest, exported_tree

flags.DEFINE_integer("num_events", 1_000_000, "Events in the input. Default: 1000000.")
flags.DEFINE_integer("repeats", 3, "Rounds; the median is reported. Default: 3.")
flags.DEFINE_list("formats", ["csv", "parquet"], "Input formats. Default: csv,parquet.")
flags.DEFINE_integer("num_samples", 1, "predict's --num_samples. Default: 1.")
flags.DEFINE_string("baseline", "", "A git revision whose command runs too. Default: none.")
flags.DEFINE_string("model_dir", "", "A trained run folder. Default: train the quick model.")

_TRAINING_EVENTS = 2_000


def command(module: str, *arguments: str, tree: Path = REPOSITORY) -> float:
    """Runs `python -m module arguments` in checkout `tree`; its wall-clock seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if result.returncode:
        raise RuntimeError(f"{module} {' '.join(arguments)} in {tree}: {result.stderr}")
    return time.perf_counter() - started


def trained_model(folder: Path) -> Path:
    """The quick flagfile's run, trained on _TRAINING_EVENTS simulated events, in `folder`."""
    events = folder / "training.csv"
    command(
        "cvae_tf.simulate", f"--num_events={_TRAINING_EVENTS}", "--seed=5", f"--output={events}"
    )
    command(
        "cvae_tf.train",
        "--flagfile=flags/quick.cfg",
        f"--data={events}",
        f"--output_dir={folder}",
        "--run_name=quick",
    )
    return folder / "quick"


def main(argv: list[str]) -> None:
    """Runs every combination round after round and prints events/s and the same-bytes check."""
    del argv  # Unused.
    settings = flags.FLAGS
    num_events = settings.num_events
    print(
        f"python -m cvae_tf.predict of {num_events:,} events, --num_samples="
        f"{settings.num_samples}, into CSV; median of {settings.repeats} rounds"
    )
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        model_dir = Path(settings.model_dir).resolve() if settings.model_dir else None
        model_dir = model_dir or trained_model(folder)
        inputs = {}
        for file_format in settings.formats:
            inputs[file_format] = folder / f"events.{file_format}"
            command(
                "cvae_tf.simulate",
                f"--num_events={num_events}",
                "--seed=7",
                f"--output={inputs[file_format]}",
            )
        trees = {"this checkout": REPOSITORY}
        if settings.baseline:
            trees = {settings.baseline: exported_tree(settings.baseline, folder), **trees}
        combinations = [(name, form) for form in settings.formats for name in trees]
        seconds = {combination: [] for combination in combinations}
        digests = {}
        for _ in range(settings.repeats):
            for name, file_format in combinations:
                output = folder / "predicted.csv"
                seconds[name, file_format].append(
                    command(
                        "cvae_tf.predict",
                        f"--model_dir={model_dir}",
                        f"--input={inputs[file_format]}",
                        f"--output={output}",
                        f"--num_samples={settings.num_samples}",
                        "--overwrite",
                        tree=trees[name],
                    )
                )
                digests[name, file_format] = digest(output)
        size = output.stat().st_size
    rates = {}
    for (name, file_format), runs in seconds.items():
        rates[name, file_format] = num_events / statistics.median(runs)
        walls = ", ".join(f"{run:.1f}" for run in runs)
        print(
            f"  {name}, {file_format} input: {rates[name, file_format]:9,.0f} events/s "
            f"(runs {walls} s)"
        )
    print(f"  output: {size / 1e6:.1f} MB of CSV")
    if settings.baseline:
        for file_format in settings.formats:
            ratio = rates["this checkout", file_format] / rates[settings.baseline, file_format]
            same = digests["this checkout", file_format] == digests[settings.baseline, file_format]
            print(
                f"  {file_format} input: {ratio:.2f}x the baseline's; the same bytes: "
                f"{'yes' if same else 'NO'}"
            )


if __name__ == "__main__":
    app.run(main)
