"""`python -m cvae_tf.check_data`: check a data set's physics and frames, and print a verdict."""

from absl import flags

from cvae_tf import cli, diagnostics, file_check, flag_fields


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The check_data command's flags: the event file's, --model_dir, --sample_size, --seed."""
    flag_fields.define_flags(diagnostics.CheckDataConfig, flag_values)


def execute(flag_values: flags.FlagValues) -> None:
    """Loads the events, checks them (a sample, or momenta only) and prints the verdict.

    Problems still exit 0.
    """
    config = flag_fields.from_flags(diagnostics.CheckDataConfig, flag_values)
    print(file_check.check_file(config).format())


if __name__ == "__main__":
    cli.run_command(define_flags, execute)
