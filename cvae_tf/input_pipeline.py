"""A training run's data from files to fit: source, checks, repairs, split, statistics, datasets.

In memory (`_in_memory_data`) each step runs on the whole set of events; streamed
(`_streamed_data`) one pass over the files (`scan`) runs them block by block and copies the
training and validation parts into binary files (part_files.py) that the epochs then read.
"""

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from cvae_tf import (
    alignment,
    csv_files,
    data,
    default_data,
    diagnostics,
    event_source,
    file_writes,
    fit_inputs,
    part_files,
    preprocessing,
    split,
)
from cvae_tf.config import TrainConfig
from cvae_tf.errors import UserInputError
from cvae_tf.molecule import OCS, Molecule

CHECK_SAMPLE_SIZE = 1000  # events the pre-training data check explodes (about 0.1 s)
TRAIN_SAMPLE_SIZE = 8192  # training events measured like validation each epoch
# Files together larger than this are streamed when --data_loading=auto: loaded whole, 512 MiB
# of CSV (about two million events) take about 1.5 GB of memory while pandas parses them.
STREAM_THRESHOLD_BYTES = 512 * 2**20
STREAM_FOLDER_PREFIX = "cvae_tf_stream_"  # a streamed run's part files, in $TMPDIR


@dataclasses.dataclass
class TrainingData:
    """A run's data, in memory or streamed from its files, as fit and the evaluation use it.

    `fit_inputs` are keras `fit` arguments: arrays with a batch size, or tf.data datasets
    (with `steps_per_epoch` where a small training part is repeated to fill an epoch).
    `train_sample` is a fixed sample of training events (momenta, positions) [n, 3·fragments]
    measured like the validation split every epoch; `validation_batches` yields the validation
    split.
    """

    files: tuple[Path, ...]
    streamed: bool
    fit_inputs: dict
    latent_batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]
    validation_batches: Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]
    train_sample: tuple[np.ndarray, np.ndarray]
    position_statistics: preprocessing.ColumnStatistics
    momentum_statistics: preprocessing.ColumnStatistics
    part_sizes: tuple[int, int, int]
    test: data.Events
    mean_geometry: np.ndarray  # the training part's mean positions (fragments, 3), bohr
    split: split.Split | None  # row indices, when the data are in memory
    close: Callable[[], None] = lambda: None  # removes temporary files (streamed data)
    data_check: str = ""  # the data check's printed verdict; empty under --nocheck_data

    def __enter__(self) -> "TrainingData":
        return self

    def __exit__(self, *exception) -> None:
        self.close()


def source_files(config: TrainConfig) -> tuple[Path, ...]:
    """The run's CSV files: those --data names (resolved by config.validate), else the default."""
    return config.data.files or (default_data.default_data_path(),)


def load(config: TrainConfig, batch_size: int | None = None) -> TrainingData:
    """The run's data: checked, repaired as asked, split, with its normalization statistics.

    `batch_size` is the global batch fit will use (default --batch_size).

    --data_loading=memory reads every file whole; stream reads them block by block each epoch
    (scan); auto streams when the files together exceed STREAM_THRESHOLD_BYTES.
    """
    remove_abandoned_stream_folders()
    files, data_config = source_files(config), config.data
    source = event_source.EventSource(
        files=files,
        position_columns=data_config.position_columns,
        momentum_columns=data_config.momentum_columns,
        train_fraction=data_config.train_fraction,
        val_fraction=data_config.val_fraction,
        seed=config.seed,
    )
    streamed = data_config.data_loading == "stream" or (
        data_config.data_loading == "auto" and csv_files.total_bytes(files) > STREAM_THRESHOLD_BYTES
    )
    batch_size = batch_size or config.optimization.batch_size
    if streamed:
        return _streamed_data(config, source, batch_size)
    return _in_memory_data(config, source, batch_size)


