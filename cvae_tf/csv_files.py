"""Event CSV files: the files --data names, reading with one-line errors, atomic writing."""

import codecs
import contextlib
import csv
import errno
import glob
import os
import stat
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from cvae_tf import csv_text, data, file_writes, signals
from cvae_tf.data import MOMENTUM_COLUMNS, POSITION_COLUMNS
from cvae_tf.errors import UserInputError

FLOAT_FORMAT = csv_text.FLOAT_FORMAT

_MAX_ROWS_LISTED = 5
# The model computes in float32 and squares each column's spread (normalization variance, MSE):
# a spread beyond √(3.4e38) ≈ 1.8e19 overflows. Physical values are far smaller (momenta
# ≲ 1e4 a.u., positions ≲ 1e3 bohr), so a magnitude over 1e18 can only be a corrupt cell.
MAX_MAGNITUDE = 1e18
# Separators a spreadsheet or another tool may have used instead of the comma, as we name them.
_OTHER_DELIMITERS = {";": "';' (semicolon)", "\t": "tab", "|": "'|' (bar)", " ": "spaces"}


CHUNK_ROWS = 65_536  # data rows read at a time when a file is read in blocks
_GLOB_CHARACTERS = frozenset("*?[")


def write_events_csv(
    path: str | os.PathLike,
    positions: np.ndarray | None,
    momenta: np.ndarray,
    position_columns: Sequence[str] = POSITION_COLUMNS,
    momentum_columns: Sequence[str] = MOMENTUM_COLUMNS,
) -> None:
    """Writes events as CSV, atomically: the file appears whole or not at all."""
    write_csv_atomically(path, events_frame(positions, momenta, position_columns, momentum_columns))


def events_frame(
    positions: np.ndarray | None,
    momenta: np.ndarray,
    position_columns: Sequence[str] = POSITION_COLUMNS,
    momentum_columns: Sequence[str] = MOMENTUM_COLUMNS,
) -> pd.DataFrame:
    """Events (events, 3, 3) as a table with one named column per coordinate."""
    columns = {}
    if positions is not None:
        columns.update(zip(position_columns, data.to_table(positions).T, strict=True))
    columns.update(zip(momentum_columns, data.to_table(momenta).T, strict=True))
    return pd.DataFrame(columns)


def write_csv(frame: pd.DataFrame, stream: BinaryIO, header: bool = True) -> None:
    """Writes the table as CSV the way every file here is written: FLOAT_FORMAT, no index.

    The bytes of pandas' to_csv, built by csv_text CHUNK_ROWS rows at a time, several times
    faster; rows csv_text cannot be sure of are written by to_csv itself (a row's line does
    not depend on the other rows), and so is a table whose names are not one line of strings.
    """
    head = csv_text.header_text(frame)
    if head is None:
        _pandas_csv(frame, stream, header)
        return
    if header:
        stream.write(head)
    for start in range(0, len(frame), CHUNK_ROWS):
        rows = frame.iloc[start : start + CHUNK_ROWS]
        text = csv_text.rows_text(rows)
        if text is None:
            _pandas_csv(rows, stream, header=False)
        else:
            stream.write(text)


