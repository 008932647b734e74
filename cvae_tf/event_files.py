"""The CSV file of events a command reads: its --data and column flags, and the column rule."""

import dataclasses
from pathlib import Path

from cvae_tf import csv_files, data
from cvae_tf.cli import UserInputError
from cvae_tf.data import Events
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
