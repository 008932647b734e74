"""`python -m cvae_tf.align`: rewrite a CSV with positions rotated into their momenta's frame."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from absl import flags

from cvae_tf import alignment, check_data, cli, csv_files, data, metrics


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The align command's flags."""
    check_data.define_column_flags(flag_values)
    flags.DEFINE_string(
        "output", None, "CSV file for the repaired events (required).", flag_values=flag_values
    )
    cli.define_overwrite_flag(flag_values)


def align_file(
    input_path: Path,
    output_path: Path,
    position_columns: Sequence[str],
    momentum_columns: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Writes input_path with aligned, centre-of-mass-relative positions to output_path.

    Every other column is copied as its text, in the input's column order.

    Returns:
        Each event's relative forward mismatch before and after the alignment.
    """
    events = csv_files.load_events(input_path, position_columns, momentum_columns)
    aligned, after = alignment.align_events(events)  # first: it refuses coincident atoms
    before = metrics.forward_momentum_error(events.positions, events.momenta)
    # Read again as text (load_events has validated it) so untouched columns keep their digits.
    frame = pd.read_csv(
        input_path,
        dtype=str,
        keep_default_na=False,
        skipinitialspace=True,
        encoding="utf-8-sig",
        index_col=False,
    )
    frame.columns = csv_files.read_header(input_path)
    for column, values in zip(position_columns, data.to_table(aligned.positions).T, strict=True):
        frame[column] = values
    csv_files.write_csv_atomically(output_path, frame)
    return before, after


def execute(flag_values: flags.FlagValues) -> None:
    """Checks the flags, aligns every event, writes the CSV and prints the mismatch figures."""
    input_path = check_data.data_path_from_flags(flag_values)
    position_columns, momentum_columns = check_data.columns_from_flags(flag_values)
    output_path = cli.check_output_path(flag_values.output, flag_values.overwrite, input_path)
    before, after = align_file(input_path, output_path, position_columns, momentum_columns)
    print("Forward mismatch |p_simulated − p_given| / |p_given| per event:")
    print(f"  before alignment  median {np.median(before):.3g}, max {np.max(before):.3g}")
    print(f"  after alignment   median {np.median(after):.3g}, max {np.max(after):.3g}")
    print(
        f"Wrote {len(after)} events with aligned, centre-of-mass-relative positions (bohr) to "
        f"{output_path}"
    )


if __name__ == "__main__":
    cli.run_command(define_flags, execute)
