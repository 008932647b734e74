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


def _raised_while_stopping(signum):
    """An AssertionError a clean-up raised while a Stopped unwound the stack (TensorFlow's
    graph-building context does this when a signal lands mid-trace)."""
    try:
        try:
            raise signals.Stopped(signum)
        finally:
            assert False, "the clean-up's own check"  # noqa: B011
    except AssertionError as error:
        return error


def test_the_stop_behind_a_clean_up_failure_is_found():
    masked = _raised_while_stopping(signal.SIGHUP)
    assert isinstance(masked.__context__, signals.Stopped)
    assert signals.interruption(masked).signum == signal.SIGHUP
    assert signals.interruption(ValueError("no stop")) is None
    plain = KeyboardInterrupt()
    assert signals.interruption(plain) is plain


def test_an_atomic_write_whose_stop_a_clean_up_masked_reports_the_stop(tmp_path):
    from cvae_tf import csv_files

    path = tmp_path / "out.csv"
    with pytest.raises(signals.Stopped) as stopped, csv_files.atomic_file(path) as handle:
        os.write(handle, b"x,y\n")
        os.close(handle)
        raise _raised_while_stopping(signal.SIGTERM)
    assert stopped.value.signum == signal.SIGTERM
    assert str(stopped.value) == f"stopped before '{path}' was complete; no file was written"
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def test_a_command_whose_stop_a_clean_up_masked_exits_as_stopped(tmp_path):
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "command.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal
            from cvae_tf import cli

            def main(argv):
                try:
                    try:
                        os.kill(os.getpid(), signal.SIGHUP)  # raises Stopped at once
                    finally:
                        assert False, "a library's clean-up check"
                except AssertionError:
                    raise

            cli.run(main)
            """
        )
    )
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": repo},
        timeout=120,
    )
    assert done.returncode == 128 + signal.SIGHUP
    assert done.stderr.splitlines() == ["interrupted by SIGHUP: stopped"]
