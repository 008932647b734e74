"""`python -m cvae_tf.train`: train a CVAE on a CSV of events and save the run folder.

The module is also the API's `cvae_tf.train(**settings)`: a package attribute and a submodule
cannot share the name `train`, so this module is callable (api.train; see `_CallableModule`).
"""

import sys
import types

from absl import flags

from cvae_tf import cli, config, figures, plots, provenance, training


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The train command's flags: one per setting of TrainConfig's parts."""
    config.define_flags(flag_values)


def execute(flag_values: flags.FlagValues) -> None:
    """Builds a TrainConfig from the parsed flags, trains, and prints the test report."""
    run_config = config.from_flags(flag_values)
    result = training.train(run_config, command_line=provenance.command_line(sys.argv))
    if result.run_dir is None:
        print("Training finished on this worker; the chief evaluates and writes the run folder.")
        return
    print(result.report)
    print(f"\nRun saved in {result.run_dir}/")
    print(f"  SavedModel:      {result.run_dir / 'saved_model'}")
    for name in (plots.FIRST_CURVE_FILE, plots.REMAINING_CURVE_FILE):
        print(f"  learning curve:  {result.run_dir / name}")
    print(f"  calibration:     {result.run_dir / training.CALIBRATION_FILE}")
    for name in (
        figures.PARITY_FILE,
        figures.ATOM_ERRORS_FILE,
        figures.GEOMETRY_FILE,
        figures.POSTERIOR_FILE,
    ):
        print(f"  test figure:     {result.run_dir / name}")
    print(f"  predictions:     {result.run_dir / training.PREDICTIONS_FILE}")
    print(f"  report:          {result.run_dir / training.REPORT_FILE}")
    print(f"  retrain with:    --flagfile={result.run_dir / provenance.FLAGFILE}")
    print(
        f"Predict with: python -m cvae_tf.predict --model_dir={result.run_dir} "
        "--input=momenta.csv --output=positions.csv"
    )


class _CallableModule(types.ModuleType):
    """This module's type: calling `cvae_tf.train(...)` is calling `api.train(...)`."""

    def __call__(self, verbose: int | str = 0, **settings):
        from cvae_tf import api

        return api.train(verbose, **settings)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    cli.run_command(define_flags, execute)