def _in_memory_data(
    config: TrainConfig, source: event_source.EventSource, batch_size: int
) -> TrainingData:
    events, parts = source.load()
    fragments = config.data.molecule
    data_check = _print_data_check(events, config) if config.data.check_data else ""
    if config.data.align_positions:
        events, residual = alignment.align_events(events, fragments)
        print(
            "Aligned positions to their momenta: residual |Δp|/|p| median "
            f"{np.median(residual):.2g}, max {np.max(residual):.2g}",
            flush=True,
        )
    events = _centered(events, config.data.center, fragments)
    train, validation = events[parts.train], events[parts.validation]
    # Statistics from float64, as a streamed run computes them; the model trains in float32.
    position_statistics, momentum_statistics = preprocessing.frame_statistics(
        config.model.frame,
        data.to_table(train.positions),
        data.to_table(train.momenta),
        fragments.frame_fragments,
    )
    train_momenta, train_positions = _float32_tables(train)
    val_momenta, val_positions = _float32_tables(validation)
    sample = np.sort(
        np.random.default_rng(config.seed).permutation(len(train_momenta))[:TRAIN_SAMPLE_SIZE]
    )
    return TrainingData(
        files=source.files,
        streamed=False,
        fit_inputs={
            **fit_inputs.training_inputs(train_momenta, train_positions, batch_size, config),
            "validation_data": (val_momenta, val_positions),
            "validation_batch_size": batch_size,
        },
        latent_batches=lambda: fit_inputs.table_batches(train_momenta, train_positions),
        validation_batches=lambda: fit_inputs.table_batches(val_momenta, val_positions),
        train_sample=(train_momenta[sample], train_positions[sample]),
        position_statistics=position_statistics,
        momentum_statistics=momentum_statistics,
        part_sizes=tuple(parts.sizes()),
        test=events[parts.test],
        mean_geometry=train.positions.mean(axis=0),
        split=parts,
        data_check=data_check,
    )


def _streamed_data(
    config: TrainConfig, source: event_source.EventSource, batch_size: int
) -> TrainingData:
    if config.data.align_positions:
        raise UserInputError(
            "--align_positions needs the data in memory (--data_loading=memory); repair large "
            "files first with python -m cvae_tf.align, one file or shard at a time"
        )
    # The binary copies of the training and validation parts, removed by TrainingData.close.
    with _temporary_writes(Path(tempfile.gettempdir()) / f"{STREAM_FOLDER_PREFIX}*"):
        cache = _StreamFolder()
    print(
        f"Streaming {len(source.files)} data file(s): one pass for the statistics, the parts "
        f"copied to {cache.name} ...",
        flush=True,
    )
    try:
        with _temporary_writes(Path(cache.name)):
            summary = scan(
                source,
                config.model.frame,
                config.data.center,
                CHECK_SAMPLE_SIZE,
                Path(cache.name),
                config.data.molecule,
            )
    except BaseException:
        cache.cleanup()
        raise
    data_check = _print_data_check(summary.check_sample, config) if config.data.check_data else ""
    train_size, val_size, test_size = (int(size) for size in summary.part_sizes)
    print(
        f"  {train_size} training, {val_size} validation and {test_size} test events",
        flush=True,
    )
    return TrainingData(
        files=source.files,
        streamed=True,
        fit_inputs={
            **fit_inputs.streamed_training_inputs(summary.train, batch_size, config),
            "validation_data": summary.validation.dataset(batch_size),
            "shuffle": False,  # the training dataset shuffles itself
        },
        latent_batches=summary.train.tables,
        validation_batches=summary.validation.tables,
        train_sample=fit_inputs.first_rows(summary.train.tables(), TRAIN_SAMPLE_SIZE),
        position_statistics=summary.position_statistics,
        momentum_statistics=summary.momentum_statistics,
        part_sizes=(train_size, val_size, test_size),
        test=summary.test,
        mean_geometry=summary.mean_geometry,
        split=None,
        close=cache.cleanup,
        data_check=data_check,
    )


class _StreamFolder:
    """A new folder for a streamed run's part files in $TMPDIR, flocked as long as it lives.

    tempfile.TemporaryDirectory, which this replaces, goes on a signal but stays after SIGKILL;
    the lock (file_writes.locked_new) lets the next training tell such a folder, abandoned,
    from one a live training still reads (remove_abandoned_stream_folders).
    """

    def __init__(self):
        def make() -> tuple[int, str]:
            name = tempfile.mkdtemp(prefix=STREAM_FOLDER_PREFIX)
            return file_writes.open_for_lock(name), name

        self._descriptor, self.name = file_writes.locked_new(make)

    def cleanup(self) -> None:
        """Removes the folder, then releases its lock; a second call does nothing."""
        if self._descriptor is None:
            return
        shutil.rmtree(self.name, ignore_errors=True)
        os.close(self._descriptor)
        self._descriptor = None
        # Windows removes no open file: the folder's lock file, and so the folder, go only now.
        shutil.rmtree(self.name, ignore_errors=True)


def remove_abandoned_stream_folders() -> list[Path]:
    """Removes the part-file folders that trainings killed outright (SIGKILL) left; returns them.

    A folder whose lock a live training holds is kept.
    """
    try:
        folder = Path(tempfile.gettempdir())
    except OSError:  # no usable temporary folder: nothing there to remove
        return []
    return file_writes.remove_abandoned(folder.glob(f"{STREAM_FOLDER_PREFIX}*"))


