"""The bad data set of issue 7: positions and momenta in different frames, shared by tests."""

import numpy as np

from cvae_tf import data


def axes_frame(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Rotations (events, 3, 3) whose rows are x̂ ∥ first, ŷ in the first–second plane, ẑ = x̂ × ŷ."""
    x_axis = first / np.linalg.norm(first, axis=-1, keepdims=True)
    in_plane = second - np.sum(second * x_axis, axis=-1, keepdims=True) * x_axis
    y_axis = in_plane / np.linalg.norm(in_plane, axis=-1, keepdims=True)
    return np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)], axis=-2)


def apply(rotations, vectors):
    """R @ v by an explicit loop-free einsum, independent of alignment.rotate."""
    return np.einsum("nij,naj->nai", rotations, vectors)


def frame_mismatched_events(positions, momenta, seed=0):
    """The bad data set of issue 7, from consistent events (COM-centred positions, from rest).

    Positions go into a position-defined frame (C→O on x, S in the xy-plane) about their centre
    of mass, then shift by a translation ~ N(0, 1 bohr) per axis; momenta go into a momentum-
    defined frame (p_C on x, p_O in the xy-plane).

    Returns:
        The bad events, the position-frame and momentum-frame rotations, and the translations.
    """
    position_frames = axes_frame(
        positions[:, 1] - positions[:, 0], positions[:, 2] - positions[:, 0]
    )
    momentum_frames = axes_frame(momenta[:, 0], momenta[:, 1])
    translations = np.random.default_rng(seed).normal(0.0, 1.0, (len(positions), 1, 3))
    bad = data.Events(
        positions=apply(position_frames, positions) + translations,
        momenta=apply(momentum_frames, momenta),
    )
    return bad, position_frames, momentum_frames, translations[:, 0]