def _pandas_csv(frame: pd.DataFrame, stream: BinaryIO, header: bool) -> None:
    frame.to_csv(stream, header=header, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def write_csv_atomically(
    path: str | os.PathLike,
    frames: pd.DataFrame | Iterable[pd.DataFrame | bytes],
    reserve_bytes: int = 0,
) -> None:
    """Writes a table, or a stream of same-column tables, atomically and durably to `path` as CSV.

    The tables go one at a time (one header) into a temporary file beside `path`, which is
    fsynced and renamed into place only when complete; memory holds one table at a time. A table
    in the stream may come already as its CSV text, UTF-8 bytes (the header in the first only):
    the simulate command's worker processes format their chunks so that the writer only writes.
    With `reserve_bytes` the disk space is reserved first, so that a full disk or a file-size
    limit fails before the first table is made rather than after. A write that fails (full
    disk, ulimit -f, read-only, not writable) raises file_writes.WriteError and leaves no file.
    """
    if isinstance(frames, pd.DataFrame):
        frames = [frames]
    with atomic_file(path, reserve_bytes) as handle, os.fdopen(handle, "wb") as stream:
        for index, frame in enumerate(frames):
            if isinstance(frame, bytes):
                stream.write(frame)
            else:
                write_csv(frame, stream, header=index == 0)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, reserve_bytes: int = 0) -> Iterator[int]:
    """The open descriptor of a flocked temporary file beside `path`, renamed to it when complete.

    The caller writes the file's content through the descriptor (wrapping it in a stream it
    closes when done, which closes the descriptor too); once the block ends without error the
    file is fsynced and renamed into place, while still locked, and the folder fsynced. With
    `reserve_bytes` the disk space is reserved first; the unused tail goes at the end. A write
    that fails or is interrupted leaves no file and no temporary (file_writes.WriteError, or
    signals' one line).
    """
    path = Path(path)
    with file_writes.writing(path):
        remove_abandoned_temporaries(path)
        handle, temporary = _locked_temporary(path)
        # The caller's stream closes `handle`; a duplicate keeps the lock and the file open
        # until the rename (flock belongs to the open file, which both descriptors share).
        kept = os.dup(handle)
        try:
            # mkstemp makes the file private (0600); give it the mode open() would have.
            os.fchmod(kept, 0o666 & ~_umask())
            if reserve_bytes:
                _reserve(kept, reserve_bytes)
            yield handle
            if reserve_bytes:  # the reservation's unused tail goes
                os.ftruncate(kept, os.lseek(kept, 0, os.SEEK_CUR))
            os.fsync(kept)  # the content on the disk before the name points at it
            # Renamed while still open, so locked: a file under a .tmp name is never
            # unlocked while its writer lives, which remove_abandoned_temporaries relies on.
            os.replace(temporary, path)
        except BaseException as error:
            Path(temporary).unlink(missing_ok=True)
            interrupt = signals.interruption(error)  # Ctrl-C, SIGTERM, SIGHUP: see signals
            if interrupt is None:
                raise
            existing = "the existing file is unchanged" if path.exists() else "no file was written"
            raise signals.reworded(
                interrupt, f"stopped before '{path}' was complete; {existing}"
            ) from None
        finally:
            os.close(kept)
        file_writes.fsync_directory(path.parent)  # and the rename itself


def _reserve(handle: int, size: int) -> None:
    """Allocates `size` bytes of disk for the open file (its length becomes `size`)."""
    try:
        os.posix_fallocate(handle, 0, size)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):  # no reservation there: write
            raise


def remove_abandoned_temporaries(path: str | os.PathLike) -> list[Path]:
    """Removes the temporary files of writers of `path` that died (SIGKILL); returns them.

    write_csv_atomically holds an flock on its temporary file `.<name>.*.tmp` as long as the
    file has that name (file_writes.locked_new), so an unlocked one is provably abandoned.
    """
    path = Path(path)
    return file_writes.remove_abandoned(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))


def _locked_temporary(path: Path) -> tuple[int, str]:
    """A new temporary file beside `path`, open and flocked: its descriptor and name."""
    return file_writes.locked_new(
        lambda: tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    )


def _umask() -> int:
    """The process's file-creation mask, read without changing it (from /proc where possible)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: the only portable way to read it is to set it
    os.umask(mask)
    return mask


def read_header(path: str | os.PathLike) -> list[str]:
    """The CSV's column names, stripped of surrounding white space; errors if there are none."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"data file '{path}' does not exist; expected a CSV file")
    kind = special_file_kind(path)
    if kind:
        raise UserInputError(f"data file '{path}' is {kind}; expected a regular CSV file")
    try:
        with open(path, "rb") as stream:
            start = stream.read(65536)
        if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise UserInputError(
                f"data file '{path}' is UTF-16 text; expected UTF-8 (save it as 'CSV UTF-8')"
            )
        if b"\x00" in start:  # NUL bytes: a binary file (image, archive, spreadsheet), not a CSV.
            raise UserInputError(f"data file '{path}' is not a text CSV file (binary content)")
        with open(path, newline="", encoding="utf-8-sig") as stream:
            header = next(csv.reader(stream, skipinitialspace=True), None)
    except UnicodeDecodeError:
        raise UserInputError(f"data file '{path}' is not a UTF-8 text CSV file") from None
    except OSError as error:  # e.g. no read permission
        raise UserInputError(f"data file '{path}' cannot be read: {error.strerror}") from None
    if header is None:
        raise UserInputError(f"data file '{path}' is empty; expected a header line of column names")
    if not any(name.strip() for name in header):
        raise UserInputError(
            f"data file '{path}' starts with an empty line; expected a header line of column names"
        )
    return [name.strip() for name in header]


# What os.stat says a path is, for every kind a reader must refuse before it opens the path.
_SPECIAL_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe), which would wait for a writer"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def special_file_kind(path: str | os.PathLike) -> str | None:
    """What `path` is in words if it is no regular file (FIFO, device, socket, folder), else None.

    Asked before a path is opened: opening a FIFO blocks until a writer comes, and a device such
    as /dev/zero never ends, so these are refused by what they are rather than by what they hold.
    """
    try:
        mode = os.stat(path).st_mode  # follows links: what a link points to is what is read
    except OSError:
        return None  # missing or unreachable: the open that follows names the reason
    for is_kind, kind in _SPECIAL_KINDS:
        if is_kind(mode):
            return kind
    return None if stat.S_ISREG(mode) else "not a regular file"


