"""Invertible normalization of positions and momenta with keras' own `Normalization` layer."""

import keras
import numpy as np

from cvae_tf import frames

NORMALIZATIONS = ("none", "standard", "minmax")
_NEGLIGIBLE_SPREAD = 1e-6  # relative to the widest column


class ColumnStatistics:
    """Per-column count, mean, spread, minimum and maximum, accumulated batch by batch.

    Batches merge with Chan et al.'s pairwise update of the mean and the sum of squared
    deviations, in float64, so a single pass over data too large for memory gives the same
    statistics as one call on the whole table (up to round-off), without the cancellation of
    the textbook Σx² − (Σx)²/n.
    """

    def __init__(self, num_features: int):
        self.count = 0
        self.mean = np.zeros(num_features)
        self._squared_deviations = np.zeros(num_features)
        self.minimum = np.full(num_features, np.inf)
        self.maximum = np.full(num_features, -np.inf)

    def update(self, values: np.ndarray) -> None:
        """Adds a batch of rows, shaped (events, features)."""
        values = np.asarray(values, dtype=np.float64)
        if not len(values):
            return
        count = len(values)
        mean = values.mean(axis=0)
        squared_deviations = np.square(values - mean).sum(axis=0)
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self._squared_deviations += squared_deviations + np.square(delta) * (
            self.count * count / total
        )
        self.count = total
        self.minimum = np.minimum(self.minimum, values.min(axis=0))
        self.maximum = np.maximum(self.maximum, values.max(axis=0))

    @property
    def std(self) -> np.ndarray:
        """The population standard deviation of each column."""
        return np.sqrt(self._squared_deviations / max(self.count, 1))

    def normalization(self, method: str) -> tuple[np.ndarray, np.ndarray]:
        """The (offset, variance) that map the accumulated columns as `method` asks.

        keras' `Normalization` computes (x − mean)/√variance. Its `adapt` only knows the standard
        statistics, but min–max scaling is the same affine map with mean = min and
        variance = (max − min)², so one layer type (and its `invert=True`) serves every method.
        A constant column keeps variance 1 so nothing is divided by zero; so does a column whose
        spread is under a millionth of the widest column's, which is round-off around a constant
        (the out-of-plane coordinate in the momentum frame), not a signal worth amplifying.
        """
        num_features = len(self.mean)
        if method == "none":
            return np.zeros(num_features), np.ones(num_features)
        if method == "standard":
            offset, spread = self.mean, self.std
        elif method == "minmax":
            offset, spread = self.minimum, self.maximum - self.minimum
        else:
            raise ValueError(f"unknown normalization {method!r}; expected one of {NORMALIZATIONS}")
        spread = np.where(spread > _NEGLIGIBLE_SPREAD * np.max(spread, initial=0.0), spread, 1.0)
        return offset, np.square(spread)


class FrameStatistics:
    """ColumnStatistics of position (bohr) and momentum (a.u.) tables in the model's frame."""

    def __init__(self, frame: str, num_coordinates: int = 9, fragments=frames.OCS_FRAGMENTS):
        self.frame = frame  # one of frames.FRAMES
        self.fragments = fragments  # the momentum frame's (a, b, c), frames.momentum_frame
        self.positions = ColumnStatistics(num_coordinates)
        self.momenta = ColumnStatistics(num_coordinates)

    def update(self, positions: np.ndarray, momenta: np.ndarray) -> None:
        """Adds tables [events, 3n] of the same events, given in the lab frame."""
        model_positions, model_momenta = frames.model_frame_tables(
            self.frame, positions, momenta, self.fragments
        )
        self.positions.update(model_positions)
        self.momenta.update(model_momenta)


def frame_statistics(
    frame: str,
    positions: np.ndarray,
    momenta: np.ndarray,
    fragments=frames.OCS_FRAGMENTS,
    chunk_rows: int = 65_536,
) -> tuple[ColumnStatistics, ColumnStatistics]:
    """Normalization statistics of training tables [events, 3n] in the model's frame."""
    statistics = FrameStatistics(frame, positions.shape[-1], fragments)
    for start in range(0, len(momenta), chunk_rows):
        statistics.update(
            positions[start : start + chunk_rows], momenta[start : start + chunk_rows]
        )
    return statistics.positions, statistics.momenta


def normalization_layers(
    offset, variance, name: str
) -> tuple[keras.layers.Normalization, keras.layers.Normalization]:
    """A (forward, inverse) pair of built `Normalization` layers, (x − offset)/√variance and back.

    Built for rows [batch, len(offset)], so that a model holding them is built at construction.
    """
    forward = keras.layers.Normalization(mean=offset, variance=variance, name=f"{name}_normalize")
    inverse = keras.layers.Normalization(
        mean=offset, variance=variance, invert=True, name=f"{name}_denormalize"
    )
    for layer in (forward, inverse):
        layer.build((None, len(offset)))
    return forward, inverse
