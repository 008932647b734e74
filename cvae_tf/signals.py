"""Stop signals as exceptions: SIGTERM and SIGHUP unwind the stack and clean up as Ctrl-C does."""

import signal

# What a batch system (SLURM at a time limit), `kill` or a closed terminal sends (Windows has no
# SIGHUP); SIGINT, Ctrl-C, already raises KeyboardInterrupt through Python's own handler.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Stopped(KeyboardInterrupt):
    """A stop asked by signal `signum`: every Ctrl-C cleanup runs, then the command exits 128+N.

    A KeyboardInterrupt subclass so that the code that already cleans up after Ctrl-C (temporary
    files removed, worker processes ended, a training's partial folder kept) needs no new branch.
    """

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message)
        self.signum = signum


def signal_number(interrupt: KeyboardInterrupt) -> int:
    """The signal that raised `interrupt`: its own for a Stopped, SIGINT for a plain Ctrl-C."""
    return getattr(interrupt, "signum", signal.SIGINT)


def interruption(error: BaseException) -> KeyboardInterrupt | None:
    """The stop behind `error`: itself if a KeyboardInterrupt, else one it was raised handling.

    A stop unwinds the stack through libraries' clean-ups, and one may fail on the way (e.g.
    TensorFlow's graph-building context asserting its stack when a signal lands mid-trace); the
    failure replaces the KeyboardInterrupt but keeps it as its __context__.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def reworded(interrupt: KeyboardInterrupt, message: str) -> Stopped:
    """The same stop, by the same signal, saying `message` (what was kept, how to go on)."""
    return Stopped(signal_number(interrupt), message)


def describe(interrupt: KeyboardInterrupt) -> str:
    """The stop's one stderr line: which signal, then what was kept if the code said so."""
    signum = signal_number(interrupt)
    if signum == signal.SIGINT:
        return f"interrupted: {str(interrupt) or 'stopped by the user'}"
    return f"interrupted by {signal.Signals(signum).name}: {str(interrupt) or 'stopped'}"


def raise_on_stop_signals() -> None:
    """Makes SIGTERM and SIGHUP raise Stopped in the main thread, unless they are ignored.

    A signal the caller set to be ignored stays ignored (`nohup` ignores SIGHUP), as Python
    itself leaves SIGINT alone when it starts with SIGINT ignored.
    """
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, _raise_stopped)


def _raise_stopped(signum: int, frame) -> None:
    del frame  # Unused: the exception unwinds from wherever the main thread was.
    raise Stopped(signum)
