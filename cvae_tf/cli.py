"""What every command shares: the absl entry point, one line and exit 2 for a UserInputError."""

import importlib
import os
import sys
from collections.abc import Callable, Sequence

from absl import app, flags

from cvae_tf import cuda_probes, signals
from cvae_tf.errors import UserInputError

# The commands' environment, set on importing this module, which every command imports before
# anything that imports TensorFlow (TensorFlow reads both at its own import); the library itself
# sets nothing. TensorFlow's C++ start-up chatter would precede every one-line error message.
# oneDNN's custom CPU kernels are what print it, and for these small dense networks they measured
# no faster (1.16 vs 1.06 s per epoch, default model, 35k events); a user may still set either.
COMMAND_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
for _name, _value in COMMAND_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)
# And the GPU build's CUDA probes, printed where there is no GPU even at TF_CPP_MIN_LOG_LEVEL=3,
# kept off stderr when TensorFlow is first imported (see cuda_probes); every other line stays.
cuda_probes.filter_tensorflow_import()

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
        except (KeyboardInterrupt, Exception) as error:  # signals.Stopped included
            interrupt = signals.interruption(error)  # or a clean-up's failure during one
            if interrupt is None:
                raise
            print(signals.describe(interrupt), file=sys.stderr)
            sys.exit(SIGNAL_EXIT_BASE + signals.signal_number(interrupt))

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


def _console_script(name: str) -> None:
    """Runs the command `cvae_tf.<name>` as `python -m cvae_tf.<name>` would."""
    command = importlib.import_module(f"cvae_tf.{name}")
    run_command(command.define_flags, command.execute)


# The console scripts pyproject.toml installs, one per command module.
def train() -> None:
    """`cvae-train`: python -m cvae_tf.train."""
    _console_script("train")


def predict() -> None:
    """`cvae-predict`: python -m cvae_tf.predict."""
    _console_script("predict")


def simulate() -> None:
    """`cvae-simulate`: python -m cvae_tf.simulate."""
    _console_script("simulate")


def check_data() -> None:
    """`cvae-check-data`: python -m cvae_tf.check_data."""
    _console_script("check_data")


def align() -> None:
    """`cvae-align`: python -m cvae_tf.align."""
    _console_script("align")