@contextlib.contextmanager
def _temporary_writes(path: Path) -> Iterator[None]:
    """file_writes.writing for the streamed parts' temporary files, saying where they go."""
    try:
        with file_writes.writing(path):
            yield
    except file_writes.WriteError as error:
        raise file_writes.WriteError(
            f"{error}; a streamed run copies its training and validation parts there (about a "
            "quarter of the data's size): set TMPDIR to a folder with room"
        ) from None


@dataclasses.dataclass
class Summary:
    """What one pass over the data gathers before a streamed run trains (see scan)."""

    part_sizes: np.ndarray  # events in the training, validation and test parts
    position_statistics: preprocessing.ColumnStatistics  # training part, model frame, bohr
    momentum_statistics: preprocessing.ColumnStatistics  # training part, model frame, a.u.
    mean_geometry: np.ndarray  # training part's mean positions (fragments, 3), bohr, as centred
    check_sample: data.Events  # the first events, raw, for the data check
    test: data.Events  # the whole test part, positions centred as training sees them
    train: part_files.PartFile  # the training part, centred, in a binary file
    validation: part_files.PartFile  # the validation part, likewise


def scan(
    source: event_source.EventSource,
    frame: str,
    center: str,
    check_sample_size: int,
    cache_dir: Path,
    fragments: Molecule = OCS,
) -> Summary:
    """One pass over every file: part sizes, training statistics, the test part, a sample.

    Every row is read and checked here, so a bad cell anywhere fails before training. Positions
    are centred as `center` (--center) asks; normalization statistics are accumulated in
    `frame` (frames.FRAMES), the frame the model normalizes in, over the training part only.
    The training and validation parts are written to `cache_dir` as part files. `fragments`
    is the molecule: its masses centre the positions, its frame fragments rotate them.
    """
    sizes = np.zeros(3, dtype=np.int64)
    width = fragments.num_coordinates
    statistics = preprocessing.FrameStatistics(frame, width, fragments.frame_fragments)
    geometry = preprocessing.ColumnStatistics(width)
    sample, test = [], []
    sampled = 0
    with contextlib.ExitStack() as files:
        writers = {
            part: files.enter_context(open(cache_dir / f"{split.PART_NAMES[part]}.f32", "wb"))
            for part in (split.TRAIN, split.VALIDATION)
        }
        for block in source.blocks():
            if sampled < check_sample_size:
                sample.append(block.events[: check_sample_size - sampled])
                sampled += len(sample[-1])
            sizes += np.bincount(block.parts, minlength=3)
            events = _centered(block.events, center, fragments)
            train = events[block.parts == split.TRAIN]
            positions, momenta = data.to_table(train.positions), data.to_table(train.momenta)
            geometry.update(positions)
            statistics.update(positions, momenta)
            for part, writer in writers.items():
                part_files.write_events(writer, events[block.parts == part])
            test.append(events[block.parts == split.TEST])
    split.check_part_sizes(sizes.tolist(), source.train_fraction, source.val_fraction)
    return Summary(
        part_sizes=sizes,
        position_statistics=statistics.positions,
        momentum_statistics=statistics.momenta,
        mean_geometry=data.to_events_array(geometry.mean)[0],
        check_sample=data.concatenate(sample),
        test=data.concatenate(test),
        train=part_files.PartFile(Path(writers[split.TRAIN].name), int(sizes[split.TRAIN]), width),
        validation=part_files.PartFile(
            Path(writers[split.VALIDATION].name), int(sizes[split.VALIDATION]), width
        ),
    )


def _centered(events: data.Events, center: str, fragments: Molecule) -> data.Events:
    """Events as the model trains on them: centre-of-mass relative if `center="com"`."""
    if center == "com":
        return data.Events(
            alignment.center_positions(events.positions, fragments.mass_array), events.momenta
        )
    return events


def _float32_tables(events: data.Events) -> tuple[np.ndarray, np.ndarray]:
    """The (momenta, positions) tables [events, 3·fragments] the model takes, float32."""
    momenta = data.to_table(events.momenta).astype(np.float32)
    return momenta, data.to_table(events.positions).astype(np.float32)


def _print_data_check(events: data.Events, config: TrainConfig) -> str:
    """Checks a sample of the events, prints the verdict and returns its text."""
    verdict = diagnostics.check_events(events, CHECK_SAMPLE_SIZE, config.seed, config.data.molecule)
    text = verdict.format()
    print(text, flush=True)
    return text
