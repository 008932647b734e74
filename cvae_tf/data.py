"""Events as every step passes them on: positions (bohr) and momenta (a.u.), (events, 3, 3)."""

import dataclasses
from collections.abc import Sequence

import numpy as np

# Column order is atom-major: C (x, y, z), O (x, y, z), S (x, y, z), as in physics.ATOMS.
POSITION_COLUMNS = ("cx", "cy", "cz", "ox", "oy", "oz", "sx", "sy", "sz")
MOMENTUM_COLUMNS = ("pcx", "pcy", "pcz", "pox", "poy", "poz", "psx", "psy", "psz")


@dataclasses.dataclass(frozen=True)
class Events:
    """Positions (bohr) and momenta (a.u.), each shaped (events, 3 atoms, 3 axes)."""

    positions: np.ndarray
    momenta: np.ndarray

    def __len__(self) -> int:
        return len(self.momenta)

    def __getitem__(self, rows) -> "Events":
        """The events at `rows` (an index array, a mask or a slice)."""
        return Events(positions=self.positions[rows], momenta=self.momenta[rows])


def to_events_array(table: np.ndarray) -> np.ndarray:
    """(events, 9) atom-major columns to (events, 3 atoms, 3 axes)."""
    return np.asarray(table).reshape(-1, 3, 3)


def to_table(values: np.ndarray) -> np.ndarray:
    """(events, 3 atoms, 3 axes) to (events, 9) atom-major columns."""
    return np.asarray(values).reshape(-1, 9)


def events_from_columns(values: np.ndarray) -> Events:
    """Events from a table [events, 18]: the nine position columns (bohr), then the momenta's."""
    return Events(positions=to_events_array(values[:, :9]), momenta=to_events_array(values[:, 9:]))


def concatenate(parts: Sequence[Events]) -> Events:
    """The events of `parts` one after another."""
    return Events(
        positions=np.concatenate([part.positions for part in parts]),
        momenta=np.concatenate([part.momenta for part in parts]),
    )
