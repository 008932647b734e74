"""The files a command reads and writes: --data and the column flags, --output and --overwrite."""

import dataclasses
from pathlib import Path

from cvae_tf import csv_files, data, file_writes
from cvae_tf.data import Events
from cvae_tf.errors import UserInputError
from cvae_tf.flag_fields import option


def position_columns_option():
    """The `position_columns` setting, shared by every command that reads events."""
    return option(
        data.POSITION_COLUMNS,
        "Nine position columns (bohr) in the order C x,y,z, O x,y,z, S x,y,z.",
    )


def momentum_columns_option():
    """The `momentum_columns` setting, shared by every command that reads events."""
    return option(
        data.MOMENTUM_COLUMNS,
        "Nine momentum columns (a.u.) in the order C x,y,z, O x,y,z, S x,y,z.",
    )


def check_column_names(position_columns, momentum_columns) -> None:
    """Errors unless both lists name 9 distinct columns each, and no column is in both."""
    for name, columns in (
        ("position_columns", position_columns),
        ("momentum_columns", momentum_columns),
    ):
        if len(columns) != 9 or len(set(columns)) != 9 or not all(columns):
            raise UserInputError(
                f"--{name} has {len(columns)} names {list(columns)}; expected 9 distinct names "
                "in the order C x,y,z, O x,y,z, S x,y,z"
            )
    shared = sorted(set(position_columns) & set(momentum_columns))
    if shared:
        raise UserInputError(f"--position_columns and --momentum_columns share {shared}")


@dataclasses.dataclass(frozen=True)
class EventFileConfig:
    """One CSV file of events (positions in bohr, momenta in a.u.) and its column names."""

    data: str | None = option(None, "CSV file of events (required).", show_default=False)
    position_columns: tuple[str, ...] = position_columns_option()
    momentum_columns: tuple[str, ...] = momentum_columns_option()

    def __post_init__(self) -> None:
        # Only required here: csv_files.read_header reports a missing or unreadable file.
        if not self.data:
            raise UserInputError("--data is required; expected a CSV file of events")
        check_column_names(self.position_columns, self.momentum_columns)

    @property
    def path(self) -> Path:
        """The --data file."""
        return Path(self.data)

    def load(self) -> Events:
        """Every event of the file, checked (csv_files.load_events)."""
        return csv_files.load_events(self.path, self.position_columns, self.momentum_columns)


def overwrite_option():
    """The `overwrite` setting (--overwrite flag) of every command that writes an output file."""
    return option(False, "Replace an existing output file.")


def output_option(help: str):
    """A required `output` path setting (--output flag); `help` says what the file holds."""
    return option(None, help, show_default=False)


def check_output_path(
    output: str | Path | None, overwrite: bool, input_path: str | Path | None = None
) -> Path:
    """The --output path, once it is clear that writing it loses nothing and can succeed."""
    if not output:
        raise UserInputError("--output is required; expected a CSV path")
    path = Path(output)
    if input_path is not None and path.resolve() == Path(input_path).resolve():
        raise UserInputError(f"--output='{path}' is the input file; choose another path")
    if path.is_dir():
        raise UserInputError(f"--output='{path}' is a folder; expected a CSV file path")
    if path.exists() and not overwrite:
        raise UserInputError(f"--output='{path}' exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise UserInputError(f"--output='{path}': folder '{path.parent}' is missing")
    file_writes.check_writable(path)  # before the work: a read-only or virtual folder
    return path
