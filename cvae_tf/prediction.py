"""Positions predicted for a CSV of momenta with a saved run's SavedModel, into a CSV file."""

import dataclasses
import itertools
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cvae_tf import csv_files, export, file_flags, run_folder, sampling
from cvae_tf.errors import UserInputError
from cvae_tf.flag_fields import option
from cvae_tf.molecule import OCS, Molecule

MOMENTS_BATCH_SIZE = 65_536  # rows per SavedModel call: K draws of a chunk, a batch at a time
# Latent-draw rows (events × K) held at once: about 0.6 GB with their float64 copies and the
# mixture draws. K ≤ 128 keeps sampling's 8192-event chunks, hence the files predict wrote
# before it streamed; a larger K takes fewer events a chunk.
ROW_BUDGET = 1 << 20
MAX_NUM_SAMPLES = ROW_BUDGET  # the smallest chunk is one event with its K draws
OUTPUT_BYTES_PER_CELL = 20  # "%.12g" writes at most 18 characters (-1.23456789012e-05), a comma


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """Which run predicts, from which momenta, into which file, and how many latent samples."""

    model_dir: str | None = option(
        None, "Run folder written by cvae_tf.train (required).", show_default=False
    )
    input: str | None = option(
        None, "CSV with the model's momentum columns (a.u.) (required).", show_default=False
    )
    output: str | None = file_flags.output_option(
        "CSV for the predicted positions (bohr) (required); same input, same model, same file."
    )
    num_samples: int = option(
        1,
        "Latent samples K per event; 1 writes one posterior draw per event; above 1 the output "
        "holds the point prediction of the predictive mixture of K latent draws (its mean, or "
        "see --select) under the position column names and its standard deviation (latent "
        "spread and the decoder's own, recalibrated) as <column>_std.",
    )
    select: str = option(
        "none",
        sampling.SELECT_HELP + " Default: none.",
        choices=sampling.SELECTIONS,
        show_default=False,
    )
    overwrite: bool = file_flags.overwrite_option()

    def __post_init__(self) -> None:
        for name in ("model_dir", "input", "output"):
            if not getattr(self, name):
                raise UserInputError(f"--{name} is required")
        if self.num_samples < 1:
            raise UserInputError(f"--num_samples={self.num_samples}; expected an integer ≥ 1")
        if self.num_samples > MAX_NUM_SAMPLES:
            raise UserInputError(
                f"--num_samples={self.num_samples}; expected at most {MAX_NUM_SAMPLES:,} (the "
                "draws of one event are held in memory at once)"
            )


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What predict_file wrote: how many events, and whether relative to their centre of mass."""

    num_events: int
    center_of_mass_relative: bool


def predict_file(config: PredictConfig) -> Prediction:
    """Writes predicted positions (bohr) for every event of `config.input` to `config.output`.

    The latent samples come from the sampler state saved in the SavedModel, so the same model
    and input give the same file every time. Events stream through in chunks of at most
    ROW_BUDGET latent-draw rows, read and written a chunk at a time: memory is set by the
    chunk, not by the number of events or of samples.
    """
    model_dir = Path(config.model_dir)
    input_path = Path(config.input)
    output_path = file_flags.check_output_path(config.output, config.overwrite, config.input)
    run_config = run_folder.check_complete(model_dir)
    fragments = run_folder.read_molecule(model_dir)
    position_columns = run_config["position_columns"]
    chunks = momenta_chunks(
        input_path, run_config["momentum_columns"], events_per_chunk(config.num_samples)
    )
    # The first block is read (and checked) before the model loads: a bad file fails fast.
    first = next(chunks)
    output_columns = len(position_columns) * (1 if config.num_samples == 1 else 2)
    check_disk_space(output_path, count_data_lines(input_path), output_columns)
    serving = export.load_saved_model(model_dir / export.SAVED_MODEL_DIR)
    counted = []
    frames = predicted_frames(
        serving, itertools.chain([first], chunks), config, position_columns, counted, fragments
    )
    csv_files.write_csv_atomically(output_path, frames)
    return Prediction(sum(counted), run_config.get("center") == "com")


def events_per_chunk(num_samples: int) -> int:
    """Events a chunk: sampling's CHUNK_EVENTS, fewer where K draws of them exceed ROW_BUDGET."""
    return max(1, min(sampling.CHUNK_EVENTS, ROW_BUDGET // num_samples))


def momenta_chunks(path: Path, columns: Sequence[str], chunk_events: int) -> Iterator[np.ndarray]:
    """Momenta (a.u.) [chunk_events, 3n] in file order, the last chunk shorter, read in blocks.

    Every chunk but the last has exactly `chunk_events` rows whatever blocks the reader gives,
    so the sampler sees the same calls as when the file was read whole.
    """
    block_rows = chunk_events * max(1, csv_files.CHUNK_ROWS // chunk_events)
    pending = np.empty((0, len(columns)))
    for block in csv_files.read_column_chunks(path, columns, block_rows):
        pending = np.concatenate([pending, block]) if len(pending) else block
        full = len(pending) - len(pending) % chunk_events
        for start in range(0, full, chunk_events):
            yield pending[start : start + chunk_events]
        pending = pending[full:]
    if len(pending):
        yield pending


def predicted_frames(
    serving,
    chunks: Iterable[np.ndarray],
    config: PredictConfig,
    position_columns: Sequence[str],
    counted: list[int],
    fragments: Molecule = OCS,
) -> Iterator[pd.DataFrame]:
    """The output table a chunk at a time; appends each chunk's number of events to `counted`."""
    moments_once = sampling.batched_moments(serving.moments, MOMENTS_BATCH_SIZE)
    rng = np.random.default_rng(0)  # seeded: the same model and input give the same file
    for momenta_chunk in chunks:
        if config.num_samples == 1:  # one posterior draw per event
            predicted = sampling.posterior_samples(serving.serve, momenta_chunk, 1)[0]
            columns = dict(zip(position_columns, predicted.T, strict=True))
        else:  # the predictive mixture of K latent draws: its mean (or energy pick) and spread
            summary = sampling.predictive_summary(
                moments_once,
                momenta_chunk,
                config.num_samples,
                rng,
                select_energy=config.select == "energy",
                fragments=fragments,
            )
            predicted = summary["energy" if config.select == "energy" else "mean"]
            columns = dict(zip(position_columns, predicted.T, strict=True))
            columns.update(
                zip([f"{name}_std" for name in position_columns], summary["std"].T, strict=True)
            )
        counted.append(len(momenta_chunk))
        yield pd.DataFrame(columns)


def count_data_lines(path: Path) -> int:
    """Lines after the header (blank ones included: an estimate of the events from above)."""
    lines, last = 0, b""
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            lines += block.count(b"\n")
            last = block
    return max(0, lines - (1 if last.endswith(b"\n") else 0))


def check_disk_space(output_path: Path, num_events: int, num_columns: int) -> None:
    """Refuses, before any work, an output that the disk under `output_path` cannot hold."""
    needed = num_events * num_columns * OUTPUT_BYTES_PER_CELL
    free = shutil.disk_usage(output_path.parent).free
    if needed > free:
        raise UserInputError(
            f"--output='{output_path}': {num_events:,} events × {num_columns} columns need about "
            f"{needed / 1e9:.2f} GB ({OUTPUT_BYTES_PER_CELL} bytes a value), but its folder has "
            f"{free / 1e9:.2f} GB free; free space or choose another --output folder"
        )
