"""Part files: the rows written come back exactly, in blocks, shuffled in a buffer, as tf.data."""

import dataclasses

import numpy as np
import pytest

from cvae_tf import data, event_source, part_files


@pytest.fixture(scope="module")
def scanned(shards, tmp_path_factory):
    """The shards loaded whole, and their training and validation parts in part files."""
    _, paths, *_ = shards
    events, split = event_source.EventSource(files=tuple(paths), seed=4).load()
    folder = tmp_path_factory.mktemp("parts")
    files = {}
    for name in ("train", "validation"):
        rows = getattr(split, name)
        with open(folder / f"{name}.f32", "wb") as stream:
            for start in range(0, len(rows), 64):  # appended a block at a time, as a scan does
                part_files.write_events(stream, events[rows[start : start + 64]])
        files[name] = part_files.PartFile(folder / f"{name}.f32", len(rows))
    return events, split, files


@pytest.mark.parametrize("part", ["train", "validation"])
def test_part_files_hold_exactly_the_parts_rows(scanned, part):
    events, split, files = scanned
    rows = getattr(split, part)
    part_file = dataclasses.replace(files[part], block_rows=40)
    assert part_file.size == len(rows)
    expected = np.concatenate(
        [data.to_table(events.momenta[rows]), data.to_table(events.positions[rows])], axis=1
    ).astype(np.float32)
    # Unshuffled: the part in file order, 40 rows at a time.
    tables = list(part_file.tables())
    assert [len(m) for m, _ in tables[:-1]] == [40] * (len(tables) - 1)
    np.testing.assert_array_equal(np.concatenate([np.hstack(t) for t in tables]), expected)
    # As a dataset: batches of 32, the same rows in a new shuffled order every epoch.
    dataset = part_file.dataset(batch_size=32, shuffle_buffer=100, seed=2)
    assert int(dataset.cardinality()) == -(-len(rows) // 32)
    epochs = []
    for _ in range(2):
        batches = [np.hstack(batch) for batch in dataset.as_numpy_iterator()]
        assert all(len(batch) == 32 for batch in batches[:-1])
        epochs.append(np.concatenate(batches))
    for epoch in epochs:  # the same rows (as a multiset)
        np.testing.assert_array_equal(epoch[np.lexsort(epoch.T)], expected[np.lexsort(expected.T)])
    assert not np.array_equal(epochs[0], expected)
    assert not np.array_equal(epochs[0], epochs[1])
    again = part_file.dataset(batch_size=32, shuffle_buffer=100, seed=2)
    first_epoch = np.concatenate([np.hstack(batch) for batch in again.as_numpy_iterator()])
    np.testing.assert_array_equal(first_epoch, epochs[0])  # reproducible from the seed


def test_shuffling_holds_at_most_the_buffer(scanned):
    _, split, files = scanned
    part_file = dataclasses.replace(files["train"], block_rows=40)
    sizes = [len(m) for m, _ in part_file.tables(shuffle_buffer=100, seed=(1, 0))]
    # Each block adds 40 rows; everything beyond the 100 buffered leaves at once.
    assert max(sizes[:-1]) <= 40 and sizes[-1] <= 100 and sum(sizes) == len(split.train)
