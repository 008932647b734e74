"""Event data too large for memory: the files --data names, read block by block into tf.data.

Every reader here goes through `data.read_column_chunks` (the same checks and one-line errors
as loading a file whole) and `data.split_parts` (each row's part from a hash of its seed, file
and row), so a streamed run and an in-memory run of the same files see the same events in the
same parts. One pass (`EventSource.scan`) gathers what training needs up front: the part sizes,
the normalization statistics of the training part, the test part for the evaluation and a
sample for the data check; it also copies the training and validation parts into binary
float32 files (`PartFile`, 72 bytes an event, about a quarter of the CSV). Training and
validation then stream from those as `tf.data` datasets, re-read every epoch, so memory holds
a few blocks and the shuffle buffer, whatever the size of the data, and no epoch parses text.
"""

import contextlib
import dataclasses
import glob
import itertools
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from cvae_tf import alignment, data, frames, preprocessing
from cvae_tf.cli import UserInputError

# Files together larger than this are streamed when --data_loading=auto: loaded whole, 512 MiB
# of CSV (about two million events) take about 1.5 GB of memory while pandas parses them.
STREAM_THRESHOLD_BYTES = 512 * 2**20
_GLOB_CHARACTERS = frozenset("*?[")


def data_files(spec: str) -> tuple[Path, ...]:
    """The CSV files that `--data` names: a path, a glob of shards, or a comma-separated list.

    A glob (`shards/*.csv`; quote it in the shell) expands in sorted order, so a file's index,
    which enters the split, does not depend on the file system's listing order.

    Raises:
      UserInputError: a path that is not a file, a glob that matches no file, a file named twice.
    """
    files = []
    for item in (item.strip() for item in spec.split(",")):
        if not item:
            continue
        if _GLOB_CHARACTERS & set(item):
            matches = sorted(Path(name) for name in glob.glob(os.path.expanduser(item)))
            matches = [path for path in matches if path.is_file()]
            if not matches:
                raise UserInputError(
                    f"--data pattern '{item}' matches no file; expected CSV files, e.g. "
                    "--data='shards/*.csv'"
                )
            files.extend(matches)
        elif not Path(item).is_file():
            raise UserInputError(f"--data='{item}' is not a file; expected a CSV file")
        else:
            files.append(Path(item))
    if not files:
        raise UserInputError(f"--data={spec!r} names no file; expected a CSV file or a glob")
    resolved = [path.resolve() for path in files]
    twice = sorted({str(path) for path in files if resolved.count(path.resolve()) > 1})
    if twice:
        raise UserInputError(f"--data names {twice} more than once; expected each file once")
    return tuple(files)


def total_bytes(files: Sequence[Path]) -> int:
    """The files' combined size in bytes."""
    return sum(path.stat().st_size for path in files)


@dataclasses.dataclass(frozen=True)
class Block:
    """Consecutive data rows of one file: raw events, their row numbers and parts."""

    file_index: int
    rows: np.ndarray  # data-row numbers within the file, from 0
    events: data.Events
    parts: np.ndarray  # data.TRAIN, data.VALIDATION or data.TEST per row


@dataclasses.dataclass
class Summary:
    """What one pass over the data gathers before training (see EventSource.scan)."""

    part_sizes: np.ndarray  # events in the training, validation and test parts
    position_statistics: preprocessing.ColumnStatistics  # training part, model frame, bohr
    momentum_statistics: preprocessing.ColumnStatistics  # training part, model frame, a.u.
    mean_geometry: np.ndarray  # training part's mean positions (3, 3), bohr, as given
    check_sample: data.Events  # the first events, raw, for the data check
    test: data.Events  # the whole test part, positions prepared as training sees them
    train: "PartFile"  # the training part, prepared, in a binary file
    validation: "PartFile"  # the validation part, likewise


