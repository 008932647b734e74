"""A file of events rewritten with each event's positions rotated into its momenta's frame."""

import dataclasses

import numpy as np
import pandas as pd

from cvae_tf import alignment, data, event_files, file_flags, metrics, progress
from cvae_tf.errors import UserInputError
from cvae_tf.file_flags import EventFileConfig

ALIGN_CHUNK_EVENTS = 65_536  # events exploded and rotated at a time, between progress redraws


@dataclasses.dataclass(frozen=True)
class AlignConfig:
    """The events to align, and the file that receives them."""

    events: EventFileConfig
    model_dir: str | None = file_flags.model_dir_option()
    output: str | None = file_flags.output_option(
        "CSV or Parquet (.parquet, .pq) file for the repaired events (required)."
    )
    overwrite: bool = file_flags.overwrite_option()


def align_file(config: AlignConfig) -> tuple[np.ndarray, np.ndarray]:
    """Writes the events with aligned, centre-of-mass-relative positions (bohr) to --output.

    Every other column is copied as read (a CSV's as its text), in the input's column order;
    CSV or Parquet in and out, each by its suffix. A progress bar goes to stderr on a terminal.

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
    position_columns, momentum_columns = events_file.columns
    # One read: the checked numbers, and every column as read so that untouched ones keep
    # their digits (a CSV's text) or their types (Parquet's).
    blocks = list(event_files.read_kept_chunks(input_path, [*position_columns, *momentum_columns]))
    events = data.events_from_columns(np.concatenate([values for values, _ in blocks]))
    frame = pd.concat([kept for _, kept in blocks], ignore_index=True)
    del blocks
    fragments = events_file.molecule
    aligned, after = align_in_chunks(events, fragments)
    before = metrics.forward_momentum_error(events.positions, events.momenta, fragments)
    positions = data.to_table(aligned.positions).T
    for column, values in zip(position_columns, positions, strict=True):
        frame[column] = values
    event_files.write_atomically(output_path, frame)
    return before, after


def align_in_chunks(events: data.Events, fragments) -> tuple[data.Events, np.ndarray]:
    """alignment.align_events a chunk at a time, with a progress bar: the same result."""
    parts, residuals = [], []
    with progress.Bar("aligning", len(events)) as bar:
        for start in range(0, len(events), ALIGN_CHUNK_EVENTS):
            rows = slice(start, start + ALIGN_CHUNK_EVENTS)
            try:
                aligned, residual = alignment.align_events(events[rows], fragments)
            except UserInputError:
                # Coincident atoms, named by row within the chunk: checked again on every
                # event (before any explosion, so at once), the rows are the file's.
                alignment.align_events(events, fragments)
                raise
            parts.append(aligned)
            residuals.append(residual)
            bar.update(rows.stop)
    return data.concatenate(parts), np.concatenate(residuals)
