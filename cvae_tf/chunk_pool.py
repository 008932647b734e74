"""Chunks of a simulation computed in order by spawned worker processes, with a progress bar."""

import collections
import concurrent.futures
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator

import numpy as np

from cvae_tf.errors import UserInputError

# Chunks submitted per worker process and not yet consumed: one running and one queued keeps every
# worker busy while results are taken in order, and bounds memory (a chunk as CSV text is ~17 MB).
_CHUNKS_PER_WORKER = 2


def worker_count(workers: int) -> int:
    """How many worker processes `workers` means: itself if ≥ 1, every core available if 0."""
    available = len(os.sched_getaffinity(0))
    is_integer = isinstance(workers, int | np.integer) and not isinstance(workers, bool)
    if not is_integer or workers < 0:
        raise UserInputError(
            f"--workers={workers!r}; expected an integer ≥ 1, or 0 for every available core "
            f"({available} here)"
        )
    return int(workers) or available


def map_chunks(
    function: Callable[[object, int, int], object],
    config,
    chunk_events: int,
    workers: int = 1,
    progress: bool = False,
) -> Iterator:
    """function(config, index, chunk_events) for every chunk index of `config.num_events`, in order.

    With workers > 1 (0: every core) the chunks are computed by that many spawned processes, so
    `function` must be importable by name (a module-level function) and a calling script needs
    the `if __name__ == "__main__":` guard. The results do not depend on `workers`. At most
    _CHUNKS_PER_WORKER results per worker are pending at once, so memory stays bounded for any
    number of events. Close the iterator if you stop early (contextlib.closing).
    """
    num_chunks = -(-config.num_events // chunk_events)
    workers = min(worker_count(workers), num_chunks)
    if workers == 1:
        results = (function(config, index, chunk_events) for index in range(num_chunks))
    else:
        results = _in_processes(function, config, chunk_events, num_chunks, workers)
    started = time.perf_counter()
    done = 0
    try:
        with contextlib.closing(results):
            for result in results:
                done = min(done + chunk_events, config.num_events)
                if progress:
                    _show_progress(done, config.num_events, time.perf_counter() - started)
                yield result
    finally:
        if progress and 0 < done < config.num_events:
            sys.stderr.write("\n")  # ends the bar's line before whatever stopped it is reported


def _in_processes(
    function: Callable[[object, int, int], object],
    config,
    chunk_events: int,
    num_chunks: int,
    workers: int,
) -> Iterator:
    """map_chunks' results computed by `workers` spawned processes, yielded in chunk order."""
    # Executor.map and Pool.imap take every chunk up front and keep each result until it is
    # consumed, so memory would grow with the events whenever writing lags; hence a bounded window
    # of futures. The executor, unlike Pool, raises BrokenProcessPool if a worker is killed (say
    # by the OOM killer) instead of waiting forever. Spawned, not forked: a caller may have
    # started threads (TensorFlow does), and forking a threaded process can deadlock the child.
    window = workers * _CHUNKS_PER_WORKER
    executor = None
    finished = False
    # The executor's queues start multiprocessing's resource tracker and the first submissions
    # the workers. The stop signals are blocked meanwhile, a mask they inherit, so one that comes
    # while they import stays pending rather than print tracebacks from them (or, SIGHUP to the
    # process group, kill the tracker); it is delivered once unblocked, inside the outer try, so
    # that the workers are ended as for any other exception.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        try:
            executor = concurrent.futures.ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
            # Starting the resource tracker unblocks SIGINT and SIGTERM rather than restore the
            # mask it found (multiprocessing.resource_tracker.ensure_running): block them again.
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            pending = collections.deque(
                executor.submit(function, config, index, chunk_events)
                for index in range(min(window, num_chunks))
            )
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for index in range(num_chunks):
            result = pending.popleft().result()
            if index + window < num_chunks:
                pending.append(executor.submit(function, config, index + window, chunk_events))
            yield result
        finished = True
    finally:
        if executor is not None:
            if not finished:
                # Any exception here or in the consumer (a signal, a failed write): stop the
                # chunks being computed too rather than wait seconds for them. SIGKILL, as the
                # workers ignore the stop signals. Python 3.14 has Executor.terminate_workers;
                # 3.11 only this table.
                processes = list(executor._processes.values())
                for process in processes:
                    process.kill()
                for process in processes:
                    process.join()
                # A worker killed halfway through sending its chunk leaves part of a message in
                # the result pipe, and the executor's reader thread would wait for the rest for
                # ever (this process holds the pipe's write end too): close that end, so the
                # reader meets end-of-file and the executor counts itself broken.
                executor._result_queue._writer.close()
            executor.shutdown(wait=True, cancel_futures=True)


# Ctrl-C, a batch system's SIGTERM, a closed terminal's SIGHUP: each may reach the whole process
# group, but only the parent decides (it ends the workers and removes its temporary file).
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _start_worker(parent: int) -> None:
    """Worker start-up: the stop signals ignored, and death with the parent however it dies."""
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)  # also drops one left pending from start-up
    # A parent killed outright (SIGKILL, the OOM killer) runs no cleanup, and an orphaned worker
    # would compute its chunks for nothing: Linux' PR_SET_PDEATHSIG has the kernel kill it then.
    # Chosen over a thread polling os.getppid(): immediate, and nothing runs in the worker; Linux
    # only, as os.sched_getaffinity above. It follows the thread that spawned the worker, here the
    # one iterating map_chunks (the executor spawns workers as chunks are submitted).
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _show_progress(done: int, total: int, elapsed: float) -> None:
    """One self-overwriting line on stderr: events done, percentage, elapsed and remaining time."""
    bar = "#" * (20 * done // total)
    line = f"\rsimulating [{bar:<20}] {done}/{total} events ({100 * done // total}%)"
    line += f", {elapsed:.1f} s"
    if done < total:
        line += f", ~{elapsed * (total - done) / done:.0f} s left"
    sys.stderr.write(line + ("\n" if done == total else ""))
    sys.stderr.flush()
