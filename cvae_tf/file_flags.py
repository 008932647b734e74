"""The files a command reads and writes: --data and the column flags, --output and --overwrite."""

import dataclasses
import functools
from pathlib import Path

import numpy as np

from cvae_tf import data, event_files, file_writes
from cvae_tf.data import Events
from cvae_tf.errors import UserInputError
from cvae_tf.flag_fields import option
from cvae_tf.molecule import OCS, Molecule, MoleculeConfig


def position_columns_option():
    """The `position_columns` setting, shared by every command that reads events."""
    return option(
        (),
        "Position columns (bohr), x,y,z of each fragment in the molecule's order. Default: the "
        "molecule's (cx,cy,cz,ox,oy,oz,sx,sy,sz for OCS).",
        show_default=False,
    )


def momentum_columns_option():
    """The `momentum_columns` setting, shared by every command that reads events."""
    return option(
        (),
        "Momentum columns (a.u.), x,y,z of each fragment in the molecule's order. Default: the "
        "molecule's (pcx,pcy,pcz,pox,poy,poz,psx,psy,psz for OCS).",
        show_default=False,
    )


def resolve_columns(
    position_columns, momentum_columns, molecule: Molecule
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Both column lists, the molecule's where empty, checked against its fragments."""
    position_columns = tuple(position_columns) or molecule.position_columns
    momentum_columns = tuple(momentum_columns) or molecule.momentum_columns
    check_column_names(position_columns, momentum_columns, molecule)
    return position_columns, momentum_columns


def check_column_names(position_columns, momentum_columns, molecule: Molecule = OCS) -> None:
    """Errors unless both lists name 3 distinct columns a fragment, and no column is in both."""
    count = molecule.num_coordinates
    order = ", ".join(f"{label} x,y,z" for label in molecule.labels)
    for name, columns in (
        ("position_columns", position_columns),
        ("momentum_columns", momentum_columns),
    ):
        if len(columns) != count or len(set(columns)) != count or not all(columns):
            raise UserInputError(
                f"--{name} has {len(columns)} names {list(columns)}; expected {count} distinct "
                f"names in the order {order}"
            )
    shared = sorted(set(position_columns) & set(momentum_columns))
    if shared:
        raise UserInputError(f"--position_columns and --momentum_columns share {shared}")


@dataclasses.dataclass(frozen=True)
class EventFileConfig:
    """One CSV or Parquet file of events (positions in bohr, momenta in a.u.), its column names."""

    data: str | None = option(
        None, "CSV or Parquet (.parquet, .pq) file of events (required).", show_default=False
    )
    position_columns: tuple[str, ...] = position_columns_option()
    momentum_columns: tuple[str, ...] = momentum_columns_option()
    fragments: MoleculeConfig = MoleculeConfig()

    def __post_init__(self) -> None:
        # Only required here: event_files.read_header reports a missing or unreadable file.
        if not self.data:
            raise UserInputError("--data is required; expected a CSV or Parquet file of events")
        self.columns  # noqa: B018 (validates the molecule and the column names now)

    @functools.cached_property
    def molecule(self) -> Molecule:
        """The molecule the --molecule/--atoms/--masses/--charges flags describe."""
        return self.fragments.resolve()

    @functools.cached_property
    def columns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The position and momentum column names, the molecule's unless given."""
        return resolve_columns(self.position_columns, self.momentum_columns, self.molecule)

    @property
    def path(self) -> Path:
        """The --data file."""
        return Path(self.data)

    def load(self) -> Events:
        """Every event of the file, checked (event_files.load_events)."""
        return event_files.load_events(self.path, *self.columns)

    @property
    def momentum_only(self) -> bool:
        """Whether the file's header has none of the position columns (measured data).

        A file with some of them but not all is not momentum-only: reading it names the missing.
        """
        header = event_files.read_header(self.path)
        return not set(self.columns[0]) & set(header)

    def load_momenta(self) -> np.ndarray:
        """Every event's momenta (a.u.), (events, fragments, 3), read by column name and checked."""
        return data.to_events_array(event_files.read_columns(self.path, self.columns[1]))


def model_dir_option():
    """The optional `model_dir` setting of check_data and align: read the data as a model does."""
    return option(
        None,
        "Run folder written by cvae_tf.train: the molecule and the columns are then the model's "
        "(molecule and column flags that differ are refused), and check_data compares a "
        "momentum-only file with the model's training data. Default: none.",
        show_default=False,
    )


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
        raise UserInputError("--output is required; expected a CSV or Parquet path")
    path = Path(output)
    if input_path is not None and path.resolve() == Path(input_path).resolve():
        raise UserInputError(f"--output='{path}' is the input file; choose another path")
    if path.is_dir():
        raise UserInputError(
            f"--output='{path}' is a folder; expected a CSV or Parquet (.parquet) file path"
        )
    if path.exists() and not overwrite:
        raise UserInputError(f"--output='{path}' exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise UserInputError(f"--output='{path}': folder '{path.parent}' is missing")
    file_writes.check_writable(path)  # before the work: a read-only or virtual folder
    return path
