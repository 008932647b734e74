"""Chunks of a simulation computed in order by spawned worker processes, with a progress bar."""

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator

import numpy as np

from cvae_tf.errors import UserInputError

# Chunks submitted per worker process and not yet consumed: one running and one queued keeps every
# worker busy while results are taken in order, and bounds memory (a chunk as CSV text is ~17 MB).
_CHUNKS_PER_WORKER = 2


def worker_count(workers: int) -> int:
    """How many worker processes `workers` means: itself if ≥ 1, every core available if 0."""
    available = available_cores()
    is_integer = isinstance(workers, int | np.integer) and not isinstance(workers, bool)
    if not is_integer or workers < 0:
        raise UserInputError(
            f"--workers={workers!r}; expected an integer ≥ 1, or 0 for every available core "
            f"({available} here)"
        )
    return int(workers) or available


def available_cores() -> int:
    """The cores this process may run on: its affinity mask where the system has one, else all."""
    # Python 3.13's os.process_cpu_count is this very rule; sched_getaffinity is Linux' (and some
    # BSDs'), and elsewhere (macOS, Windows) every core counts.
    if hasattr(os, "process_cpu_count"):
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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
    # consumed, so memory would grow with the events whenever writing lags; and neither can end
    # its workers at once through public means (ProcessPoolExecutor.terminate_workers is Python
    # 3.14's, and a worker killed mid-message hangs the executor's reader) nor notices, as Pool,
    # a worker the OOM killer took. Hence our own processes: chunk i goes to worker i % workers
    # through its task pipe and comes back through its result pipe, of which this process keeps
    # only the reading end, so a dead worker's pipe reads as end-of-file. Spawned, not forked: a
    # caller may have started threads (TensorFlow does), and forking a threaded process can
    # deadlock the child.
    window = workers * _CHUNKS_PER_WORKER
    context = multiprocessing.get_context("spawn")
    processes, tasks, results = [], [], []
    finished = False
    try:
        with _stop_signals_blocked():
            for _ in range(workers):
                task_reader, task_writer = context.Pipe(duplex=False)
                result_reader, result_writer = context.Pipe(duplex=False)
                process = context.Process(
                    target=_work,
                    args=(function, config, chunk_events, task_reader, result_writer, os.getpid()),
                    daemon=True,  # ended by multiprocessing at exit if all else failed
                )
                processes.append(process)
                process.start()
                task_reader.close()
                result_writer.close()
                tasks.append(task_writer)
                results.append(result_reader)
        for index in range(min(window, num_chunks)):
            tasks[index % workers].send(index)
        for index in range(num_chunks):
            result = _receive(results[index % workers], index)
            if index + window < num_chunks:
                tasks[(index + window) % workers].send(index + window)
            yield result
        for task_writer in tasks:
            task_writer.send(None)  # no more chunks: the worker returns
        finished = True
    finally:
        for process in processes:
            # Any exception here or in the consumer (a signal, a failed write): stop the chunks
            # being computed too rather than wait seconds for them. Process.kill is SIGKILL
            # (TerminateProcess on Windows), as the workers ignore the stop signals.
            if not finished and process.pid is not None:
                process.kill()
        for process in processes:
            if process.pid is not None:
                process.join()
        for connection in tasks + results:
            connection.close()


def _receive(results, index: int):
    """Chunk `index`'s result from its worker's pipe; the worker's exception raised here."""
    try:
        succeeded, value, remote_traceback = results.recv()
    except EOFError:
        raise ChildProcessError(
            f"the worker process computing chunk {index} ended without its result (killed, "
            "perhaps by the out-of-memory killer)"
        ) from None
    if not succeeded:
        value.add_note(remote_traceback)  # where in the worker it was raised, as the executor
        raise value
    return value


@contextlib.contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """The stop signals blocked while the workers start, then delivered (POSIX; else nothing).

    The workers inherit the mask, so a signal that comes while they import stays pending rather
    than print tracebacks from them (or, SIGHUP to the process group, kill multiprocessing's
    resource tracker); it is delivered once unblocked, inside the caller's try, so that the
    workers are ended as for any other exception.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no masks, and no process groups
        yield
        return
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        # Starting the resource tracker, which a spawned process needs, unblocks SIGINT and
        # SIGTERM rather than restore the mask it found (resource_tracker.ensure_running): start
        # it first, then block them again before any worker is spawned.
        from multiprocessing import resource_tracker  # POSIX's; imported here as only used here

        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


# Ctrl-C, a batch system's SIGTERM, a closed terminal's SIGHUP (not on Windows): each may reach
# the whole process group, but only the parent decides (it ends the workers and removes its
# temporary file).
_STOP_SIGNALS = {
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
}
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _work(function, config, chunk_events: int, tasks, results, parent: int) -> None:
    """A worker: the chunks its task pipe names, computed in turn, each sent back or its error."""
    _start_worker(parent)
    while True:
        try:
            index = tasks.recv()
        except EOFError:  # the parent is gone (killed where PR_SET_PDEATHSIG does not exist)
            return
        if index is None:
            return
        try:
            outcome = (True, function(config, index, chunk_events), "")
        except Exception as error:
            outcome = (False, error, traceback.format_exc())
        results.send(outcome)


def _start_worker(parent: int) -> None:
    """Worker start-up: the stop signals ignored, and death with the parent however it dies."""
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)  # also drops one left pending from start-up
    # A parent killed outright (SIGKILL, the OOM killer) runs no cleanup, and an orphaned worker
    # would compute its chunks for nothing: Linux' PR_SET_PDEATHSIG has the kernel kill it then.
    # Chosen over a thread polling os.getppid(): immediate, and nothing runs in the worker. It
    # follows the thread that spawned the worker, here the one iterating map_chunks. Elsewhere an
    # orphan ends at its next chunk, when its task pipe reads as end-of-file.
    if not sys.platform.startswith("linux"):
        return
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
