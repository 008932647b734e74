"""The hashed per-row split into training, validation and test parts, and the parts' sizes."""

import dataclasses
from collections.abc import Sequence

import numpy as np

from cvae_tf.errors import UserInputError

TRAIN, VALIDATION, TEST = 0, 1, 2  # the parts of the split, as split_parts numbers them
PART_NAMES = ("train", "validation", "test")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's increment: 2^64 / golden ratio


@dataclasses.dataclass(frozen=True)
class Split:
    """Row indices of the training, validation and test events."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def sizes(self) -> list[int]:
        """Events in the training, validation and test parts."""
        return [len(self.train), len(self.validation), len(self.test)]


def splitmix64(values) -> np.ndarray:
    """SplitMix64's output mix (Steele, Lea & Flood 2014) on uint64 values: a bijective hash."""
    x = np.asarray(values, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def split_parts(
    rows: np.ndarray, train_fraction: float, val_fraction: float, seed: int, file_index: int = 0
) -> np.ndarray:
    """The part each data row belongs to: TRAIN, VALIDATION or TEST (int8, shaped like rows).

    A row's part depends only on (seed, file_index, row): SplitMix64 hashes them to a uniform
    number u in [0, 1), and the row trains if u < train_fraction, validates if u <
    train_fraction + val_fraction, and tests otherwise. Streaming a file and loading it whole
    therefore split it identically, shards can be read in any order, and appending rows to a
    file never moves the rows already there. Part sizes follow the fractions up to binomial
    fluctuations (±√n).

    Args:
      rows: data-row numbers within the file, counted from 0 (blank lines do not count).
      train_fraction, val_fraction: the fractions, each in (0, 1), summing to below 1.
      seed: the run's seed, in [0, 2^32).
      file_index: the file's position in the run's sorted list of data files.
    """
    key = splitmix64((np.uint64(seed) << np.uint64(32)) | np.uint64(file_index))
    with np.errstate(over="ignore"):
        hashed = splitmix64(key + (np.asarray(rows, dtype=np.uint64) + np.uint64(1)) * _GOLDEN)
    uniform = (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.searchsorted(
        [train_fraction, train_fraction + val_fraction], uniform, side="right"
    ).astype(np.int8)


def check_part_sizes(sizes: Sequence[int], train_fraction: float, val_fraction: float) -> None:
    """Errors when the training, validation or test part received no event."""
    if min(sizes) < 1:
        raise UserInputError(
            f"{sum(sizes)} events are too few for a split of {train_fraction:g}/{val_fraction:g}/"
            f"{1 - train_fraction - val_fraction:g}: the parts got {'/'.join(map(str, sizes))} "
            "events and each needs at least one"
        )


def split_of_parts(parts: np.ndarray, train_fraction: float, val_fraction: float) -> Split:
    """The row indices of each part, given each row's part (split_parts' output, concatenated).

    Raises:
      UserInputError: if a part received no event.
    """
    split = Split(*(np.flatnonzero(parts == part) for part in (TRAIN, VALIDATION, TEST)))
    check_part_sizes(split.sizes(), train_fraction, val_fraction)
    return split
