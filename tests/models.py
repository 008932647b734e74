"""Test helpers: normalization statistics of a whole table, a CVAE normalized on given tables."""

import numpy as np

from cvae_tf import frames, model, preprocessing


def normalization_statistics(method: str, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-column (offset, variance) [features] that `method` fits on a whole table."""
    values = np.asarray(values, dtype=np.float64)
    statistics = preprocessing.ColumnStatistics(values.shape[-1])
    statistics.update(values)
    return statistics.normalization(method)


def build_cvae(
    train_positions: np.ndarray,
    train_momenta: np.ndarray,
    position_norm: str = "standard",
    momentum_norm: str = "standard",
    **architecture,
) -> model.CVAE:
    """A CVAE normalized on training tables [events, 9] (bohr, a.u.), in its own frame."""
    model_positions, model_momenta = frames.model_frame_tables(
        architecture.get("frame", "lab"), train_positions, train_momenta
    )
    position_offset, position_variance = normalization_statistics(position_norm, model_positions)
    momentum_offset, momentum_variance = normalization_statistics(momentum_norm, model_momenta)
    return model.CVAE(
        position_offset=position_offset,
        position_variance=position_variance,
        momentum_offset=momentum_offset,
        momentum_variance=momentum_variance,
        **architecture,
    )
