"""What every command shares: the absl entry point, one line and exit 2 for a UserInputError."""

import sys
from collections.abc import Callable, Sequence

from absl import app, flags

from cvae_tf import signals
from cvae_tf.errors import UserInputError

USAGE_EXIT_CODE = 2
# The shell's codes for a command stopped by a signal: 128 + its number (130 Ctrl-C, 143 SIGTERM).
SIGNAL_EXIT_BASE = 128


def fail(message: str) -> None:
    """Prints `error: message` on one line to stderr and exits with code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(USAGE_EXIT_CODE)


def _parse_flags(argv: Sequence[str]) -> list[str]:
    """absl's flag parser, but a bad flag gives one line and exit 2 instead of a usage dump."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        fail(str(error))


def run(main: Callable[[list[str]], None]) -> None:
    """Runs `main` under absl; a UserInputError it raises becomes one stderr line and exit 2.

    Ctrl-C, SIGTERM and SIGHUP likewise end with one line (what was kept, if `main` says) and
    exit code 128 + the signal's number, after the cleanup a KeyboardInterrupt runs.
    """

    def guarded_main(argv: list[str]) -> None:
        if len(argv) > 1:
            fail(f"unexpected positional arguments {argv[1:]}; every option is a --flag")
        signals.raise_on_stop_signals()
        try:
            main(argv)
        except UserInputError as error:
            fail(str(error))
        except KeyboardInterrupt as error:  # signals.Stopped included
            print(signals.describe(error), file=sys.stderr)
            sys.exit(SIGNAL_EXIT_BASE + signals.signal_number(error))

    app.run(guarded_main, flags_parser=_parse_flags)


def run_command(
    define_flags: Callable[[], None], execute: Callable[[flags.FlagValues], None]
) -> None:
    """A command's `__main__`: defines its flags, then runs `execute(FLAGS)` under `run`."""
    define_flags()

    def main(argv: list[str]) -> None:
        del argv  # Unused: every option is a flag.
        execute(flags.FLAGS)

    run(main)
