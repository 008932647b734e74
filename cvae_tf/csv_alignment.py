"""A CSV of events rewritten with each event's positions rotated into its momenta's frame."""

import dataclasses

import numpy as np
import pandas as pd

from cvae_tf import alignment, csv_files, data, file_flags, metrics
from cvae_tf.file_flags import EventFileConfig


@dataclasses.dataclass(frozen=True)
class AlignConfig:
    """The events to align, and the CSV file that receives them."""

    events: EventFileConfig
    model_dir: str | None = file_flags.model_dir_option()
    output: str | None = file_flags.output_option("CSV file for the repaired events (required).")
    overwrite: bool = file_flags.overwrite_option()


def align_file(config: AlignConfig) -> tuple[np.ndarray, np.ndarray]:
    """Writes the events with aligned, centre-of-mass-relative positions (bohr) to --output.

    Every other column is copied as its text, in the input's column order.

    Returns:
        Each event's relative forward mismatch before and after the alignment.
    """
    events_file = config.events
    if config.model_dir:  # the model's molecule and columns; other flags refused
        # Here, not at the top: a run folder's reader imports TensorFlow (5 s), which aligning
        # without a model never needs.
        from cvae_tf import run_folder

        events_file = run_folder.model_event_file(events_file, config.model_dir)
    input_path = events_file.path
    output_path = file_flags.check_output_path(config.output, config.overwrite, input_path)
    events = events_file.load()
    fragments = events_file.molecule
    aligned, after = alignment.align_events(events, fragments)  # first: refuses coincident atoms
    before = metrics.forward_momentum_error(events.positions, events.momenta, fragments)
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
    positions = data.to_table(aligned.positions).T
    for column, values in zip(events_file.columns[0], positions, strict=True):
        frame[column] = values
    csv_files.write_csv_atomically(output_path, frame)
    return before, after
