"""The training data's momenta summarized, and events out of distribution found by it.

Fitted at training time on the fixed training sample (up to 8192 events, raw momenta in a.u. in
the lab frame) and saved in the run folder as `training_momenta.json`:

- the kinetic energy release KER = Σ p²/(2m) (hartree, the molecule's masses): its quantiles
  and its range;
- the shape of the momenta: each event rotated into the momentum frame (frames.momentum_frame
  with the molecule's frame fragments) and divided by √KER, so that it measures shape, not
  scale; their mean and covariance, and the 99.9 % quantile on the sample of the Mahalanobis
  distance of each event from that mean.

The covariance is singular in directions the physics fixes: an event that starts at rest has
Σp = 0, and a triatomic's momenta lie in the frame's xy-plane. Those directions (eigenvalues
below EIGENVALUE_FLOOR of the largest) are left out of the distance, a pseudo-inverse, and a
ridge of RIDGE × (trace / dimension) is added to the rest, so that measured data with detector
noise or a little initial motion are not all flagged for components the training data held at
exactly zero.

Criterion: an event is out of distribution if its KER lies outside
[min KER·(1 − KER_MARGIN), max KER·(1 + KER_MARGIN)] of the training sample, or its shape
distance exceeds the sample's 99.9 % quantile × DISTANCE_MARGIN.

Measured (`python -m benchmarks.bench_out_of_distribution`: OCS, the summary fitted on 8,192
simulated training events, 20,000 events a set): fresh in-distribution events 0.03 % flagged;
momenta × 0.6 100 %; the C²⁺ + O²⁺ + S⁺ channel 72.6 %; a C–S bond prior stretched from 163 to
190 pm 100 %. Shifts the model's physics tolerates stay unflagged: zero-point motion of 3 a.u.
0.06 %, a 1 % detector resolution 0.03 % (with the exact zeros kept in the distance, that
resolution was flagged 62–100 % for ridges of 10⁻³–10⁻⁶).
"""

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

from cvae_tf import file_writes, frames, physics
from cvae_tf.errors import UserInputError
from cvae_tf.molecule import Molecule

TRAINING_MOMENTA_FILE = "training_momenta.json"
KER_PERCENTILES = (0.1, 1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0, 99.9)
DISTANCE_PERCENTILE = 99.9
KER_MARGIN = 0.05  # relative: the training range widened by 5 % each way
DISTANCE_MARGIN = 1.25  # the distance threshold: 1.25 × the sample's 99.9 % quantile
EIGENVALUE_FLOOR = 1e-9  # relative to the largest: directions the training data fix exactly
RIDGE = 1e-3  # relative to the mean eigenvalue, added to every kept direction


@dataclasses.dataclass(frozen=True)
class TrainingMomenta:
    """KER quantiles and range (hartree), the shape's mean and covariance, the distance quantile.

    Attributes:
      masses: the molecule's masses (mₑ), for the KER.
      frame_fragments: the momentum frame's fragments (molecule.Molecule.frame_fragments).
      num_events: events in the training sample it was fitted on.
      ker_percentiles: {percent: KER in hartree} at KER_PERCENTILES.
      ker_min, ker_max: the sample's KER range, hartree.
      shape_mean: mean of the momentum-frame momenta / √KER, [3n] (a.u./√hartree).
      shape_covariance: their covariance, [3n, 3n].
      distance_quantile: the sample's DISTANCE_PERCENTILE % quantile of the shape distance.
    """

    masses: tuple[float, ...]
    frame_fragments: tuple[int, int, int]
    num_events: int
    ker_percentiles: dict[float, float]
    ker_min: float
    ker_max: float
    shape_mean: tuple[float, ...]
    shape_covariance: tuple[tuple[float, ...], ...]
    distance_quantile: float

    @property
    def ker_bounds(self) -> tuple[float, float]:
        """The KER range (hartree) inside which an event counts as like the training data."""
        return self.ker_min * (1 - KER_MARGIN), self.ker_max * (1 + KER_MARGIN)

    @property
    def distance_threshold(self) -> float:
        """The shape distance above which an event counts as unlike the training data."""
        return self.distance_quantile * DISTANCE_MARGIN

    @functools.cached_property
    def _precision(self) -> np.ndarray:
        return regularized_precision(np.asarray(self.shape_covariance))

    def kinetic_energy_release(self, momenta_table: np.ndarray) -> np.ndarray:
        """KER (hartree) [events] of raw momenta [events, 3n] (a.u.)."""
        return kinetic_energy_release(momenta_table, np.asarray(self.masses))

    def shape_distances(self, momenta_table: np.ndarray) -> np.ndarray:
        """Mahalanobis distance [events] of each event's momentum shape from the training mean."""
        shapes = momentum_shapes(momenta_table, np.asarray(self.masses), self.frame_fragments)
        offsets = shapes - np.asarray(self.shape_mean)
        return np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", offsets, self._precision, offsets), 0))

    def reasons(self, momenta_table: np.ndarray) -> dict[str, np.ndarray]:
        """Per event (bool): KER below / above the range, shape beyond the distance threshold.

        Keys: ker_below, ker_above, shape_unlike. An event whose shape cannot be computed (no
        momentum at all) counts as unlike.
        """
        kinetic = self.kinetic_energy_release(momenta_table)
        low, high = self.ker_bounds
        with np.errstate(invalid="ignore", divide="ignore"):
            distances = self.shape_distances(momenta_table)
        return {
            "ker_below": kinetic < low,
            "ker_above": kinetic > high,
            "shape_unlike": ~(distances <= self.distance_threshold),  # NaN: unlike
        }

    def out_of_distribution(self, momenta_table: np.ndarray) -> np.ndarray:
        """Whether each event [events] is unlike anything in the training data (bool)."""
        reasons = self.reasons(momenta_table)
        return reasons["ker_below"] | reasons["ker_above"] | reasons["shape_unlike"]

    def to_dict(self) -> dict:
        """The summary as JSON values (what training_momenta.json holds)."""
        values = dataclasses.asdict(self)
        percentiles = self.ker_percentiles.items()
        values["ker_percentiles"] = {f"{key:g}": value for key, value in percentiles}
        values["criterion"] = {
            "ker_margin": KER_MARGIN,
            "distance_percentile": DISTANCE_PERCENTILE,
            "distance_margin": DISTANCE_MARGIN,
        }
        return values

    def write(self, folder: Path) -> None:
        """Writes training_momenta.json into the run folder `folder`."""
        text = json.dumps(self.to_dict(), indent=2)
        file_writes.write_text(Path(folder) / TRAINING_MOMENTA_FILE, text + "\n")


