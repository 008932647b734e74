"""`python -m cvae_tf.check_data`: check a data set's physics and frames, and print a verdict."""

from pathlib import Path

from absl import flags

from cvae_tf import cli, csv_files, data, diagnostics
from cvae_tf.cli import UserInputError


def define_column_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The --data and column flags shared by check_data and align, as train spells them."""
    flags.DEFINE_string("data", None, "CSV file of events (required).", flag_values=flag_values)
    flags.DEFINE_list(
        "position_columns",
        list(data.POSITION_COLUMNS),
        "Nine position columns (bohr) in the order C x,y,z, O x,y,z, S x,y,z. "
        f"Default: {','.join(data.POSITION_COLUMNS)}.",
        flag_values=flag_values,
    )
    flags.DEFINE_list(
        "momentum_columns",
        list(data.MOMENTUM_COLUMNS),
        "Nine momentum columns (a.u.) in the order C x,y,z, O x,y,z, S x,y,z. "
        f"Default: {','.join(data.MOMENTUM_COLUMNS)}.",
        flag_values=flag_values,
    )


def columns_from_flags(flag_values: flags.FlagValues) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The position and momentum column names, stripped of white space and checked."""
    names = {}
    for name in ("position_columns", "momentum_columns"):
        columns = tuple(column.strip() for column in flag_values[name].value)
        if len(columns) != 9 or len(set(columns)) != 9 or not all(columns):
            raise UserInputError(
                f"--{name} has {len(columns)} names {list(columns)}; expected 9 distinct names "
                "in the order C x,y,z, O x,y,z, S x,y,z"
            )
        names[name] = columns
    shared = sorted(set(names["position_columns"]) & set(names["momentum_columns"]))
    if shared:
        raise UserInputError(f"--position_columns and --momentum_columns share {shared}")
    return names["position_columns"], names["momentum_columns"]


def data_path_from_flags(flag_values: flags.FlagValues) -> Path:
    """The --data path; csv_files.read_header reports a missing or unreadable file."""
    if not flag_values.data:
        raise UserInputError("--data is required; expected a CSV file of events")
    return Path(flag_values.data)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The check_data command's flags."""
    define_column_flags(flag_values)
    flags.DEFINE_integer(
        "sample_size",
        2000,
        "Events checked, drawn at random (each one simulated). Default: 2000.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "seed", 0, "Seed of the random sample. Default: 0.", flag_values=flag_values
    )


def execute(flag_values: flags.FlagValues) -> None:
    """Loads the events, checks a sample and prints the verdict; problems still exit 0."""
    path = data_path_from_flags(flag_values)
    position_columns, momentum_columns = columns_from_flags(flag_values)
    for name, minimum in (("sample_size", 1), ("seed", 0)):
        if flag_values[name].value < minimum:
            raise UserInputError(
                f"--{name}={flag_values[name].value}; expected an integer ≥ {minimum}"
            )
    events = csv_files.load_events(path, position_columns, momentum_columns)
    verdict = diagnostics.check_events(events, flag_values.sample_size, flag_values.seed)
    print(verdict.format())


if __name__ == "__main__":
    cli.run_command(define_flags, execute)
