"""Events as every step passes them on: positions (bohr) and momenta (a.u.), (events, n, 3)."""

import dataclasses
from collections.abc import Sequence

import numpy as np

from cvae_tf.molecule import OCS

# Column order is fragment-major: C (x, y, z), O (x, y, z), S (x, y, z) for the default OCS.
POSITION_COLUMNS = OCS.position_columns
MOMENTUM_COLUMNS = OCS.momentum_columns


@dataclasses.dataclass(frozen=True)
class Events:
    """Positions (bohr) and momenta (a.u.), each shaped (events, fragments, 3 axes)."""

    positions: np.ndarray
    momenta: np.ndarray

    def __len__(self) -> int:
        return len(self.momenta)

    def __getitem__(self, rows) -> "Events":
        """The events at `rows` (an index array, a mask or a slice)."""
        return Events(positions=self.positions[rows], momenta=self.momenta[rows])

    @property
    def num_fragments(self) -> int:
        return self.momenta.shape[1]


def to_events_array(table: np.ndarray) -> np.ndarray:
    """(events, 3n) fragment-major columns to (events, n fragments, 3 axes)."""
    table = np.asarray(table)
    return table.reshape(-1, table.shape[-1] // 3, 3)


def to_table(values: np.ndarray) -> np.ndarray:
    """(events, n fragments, 3 axes) to (events, 3n) fragment-major columns."""
    values = np.asarray(values)
    return values.reshape(-1, values.shape[-2] * 3)


def events_from_columns(values: np.ndarray) -> Events:
    """Events from a table [events, 6n]: the 3n position columns (bohr), then the momenta's."""
    half = values.shape[1] // 2
    return Events(
        positions=to_events_array(values[:, :half]), momenta=to_events_array(values[:, half:])
    )


def concatenate(parts: Sequence[Events]) -> Events:
    """The events of `parts` one after another."""
    return Events(
        positions=np.concatenate([part.positions for part in parts]),
        momenta=np.concatenate([part.momenta for part in parts]),
    )