def kinetic_energy_release(momenta_table: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Σ p²/(2m) in hartree [events] of momenta [events, 3n] (a.u.), masses (mₑ) [n]."""
    momenta = np.asarray(momenta_table, dtype=np.float64).reshape(len(momenta_table), -1, 3)
    return physics.kinetic_energy(momenta, masses)


def momentum_shapes(
    momenta_table: np.ndarray, masses: np.ndarray, frame_fragments: tuple[int, int, int]
) -> np.ndarray:
    """Momenta [events, 3n] rotated into the momentum frame and divided by √KER (a.u./√hartree)."""
    table = np.asarray(momenta_table, dtype=np.float64)
    rotations = frames.table_rotations("momentum", table, frame_fragments)
    rotated = np.asarray(frames.rotate_table(rotations, table), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return rotated / np.sqrt(kinetic_energy_release(table, masses))[:, None]


def regularized_precision(covariance: np.ndarray) -> np.ndarray:
    """The pseudo-inverse of a covariance, exact zeros dropped and a relative ridge added."""
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    kept = eigenvalues > EIGENVALUE_FLOOR * max(eigenvalues.max(), 0.0)
    if not kept.any():
        return np.zeros_like(covariance)
    ridge = RIDGE * eigenvalues[kept].sum() / len(eigenvalues)
    vectors = eigenvectors[:, kept]
    return (vectors / (eigenvalues[kept] + ridge)) @ vectors.T


def fit(momenta_table: np.ndarray, fragments: Molecule) -> TrainingMomenta:
    """The summary of training momenta [events, 3n] (a.u., lab frame) of `fragments`."""
    table = np.asarray(momenta_table, dtype=np.float64)
    masses = fragments.mass_array
    kinetic = kinetic_energy_release(table, masses)
    shapes = momentum_shapes(table, masses, fragments.frame_fragments)
    usable = np.isfinite(shapes).all(axis=1)
    shapes = shapes[usable]
    mean = shapes.mean(axis=0)
    covariance = np.atleast_2d(np.cov(shapes, rowvar=False)) if len(shapes) > 1 else None
    if covariance is None:
        covariance = np.zeros((table.shape[1], table.shape[1]))
    offsets = shapes - mean
    precision = regularized_precision(covariance)
    distances = np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", offsets, precision, offsets), 0))
    percentiles = np.percentile(kinetic, KER_PERCENTILES)
    return TrainingMomenta(
        masses=tuple(float(mass) for mass in masses),
        frame_fragments=tuple(int(index) for index in fragments.frame_fragments),
        num_events=len(table),
        ker_percentiles=dict(zip(KER_PERCENTILES, map(float, percentiles), strict=True)),
        ker_min=float(kinetic.min()),
        ker_max=float(kinetic.max()),
        shape_mean=tuple(float(value) for value in mean),
        shape_covariance=tuple(tuple(float(value) for value in row) for row in covariance),
        distance_quantile=float(np.percentile(distances, DISTANCE_PERCENTILE)),
    )


def read(model_dir: Path) -> TrainingMomenta:
    """The training_momenta.json of a run folder; a damaged one refused in one line."""
    path = Path(model_dir) / TRAINING_MOMENTA_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        return TrainingMomenta(
            masses=tuple(float(mass) for mass in values["masses"]),
            frame_fragments=tuple(int(index) for index in values["frame_fragments"]),
            num_events=int(values["num_events"]),
            ker_percentiles={float(k): float(v) for k, v in values["ker_percentiles"].items()},
            ker_min=float(values["ker_min"]),
            ker_max=float(values["ker_max"]),
            shape_mean=tuple(float(value) for value in values["shape_mean"]),
            shape_covariance=tuple(
                tuple(float(value) for value in row) for row in values["shape_covariance"]
            ),
            distance_quantile=float(values["distance_quantile"]),
        )
    except OSError as error:
        raise UserInputError(
            f"--model_dir='{model_dir}' has an unreadable {TRAINING_MOMENTA_FILE}: {error.strerror}"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserInputError(
            f"--model_dir='{model_dir}' has a damaged {TRAINING_MOMENTA_FILE}: a damaged run "
            "folder; retrain, or copy the folder again"
        ) from None
