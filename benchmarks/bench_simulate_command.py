"""Events per second and peak memory of `python -m cvae_tf.simulate`, by format and worker count.

Run from the repository root:

    python -m benchmarks.bench_simulate_command [--num_events=1000000] [--repeats=3]
        [--formats=csv,parquet] [--workers=1,2] [--baseline=REV]

Every combination runs once a round, round after round (so that a busy machine slows all of
them alike), and the median of the rounds is reported. `--baseline` also runs the command of
that git revision (its tree exported to a temporary folder) in the same rounds, before and
after a change, and says whether it wrote the same bytes.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from absl import app, flags

from benchmarks.revisions import REPOSITORY, digest, exported_tree
from cvae_tf import chunk_pool

flags.DEFINE_integer("num_events", 1_000_000, "Events per run. Default: 1000000.")
flags.DEFINE_integer("repeats", 3, "Rounds; the median is reported. Default: 3.")
flags.DEFINE_list("formats", ["csv"], "Output formats, csv and/or parquet. Default: csv.")
flags.DEFINE_list("workers", [], "--workers values to run. Default: 1 and every core.")
flags.DEFINE_string("baseline", "", "A git revision whose command runs too. Default: none.")

_SAMPLE_SECONDS = 0.05  # how often the process tree's memory is read


def process_tree(root: int) -> list[int]:
    """Ids of `root` and of its running descendants, from /proc."""
    children = {}
    for process in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((process / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):  # ended meanwhile
            continue
        children.setdefault(parent, []).append(int(process.name))
    tree, unvisited = [], [root]
    while unvisited:
        process = unvisited.pop()
        tree.append(process)
        unvisited.extend(children.get(process, []))
    return tree


def tree_memory_bytes(root: int) -> int:
    """Memory of a process tree: the sum of its PSS (shared pages split among their users)."""
    total = 0
    for process in process_tree(root):
        try:
            rollup = Path(f"/proc/{process}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def run_once(
    num_events: int, workers: int, output: Path, tree: Path = REPOSITORY
) -> tuple[float, float, int, int]:
    """One simulate run of the checkout `tree`: wall and CPU seconds, the tree's and the largest
    process's peak memory (bytes)."""
    command = [sys.executable, "-m", "cvae_tf.simulate", f"--num_events={num_events}"]
    command += [f"--workers={workers}", f"--output={output}", "--overwrite"]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    running = True

    def sample() -> None:
        nonlocal peak
        while running:
            peak = max(peak, tree_memory_bytes(process.pid))
            time.sleep(_SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample)
    sampler.start()
    # wait4, as /usr/bin/time does: the usage then covers the workers the command waited for,
    # and ru_maxrss is the peak of the largest process in the tree.
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    running = False
    sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} in {tree} exited with {process.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, peak, usage.ru_maxrss * 1024


def main(argv: list[str]) -> None:
    """Runs every combination round after round and prints events/s, CPU time and memory."""
    del argv  # Unused.
    settings = flags.FLAGS
    num_events, repeats = settings.num_events, settings.repeats
    worker_counts = [int(count) for count in settings.workers] or sorted(
        {1, chunk_pool.worker_count(0)}
    )
    print(f"python -m cvae_tf.simulate --num_events={num_events}, median of {repeats} runs")
    with tempfile.TemporaryDirectory() as folder:
        trees = {"this checkout": REPOSITORY}
        if settings.baseline:
            trees = {settings.baseline: exported_tree(settings.baseline, Path(folder)), **trees}
        combinations = [
            (name, file_format, workers)
            for file_format in settings.formats
            for workers in worker_counts
            for name in trees
        ]
        runs = {combination: [] for combination in combinations}
        digests, sizes = {}, {}
        for _ in range(repeats):
            for name, file_format, workers in combinations:
                output = Path(folder) / f"events.{file_format}"
                runs[name, file_format, workers].append(
                    run_once(num_events, workers, output, trees[name])
                )
                digests[name, file_format] = digest(output)
                sizes[file_format] = output.stat().st_size
    rates = {}
    for combination, results in runs.items():
        name, file_format, workers = combination
        seconds, cpu_seconds, tree_peak, process_peak = (
            statistics.median(column) for column in zip(*results, strict=True)
        )
        rates[combination] = num_events / seconds
        walls = ", ".join(f"{result[0]:.1f}" for result in results)
        print(
            f"  {name}, {file_format}, --workers={workers}: {rates[combination]:9,.0f} "
            f"events/s ({seconds:.1f} s wall; runs {walls} s; {cpu_seconds:.1f} s CPU), peak "
            f"memory of the process tree {tree_peak / 1e6:.0f} MB (PSS), of its largest "
            f"process {process_peak / 1e6:.0f} MB (RSS)"
        )
    for file_format in settings.formats:
        print(f"  {file_format} file: {sizes[file_format] / 1e6:.1f} MB")
        for workers in worker_counts:
            rate = rates["this checkout", file_format, workers]
            if settings.baseline:
                ratio = rate / rates[settings.baseline, file_format, workers]
                print(f"  {file_format}, --workers={workers}: {ratio:.2f}x the baseline's")
            if workers != 1 and 1 in worker_counts:
                ratio = rate / rates["this checkout", file_format, 1]
                print(f"  {file_format}, {workers} workers / 1 worker: {ratio:.2f}x")
        if settings.baseline:
            same = digests[settings.baseline, file_format] == digests["this checkout", file_format]
            print(f"  {file_format}: the same bytes as the baseline's: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    app.run(main)
