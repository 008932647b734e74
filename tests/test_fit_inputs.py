"""Epochs of at least --min_epoch_steps optimizer steps, and the inputs fit gets for them."""

import dataclasses

import numpy as np

from cvae_tf import config, fit_inputs


def test_epoch_steps_by_hand():
    defaults = config.OptimizationConfig()  # min_epoch_steps 100, steps_per_execution 32
    # 35,000 events at batch 256: one pass, 137 steps (more than the minimum).
    assert fit_inputs.epoch_steps(35_000, 256, defaults) == 137
    # 700 events: 3 steps a pass; the minimum of 100 rounded up to 4 calls of 32 = 128.
    assert fit_inputs.epoch_steps(700, 256, defaults) == 128
    one_per_call = dataclasses.replace(defaults, steps_per_execution=1)
    assert fit_inputs.epoch_steps(700, 256, one_per_call) == 100
    no_minimum = dataclasses.replace(defaults, min_epoch_steps=1)
    assert fit_inputs.epoch_steps(700, 256, no_minimum) == 3


def test_a_small_part_repeats_every_event_once_a_pass_reshuffled():
    """700 events, batch 64: 11 steps a pass, so the epoch repeats the part, in a new order.

    The stream is shuffled, then repeated, then batched: its first 700 rows are every event
    once, the next 700 again, in another order (a batch may span two passes).
    """
    momenta = np.arange(700 * 9, dtype=np.float32).reshape(700, 9)
    positions = -momenta
    run_config = config.replace(config.TrainConfig(), batch_size=64)
    inputs = fit_inputs.training_inputs(momenta, positions, 64, run_config)
    assert inputs["steps_per_epoch"] == 128 and inputs["shuffle"] is False
    batches = list(inputs["x"].take(22).as_numpy_iterator())  # 1,408 rows
    for momentum_batch, position_batch in batches:
        np.testing.assert_array_equal(position_batch, -momentum_batch)  # rows stay paired
    rows = np.concatenate([momentum_batch[:, 0] for momentum_batch, _ in batches])
    first, second = rows[:700], rows[700:1400]
    for one_pass in (first, second):
        np.testing.assert_array_equal(np.sort(one_pass), momenta[:, 0])  # each event once
    assert not np.array_equal(first, second)  # reshuffled between passes


def test_a_large_part_is_fit_as_arrays_one_pass_an_epoch():
    momenta = np.zeros((64 * 100, 9), np.float32)
    inputs = fit_inputs.training_inputs(momenta, momenta, 64, config.TrainConfig())
    assert inputs["x"] is momenta and inputs["batch_size"] == 64
    assert "steps_per_epoch" not in inputs
