"""Runs a command in this process, with its own flags, as `python -m cvae_tf.<name>` would.

Much faster than a subprocess (no TensorFlow start-up), so every bad input can have its own
case; the subprocess tests of each command check that the same error becomes exit code 2.
"""

import importlib

from absl import flags

from cvae_tf.errors import UserInputError


def call(name: str, *args: str) -> str | None:
    """The one-line error message `cvae_tf.<name>` gives for `args`, or None if it succeeded."""
    module = importlib.import_module(f"cvae_tf.{name}")
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    try:
        flag_values([name, *args])
        module.execute(flag_values)
    except (flags.Error, UserInputError) as error:  # what cli.run prints as one line, exit 2
        message = str(error)
        assert "\n" not in message, message
        return message
    return None
