"""What every command shares: the user-error type and an absl entry point mapping it to exit 2."""

import sys
from collections.abc import Callable, Sequence

from absl import app, flags


class UserInputError(ValueError):
    """A mistake in the user's input (file, flag or value): one line, exit code 2, no traceback."""


USAGE_EXIT_CODE = 2


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
    """Runs `main` under absl; a UserInputError it raises becomes one stderr line and exit 2."""

    def guarded_main(argv: list[str]) -> None:
        if len(argv) > 1:
            fail(f"unexpected positional arguments {argv[1:]}; every option is a --flag")
        try:
            main(argv)
        except UserInputError as error:
            fail(str(error))

    app.run(guarded_main, flags_parser=_parse_flags)
