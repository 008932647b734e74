"""Stop signals as exceptions: the exception each raises, its one line, and signals left ignored."""

import os
import signal

import pytest

from cvae_tf import signals


@pytest.fixture
def restored_handlers():
    """The stop signals' handlers as they were before the test."""
    saved = {signum: signal.getsignal(signum) for signum in signals.STOP_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", signals.STOP_SIGNALS)
def test_a_stop_signal_raises_stopped_with_its_number(restored_handlers, signum):
    for each in signals.STOP_SIGNALS:
        signal.signal(each, signal.SIG_DFL)
    signals.raise_on_stop_signals()
    with pytest.raises(signals.Stopped) as stopped:
        os.kill(os.getpid(), signum)  # the handler runs as soon as os.kill returns
    assert stopped.value.signum == signum
    assert isinstance(stopped.value, KeyboardInterrupt)  # Ctrl-C's cleanup runs for it too


def test_a_signal_the_caller_ignores_stays_ignored(restored_handlers):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as `nohup` starts a command
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signals.raise_on_stop_signals()
    assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)


def test_the_line_names_the_signal_and_keeps_what_the_code_said():
    assert signals.describe(KeyboardInterrupt()) == "interrupted: stopped by the user"
    assert signals.describe(signals.Stopped(signal.SIGTERM)) == "interrupted by SIGTERM: stopped"
    kept = signals.reworded(signals.Stopped(signal.SIGHUP), "the partial folder is kept")
    assert signals.describe(kept) == "interrupted by SIGHUP: the partial folder is kept"
    assert signals.signal_number(signals.reworded(KeyboardInterrupt(), "x")) == signal.SIGINT
