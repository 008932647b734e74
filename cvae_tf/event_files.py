"""An events file of either format: Parquet by its suffix (.parquet, .pq), CSV otherwise.

Every reader and writer of a user's file goes through here, so each command that takes a CSV
takes Parquet too, with the same checks and one-line errors; CSV and Parquet files may be mixed
in one --data list.
"""

import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from cvae_tf import csv_files, data, parquet_files
from cvae_tf.data import MOMENTUM_COLUMNS, POSITION_COLUMNS

is_parquet = parquet_files.is_parquet
CHUNK_ROWS = csv_files.CHUNK_ROWS


def format_name(path: str | os.PathLike) -> str:
    """ "Parquet" or "CSV": the format `path` is read and written in."""
    return "Parquet" if is_parquet(path) else "CSV"


def read_header(path: str | os.PathLike) -> list[str]:
    """The file's column names, in order; a one-line error for a file that is none."""
    return (parquet_files if is_parquet(path) else csv_files).read_header(path)


def read_column_chunks(
    path: str | os.PathLike, columns: Sequence[str], chunk_rows: int = CHUNK_ROWS
) -> Iterator[np.ndarray]:
    """The named numeric columns as checked float64 blocks (rows, len(columns))."""
    reader = parquet_files if is_parquet(path) else csv_files
    return reader.read_column_chunks(path, columns, chunk_rows)


def read_kept_chunks(
    path: str | os.PathLike, columns: Sequence[str], chunk_rows: int = CHUNK_ROWS
) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """The named columns as checked float64 blocks, each with every column of the file as read.

    CSV cells come as their text (an id keeps every digit), Parquet columns in their own types.
    """
    reader = parquet_files if is_parquet(path) else csv_files
    return reader.read_kept_chunks(path, columns, chunk_rows)


def read_columns(path: str | os.PathLike, columns: Sequence[str]) -> np.ndarray:
    """The named numeric columns as float64 (events, len(columns)), checked."""
    return np.concatenate(list(read_column_chunks(path, columns)))


def load_events(
    path: str | os.PathLike,
    position_columns: Sequence[str] = POSITION_COLUMNS,
    momentum_columns: Sequence[str] = MOMENTUM_COLUMNS,
) -> data.Events:
    """Positions (bohr) and momenta (a.u.) of every event, any column order, by column name."""
    return data.events_from_columns(read_columns(path, [*position_columns, *momentum_columns]))


def count_events(path: str | os.PathLike) -> int:
    """The file's events: Parquet's metadata row count, or a CSV's lines after the header.

    For a CSV an estimate from above (blank lines count), read at disk speed without parsing.
    """
    if is_parquet(path):
        return parquet_files.count_rows(path)
    lines, last = 0, b""
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block
    return max(0, lines - (1 if last.endswith(b"\n") else 0))


def write_atomically(
    path: str | os.PathLike, frames: pd.DataFrame | Iterable[pd.DataFrame], reserve_bytes: int = 0
) -> None:
    """Writes a table, or a stream of same-column tables, atomically in `path`'s format."""
    if is_parquet(path):
        parquet_files.write_atomically(path, frames, reserve_bytes)
    else:
        csv_files.write_csv_atomically(path, frames, reserve_bytes)


def bytes_per_value(path: str | os.PathLike) -> int:
    """An upper bound on a written float's bytes: 9 in Parquet, 20 as CSV text ("%.12g", comma)."""
    return parquet_files.MAX_BYTES_PER_VALUE if is_parquet(path) else 20
