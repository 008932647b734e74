"""The momentum frame: a rotation built from an event's momenta alone, in keras ops.

Molecules in a gas are randomly oriented, so the same geometry appears in every rotation. The
momentum frame removes that redundancy using only what is measured: x̂ along p_O − p_S (the two
end fragments fly apart, so this never vanishes), ŷ along the part of p_C perpendicular to x̂
(the bend of the molecule pushes carbon sideways), ẑ = x̂ × ŷ. For an event that starts at rest
every momentum, and so every position, then lies in the xy-plane.

A near-linear molecule leaves p_C⊥ ≈ 0 and ŷ ill-defined; a tiny fixed perpendicular is then
blended in so that the frame stays finite (never NaN). Such molecules lie along x̂ anyway, so the
arbitrary turn about x̂ moves their positions by no more than their tiny bend.

Rotation matrices are [batch, 3, 3] with the frame axes as rows: v_frame = R·v_lab and
v_lab = Rᵀ·v_frame. The ops are backend-neutral, so the same code runs on numpy arrays for the
data and inside the exported SavedModel. Tables [batch, 9] hold three per-atom vectors,
atom-major, as the data and the model do.
"""

import numpy as np
from keras import ops

from cvae_tf.molecule import OCS

FRAMES = ("momentum", "lab")
OCS_FRAGMENTS = OCS.frame_fragments  # (O, S, C): x̂ along p_O − p_S, ŷ from p_C

# 1e-9 a.u. against p_C⊥ of ~0.1–10 a.u.: negligible unless p_C⊥ itself vanishes.
_FALLBACK_WEIGHT = 1e-9
_TINY = 1e-30


def _unit(vectors):
    norm = ops.sqrt(ops.sum(ops.square(vectors), axis=-1, keepdims=True))
    return vectors / ops.maximum(norm, _TINY)


def _reject(vectors, axis):
    """The part of `vectors` perpendicular to the unit vectors `axis`."""
    return vectors - ops.sum(vectors * axis, axis=-1, keepdims=True) * axis


def momentum_frame(momenta, fragments=OCS_FRAGMENTS):
    """Rotations [batch, 3, 3] into each event's momentum frame, given momenta [batch, n, 3].

    `fragments` (a, b, c): x̂ along p_a − p_b, ŷ along p_c's part perpendicular to it.
    """
    first, second, third = fragments
    x_axis = _unit(momenta[:, first, :] - momenta[:, second, :])
    # Fallback ŷ: the lab axis least aligned with x̂, made perpendicular to it.
    least_aligned = ops.one_hot(ops.argmin(ops.abs(x_axis), axis=-1), 3, dtype=x_axis.dtype)
    fallback = _unit(_reject(least_aligned, x_axis))
    y_axis = _unit(_reject(momenta[:, third, :], x_axis) + _FALLBACK_WEIGHT * fallback)
    z_axis = ops.cross(x_axis, y_axis)
    return ops.stack([x_axis, y_axis, z_axis], axis=1)


# The rotations are products summed over the three axes, not einsum's batched 3×3 matmul: the
# same numbers without oneDNN (bit for bit, eager and under XLA; oneDNN's einsum rounds the last
# bit otherwise), and under XLA one fused loop, where einsum's dot took twice as long in the
# SavedModel's compiled stages (serving.py).


def to_frame(rotations, vectors):
    """Vectors [batch, n, 3] in lab coordinates to frame coordinates: R·v for each row."""
    return ops.sum(rotations[:, None, :, :] * vectors[:, :, None, :], axis=-1)


def from_frame(rotations, vectors):
    """Vectors [batch, n, 3] in frame coordinates back to lab coordinates: Rᵀ·v."""
    return ops.sum(rotations[:, None, :, :] * vectors[:, :, :, None], axis=-2)


def _vectors(table):
    """A table [batch, 3n] as n vectors per row, [batch, n, 3]."""
    return ops.reshape(table, (-1, table.shape[-1] // 3, 3))


def table_rotations(frame: str, momenta, fragments=OCS_FRAGMENTS):
    """Rotations [batch, 3, 3] into `frame` for momentum tables [batch, 3n] (None for "lab")."""
    if frame == "lab":
        return None
    return momentum_frame(_vectors(momenta), fragments)


def rotate_table(rotations, table, back: bool = False):
    """A table [batch, 3n] of per-fragment vectors rotated into the frame (or `back`).

    With `rotations` None (the lab frame) the table is returned as is.
    """
    if rotations is None:
        return table
    rotate = from_frame if back else to_frame
    return ops.reshape(rotate(rotations, _vectors(table)), (-1, table.shape[-1]))


def model_frame_tables(
    frame: str, positions: np.ndarray, momenta: np.ndarray, fragments=OCS_FRAGMENTS
) -> tuple[np.ndarray, np.ndarray]:
    """Position and momentum tables [events, 3n] in the frame the model normalizes in (numpy)."""
    if frame == "lab" or not len(momenta):
        return np.asarray(positions), np.asarray(momenta)
    rotations = momentum_frame(_vectors(np.asarray(momenta)), fragments)
    return tuple(np.asarray(rotate_table(rotations, table)) for table in (positions, momenta))