def _check_delimiter(path: Path, header: Sequence[str], wanted: Sequence[str]) -> None:
    """Errors when the header is one column that another separator would split."""
    if len(header) != 1 or len(wanted) < 2:
        return
    counts = {mark: header[0].count(mark) for mark in _OTHER_DELIMITERS}
    mark = max(counts, key=counts.get)
    if counts[mark]:
        shown = header[0] if len(header[0]) <= 40 else header[0][:37] + "..."
        raise UserInputError(
            f"data file '{path}' has a single column {shown!r}: it looks separated by "
            f"{_OTHER_DELIMITERS[mark]}; expected comma-separated values"
        )


def check_columns(path: str | os.PathLike, header: Sequence[str], wanted: Sequence[str]) -> None:
    """Errors naming a wrong separator, duplicate or missing columns, listing the columns found."""
    _check_delimiter(Path(path), header, wanted)
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise UserInputError(f"data file '{path}' has duplicate column names {duplicates}")
    missing = [name for name in wanted if name not in header]
    if missing:
        raise UserInputError(
            f"data file '{path}' lacks columns {missing}; columns found: {list(header)}"
        )


def read_column_chunks(
    path: str | os.PathLike, columns: Sequence[str], chunk_rows: int = CHUNK_ROWS
) -> Iterator[np.ndarray]:
    """The named numeric columns as float64 blocks (rows, len(columns)), row-level errors.

    Reads `chunk_rows` data rows at a time, so a file larger than memory can be streamed; every
    block is checked as it is read (non-numeric, NaN, infinite and absurd values are named with
    their row and line). Blank lines are skipped and do not count as data rows.
    """
    for values, _ in _blocks(path, columns, chunk_rows, as_text=False):
        yield values


def read_kept_chunks(
    path: str | os.PathLike, columns: Sequence[str], chunk_rows: int = CHUNK_ROWS
) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """As read_column_chunks, each block with every column of the file as its text, in order.

    The text is the cells as written (after the spaces that follow a comma), so an event id
    such as 12345678901234567890 or "run7-000123" comes back exactly; an empty cell is "".
    """
    yield from _blocks(path, columns, chunk_rows, as_text=True)


def _blocks(
    path: str | os.PathLike, columns: Sequence[str], chunk_rows: int, as_text: bool
) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """(checked values, the block as read) `chunk_rows` data rows at a time; one-line errors."""
    header = read_header(path)
    check_columns(path, header, columns)
    first_row = 0
    # As text, every cell stays a string; the wanted columns are then read as numbers the way
    # pandas would have (its default missing-value words become NaN, named by the NaN check).
    text = {"dtype": str, "keep_default_na": False} if as_text else {}
    try:
        # All columns, not usecols: pandas' usecols silently accepts rows with extra cells. An
        # extra cell in the first data row only warns (and is dropped): make that an error too.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            with pd.read_csv(
                path,
                skipinitialspace=True,
                encoding="utf-8-sig",
                index_col=False,
                chunksize=chunk_rows,
                **text,
            ) as reader:
                for frame in reader:
                    frame.columns = header
                    numbers = _numbers_of_text(frame, columns) if as_text else frame
                    yield checked_values(path, numbers, columns, first_row), frame
                    first_row += len(frame)
    except pd.errors.ParserWarning:
        raise UserInputError(
            f"data file '{path}' is not a well-formed CSV: {_first_long_row(path, len(header))}"
        ) from None
    except UnicodeDecodeError:
        raise UserInputError(f"data file '{path}' is not a UTF-8 text CSV file") from None
    except pd.errors.ParserError as error:  # e.g. a row with more cells than the header
        reason = str(error).strip().splitlines()[-1]
        raise UserInputError(f"data file '{path}' is not a well-formed CSV: {reason}") from None
    if first_row == 0:
        raise UserInputError(f"data file '{path}' has a header but no data rows")


