"""The disk a run folder takes: its size estimated from the model, checked before training."""

import dataclasses
from pathlib import Path

from cvae_tf import file_writes

FLOAT_BYTES = 4  # every weight is float32
# What a binary file holds besides the weights: HDF5's metadata (about 1.3 kB a variable) or
# the SavedModel's graph (190 kB for the quick flagfile's model), deliberately generous.
FILE_OVERHEAD_BYTES = 2**20
FIXED_BYTES = 8 * 2**20  # the PNGs and their TensorBoard copies (about 1 MB), JSON files, generous
EPOCH_BYTES = 4096  # a history.csv line and two TensorBoard summaries (about 2 kB an epoch)
SPLIT_BYTES_PER_EVENT = 8  # split.npz: one int64 row index per event
# test_predictions.csv: a float's shortest repr and its comma, at most 24 + 1 characters.
CSV_BYTES_PER_VALUE = 25


@dataclasses.dataclass(frozen=True)
class RunSize:
    """A run folder's estimated size and its largest file, in bytes, and what they count."""

    total_bytes: int
    largest_file_bytes: int  # the checkpoint, or split.npz or the test predictions
    checkpoint_bytes: int  # one of keras' BackupAndRestore weights files
    description: str  # the run in words, for the message

    def check_room(self, run_dir: Path) -> None:
        """Refuses a run whose folder the disk, or the file-size limit, cannot take."""
        file_writes.check_room(run_dir, self.total_bytes, self.largest_file_bytes, self.description)


def estimate(
    num_parameters: int,
    epochs: int,
    num_events: int,
    test_events: int = 0,
    num_coordinates: int = 9,
) -> RunSize:
    """The folder a run of a model with `num_parameters` weights leaves, from above.

    test_predictions.csv holds three values (true, predicted, spread) of each of the
    `num_coordinates` coordinates of the `test_events` test events.

    The checkpoint holds the weights and Adam's two moments of each (three copies) and keras
    keeps two of it (double_checkpoint); model.keras and the SavedModel's variables hold the
    weights once (the SavedModel also the normalization statistics); each is counted twice
    as large again, plus FILE_OVERHEAD_BYTES. Measured on the quick flagfile's model (2,218
    weights): checkpoint 89 kB, model.keras 90 kB, SavedModel 206 kB, the folder 0.5 MB.
    """
    weights = num_parameters * FLOAT_BYTES
    checkpoint = 2 * 3 * weights + FILE_OVERHEAD_BYTES
    model_file = 2 * weights + FILE_OVERHEAD_BYTES
    saved_model = 2 * 2 * weights + 2 * FILE_OVERHEAD_BYTES  # variables, then the graph
    split = num_events * SPLIT_BYTES_PER_EVENT + FILE_OVERHEAD_BYTES
    predictions = test_events * 3 * num_coordinates * CSV_BYTES_PER_VALUE + FILE_OVERHEAD_BYTES
    total = (
        2 * checkpoint
        + model_file
        + saved_model
        + split
        + predictions
        + FIXED_BYTES
        + epochs * EPOCH_BYTES
    )
    return RunSize(
        total_bytes=total,
        largest_file_bytes=max(checkpoint, split, predictions),
        checkpoint_bytes=checkpoint,
        description=f"the run (a model of {num_parameters:,} weights, up to {epochs:,} epochs)",
    )
