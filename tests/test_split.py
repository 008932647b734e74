"""The hashed per-row split: a reference hash, independence of rows, files and seeds, part sizes."""

import numpy as np
import pytest

from cvae_tf import split
from cvae_tf.errors import UserInputError


def rows_of_one_file(num_events, train_fraction, val_fraction, seed):
    """The split of one file's rows, as an in-memory run of that file splits it."""
    parts = split.split_parts(np.arange(num_events), train_fraction, val_fraction, seed)
    return split.split_of_parts(parts, train_fraction, val_fraction)


def test_split_is_deterministic_disjoint_and_complete():
    by_part = rows_of_one_file(100_000, 0.7, 0.15, seed=3)
    sizes = np.array([len(by_part.train), len(by_part.validation), len(by_part.test)])
    # Each row independently: part sizes are multinomial, within 4 standard deviations.
    expected = 100_000 * np.array([0.7, 0.15, 0.15])
    assert np.all(np.abs(sizes - expected) < 4 * np.sqrt(expected * (1 - expected / 100_000)))
    together = np.concatenate([by_part.train, by_part.validation, by_part.test])
    np.testing.assert_array_equal(np.sort(together), np.arange(100_000))
    again = rows_of_one_file(100_000, 0.7, 0.15, seed=3)
    np.testing.assert_array_equal(by_part.test, again.test)
    other = rows_of_one_file(100_000, 0.7, 0.15, seed=4)
    assert not np.array_equal(by_part.test, other.test)


def test_splitmix64_matches_the_reference_sequence():
    # The first outputs of the reference SplitMix64 generator seeded with 0 (Vigna's
    # splitmix64.c: state += 0x9E3779B97F4A7C15, then the mix): an independent check of the hash.
    states = np.arange(1, 4, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    assert [int(value) for value in split.splitmix64(states)] == [
        0xE220A8397B1DCDAF,
        0x6E789E6AA1B965F4,
        0x06C45D188009454F,
    ]


def test_a_rows_part_depends_only_on_seed_file_and_row():
    rows = np.arange(5000)
    parts = split.split_parts(rows, 0.7, 0.15, seed=9, file_index=2)
    # Any subset of rows, in any order, gets the same parts (streaming reads blocks).
    picked = np.random.default_rng(0).permutation(5000)[:700]
    np.testing.assert_array_equal(
        split.split_parts(picked, 0.7, 0.15, seed=9, file_index=2), parts[picked]
    )
    # Another file or another seed: another, independent assignment (agreement ≈ Σp² = 0.535).
    for other in (
        split.split_parts(rows, 0.7, 0.15, seed=9, file_index=3),
        split.split_parts(rows, 0.7, 0.15, seed=10, file_index=2),
    ):
        assert 0.5 < np.mean(other == parts) < 0.57
    # A row's uniform number does not depend on the fractions: growing the training fraction
    # only moves rows from validation and test into training, never between the two others.
    wider = split.split_parts(rows, 0.8, 0.1, seed=9, file_index=2)
    assert np.all(wider[parts == split.TRAIN] == split.TRAIN)
    assert np.all(wider[parts == split.VALIDATION] != split.TEST)


def test_a_part_without_events_is_refused():
    # Fractions out of range are refused earlier, by config.validate (tests/test_config.py).
    with pytest.raises(
        UserInputError, match=r"too few for a split of 0\.7/0\.15/0\.15: the parts got"
    ):
        rows_of_one_file(2, 0.7, 0.15, seed=0)