@dataclasses.dataclass(frozen=True)
class EventSource:
    """CSV files of events with a deterministic per-row split, readable block by block.

    `center="com"` makes positions centre-of-mass relative wherever they are prepared for the
    model (scan statistics, test part, datasets); `blocks` always gives them as stored.
    """

    files: tuple[Path, ...]
    position_columns: tuple[str, ...] = data.POSITION_COLUMNS
    momentum_columns: tuple[str, ...] = data.MOMENTUM_COLUMNS
    train_fraction: float = 0.7
    val_fraction: float = 0.15
    seed: int = 0
    center: str = "none"
    block_rows: int = data.CHUNK_ROWS

    def blocks(self) -> Iterator[Block]:
        """The files' rows in order, `block_rows` at a time, each row with its part."""
        columns = [*self.position_columns, *self.momentum_columns]
        for file_index, path in enumerate(self.files):
            first_row = 0
            for values in data.read_column_chunks(path, columns, self.block_rows):
                rows = np.arange(first_row, first_row + len(values))
                first_row += len(values)
                yield Block(
                    file_index=file_index,
                    rows=rows,
                    events=data.Events(
                        positions=data.to_events_array(values[:, :9]),
                        momenta=data.to_events_array(values[:, 9:]),
                    ),
                    parts=data.split_parts(
                        rows, self.train_fraction, self.val_fraction, self.seed, file_index
                    ),
                )

    def prepare(self, events: data.Events) -> data.Events:
        """Events as the model trains on them: centre-of-mass relative if `center="com"`."""
        if self.center == "com":
            return data.Events(alignment.center_positions(events.positions), events.momenta)
        return events

    def load(self) -> tuple[data.Events, data.Split]:
        """Every event in memory, as stored, with the split's row indices into them."""
        blocks = list(self.blocks())
        events = data.Events(
            positions=np.concatenate([block.events.positions for block in blocks]),
            momenta=np.concatenate([block.events.momenta for block in blocks]),
        )
        parts = np.concatenate([block.parts for block in blocks])
        split = data.Split(*(np.flatnonzero(parts == part) for part in range(3)))
        data.check_part_sizes(
            [len(split.train), len(split.validation), len(split.test)],
            self.train_fraction,
            self.val_fraction,
        )
        return events, split

    def scan(self, frame: str, check_sample_size: int, cache_dir: Path) -> Summary:
        """One pass over every file: part sizes, training statistics, the test part, a sample.

        Every row is read and checked here, so a bad cell anywhere fails before training.
        Normalization statistics are accumulated in `frame` (frames.FRAMES), the frame the
        model normalizes in, over the training part only. The training and validation parts
        are written to `cache_dir` as binary float32 files (PartFile, 72 bytes an event), which
        the epochs then read at disk speed instead of parsing the CSV again.
        """
        with contextlib.ExitStack() as files:
            writers = {
                part: files.enter_context(open(cache_dir / f"{data.PART_NAMES[part]}.f32", "wb"))
                for part in (data.TRAIN, data.VALIDATION)
            }
            return self._scan(frame, check_sample_size, writers)

    def _scan(self, frame: str, check_sample_size: int, writers: dict) -> Summary:
        sizes = np.zeros(3, dtype=np.int64)
        position_statistics = preprocessing.ColumnStatistics(9)
        momentum_statistics = preprocessing.ColumnStatistics(9)
        geometry = preprocessing.ColumnStatistics(9)
        sample, test = [], []
        sampled = 0
        for block in self.blocks():
            if sampled < check_sample_size:
                sample.append(block.events.positions[: check_sample_size - sampled])
                sample.append(block.events.momenta[: check_sample_size - sampled])
                sampled += len(sample[-1])
            sizes += np.bincount(block.parts, minlength=3)
            events = self.prepare(block.events)
            train = block.parts == data.TRAIN
            positions = data.to_table(events.positions[train])
            momenta = data.to_table(events.momenta[train])
            geometry.update(positions)
            model_positions, model_momenta = frames.model_frame_tables(frame, positions, momenta)
            position_statistics.update(model_positions)
            momentum_statistics.update(model_momenta)
            for part, writer in writers.items():
                keep = block.parts == part
                _rows_of(events.momenta[keep], events.positions[keep]).tofile(writer)
            is_test = block.parts == data.TEST
            test.append((events.positions[is_test], events.momenta[is_test]))
        data.check_part_sizes(sizes.tolist(), self.train_fraction, self.val_fraction)
        return Summary(
            part_sizes=sizes,
            position_statistics=position_statistics,
            momentum_statistics=momentum_statistics,
            mean_geometry=data.to_events_array(geometry.mean)[0],
            check_sample=data.Events(
                positions=np.concatenate(sample[0::2]), momenta=np.concatenate(sample[1::2])
            ),
            test=data.Events(
                positions=np.concatenate([positions for positions, _ in test]),
                momenta=np.concatenate([momenta for _, momenta in test]),
            ),
            train=PartFile(Path(writers[data.TRAIN].name), int(sizes[data.TRAIN])),
            validation=PartFile(Path(writers[data.VALIDATION].name), int(sizes[data.VALIDATION])),
        )


