"""The run's test figures, test metrics and hyperparameters written for TensorBoard."""

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

TEST_PREFIX = "test/"  # the tag prefix of the test metrics' scalars and the figures


def write_evaluation_summaries(
    log_dir: Path,
    pictures: Iterable[Path],
    metrics: dict,
    hyperparameters: dict,
    run_name: str,
) -> None:
    """Writes the PNGs, the scalar test metrics and the hyperparameters into `log_dir`.

    Into the run's `logs/` folder itself, beside keras' `train/` and `validation/`: TensorBoard's
    HParams dashboard then finds this run's session (its flags) with their epoch metrics, the
    layout keras-tuner and the HParams tutorial write. Images at step 0, one per figure, tagged
    `test/<figure>`; every number in `metrics` as the scalar `test/<key>`.

    Args:
      log_dir: the run's TensorBoard folder.
      pictures: PNG files to show, each under its file name's stem.
      metrics: the test metrics (metrics.json); numbers only are written.
      hyperparameters: the flat {flag: value} configuration; lists are joined with commas.
      run_name: the HParams session's trial id.
    """
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        # The HParams plugin takes bool, int, float and str values.
        hparams_api.hparams(
            {name: _hparam_value(value) for name, value in hyperparameters.items()},
            trial_id=run_name,
        )
        for path in pictures:
            image = tf.io.decode_png(Path(path).read_bytes(), channels=4)
            tf.summary.image(TEST_PREFIX + Path(path).stem, image[tf.newaxis], step=0)
        for key, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                continue
            tf.summary.scalar(TEST_PREFIX + key, float(value), step=0)
    writer.close()


def _hparam_value(value):
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)
