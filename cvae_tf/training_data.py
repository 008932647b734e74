"""A training run's data: loaded whole or streamed, checked, repaired, split, normalized."""

import dataclasses
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf

from cvae_tf import alignment, data, diagnostics, frames, model, preprocessing, streaming
from cvae_tf.cli import UserInputError
from cvae_tf.config import OptimizationConfig, TrainConfig

CHECK_SAMPLE_SIZE = 1000  # events the pre-training data check explodes (about 0.1 s)
LATENT_BATCH_SIZE = 8192  # events per encoder call when the latent statistics are refitted
TRAIN_SAMPLE_SIZE = 8192  # training events measured like validation each epoch


@dataclasses.dataclass
class TrainingData:
    """A run's data, in memory or streamed from its files, as fit and the evaluation use it.

    `fit_inputs` are keras `fit` arguments: arrays with a batch size, or tf.data datasets
    (with `steps_per_epoch` where a small training part is repeated to fill an epoch).
    `train_sample` is a fixed sample of training events (momenta, positions) [n, 9] measured
    like the validation split every epoch; `validation_batches` yields the validation split.
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
    mean_geometry: np.ndarray  # the training part's mean positions (3, 3), bohr
    split: data.Split | None  # row indices, when the data are in memory
    close: Callable[[], None] = lambda: None  # removes temporary files (streamed data)

    def __enter__(self) -> "TrainingData":
        return self

    def __exit__(self, *exception) -> None:
        self.close()


def data_files(config: TrainConfig) -> tuple[Path, ...]:
    """The run's CSV files: those --data names (resolved by config.validate), else the default."""
    return config.data.files or (data.default_data_path(),)


def load(config: TrainConfig, batch_size: int | None = None) -> TrainingData:
    """The run's data: checked, repaired as asked, split, with its normalization statistics.

    `batch_size` is the global batch fit will use (default --batch_size).

    --data_loading=memory reads every file whole; stream reads them block by block each epoch
    (streaming.py); auto streams when the files together exceed STREAM_THRESHOLD_BYTES.
    """
    files, data_config = data_files(config), config.data
    source = streaming.EventSource(
        files=files,
        position_columns=data_config.position_columns,
        momentum_columns=data_config.momentum_columns,
        train_fraction=data_config.train_fraction,
        val_fraction=data_config.val_fraction,
        seed=config.seed,
        center=data_config.center,
    )
    streamed = data_config.data_loading == "stream" or (
        data_config.data_loading == "auto"
        and streaming.total_bytes(files) > streaming.STREAM_THRESHOLD_BYTES
    )
    batch_size = batch_size or config.optimization.batch_size
    if streamed:
        return _streamed_data(config, source, batch_size)
    return _in_memory_data(config, source, batch_size)


def _in_memory_data(
    config: TrainConfig, source: streaming.EventSource, batch_size: int
) -> TrainingData:
    events, split = source.load()
    if config.data.check_data:
        _print_data_check(events, config)
    if config.data.align_positions:
        events, residual = alignment.align_events(events)
        print(
            "Aligned positions to their momenta: residual |Δp|/|p| median "
            f"{np.median(residual):.2g}, max {np.max(residual):.2g}",
            flush=True,
        )
    events = source.prepare(events)
    # Statistics from float64, as a streamed run computes them; the model trains in float32.
    position_statistics, momentum_statistics = frame_statistics(
        config.model.frame,
        data.to_table(events.positions[split.train]),
        data.to_table(events.momenta[split.train]),
    )
    positions = data.to_table(events.positions).astype(np.float32)
    momenta = data.to_table(events.momenta).astype(np.float32)
    train_positions, train_momenta = positions[split.train], momenta[split.train]
    val_positions, val_momenta = positions[split.validation], momenta[split.validation]
    sample = np.sort(
        np.random.default_rng(config.seed).permutation(len(train_momenta))[:TRAIN_SAMPLE_SIZE]
    )
    return TrainingData(
        files=source.files,
        streamed=False,
        fit_inputs={
            **_training_inputs(train_momenta, train_positions, batch_size, config),
            "validation_data": (val_momenta, val_positions),
            "validation_batch_size": batch_size,
        },
        latent_batches=lambda: _table_batches(train_momenta, train_positions),
        validation_batches=lambda: _table_batches(val_momenta, val_positions),
        train_sample=(train_momenta[sample], train_positions[sample]),
        position_statistics=position_statistics,
        momentum_statistics=momentum_statistics,
        part_sizes=(len(split.train), len(split.validation), len(split.test)),
        test=data.Events(events.positions[split.test], events.momenta[split.test]),
        mean_geometry=events.positions[split.train].mean(axis=0),
        split=split,
    )


