"""What every command shares: the user-error type and an absl entry point mapping it to exit 2."""

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from absl import app, flags

from cvae_tf.flag_fields import option


class UserInputError(ValueError):
    """A mistake in the user's input (file, flag or value): one line, exit code 2, no traceback."""


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


def overwrite_option():
    """The `overwrite` setting (--overwrite flag) of every command that writes an output file."""
    return option(False, "Replace an existing output file.")


def output_option(help: str):
    """A required `output` path setting (--output flag); `help` says what the file holds."""
    return option(None, help, show_default=False)


def check_output_path(
    output: str | Path | None, overwrite: bool, input_path: str | Path | None = None
) -> Path:
    """The --output path, once it is clear that writing it loses nothing; else UserInputError."""
    if not output:
        raise UserInputError("--output is required; expected a CSV path")
    path = Path(output)
    if input_path is not None and path.resolve() == Path(input_path).resolve():
        raise UserInputError(f"--output='{path}' is the input file; choose another path")
    if path.is_dir():
        raise UserInputError(f"--output='{path}' is a folder; expected a CSV file path")
    if path.exists() and not overwrite:
        raise UserInputError(f"--output='{path}' exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise UserInputError(f"--output='{path}': folder '{path.parent}' is missing")
    return path


def run_command(
    define_flags: Callable[[], None], execute: Callable[[flags.FlagValues], None]
) -> None:
    """A command's `__main__`: defines its flags, then runs `execute(FLAGS)` under `run`."""
    define_flags()

    def main(argv: list[str]) -> None:
        del argv  # Unused: every option is a flag.
        execute(flags.FLAGS)

    run(main)
