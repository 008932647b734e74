"""The Python API a notebook calls: train a run, load a run folder, predict from arrays or frames.

    import cvae_tf

    run = cvae_tf.train(data="events.csv", hidden_dim=64, num_layers=3, run_name="ocs_v1")
    model = cvae_tf.load("saved_models/ocs_v1")
    prediction = model.predict(frame, num_samples=32)   # a DataFrame with the momentum columns
    prediction.frame                                      # frame's columns + positions + spreads

`train` takes the flags' settings by name and validates them exactly as the command does (a bad
value raises the command's one-line message as a UserInputError); it leaves the caller's global
random states (Python's, numpy's, TensorFlow's and keras') as they were. `load` checks the run
folder as `predict` does and loads only its SavedModel.
"""

import contextlib
import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from cvae_tf import config, export, run_folder, sampling
from cvae_tf.errors import UserInputError
from cvae_tf.molecule import Molecule

MOMENTS_BATCH_SIZE = 65_536  # rows per SavedModel call: K draws of a chunk, a batch at a time


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The predictive distribution of each event's positions, in bohr.

    Attributes:
      positions: its mean, (events, fragments, 3).
      spreads: its standard deviation per coordinate, (events, fragments, 3).
      samples: `num_samples` draws of it, (num_samples, events, fragments, 3).
      frame: for a DataFrame input, that frame's columns (kept, in order, same index) followed
        by the position columns and their `<column>_std` spreads; else None.
    """

    positions: np.ndarray
    spreads: np.ndarray
    samples: np.ndarray
    frame: pd.DataFrame | None = None


class Model:
    """A trained run's SavedModel with its molecule and column names."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        run_config = run_folder.check_complete(self.run_dir)
        self.molecule: Molecule = run_folder.read_molecule(self.run_dir)
        self.position_columns = tuple(run_config["position_columns"])
        self.momentum_columns = tuple(run_config["momentum_columns"])
        self.serving = export.load_saved_model(self.run_dir / export.SAVED_MODEL_DIR)
        self._moments_once = sampling.batched_moments(self.serving.moments, MOMENTS_BATCH_SIZE)

    def __repr__(self) -> str:
        return f"Model('{self.run_dir}', {self.molecule.describe()})"

    def predict(self, momenta, num_samples: int = 32, seed: int = 0) -> Prediction:
        """The predictive distribution of positions for measured momenta (a.u.).

        Args:
          momenta: a DataFrame holding the model's momentum columns (others are kept in
            `Prediction.frame`), or an array (events, 3·fragments) in the model's column order
            or (events, fragments, 3).
          num_samples: K latent draws per event; their mixture is the predictive distribution.
          seed: seed of the draws from the mixture (the latent draws come from the SavedModel's
            own sampler).
        """
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise UserInputError(f"num_samples={num_samples!r}; expected an integer ≥ 1")
        table = self._momenta_table(momenta)
        rng = np.random.default_rng(seed)
        means, spreads, samples = [], [], []
        chunks = sampling.predictive_chunks(self._moments_once, table, num_samples, rng)
        for _, mean, spread, draws in chunks:
            means.append(mean)
            spreads.append(spread)
            samples.append(draws[:num_samples])  # it draws at least 2, for the CRPS
        shape = (len(table), self.molecule.num_fragments, 3)
        mean = np.concatenate(means).reshape(shape) if means else np.zeros(shape)
        spread = np.concatenate(spreads).reshape(shape) if spreads else np.zeros(shape)
        drawn = (
            np.concatenate(samples, axis=1).reshape(num_samples, *shape)
            if samples
            else np.zeros((num_samples, *shape))
        )
        frame = None
        if isinstance(momenta, pd.DataFrame):
            frame = momenta.copy()
            frame[list(self.position_columns)] = mean.reshape(len(table), -1)
            std_columns = [f"{name}_std" for name in self.position_columns]
            frame[std_columns] = spread.reshape(len(table), -1)
        return Prediction(positions=mean, spreads=spread, samples=drawn, frame=frame)

    def _momenta_table(self, momenta) -> np.ndarray:
        """Momenta as float32 [events, 3·fragments] in the model's column order."""
        width = self.molecule.num_coordinates
        if isinstance(momenta, pd.DataFrame):
            missing = [name for name in self.momentum_columns if name not in momenta.columns]
            if missing:
                raise UserInputError(
                    f"the DataFrame lacks the model's momentum columns {missing}; expected "
                    f"{list(self.momentum_columns)}"
                )
            values = momenta[list(self.momentum_columns)].to_numpy(dtype=np.float64)
        else:
            values = np.asarray(momenta, dtype=np.float64)
            if values.ndim == 3:
                values = values.reshape(len(values), -1)
            if values.ndim != 2 or values.shape[1] != width:
                raise UserInputError(
                    f"momenta shaped {np.shape(momenta)}; expected (events, {width}) in the "
                    f"order {list(self.momentum_columns)} or (events, "
                    f"{self.molecule.num_fragments}, 3)"
                )
        if not np.all(np.isfinite(values)):
            raise UserInputError("momenta hold NaN or infinite values; expected finite a.u.")
        return values.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Run:
    """A finished training run: its folder, its test metrics, the report and the model."""

    run_dir: Path
    metrics: dict
    report: str
    model: Model


def load(run_dir: str | Path) -> Model:
    """The trained model of a complete run folder (checked as `predict` checks it)."""
    return Model(run_dir)


def train(verbose: int | str = 0, **settings) -> Run:
    """Trains a run with the flags' settings by name, validated as the command validates them.

    `verbose` is keras' fit verbosity (0: silent, 2: a line an epoch). Settings not named keep
    their defaults (flags/default.cfg); an unknown name raises TypeError, a bad value the
    command's UserInputError. The global random states are restored afterwards.
    """
    from cvae_tf import training  # imports TensorFlow: only when a run is trained

    run_config = config.from_dict(settings)
    with kept_random_states():
        result = training.train(run_config, verbose=verbose)
    if result.run_dir is None:  # a multi-worker run's other workers
        raise UserInputError("this process is not the chief of a multi-worker run: no run folder")
    return Run(result.run_dir, result.metrics, result.report, load(result.run_dir))


@contextlib.contextmanager
def kept_random_states() -> Iterator[None]:
    """Restores Python's, numpy's, TensorFlow's and keras' global random states on exit."""
    import tensorflow as tf
    from keras.src.backend.common import global_state
    from tensorflow.python.eager import context

    python_state, numpy_state = random.getstate(), np.random.get_state()
    tensorflow_seed = context.global_seed()
    keras_states = {
        name: global_state.get_global_attribute(name)
        for name in ("global_random_seed", "global_seed_generator")
    }
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        tf.random.set_seed(tensorflow_seed)
        for name, value in keras_states.items():
            global_state.set_global_attribute(name, value)
