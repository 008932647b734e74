"""Positions predicted for a file of momenta with a saved run's SavedModel, into a file.

CSV or Parquet in and out, each by its suffix (event_files). Each output row holds, in this
order: every column of the input row as read (an input column named like a predicted one is
renamed `<name>_input`), the positions (bohr), their `<column>_std` with
--num_samples above 1, the bond lengths `r_<label><label>` (bohr) and angles
`angle_<labels>` (degrees, at the middle label) of the point prediction, and
`out_of_distribution` (1 for an event unlike anything in the training data, see
training_momenta). --histograms adds PNGs of the bond lengths and angles over the events
in distribution.
"""

import dataclasses
import itertools
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cvae_tf import (
    event_files,
    export,
    file_flags,
    file_writes,
    physics,
    plots,
    progress,
    run_folder,
    sampling,
    training_momenta,
)
from cvae_tf.errors import UserInputError
from cvae_tf.flag_fields import option
from cvae_tf.molecule import OCS, Molecule, MoleculeConfig

MOMENTS_BATCH_SIZE = 65_536  # rows per SavedModel call: K draws of a chunk, a batch at a time
# Latent-draw rows (events × K) held at once: about 0.6 GB with their float64 copies and the
# mixture draws. K ≤ 128 keeps sampling's 8192-event chunks, hence the files predict wrote
# before it streamed; a larger K takes fewer events a chunk.
ROW_BUDGET = 1 << 20
MAX_NUM_SAMPLES = ROW_BUDGET  # the smallest chunk is one event with its K draws
OUT_OF_DISTRIBUTION_COLUMN = "out_of_distribution"
RENAMED_SUFFIX = "_input"  # an input column named like a predicted one gets this suffix
HISTOGRAM_BINS = 60


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """Which run predicts, from which momenta, into which file, and how many latent samples."""

    model_dir: str | None = option(
        None, "Run folder written by cvae_tf.train (required).", show_default=False
    )
    input: str | None = option(
        None,
        "CSV or Parquet (.parquet, .pq) file with the model's momentum columns (a.u.) "
        "(required); its other columns are copied into the output.",
        show_default=False,
    )
    output: str | None = file_flags.output_option(
        "CSV or Parquet (.parquet, .pq) file for the input's columns and the predicted "
        "positions (bohr) (required); same input, same model, same file."
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
    histograms: str = option(
        "",
        "Folder for PNG histograms of the predicted bond lengths and angles over every event "
        "in distribution (made if missing; its parent must exist). Default: empty, none.",
        show_default=False,
    )
    overwrite: bool = file_flags.overwrite_option()
    fragments: MoleculeConfig = MoleculeConfig()

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


@dataclasses.dataclass
class Tally:
    """Events predicted so far, and how many were out of distribution and why."""

    num_events: int = 0
    out_of_distribution: int = 0
    ker_below: int = 0  # KER below the training range
    ker_above: int = 0
    shape_unlike: int = 0  # a momentum shape beyond the training data's distance threshold


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What predict_file wrote: the tally, centre-of-mass relative or not, the histograms."""

    num_events: int
    center_of_mass_relative: bool
    tally: Tally = dataclasses.field(default_factory=Tally)
    ker_bounds: tuple[float, float] = (0.0, float("inf"))  # hartree, the training range
    histogram_files: tuple[Path, ...] = ()
    renamed: dict[str, str] = dataclasses.field(default_factory=dict)  # input column: new name

    def out_of_distribution_summary(self) -> str:
        """ "N of M events (x %) are out of distribution: ..." with the reasons counted."""
        tally = self.tally
        share = 100 * tally.out_of_distribution / max(tally.num_events, 1)
        low, high = self.ker_bounds
        return (
            f"{tally.out_of_distribution} of {tally.num_events} events ({share:.3g} %) are out of "
            f"distribution: {tally.ker_below} with a kinetic energy release below and "
            f"{tally.ker_above} above the training range [{low:.4g}, {high:.4g}] hartree, "
            f"{tally.shape_unlike} with momenta shaped unlike the training data's (column "
            f"{OUT_OF_DISTRIBUTION_COLUMN})"
        )

    def warning(self) -> str | None:
        """A warning naming the likely cause if over half the events are out of distribution."""
        tally = self.tally
        if tally.out_of_distribution <= tally.num_events / 2:
            return None
        if max(tally.ker_below, tally.ker_above) > tally.num_events / 2:
            where = "below" if tally.ker_below > tally.ker_above else "above"
            cause = (
                f"most kinetic energy releases lie {where} the training range: another charge "
                "channel or molecule, or momenta in other units"
            )
        else:
            cause = (
                "most momenta are shaped unlike the training data's: another molecule or charge "
                "channel, or the fragments' columns in another order"
            )
        return f"Warning: most events are out of distribution for this model; {cause}."


def predict_file(config: PredictConfig) -> Prediction:
    """Writes every event of `config.input` with its predicted positions (bohr) to `config.output`.

    The latent samples come from the sampler state saved in the SavedModel, so the same model
    and input give the same file every time. Events stream through in chunks of at most
    ROW_BUDGET latent-draw rows, read and written a chunk at a time: memory is set by the
    chunk, not by the number of events or of samples. A progress bar goes to stderr on a
    terminal.
    """
    model_dir = Path(config.model_dir)
    input_path = Path(config.input)
    output_path = file_flags.check_output_path(config.output, config.overwrite, config.input)
    histogram_folder = check_histogram_folder(config.histograms)
    run_config = run_folder.check_complete(model_dir)
    fragments = run_folder.model_molecule(model_dir, config.fragments)
    summary = training_momenta.read(model_dir)
    position_columns = run_config["position_columns"]
    chunks = input_chunks(
        input_path, run_config["momentum_columns"], events_per_chunk(config.num_samples)
    )
    # The first block is read (and checked) before the model loads: a bad file fails fast.
    first = next(chunks)
    written = output_columns(position_columns, config.num_samples, fragments)
    input_columns = list(first[1].columns)
    renamed = renamed_columns(input_path, input_columns, written)
    num_events = event_files.count_events(input_path)
    check_disk_space(output_path, num_events, len(input_columns) + len(written))
    serving = export.load_saved_model(model_dir / export.SAVED_MODEL_DIR)
    tally = Tally()
    kept_frames = []

    def momenta():  # the predicted frames come one a chunk, in step with these
        for momenta_chunk, kept in itertools.chain([first], chunks):
            kept_frames.append(kept.rename(columns=renamed))
            yield momenta_chunk

    def frames(bar: progress.Bar) -> Iterator[pd.DataFrame]:
        predicted = predicted_frames(
            serving, momenta(), config, position_columns, tally, fragments, summary
        )
        for frame in predicted:
            kept = kept_frames.pop(0).reset_index(drop=True)
            yield pd.concat([kept, frame], axis=1)
            bar.update(tally.num_events)

    with progress.Bar("predicting", num_events) as bar:
        event_files.write_atomically(output_path, frames(bar))
    histogram_files = ()
    if histogram_folder is not None:
        histogram_files = write_histograms(output_path, histogram_folder, fragments)
    return Prediction(
        tally.num_events,
        run_config.get("center") == "com",
        tally,
        summary.ker_bounds,
        histogram_files,
        renamed,
    )


def output_columns(
    position_columns: Sequence[str], num_samples: int, fragments: Molecule
) -> list[str]:
    """The columns predict writes after the input's: positions, spreads, geometry, the flag."""
    spreads = [f"{name}_std" for name in position_columns] if num_samples > 1 else []
    return [*position_columns, *spreads, *geometry_columns(fragments), OUT_OF_DISTRIBUTION_COLUMN]


def renamed_columns(
    input_path: Path, input_columns: Sequence[str], written: Sequence[str]
) -> dict[str, str]:
    """{input column: `<name>_input`} for the input's columns named like predicted ones.

    Renamed rather than refused: the common case is a simulated file with its true positions,
    which a user wants beside the predicted ones; the predicted columns keep their names, which
    scripts read. A renamed column whose new name is taken too is refused.
    """
    renamed = {name: name + RENAMED_SUFFIX for name in input_columns if name in set(written)}
    taken = sorted(
        new for new in renamed.values() if new in set(input_columns) or new in set(written)
    )
    if taken:
        raise UserInputError(
            f"--input='{input_path}' has columns {sorted(renamed)} that predict writes, and "
            f"{taken} too, the names it would rename them to; rename or drop those columns"
        )
    return renamed


def check_histogram_folder(folder: str) -> Path | None:
    """The --histograms folder (None if empty), refused before any work if it cannot be made."""
    if not folder:
        return None
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UserInputError(f"--histograms='{path}' is a file; expected a folder for PNG files")
    if not path.exists() and not path.parent.is_dir():
        raise UserInputError(f"--histograms='{path}': folder '{path.parent}' is missing")
    file_writes.check_writable(path / "histogram.png")
    return path


def geometry_columns(fragments: Molecule) -> tuple[str, ...]:
    """The bond-length columns r_<label><label> (bohr), then the angle columns angle_<labels>."""
    return (
        *(f"r_{tag}" for tag in fragments.bond_tags),
        *(f"angle_{tag}" for tag in fragments.angle_tags),
    )


def geometry(positions_table: np.ndarray, fragments: Molecule) -> np.ndarray:
    """Bond lengths (bohr) then angles (degrees) [events, bonds + angles] of positions [n, 3n]."""
    positions = np.asarray(positions_table, dtype=np.float64).reshape(len(positions_table), -1, 3)
    parts = [physics.bond_lengths(positions, fragments.bonds)]
    if fragments.angles:
        parts.append(physics.bond_angles(positions, fragments.angles))
    return np.concatenate(parts, axis=1)


def events_per_chunk(num_samples: int) -> int:
    """Events a chunk: sampling's CHUNK_EVENTS, fewer where K draws of them exceed ROW_BUDGET."""
    return max(1, min(sampling.CHUNK_EVENTS, ROW_BUDGET // num_samples))


def input_chunks(
    path: Path, columns: Sequence[str], chunk_events: int
) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
    """(momenta (a.u.) [chunk_events, 3n], every input column as read) in file order.

    The last chunk is shorter. Every chunk but the last has exactly `chunk_events` rows
    whatever blocks the reader gives, so the sampler sees the same calls as when the file was
    read whole.
    """
    block_rows = chunk_events * max(1, event_files.CHUNK_ROWS // chunk_events)
    pending, pending_frame = np.empty((0, len(columns))), None
    for block, frame in event_files.read_kept_chunks(path, columns, block_rows):
        if len(pending):
            pending = np.concatenate([pending, block])
            pending_frame = pd.concat([pending_frame, frame], ignore_index=True)
        else:
            pending, pending_frame = block, frame.reset_index(drop=True)
        full = len(pending) - len(pending) % chunk_events
        for start in range(0, full, chunk_events):
            rows = slice(start, start + chunk_events)
            yield pending[rows], pending_frame.iloc[rows]
        pending, pending_frame = pending[full:], pending_frame.iloc[full:].reset_index(drop=True)
    if len(pending):
        yield pending, pending_frame


def predicted_frames(
    serving,
    chunks: Iterable[np.ndarray],
    config: PredictConfig,
    position_columns: Sequence[str],
    tally: Tally,
    fragments: Molecule = OCS,
    training: training_momenta.TrainingMomenta | None = None,
) -> Iterator[pd.DataFrame]:
    """The output table a chunk at a time; counts each chunk's events into `tally`.

    Without the `training` data's momentum summary no event is out of distribution.
    """
    names = geometry_columns(fragments)
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
        columns.update(zip(names, geometry(predicted, fragments).T, strict=True))
        columns[OUT_OF_DISTRIBUTION_COLUMN] = _judge(training, momenta_chunk, tally)
        yield pd.DataFrame(columns)


def check_disk_space(output_path: Path, num_events: int, num_columns: int) -> None:
    """Refuses, before any work, an output that the disk under `output_path` cannot hold."""
    per_value = event_files.bytes_per_value(output_path)
    needed = num_events * num_columns * per_value
    free = shutil.disk_usage(output_path.parent).free
    if needed > free:
        raise UserInputError(
            f"--output='{output_path}': {num_events:,} events × {num_columns} columns need about "
            f"{needed / 1e9:.2f} GB ({per_value} bytes a value), but its folder has "
            f"{free / 1e9:.2f} GB free; free space or choose another --output folder"
        )


def _judge(training, momenta_chunk: np.ndarray, tally: Tally) -> np.ndarray:
    """The chunk's out_of_distribution column (int 0/1), counted into `tally` with its reasons."""
    tally.num_events += len(momenta_chunk)
    if training is None:
        return np.zeros(len(momenta_chunk), dtype=np.int64)
    reasons = training.reasons(momenta_chunk)
    flagged = reasons["ker_below"] | reasons["ker_above"] | reasons["shape_unlike"]
    tally.out_of_distribution += int(flagged.sum())
    for name, unlike in reasons.items():
        setattr(tally, name, getattr(tally, name) + int(unlike.sum()))
    return flagged.astype(np.int64)


def write_histograms(output_path: Path, folder: Path, fragments: Molecule) -> tuple[Path, ...]:
    """PNGs of each bond length and angle column of the written output, events in distribution.

    Two passes over the output, a block at a time (memory stays bounded): the range, then the
    counts in HISTOGRAM_BINS equal bins over it.
    """
    names = geometry_columns(fragments)
    wanted = [*names, OUT_OF_DISTRIBUTION_COLUMN]

    def blocks():
        for block in event_files.read_column_chunks(output_path, wanted):
            yield block[block[:, -1] == 0, :-1], int(np.count_nonzero(block[:, -1]))

    low = np.full(len(names), np.inf)
    high = np.full(len(names), -np.inf)
    left_out = kept = 0
    for values, flagged in blocks():
        left_out += flagged
        kept += len(values)
        if len(values):
            low, high = np.minimum(low, values.min(axis=0)), np.maximum(high, values.max(axis=0))
    if not kept:  # every event out of distribution: empty histograms over a unit range
        low, high = np.zeros(len(names)), np.ones(len(names))
    high = np.where(high > low, high, low + 1e-6)
    edges = [np.linspace(lo, hi, HISTOGRAM_BINS + 1) for lo, hi in zip(low, high, strict=True)]
    counts = [np.zeros(HISTOGRAM_BINS, dtype=np.int64) for _ in names]
    for values, _ in blocks():
        for index in range(len(names)):
            counts[index] += np.histogram(values[:, index], edges[index])[0]
    folder.mkdir(exist_ok=True)
    labels = [*fragments.bond_names, *fragments.angle_names]
    paths = []
    for index, name in enumerate(names):
        is_length = index < len(fragments.bonds)
        path = folder / f"{name}.png"
        plots.plot_histogram(
            counts[index],
            edges[index],
            path,
            xlabel=f"{labels[index]} {'bond length (bohr)' if is_length else 'angle (degrees)'}",
            title=(
                f"Predicted {labels[index]} {'bond length' if is_length else 'angle'}: "
                f"{kept} events ({left_out} out of distribution left out)"
            ),
        )
        paths.append(path)
    return tuple(paths)
