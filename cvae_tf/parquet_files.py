"""Event Parquet files: reading in row batches with csv_files' one-line errors, atomic writing."""

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cvae_tf import csv_files
from cvae_tf.errors import UserInputError

SUFFIXES = (".parquet", ".pq")
# Upper bound on a float64 value's bytes in a file written here: 8 plain-encoded (no
# dictionary, see write_atomically), snappy's few bytes per 64 KiB block of random digits, and
# the page and row-group headers; reserved before simulate writes, as for its CSV.
MAX_BYTES_PER_VALUE = 9
MAX_BYTES_PER_ROW_GROUP = 64 * 1024  # its metadata in the footer, the column chunks' headers


def is_parquet(path: str | os.PathLike) -> bool:
    """Whether `path` names a Parquet file: by its suffix, .parquet or .pq (any case)."""
    return Path(path).suffix.lower() in SUFFIXES


def open_file(path: str | os.PathLike) -> pq.ParquetFile:
    """The Parquet file at `path`, opened for reading; a one-line error naming what it is not."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"data file '{path}' does not exist; expected a Parquet file")
    kind = csv_files.special_file_kind(path)
    if kind:
        raise UserInputError(f"data file '{path}' is {kind}; expected a regular Parquet file")
    try:
        if path.stat().st_size == 0:
            raise UserInputError(f"data file '{path}' is empty; expected a Parquet file")
        return pq.ParquetFile(path)
    except OSError as error:  # e.g. no read permission (ArrowInvalid is no OSError)
        raise UserInputError(f"data file '{path}' cannot be read: {error.strerror}") from None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:  # not Parquet, or damaged
        reason = str(error).strip().splitlines()[0]
        raise UserInputError(
            f"data file '{path}' is not a readable Parquet file ({reason}); expected Parquet, "
            "or a .csv name for a CSV file"
        ) from None


def read_header(path: str | os.PathLike) -> list[str]:
    """The Parquet file's column names (its schema's top-level fields), in order."""
    return list(open_file(path).schema_arrow.names)


def count_rows(path: str | os.PathLike) -> int:
    """The file's data rows, from its metadata (nothing else is read)."""
    return open_file(path).metadata.num_rows


def read_column_chunks(
    path: str | os.PathLike, columns: Sequence[str], chunk_rows: int = csv_files.CHUNK_ROWS
) -> Iterator[np.ndarray]:
    """The named numeric columns as float64 blocks (rows, len(columns)), row-level errors.

    Only those columns are read, `chunk_rows` rows at a time (pyarrow's iter_batches), each
    block checked as csv_files checks a CSV's (a null reads as NaN, refused as one).
    """
    for values, _ in _blocks(path, columns, chunk_rows, keep=False):
        yield values


def read_kept_chunks(
    path: str | os.PathLike, columns: Sequence[str], chunk_rows: int = csv_files.CHUNK_ROWS
) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """As read_column_chunks, each block with every column of the file, in its own type."""
    yield from _blocks(path, columns, chunk_rows, keep=True)


def _blocks(
    path: str | os.PathLike, columns: Sequence[str], chunk_rows: int, keep: bool
) -> Iterator[tuple[np.ndarray, pd.DataFrame | None]]:
    """(checked values, every column as pandas reads them, if `keep`) a row batch at a time."""
    parquet = open_file(path)
    schema = parquet.schema_arrow
    csv_files.check_columns(path, schema.names, columns)
    for name in columns:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise UserInputError(
                f"data file '{path}' column '{name}' holds {kind} values; expected numbers "
                "(a float or integer column)"
            )
    first_row = 0
    try:
        for batch in parquet.iter_batches(chunk_rows, columns=None if keep else list(columns)):
            numbers = pd.DataFrame(
                {name: batch.column(name).to_numpy(zero_copy_only=False) for name in columns}
            )
            values = csv_files.checked_values(path, numbers, columns, first_row, has_lines=False)
            yield values, batch.to_pandas() if keep else None
            first_row += batch.num_rows
    except (OSError, pa.ArrowInvalid) as error:  # a truncated or damaged row group
        reason = str(error).strip().splitlines()[0]
        raise UserInputError(
            f"data file '{path}' is damaged after data row {first_row}: {reason}"
        ) from None
    if first_row == 0:
        raise UserInputError(f"data file '{path}' has columns but no data rows")


def write_atomically(
    path: str | os.PathLike,
    tables: pd.DataFrame | pa.Table | Iterable[pd.DataFrame | pa.Table],
    reserve_bytes: int = 0,
) -> None:
    """Writes a table, or a stream of same-column tables, atomically to `path` as Parquet.

    One row group per table, through csv_files.atomic_file: a flocked temporary file beside
    `path`, fsynced and renamed into place when complete, so memory holds one table at a time
    and the file appears whole or not at all. Every table takes the first one's schema.
    """
    if isinstance(tables, pd.DataFrame | pa.Table):
        tables = [tables]
    with csv_files.atomic_file(path, reserve_bytes) as handle, os.fdopen(handle, "wb") as stream:
        writer = None
        try:
            for table in tables:
                if isinstance(table, pd.DataFrame):
                    schema = writer.schema if writer else None
                    table = pa.Table.from_pandas(table, schema=schema, preserve_index=False)
                if writer is None:
                    # Dictionaries only for non-float columns: positions and momenta never
                    # repeat, and their plain encoding keeps MAX_BYTES_PER_VALUE a bound.
                    repeating = [
                        field.name for field in table.schema if not pa.types.is_floating(field.type)
                    ]
                    writer = pq.ParquetWriter(stream, table.schema, use_dictionary=repeating)
                writer.write_table(table.cast(writer.schema))
        except BaseException:
            if writer is not None:
                with contextlib.suppress(Exception):  # the first error is the one to report
                    writer.close()
            raise
        if writer is not None:
            writer.close()  # writes the footer; the stream stays open (it is ours)


def max_bytes(num_values: int, num_row_groups: int) -> int:
    """An upper bound on the size of a file of `num_values` float64 values written here."""
    return num_values * MAX_BYTES_PER_VALUE + (num_row_groups + 1) * MAX_BYTES_PER_ROW_GROUP
