"""The chunk pool driven directly: order, worker count, progress bar and refused worker counts."""

import collections
import os
import re

import pytest

from cvae_tf import chunk_pool
from cvae_tf.errors import UserInputError

# What map_chunks reads of a configuration; module level, so spawned workers can unpickle it.
Config = collections.namedtuple("Config", "num_events")


def chunk_bounds(config, index, chunk_events):
    """A worker's task: the first and one-past-last event of chunk `index`."""
    return index * chunk_events, min((index + 1) * chunk_events, config.num_events)


@pytest.mark.parametrize("workers", [1, 2])
def test_chunks_come_back_in_order_whatever_the_number_of_processes(workers):
    results = chunk_pool.map_chunks(chunk_bounds, Config(250), 100, workers)
    assert list(results) == [(0, 100), (100, 200), (200, 250)]


def test_progress_bar_goes_to_stderr(capsys):
    list(chunk_pool.map_chunks(chunk_bounds, Config(10), 4, progress=True))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "10/10 events (100%)" in captured.err


def test_worker_count_zero_means_every_core_this_process_may_use():
    assert chunk_pool.worker_count(0) == len(os.sched_getaffinity(0))
    assert chunk_pool.worker_count(3) == 3


@pytest.mark.parametrize("workers", [-1, 1.5, True, "2"])
def test_bad_worker_counts_are_user_errors_naming_the_flag_and_value(workers):
    expected = re.escape(f"--workers={workers!r}; expected an integer ≥ 1, or 0 for every")
    with pytest.raises(UserInputError, match=expected):
        chunk_pool.worker_count(workers)
