"""Optimal rotations (Kabsch) between point sets, and positions re-framed to match their momenta."""

import numpy as np

from cvae_tf import data, physics, simulator
from cvae_tf.errors import UserInputError
from cvae_tf.molecule import OCS, Molecule


def kabsch_rotations(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Proper rotations R minimizing Σ_k w_k |R·source_k − target_k|², one per event.

    Kabsch (1976): with H = Σ_k w_k source_k target_kᵀ = U S Vᵀ, R = V diag(1, 1, d) Uᵀ where
    d = sign det(V Uᵀ) turns a reflection into the best proper rotation. No translation is fitted:
    centre both point sets first where the origin should not count.

    Args:
        source: (events, points, 3) vectors to rotate.
        target: same shape, the vectors to match.
        weights: (points,) or (events, points) non-negative weights; None weighs all points 1.

    Returns:
        Rotation matrices (events, 3, 3) with determinant +1, acting as R @ vector.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.ndim != 3 or source.shape[-1] != 3 or source.shape != target.shape:
        raise ValueError(
            f"source and target must share a shape (events, points, 3); received {source.shape} "
            f"and {target.shape}"
        )
    if weights is None:
        weights = np.ones(source.shape[:2])
    weights = np.broadcast_to(np.asarray(weights, dtype=np.float64), source.shape[:2])
    if np.any(weights < 0):
        raise ValueError("weights must be non-negative")
    covariance = np.einsum("nk,nki,nkj->nij", weights, source, target)
    left, _, right_transposed = np.linalg.svd(covariance)
    # det(V Uᵀ) = det(Vᵀ)·det(U) for orthogonal factors: ±1, never 0.
    sign = np.sign(np.linalg.det(left) * np.linalg.det(right_transposed))
    right = np.swapaxes(right_transposed, -1, -2)
    right[..., :, 2] *= sign[:, None]
    return right @ np.swapaxes(left, -1, -2)


def rotate(rotations: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """R @ v for each event's rotation (events, 3, 3) and its vectors (events, points, 3)."""
    return np.einsum("nij,nkj->nki", rotations, vectors)


def rotation_angles(rotations: np.ndarray) -> np.ndarray:
    """Rotation angle in degrees, in [0, 180], of each matrix (..., 3, 3): cos θ = (tr R − 1)/2."""
    cosine = (np.trace(rotations, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def relative_mismatch(momenta: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|momenta − reference| / |reference| per event, norms over all nine components."""
    difference = np.linalg.norm((momenta - reference).reshape(len(reference), -1), axis=-1)
    return difference / np.linalg.norm(np.reshape(reference, (len(reference), -1)), axis=-1)


def center_positions(positions: np.ndarray, masses: np.ndarray = physics.MASSES) -> np.ndarray:
    """Positions (..., fragments, 3 axes) in bohr relative to their centre of mass."""
    return positions - physics.center_of_mass(positions, masses)[..., None, :]


def superposition_rmsd(predicted_positions: np.ndarray, true_positions: np.ndarray) -> np.ndarray:
    """RMSD in bohr over the fragments after optimal superposition, per event.

    Both geometries are centred on their plain centroid and the predicted one rotated onto the
    true one (Kabsch), so the figure ignores frame and origin conventions.
    """
    predicted = predicted_positions - np.mean(predicted_positions, axis=-2, keepdims=True)
    true = true_positions - np.mean(true_positions, axis=-2, keepdims=True)
    superposed = rotate(kabsch_rotations(predicted, true), predicted)
    return np.sqrt(np.mean(np.sum(np.square(superposed - true), axis=-1), axis=-1))


def align_events(events: data.Events, fragments: Molecule = OCS) -> tuple[data.Events, np.ndarray]:
    """Positions rotated into their momenta's frame and centred on the centre of mass.

    For each event the centred positions are exploded with the simulator (the molecule's
    masses and charges), and the rotation that
    best maps the simulated momenta onto the given ones (Kabsch, equal weights) is applied to the
    positions: the explosion commutes with rotations, so the rotated positions explode into
    momenta as close to the given ones as the physics allows.

    Returns:
        The repaired events (momenta unchanged) and each event's residual mismatch
        |R·p_simulated − p_given| / |p_given| (norms over all nine components).
    """
    with np.errstate(divide="ignore"):
        potential = physics.potential_energy(events.positions, fragments.charge_array)
        coincident = np.flatnonzero(~np.isfinite(potential))
    if coincident.size:
        listed = ", ".join(str(row + 1) for row in coincident[:5])
        more = ", ..." if coincident.size > 5 else ""
        raise UserInputError(
            f"{coincident.size} events (data rows {listed}{more}) "
            "have coincident atoms, which cannot be exploded; expected distinct positions"
        )
    centred = center_positions(events.positions, fragments.mass_array)
    simulated = simulator.explode(centred, None, fragments.mass_array, fragments.charge_array)
    rotations = kabsch_rotations(simulated, events.momenta)
    residual = relative_mismatch(rotate(rotations, simulated), events.momenta)
    return data.Events(positions=rotate(rotations, centred), momenta=events.momenta), residual
