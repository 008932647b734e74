"""Positions predicted for a CSV of momenta with a saved run's SavedModel, into a CSV file."""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from cvae_tf import csv_files, export, file_flags, run_folder, sampling
from cvae_tf.errors import UserInputError
from cvae_tf.flag_fields import option

MOMENTS_BATCH_SIZE = 65_536  # rows per SavedModel call: K draws of a chunk, a batch at a time


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """Which run predicts, from which momenta, into which file, and how many latent samples."""

    model_dir: str | None = option(
        None, "Run folder written by cvae_tf.train (required).", show_default=False
    )
    input: str | None = option(
        None, "CSV with the model's momentum columns (a.u.) (required).", show_default=False
    )
    output: str | None = file_flags.output_option(
        "CSV for the predicted positions (bohr) (required); same input, same model, same file."
    )
    num_samples: int = option(
        1,
        "Latent samples K per event; 1 writes one posterior draw per event; above 1 the output "
        "holds the point prediction of the predictive mixture of K latent draws (its mean, or "
        "see --select) under the position column names and its standard deviation (latent "
        "spread and the decoder's own, recalibrated) as <column>_std.",
    )
    select: str = option(
        "none",
        sampling.SELECT_HELP + " Default: none.",
        choices=sampling.SELECTIONS,
        show_default=False,
    )
    overwrite: bool = file_flags.overwrite_option()

    def __post_init__(self) -> None:
        for name in ("model_dir", "input", "output"):
            if not getattr(self, name):
                raise UserInputError(f"--{name} is required")
        if self.num_samples < 1:
            raise UserInputError(f"--num_samples={self.num_samples}; expected an integer ≥ 1")


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What predict_file wrote: how many events, and whether relative to their centre of mass."""

    num_events: int
    center_of_mass_relative: bool


def predict_file(config: PredictConfig) -> Prediction:
    """Writes predicted positions (bohr) for every event of `config.input` to `config.output`.

    The latent samples come from the sampler state saved in the SavedModel, so the same model
    and input give the same file every time.
    """
    model_dir = Path(config.model_dir)
    output_path = file_flags.check_output_path(config.output, config.overwrite, config.input)
    run_config = run_folder.check_complete(model_dir)
    momenta_table = csv_files.read_columns(Path(config.input), run_config["momentum_columns"])
    serving = export.load_saved_model(model_dir / export.SAVED_MODEL_DIR)
    position_columns = run_config["position_columns"]
    if config.num_samples == 1:  # one posterior draw per event
        predicted = sampling.posterior_samples(serving.serve, momenta_table, 1)[0]
        columns = dict(zip(position_columns, predicted.T, strict=True))
    else:  # the predictive mixture of K latent draws: its mean (or energy pick) and spread
        summary = sampling.predictive_summary(
            sampling.batched_moments(serving.moments, MOMENTS_BATCH_SIZE),
            momenta_table,
            config.num_samples,
            np.random.default_rng(0),  # seeded: the same model and input give the same file
            select_energy=config.select == "energy",
        )
        predicted = summary["energy" if config.select == "energy" else "mean"]
        columns = dict(zip(position_columns, predicted.T, strict=True))
        columns.update(
            zip([f"{name}_std" for name in position_columns], summary["std"].T, strict=True)
        )
    csv_files.write_csv_atomically(output_path, pd.DataFrame(columns))
    return Prediction(len(momenta_table), run_config.get("center") == "com")
