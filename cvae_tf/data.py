"""Event CSV files: reading with clear errors, atomic writing, the split, the default data set."""

import csv
import dataclasses
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cvae_tf.cli import UserInputError

# Column order is atom-major: C (x, y, z), O (x, y, z), S (x, y, z), as in physics.ATOMS.
POSITION_COLUMNS = ("cx", "cy", "cz", "ox", "oy", "oz", "sx", "sy", "sz")
MOMENTUM_COLUMNS = ("pcx", "pcy", "pcz", "pox", "poy", "poz", "psx", "psy", "psz")

FLOAT_FORMAT = "%.12g"  # 12 significant digits: far below the simulator's 1e-8 energy accuracy.

DEFAULT_DATA_EVENTS = 50_000
DEFAULT_DATA_SEED = 20241123  # the specification's date; fixed so every user gets the same set.
_DEFAULT_DATA_VERSION = 1  # bump when the simulator's output for the default set changes.

_MAX_ROWS_LISTED = 5


@dataclasses.dataclass(frozen=True)
class Events:
    """Positions (bohr) and momenta (a.u.), each shaped (events, 3 atoms, 3 axes)."""

    positions: np.ndarray
    momenta: np.ndarray

    def __len__(self) -> int:
        return len(self.momenta)


@dataclasses.dataclass(frozen=True)
class Split:
    """Row indices of the training, validation and test events."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def to_events_array(table: np.ndarray) -> np.ndarray:
    """(events, 9) atom-major columns to (events, 3 atoms, 3 axes)."""
    return np.asarray(table).reshape(-1, 3, 3)


def to_table(values: np.ndarray) -> np.ndarray:
    """(events, 3 atoms, 3 axes) to (events, 9) atom-major columns."""
    return np.asarray(values).reshape(-1, 9)


def write_events_csv(
    path: str | os.PathLike,
    positions: np.ndarray | None,
    momenta: np.ndarray,
    position_columns: Sequence[str] = POSITION_COLUMNS,
    momentum_columns: Sequence[str] = MOMENTUM_COLUMNS,
) -> None:
    """Writes events as CSV, atomically: the file appears whole or not at all."""
    columns = {}
    if positions is not None:
        columns.update(zip(position_columns, to_table(positions).T, strict=True))
    columns.update(zip(momentum_columns, to_table(momenta).T, strict=True))
    write_csv_atomically(path, pd.DataFrame(columns))


def write_csv_atomically(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Writes a DataFrame to a temporary file beside `path`, then renames it into place."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="") as stream:
            frame.to_csv(stream, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_header(path: str | os.PathLike) -> list[str]:
    """The CSV's column names, stripped of surrounding white space; errors if there are none."""
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"data file '{path}' does not exist; expected a CSV file")
    if path.is_dir():
        raise UserInputError(f"data file '{path}' is a directory; expected a CSV file")
    with open(path, "rb") as stream:
        if b"\x00" in stream.read(65536):  # NUL bytes: a binary file, not a CSV.
            raise UserInputError(f"data file '{path}' is not a text CSV file (binary content)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            header = next(csv.reader(stream), None)
    except UnicodeDecodeError:
        raise UserInputError(f"data file '{path}' is not a UTF-8 text CSV file") from None
    if not header or not any(name.strip() for name in header):
        raise UserInputError(f"data file '{path}' is empty; expected a header line of column names")
    return [name.strip() for name in header]


def check_columns(path: str | os.PathLike, header: Sequence[str], wanted: Sequence[str]) -> None:
    """Errors naming duplicate or missing columns and listing the columns found."""
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise UserInputError(f"data file '{path}' has duplicate column names {duplicates}")
    missing = [name for name in wanted if name not in header]
    if missing:
        raise UserInputError(
            f"data file '{path}' lacks columns {missing}; columns found: {list(header)}"
        )


def read_columns(path: str | os.PathLike, columns: Sequence[str]) -> np.ndarray:
    """Reads the named numeric columns as float64 (events, len(columns)) with row-level errors."""
    header = read_header(path)
    check_columns(path, header, columns)
    try:
        # All columns, not usecols: pandas' usecols silently accepts rows with extra cells.
        frame = pd.read_csv(path, skipinitialspace=True, encoding="utf-8-sig", index_col=False)
    except UnicodeDecodeError:
        raise UserInputError(f"data file '{path}' is not a UTF-8 text CSV file") from None
    except pd.errors.ParserError as error:  # e.g. a row with more cells than the header
        reason = str(error).strip().splitlines()[-1]
        raise UserInputError(f"data file '{path}' is not a well-formed CSV: {reason}") from None
    frame.columns = header
    frame = frame[list(columns)]
    if frame.empty:
        raise UserInputError(f"data file '{path}' has a header but no data rows")
    for name in columns:
        if not pd.api.types.is_numeric_dtype(frame[name]):  # a cell that is not a number
            as_number = pd.to_numeric(frame[name], errors="coerce")
            row = int(np.flatnonzero((as_number.isna() & frame[name].notna()).to_numpy())[0])
            raise UserInputError(
                f"data file '{path}' column '{name}' has a non-numeric value "
                f"{frame[name].iloc[row]!r} in data row {row + 1} (line {row + 2}); "
                "expected numbers"
            )
    values = frame.to_numpy(dtype=np.float64)
    bad_rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad_rows.size:
        listed = ", ".join(str(row + 1) for row in bad_rows[:_MAX_ROWS_LISTED])
        more = f" and {bad_rows.size - _MAX_ROWS_LISTED} more" if bad_rows.size > 5 else ""
        raise UserInputError(
            f"data file '{path}' has NaN or infinite values in data rows {listed}{more}; "
            "expected finite numbers"
        )
    return values


def load_events(
    path: str | os.PathLike,
    position_columns: Sequence[str] = POSITION_COLUMNS,
    momentum_columns: Sequence[str] = MOMENTUM_COLUMNS,
) -> Events:
    """Reads positions (bohr) and momenta (a.u.) from a CSV, any column order, by column name."""
    values = read_columns(path, [*position_columns, *momentum_columns])
    return Events(positions=to_events_array(values[:, :9]), momenta=to_events_array(values[:, 9:]))


def load_momenta(
    path: str | os.PathLike, momentum_columns: Sequence[str] = MOMENTUM_COLUMNS
) -> np.ndarray:
    """Reads momenta only (a.u.), shaped (events, 3 atoms, 3 axes)."""
    return to_events_array(read_columns(path, momentum_columns))


def split_indices(num_events: int, train_fraction: float, val_fraction: float, seed: int) -> Split:
    """A deterministic shuffled split into train/validation/test row indices.

    Raises:
      UserInputError: if the fractions are out of range or a split would be empty.
    """
    if not (0 < train_fraction < 1 and 0 < val_fraction < 1):
        raise UserInputError(
            f"train_fraction={train_fraction} and val_fraction={val_fraction} must each lie "
            "in (0, 1)"
        )
    if train_fraction + val_fraction >= 1:
        raise UserInputError(
            f"train_fraction + val_fraction = {train_fraction + val_fraction:g} leaves no test "
            "events; expected a sum below 1"
        )
    num_train = round(train_fraction * num_events)
    num_val = round(val_fraction * num_events)
    num_test = num_events - num_train - num_val
    if min(num_train, num_val, num_test) < 1:
        raise UserInputError(
            f"{num_events} events are too few for a split of {train_fraction:g}/{val_fraction:g}/"
            f"{1 - train_fraction - val_fraction:g}: each part needs at least one event"
        )
    order = np.random.default_rng(seed).permutation(num_events)
    return Split(
        train=np.sort(order[:num_train]),
        validation=np.sort(order[num_train : num_train + num_val]),
        test=np.sort(order[num_train + num_val :]),
    )


def cache_dir() -> Path:
    """Where the default data set is kept: $CVAE_TF_CACHE, else $XDG_CACHE_HOME/cvae_tf."""
    if os.environ.get("CVAE_TF_CACHE"):
        return Path(os.environ["CVAE_TF_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cvae_tf"


def default_data_path(num_events: int = DEFAULT_DATA_EVENTS) -> Path:
    """The embedded default data set's CSV, simulated with a fixed seed on first use and cached."""
    from cvae_tf import simulator  # Only this path needs the simulator.

    path = cache_dir() / f"ocs_default_v{_DEFAULT_DATA_VERSION}_{num_events}.csv"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"Simulating the default OCS data set ({num_events} events) into {path} ...", flush=True)
    config = simulator.SimulationConfig(num_events=num_events, seed=DEFAULT_DATA_SEED)
    positions, momenta = simulator.simulate_events(config, progress=True)
    write_events_csv(path, positions, momenta)
    print(f"Default data set cached at {path}; later runs reuse it.", flush=True)
    return path