def _streamed_data(
    config: TrainConfig, source: streaming.EventSource, batch_size: int
) -> TrainingData:
    if config.data.align_positions:
        raise UserInputError(
            "--align_positions needs the data in memory (--data_loading=memory); repair large "
            "files first with python -m cvae_tf.align, one file or shard at a time"
        )
    # The binary copies of the training and validation parts, removed by TrainingData.close.
    cache = tempfile.TemporaryDirectory(prefix="cvae_tf_stream_")
    print(
        f"Streaming {len(source.files)} data file(s): one pass for the statistics, the parts "
        f"copied to {cache.name} ...",
        flush=True,
    )
    try:
        summary = source.scan(config.model.frame, CHECK_SAMPLE_SIZE, Path(cache.name))
    except BaseException:
        cache.cleanup()
        raise
    if config.data.check_data:
        _print_data_check(summary.check_sample, config)
    train_size, val_size, test_size = (int(size) for size in summary.part_sizes)
    print(
        f"  {train_size} training, {val_size} validation and {test_size} test events",
        flush=True,
    )
    return TrainingData(
        files=source.files,
        streamed=True,
        fit_inputs={
            **_streamed_training_inputs(summary.train, batch_size, config),
            "validation_data": summary.validation.dataset(batch_size),
            "shuffle": False,  # the training dataset shuffles itself
        },
        latent_batches=summary.train.tables,
        validation_batches=summary.validation.tables,
        train_sample=_first_rows(summary.train.tables(), TRAIN_SAMPLE_SIZE),
        position_statistics=summary.position_statistics,
        momentum_statistics=summary.momentum_statistics,
        part_sizes=(train_size, val_size, test_size),
        test=summary.test,
        mean_geometry=summary.mean_geometry,
        split=None,
        close=cache.cleanup,
    )


def epoch_steps(train_events: int, batch_size: int, optimization: OptimizationConfig) -> int:
    """Optimizer steps per epoch: one pass, or at least --min_epoch_steps.

    The minimum is rounded up to whole compiled calls of --steps_per_execution batches, so an
    epoch never ends inside one.
    """
    one_pass = _one_pass_steps(train_events, batch_size)
    if one_pass >= optimization.min_epoch_steps:
        return one_pass
    calls = -(-optimization.min_epoch_steps // optimization.steps_per_execution)
    return calls * optimization.steps_per_execution


def _one_pass_steps(events: int, batch_size: int) -> int:
    return -(-events // batch_size)


def _training_inputs(momenta, positions, batch_size: int, config: TrainConfig) -> dict:
    """keras fit arguments for the training part: arrays, or a repeated tf.data dataset.

    A part too small to give --min_epoch_steps steps in one pass is repeated, reshuffled each
    pass (tf.data shuffle, seeded), so an epoch means about the same number of optimizer steps
    whatever the data's size: early stopping and the learning-rate schedule then count steps.
    """
    steps = epoch_steps(len(momenta), batch_size, config.optimization)
    if steps == _one_pass_steps(len(momenta), batch_size):
        return {"x": momenta, "y": positions, "batch_size": batch_size}
    dataset = (
        tf.data.Dataset.from_tensor_slices((momenta, positions))
        .shuffle(len(momenta), seed=config.seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    return {"x": dataset, "steps_per_epoch": steps, "shuffle": False}


def _streamed_training_inputs(part: streaming.PartFile, batch_size: int, config) -> dict:
    """keras fit arguments for a streamed training part, repeated as _training_inputs does."""
    dataset = part.dataset(batch_size, config.data.shuffle_buffer, config.seed)
    steps = epoch_steps(part.size, batch_size, config.optimization)
    if steps == _one_pass_steps(part.size, batch_size):
        return {"x": dataset}
    return {"x": dataset.repeat(), "steps_per_epoch": steps}


def _first_rows(tables, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `rows` events of (momenta, positions) tables, concatenated."""
    momenta, positions, held = [], [], 0
    for momentum_table, position_table in tables:
        momenta.append(momentum_table[: rows - held])
        positions.append(position_table[: rows - held])
        held += len(momenta[-1])
        if held >= rows:
            break
    return np.concatenate(momenta), np.concatenate(positions)


def _print_data_check(events: data.Events, config: TrainConfig) -> None:
    verdict = diagnostics.check_events(events, CHECK_SAMPLE_SIZE, config.seed)
    print(verdict.format(), flush=True)


def frame_statistics(
    frame: str, positions: np.ndarray, momenta: np.ndarray
) -> tuple[preprocessing.ColumnStatistics, preprocessing.ColumnStatistics]:
    """Normalization statistics of training tables [events, 9] in the model's frame."""
    position_statistics = preprocessing.ColumnStatistics(model.NUM_FEATURES)
    momentum_statistics = preprocessing.ColumnStatistics(model.NUM_FEATURES)
    for start in range(0, len(momenta), data.CHUNK_ROWS):
        stop = start + data.CHUNK_ROWS
        model_positions, model_momenta = frames.model_frame_tables(
            frame, positions[start:stop], momenta[start:stop]
        )
        position_statistics.update(model_positions)
        momentum_statistics.update(model_momenta)
    return position_statistics, momentum_statistics


def _table_batches(momenta, positions, batch_size: int = LATENT_BATCH_SIZE):
    for start in range(0, len(momenta), batch_size):
        yield momenta[start : start + batch_size], positions[start : start + batch_size]
