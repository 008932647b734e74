"""Events read block by block from several files: row numbers, parts, the whole set in memory."""

import numpy as np

from cvae_tf import event_source, split


def source_of(paths, **kwargs):
    return event_source.EventSource(files=tuple(paths), seed=4, **kwargs)


def test_blocks_number_rows_per_file_and_split_them_by_hash(shards):
    _, paths, positions, _ = shards
    source = source_of(paths, block_rows=64)
    blocks = list(source.blocks())
    assert max(len(block.rows) for block in blocks) == 64
    for file_index, size in enumerate((300, 250, 170)):
        rows = np.concatenate([b.rows for b in blocks if b.file_index == file_index])
        np.testing.assert_array_equal(rows, np.arange(size))  # blank lines are not rows
        parts = np.concatenate([b.parts for b in blocks if b.file_index == file_index])
        expected = split.split_parts(np.arange(size), 0.7, 0.15, seed=4, file_index=file_index)
        np.testing.assert_array_equal(parts, expected)
    read = np.concatenate([block.events.positions for block in blocks])
    np.testing.assert_allclose(read, positions, rtol=1e-11)  # 12 significant digits in the CSV


def test_load_holds_every_event_with_the_rows_of_each_part(shards):
    _, paths, positions, momenta = shards
    events, by_part = source_of(paths, block_rows=64).load()
    np.testing.assert_allclose(events.positions, positions, rtol=1e-11)
    np.testing.assert_allclose(events.momenta, momenta, rtol=1e-11)
    # Rows are numbered across the files in order; each file's parts follow the hash rule.
    expected = np.concatenate(
        [
            split.split_parts(np.arange(size), 0.7, 0.15, seed=4, file_index=index)
            for index, size in enumerate((300, 250, 170))
        ]
    )
    for part, rows in enumerate((by_part.train, by_part.validation, by_part.test)):
        np.testing.assert_array_equal(rows, np.flatnonzero(expected == part))