ROW_VALUES = 18  # a PartFile row: momenta (9, a.u.), then positions (9, bohr), float32


def _rows_of(momenta: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Events (n, 3, 3) each as PartFile rows [n, 18] float32."""
    return np.concatenate([data.to_table(momenta), data.to_table(positions)], axis=1).astype(
        np.float32
    )


@dataclasses.dataclass(frozen=True)
class PartFile:
    """One part's events as raw float32 rows (momenta, then positions) in a binary file."""

    path: Path
    size: int  # events
    block_rows: int = data.CHUNK_ROWS

    def tables(
        self, shuffle_buffer: int = 0, seed: Sequence[int] = (0,)
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The (momenta, positions) float32 tables [rows, 9], `block_rows` rows at a time.

        With `shuffle_buffer` > 0 the blocks are read in a random order, and their rows pass
        through a buffer of that many events: each block joins the buffer, the buffer is
        permuted, and all but `shuffle_buffer` rows leave it (tf.data's shuffle, a block at a
        time, so numpy does the work).
        """
        rng = np.random.default_rng(seed)
        num_blocks = -(-self.size // self.block_rows)
        order = rng.permutation(num_blocks) if shuffle_buffer else range(num_blocks)
        held = np.zeros((0, ROW_VALUES), dtype=np.float32)
        with open(self.path, "rb") as stream:
            for block in order:
                stream.seek(int(block) * self.block_rows * ROW_VALUES * 4)
                rows = np.fromfile(stream, np.float32, self.block_rows * ROW_VALUES)
                rows = rows.reshape(-1, ROW_VALUES)
                if not shuffle_buffer:
                    yield rows[:, :9], rows[:, 9:]
                    continue
                held = np.concatenate([held, rows])
                held = held[rng.permutation(len(held))]
                if len(held) > shuffle_buffer:
                    leaving, held = held[:-shuffle_buffer], held[-shuffle_buffer:]
                    yield leaving[:, :9], leaving[:, 9:]
        if len(held):
            yield held[:, :9], held[:, 9:]

    def dataset(self, batch_size: int, shuffle_buffer: int = 0, seed: int = 0) -> tf.data.Dataset:
        """A tf.data dataset of (momenta, positions) float32 batches [batch, 9] of the part.

        Every iteration (every epoch) re-reads the file; a shuffled dataset draws a new order
        each time, reproducibly from `seed`.
        """
        epochs = itertools.count()

        def tables():
            return self.tables(shuffle_buffer, seed=(seed, next(epochs)))

        spec = tf.TensorSpec((None, 9), tf.float32)
        dataset = tf.data.Dataset.from_generator(tables, output_signature=(spec, spec))
        dataset = dataset.rebatch(batch_size)
        batches = math.ceil(self.size / batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
        options = tf.data.Options()
        # Several workers each read the whole part and keep their share of every batch.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
