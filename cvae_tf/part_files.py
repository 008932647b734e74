"""Parts of the split as binary float32 files (72 bytes an event) and their tf.data datasets.

A streamed run copies its training and validation parts into these files in its one pass over
the CSV (about a quarter of the CSV's size); the epochs then read them at disk speed, a few
blocks and the shuffle buffer in memory whatever the size of the data, and never parse text.
"""

import dataclasses
import itertools
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tensorflow as tf

from cvae_tf import csv_files, data

# A PartFile row: momenta (3 per fragment, a.u.), then positions (3 per fragment, bohr), float32.


def write_events(stream: BinaryIO, events: data.Events) -> None:
    """Appends events (n, fragments, 3) to an open part file as float32 rows [n, 6·fragments]."""
    rows = np.concatenate([data.to_table(events.momenta), data.to_table(events.positions)], axis=1)
    # stream.write, not ndarray.tofile: tofile's error on a full disk has no errno to report.
    stream.write(np.ascontiguousarray(rows, dtype=np.float32).data)


@dataclasses.dataclass(frozen=True)
class PartFile:
    """One part's events as raw float32 rows (momenta, then positions) in a binary file."""

    path: Path
    size: int  # events
    num_coordinates: int = 9  # columns of each table: 3 per fragment
    block_rows: int = csv_files.CHUNK_ROWS

    def tables(
        self, shuffle_buffer: int = 0, seed: Sequence[int] = (0,)
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The (momenta, positions) float32 tables [rows, 3n], `block_rows` rows at a time.

        With `shuffle_buffer` > 0 the blocks are read in a random order, and their rows pass
        through a buffer of that many events: each block joins the buffer, the buffer is
        permuted, and all but `shuffle_buffer` rows leave it (tf.data's shuffle, a block at a
        time, so numpy does the work).
        """
        rng = np.random.default_rng(seed)
        width, row_values = self.num_coordinates, 2 * self.num_coordinates
        num_blocks = -(-self.size // self.block_rows)
        order = rng.permutation(num_blocks) if shuffle_buffer else range(num_blocks)
        held = np.zeros((0, row_values), dtype=np.float32)
        with open(self.path, "rb") as stream:
            for block in order:
                stream.seek(int(block) * self.block_rows * row_values * 4)
                rows = np.fromfile(stream, np.float32, self.block_rows * row_values)
                rows = rows.reshape(-1, row_values)
                if not shuffle_buffer:
                    yield rows[:, :width], rows[:, width:]
                    continue
                held = np.concatenate([held, rows])
                held = held[rng.permutation(len(held))]
                if len(held) > shuffle_buffer:
                    leaving, held = held[:-shuffle_buffer], held[-shuffle_buffer:]
                    yield leaving[:, :width], leaving[:, width:]
        if len(held):
            yield held[:, :width], held[:, width:]

    def dataset(self, batch_size: int, shuffle_buffer: int = 0, seed: int = 0) -> tf.data.Dataset:
        """A tf.data dataset of (momenta, positions) float32 batches [batch, 3n] of the part.

        Every iteration (every epoch) re-reads the file; a shuffled dataset draws a new order
        each time, reproducibly from `seed`.
        """
        epochs = itertools.count()

        def tables():
            return self.tables(shuffle_buffer, seed=(seed, next(epochs)))

        spec = tf.TensorSpec((None, self.num_coordinates), tf.float32)
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
