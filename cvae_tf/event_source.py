"""The events of the files --data names, read block by block, each row with its part of the split.

Every reader goes through `event_files.read_column_chunks` (the same checks and one-line errors as
loading a file whole) and `split.split_parts` (each row's part from a hash of its seed, file and
row), so a streamed run and an in-memory run of the same files see the same events in the same
parts.
"""

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cvae_tf import data, event_files, split


@dataclasses.dataclass(frozen=True)
class Block:
    """Consecutive data rows of one file: raw events, their row numbers and parts."""

    file_index: int
    rows: np.ndarray  # data-row numbers within the file, from 0
    events: data.Events  # positions (bohr) and momenta (a.u.) as stored
    parts: np.ndarray  # split.TRAIN, split.VALIDATION or split.TEST per row


@dataclasses.dataclass(frozen=True)
class EventSource:
    """CSV or Parquet files of events with a deterministic per-row split, read block by block."""

    files: tuple[Path, ...]
    position_columns: tuple[str, ...] = data.POSITION_COLUMNS
    momentum_columns: tuple[str, ...] = data.MOMENTUM_COLUMNS
    train_fraction: float = 0.7
    val_fraction: float = 0.15
    seed: int = 0
    block_rows: int = event_files.CHUNK_ROWS

    def blocks(self) -> Iterator[Block]:
        """The files' rows in order, `block_rows` at a time, each row with its part."""
        columns = [*self.position_columns, *self.momentum_columns]
        for file_index, path in enumerate(self.files):
            first_row = 0
            for values in event_files.read_column_chunks(path, columns, self.block_rows):
                rows = np.arange(first_row, first_row + len(values))
                first_row += len(values)
                yield Block(
                    file_index=file_index,
                    rows=rows,
                    events=data.events_from_columns(values),
                    parts=split.split_parts(
                        rows, self.train_fraction, self.val_fraction, self.seed, file_index
                    ),
                )

    def load(self) -> tuple[data.Events, split.Split]:
        """Every event in memory, as stored, with the split's row indices into them."""
        blocks = list(self.blocks())
        events = data.concatenate([block.events for block in blocks])
        parts = np.concatenate([block.parts for block in blocks])
        return events, split.split_of_parts(parts, self.train_fraction, self.val_fraction)
