"""Events per second and peak memory of `python -m cvae_tf.simulate`, one worker against all cores.

Run from the repository root: python -m benchmarks.bench_simulate_command [--num_events=1000000]
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

from cvae_tf import chunk_pool

flags.DEFINE_integer("num_events", 1_000_000, "Events per run. Default: 1000000.")
flags.DEFINE_integer("repeats", 3, "Runs per worker count; the median is reported. Default: 3.")

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


def run_once(num_events: int, workers: int, output: Path) -> tuple[float, float, int, int]:
    """One simulate run: wall seconds, CPU seconds, the tree's and the largest process's peaks."""
    command = [sys.executable, "-m", "cvae_tf.simulate", f"--num_events={num_events}"]
    command += [f"--workers={workers}", f"--output={output}", "--overwrite"]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, peak, usage.ru_maxrss * 1024


def main(argv: list[str]) -> None:
    """Runs the command with 1 worker and with every core, and prints events/s and memory."""
    del argv  # Unused.
    num_events, repeats = flags.FLAGS.num_events, flags.FLAGS.repeats
    worker_counts = sorted({1, chunk_pool.worker_count(0)})
    print(f"python -m cvae_tf.simulate --num_events={num_events}, median of {repeats} runs")
    runs = {workers: [] for workers in worker_counts}
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "events.csv"
        for _ in range(repeats):  # interleaved, so that both counts see the same machine load
            for workers in worker_counts:
                runs[workers].append(run_once(num_events, workers, output))
        file_megabytes = output.stat().st_size / 1e6
    rates = {}
    for workers, results in runs.items():
        seconds, cpu_seconds, tree_peak, process_peak = (
            statistics.median(column) for column in zip(*results, strict=True)
        )
        rates[workers] = num_events / seconds
        print(
            f"  --workers={workers}: {rates[workers]:9,.0f} events/s ({seconds:.1f} s wall, "
            f"{cpu_seconds:.1f} s CPU), peak memory of the process tree {tree_peak / 1e6:.0f} MB "
            f"(PSS), of its largest process {process_peak / 1e6:.0f} MB (RSS)"
        )
    print(f"  {worker_counts[-1]} workers / 1 worker: {rates[worker_counts[-1]] / rates[1]:.2f}x")
    print(f"  file: {file_megabytes:.0f} MB")


if __name__ == "__main__":
    app.run(main)
