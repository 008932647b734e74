"""What keras fit takes for a run's training part: arrays or tf.data datasets of whole epochs."""

import numpy as np
import tensorflow as tf

from cvae_tf import part_files
from cvae_tf.config import OptimizationConfig, TrainConfig

LATENT_BATCH_SIZE = 8192  # events per encoder call when the latent statistics are refitted


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


def training_inputs(momenta, positions, batch_size: int, config: TrainConfig) -> dict:
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


def streamed_training_inputs(part: part_files.PartFile, batch_size: int, config) -> dict:
    """keras fit arguments for a streamed training part, repeated as training_inputs does."""
    dataset = part.dataset(batch_size, config.data.shuffle_buffer, config.seed)
    steps = epoch_steps(part.size, batch_size, config.optimization)
    if steps == _one_pass_steps(part.size, batch_size):
        return {"x": dataset}
    return {"x": dataset.repeat(), "steps_per_epoch": steps}


def first_rows(tables, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `rows` events of (momenta, positions) tables, concatenated."""
    momenta, positions, held = [], [], 0
    for momentum_table, position_table in tables:
        momenta.append(momentum_table[: rows - held])
        positions.append(position_table[: rows - held])
        held += len(momenta[-1])
        if held >= rows:
            break
    return np.concatenate(momenta), np.concatenate(positions)


def table_batches(momenta, positions, batch_size: int = LATENT_BATCH_SIZE):
    """The tables [events, 9] in order, `batch_size` rows at a time."""
    for start in range(0, len(momenta), batch_size):
        yield momenta[start : start + batch_size], positions[start : start + batch_size]
