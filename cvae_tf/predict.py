"""`python -m cvae_tf.predict`: positions from a file of momenta with a saved run's SavedModel."""

from absl import flags

from cvae_tf import cli, flag_fields, prediction


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The predict command's flags: one per setting of PredictConfig."""
    flag_fields.define_flags(prediction.PredictConfig, flag_values)


def execute(flag_values: flags.FlagValues) -> None:
    """Reads momenta, predicts positions, writes them after the input's columns, row by row."""
    config = flag_fields.from_flags(prediction.PredictConfig, flag_values)
    written = prediction.predict_file(config)
    print(
        f"Wrote predicted positions (bohr), bond lengths (bohr) and angles (degrees) of "
        f"{written.num_events} events to {config.output}, after the input's columns"
    )
    if written.renamed:
        pairs = ", ".join(f"{old} as {new}" for old, new in written.renamed.items())
        print(f"Input columns named like predicted ones are kept renamed: {pairs}.")
    if written.center_of_mass_relative:
        print("Positions are relative to each event's centre of mass (trained with --center=com).")
    for path in written.histogram_files:
        print(f"  histogram: {path}")
    print(written.out_of_distribution_summary())
    warning = written.warning()
    if warning:
        print(warning)


if __name__ == "__main__":
    cli.run_command(define_flags, execute)
