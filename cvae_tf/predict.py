"""`python -m cvae_tf.predict`: positions from a CSV of momenta with a saved run's SavedModel."""

from pathlib import Path

import numpy as np
import pandas as pd
from absl import flags

from cvae_tf import cli, csv_files, export, run_folder, sampling
from cvae_tf.cli import UserInputError

MOMENTS_BATCH_SIZE = 65_536  # rows per SavedModel call: K draws of a chunk, a batch at a time


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The predict command's flags."""
    flags.DEFINE_string(
        "model_dir",
        None,
        "Run folder written by cvae_tf.train (required).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "input",
        None,
        "CSV with the model's momentum columns (a.u.) (required).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "output",
        None,
        "CSV for the predicted positions (bohr) (required); same input, same model, same file.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_samples",
        1,
        "Latent samples K per event; 1 writes one posterior draw per event; above 1 the output "
        "holds the point prediction of the predictive mixture of K latent draws (its mean, or "
        "see --select) under the position column names and its standard deviation (latent "
        "spread and the decoder's own, recalibrated) as <column>_std. Default: 1.",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "select",
        "none",
        sampling.SELECTIONS,
        "Point prediction from the K samples: none = their mean; energy = the sample whose "
        "potential energy best matches the measured kinetic energy. Default: none.",
        flag_values=flag_values,
    )
    cli.define_overwrite_flag(flag_values)


def predict_file(
    model_dir: Path,
    input_path: Path,
    output_path: Path,
    num_samples: int = 1,
    select: str = "none",
    overwrite: bool = False,
) -> int:
    """Writes predicted positions for every event of `input_path`; returns the event count.

    The latent samples come from the sampler state saved in the SavedModel, so the same model
    and input give the same file every time.
    """
    if num_samples < 1:
        raise UserInputError(f"--num_samples={num_samples}; expected an integer ≥ 1")
    cli.check_output_path(output_path, overwrite, input_path)
    run_config = run_folder.check_complete(model_dir)
    momenta_table = csv_files.read_columns(input_path, run_config["momentum_columns"])
    serving = export.load_saved_model(model_dir / export.SAVED_MODEL_DIR)
    position_columns = run_config["position_columns"]
    if num_samples == 1:  # one posterior draw per event
        predicted = sampling.posterior_samples(serving.serve, momenta_table, 1)[0]
        columns = dict(zip(position_columns, predicted.T, strict=True))
    else:  # the predictive mixture of K latent draws: its mean (or energy pick) and spread
        columns = _mixture_columns(serving, momenta_table, num_samples, select, position_columns)
    csv_files.write_csv_atomically(output_path, pd.DataFrame(columns))
    return len(momenta_table)


def _mixture_columns(serving, momenta_table, num_samples, select, position_columns) -> dict:
    moments_once = sampling.batched_moments(serving.moments, MOMENTS_BATCH_SIZE)
    predicted, spread = [], []
    # Seeded: the same model and input give the same file.
    rng = np.random.default_rng(0)
    for rows, mean, std, draws in sampling.predictive_chunks(
        moments_once, momenta_table, num_samples, rng
    ):
        predicted.append(
            sampling.select_by_energy(draws, momenta_table[rows]) if select == "energy" else mean
        )
        spread.append(std)
    columns = dict(zip(position_columns, np.concatenate(predicted).T, strict=True))
    columns.update(
        zip([f"{name}_std" for name in position_columns], np.concatenate(spread).T, strict=True)
    )
    return columns


def execute(flag_values: flags.FlagValues) -> None:
    """Reads momenta, predicts positions, writes them in the input's row order."""
    for name in ("model_dir", "input", "output"):
        if not flag_values[name].value:
            raise UserInputError(f"--{name} is required")
    model_dir = Path(flag_values.model_dir)
    count = predict_file(
        model_dir,
        Path(flag_values.input),
        Path(flag_values.output),
        flag_values.num_samples,
        flag_values.select,
        flag_values.overwrite,
    )
    print(f"Wrote predicted positions (bohr) of {count} events to {flag_values.output}")
    if run_folder.check_complete(model_dir).get("center") == "com":
        print("Positions are relative to each event's centre of mass (trained with --center=com).")


if __name__ == "__main__":
    cli.run_command(define_flags, execute)
