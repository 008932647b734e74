"""What every command shares: the absl entry point that maps a UserInputError to exit code 2."""

import sys
from collections.abc import Callable, Sequence

from absl import app, flags

from cvae_tf.errors import UserInputError

USAGE_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130  # the shell's code for a command stopped by Ctrl-C (128 + SIGINT)


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

    Ctrl-C likewise ends with one line (what was kept, if `main` says) and exit code 130.
    """

    def guarded_main(argv: list[str]) -> None:
        if len(argv) > 1:
            fail(f"unexpected positional arguments {argv[1:]}; every option is a --flag")
        try:
            main(argv)
        except UserInputError as error:
            fail(str(error))
        except KeyboardInterrupt as error:
            print(f"interrupted: {str(error) or 'stopped by the user'}", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT_CODE)

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
