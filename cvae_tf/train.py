"""`python -m cvae_tf.train`: train a CVAE on a CSV of events and save the run folder."""

from absl import flags

from cvae_tf import cli, config, training


def main(argv: list[str]) -> None:
    """Parses flags into a TrainConfig, trains, and prints the test report."""
    del argv  # Unused: every option is a flag.
    run_config = config.from_flags(flags.FLAGS)
    result = training.train(run_config)
    print(result.report)
    print(f"\nRun saved in {result.run_dir}/")
    print(f"  SavedModel:      {result.run_dir / 'saved_model'}")
    for name in ("learning_curve_first_10_epochs.png", "learning_curve_remaining_epochs.png"):
        print(f"  learning curve:  {result.run_dir / name}")
    print(
        f"Predict with: python -m cvae_tf.predict --model_dir={result.run_dir} "
        "--input=momenta.csv --output=positions.csv"
    )


if __name__ == "__main__":
    config.define_flags()
    cli.run(main)