# pandas' default missing-value words (read_csv's na_values documentation): as text, these are
# what read_csv would have read as NaN in a numeric column.
_MISSING_WORDS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"}
    | {"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)


def _numbers_of_text(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The text block's `columns` with missing words as NaN, other cells left for the check."""
    return pd.DataFrame(
        {name: frame[name].where(~frame[name].isin(_MISSING_WORDS)) for name in columns}
    )


def read_columns(path: str | os.PathLike, columns: Sequence[str]) -> np.ndarray:
    """Reads the named numeric columns as float64 (events, len(columns)) with row-level errors."""
    return np.concatenate(list(read_column_chunks(path, columns)))


def checked_values(
    path: str | os.PathLike,
    frame: pd.DataFrame,
    columns: Sequence[str],
    first_row: int,
    has_lines: bool = True,
) -> np.ndarray:
    """A block of `frame`'s `columns` as float64; errors name the file's row (and line, in CSV).

    Text cells that are numbers (stray spaces allowed) convert; NaN, infinite and absurd values
    are refused. `has_lines=False` (Parquet) leaves the CSV line numbers out of the errors.
    """
    frame = frame[list(columns)]

    def line(row: int) -> str:
        return f" (line {row + 2})" if has_lines else ""

    for name in columns:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            # Text cells: numbers with stray spaces convert; anything else is named.
            as_number = pd.to_numeric(frame[name].astype(str).str.strip(" \t"), errors="coerce")
            junk = np.flatnonzero((as_number.isna() & frame[name].notna()).to_numpy())
            if junk.size:
                row = first_row + int(junk[0])
                raise UserInputError(
                    f"data file '{path}' column '{name}' has a non-numeric value "
                    f"{frame[name].iloc[int(junk[0])]!r} in data row {row + 1}{line(row)}; "
                    "expected numbers"
                )
            frame[name] = as_number
    values = frame.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    bad_rows = np.flatnonzero(~finite.all(axis=1))
    if bad_rows.size:
        listed = ", ".join(str(first_row + row + 1) for row in bad_rows[:_MAX_ROWS_LISTED])
        more = f" and {bad_rows.size - _MAX_ROWS_LISTED} more" if bad_rows.size > 5 else ""
        column = columns[int(np.flatnonzero(~finite[bad_rows[0]])[0])]
        raise UserInputError(
            f"data file '{path}' has NaN or infinite values in data rows {listed}{more} "
            f"(first in column '{column}'); expected finite numbers"
        )
    huge = np.abs(values) > MAX_MAGNITUDE
    if huge.any():
        row, index = (int(i) for i in np.argwhere(huge)[0])
        raise UserInputError(
            f"data file '{path}' column '{columns[index]}' has the value {values[row, index]:g} in "
            f"data row {first_row + row + 1}{line(first_row + row)}, beyond "
            f"±{MAX_MAGNITUDE:g}; expected positions in bohr and momenta in a.u. (the model "
            "computes in float32)"
        )
    return values


def _first_long_row(path: str | os.PathLike, num_columns: int) -> str:
    """Where a data row has more cells than the header has names, in words."""
    with open(path, newline="", encoding="utf-8-sig") as stream:
        rows = csv.reader(stream, skipinitialspace=True)
        next(rows)
        for number, row in enumerate(rows, start=1):
            if len(row) > num_columns:
                return (
                    f"data row {number} (line {rows.line_num}) has {len(row)} cells, the header "
                    f"{num_columns} names"
                )
    return f"a data row has more cells than the header's {num_columns} names"


def data_files(spec: str) -> tuple[Path, ...]:
    """The files that `--data` names: a path, a glob of shards, or a comma-separated list.

    CSV and Parquet files may be mixed: each is read by its own suffix (event_files).

    A glob (`shards/*.csv`; quote it in the shell) expands in sorted order, so a file's index,
    which enters the split, does not depend on the file system's listing order.

    Raises:
      UserInputError: a path that is not a file, a glob that matches no file, a file named twice.
    """
    files = []
    for item in (item.strip() for item in spec.split(",")):
        if not item:
            continue
        if _GLOB_CHARACTERS & set(item):
            matches = sorted(Path(name) for name in glob.glob(os.path.expanduser(item)))
            matches = [path for path in matches if path.is_file()]
            if not matches:
                raise UserInputError(
                    f"--data pattern '{item}' matches no file; expected CSV or Parquet files, "
                    "e.g. --data='shards/*.csv'"
                )
            files.extend(matches)
        elif special_file_kind(item):
            raise UserInputError(
                f"--data='{item}' is {special_file_kind(item)}; expected a regular CSV or "
                "Parquet file"
            )
        elif not Path(item).is_file():
            raise UserInputError(f"--data='{item}' is not a file; expected a CSV or Parquet file")
        else:
            files.append(Path(item))
    if not files:
        raise UserInputError(
            f"--data={spec!r} names no file; expected a CSV or Parquet file or a glob"
        )
    resolved = [path.resolve() for path in files]
    twice = sorted({str(path) for path in files if resolved.count(path.resolve()) > 1})
    if twice:
        raise UserInputError(f"--data names {twice} more than once; expected each file once")
    return tuple(files)


def total_bytes(files: Sequence[Path]) -> int:
    """The files' combined size in bytes."""
    return sum(path.stat().st_size for path in files)
