"""Test helper: a CVAE whose normalization is fitted on given training tables."""

import numpy as np

from cvae_tf import frames, model, preprocessing


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
    position_offset, position_variance = preprocessing.normalization_statistics(
        position_norm, model_positions
    )
    momentum_offset, momentum_variance = preprocessing.normalization_statistics(
        momentum_norm, model_momenta
    )
    return model.CVAE(
        position_offset=position_offset,
        position_variance=position_variance,
        momentum_offset=momentum_offset,
        momentum_variance=momentum_variance,
        **architecture,
    )
