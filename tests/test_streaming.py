"""Streamed data: the files --data names, block reading, the per-row split, tf.data batches."""

import dataclasses

import numpy as np
import pytest

from cvae_tf import data, frames, preprocessing, simulator, streaming
from cvae_tf.cli import UserInputError


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Three CSV shards of 300, 250 and 170 events (the last with blank lines, CRLF, quotes)."""
    folder = tmp_path_factory.mktemp("shards")
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(720, seed=11))
    bounds = [0, 300, 550, 720]
    paths = []
    for index in range(3):
        path = folder / f"part-{index:02d}.csv"
        part = slice(bounds[index], bounds[index + 1])
        data.write_events_csv(path, positions[part], momenta[part])
        paths.append(path)
    header, *lines = paths[2].read_text().splitlines()
    lines[40] = ", ".join(f'"{cell}"' for cell in lines[40].split(","))
    lines.insert(100, "")  # a blank line: skipped, not a data row
    paths[2].write_bytes(("\r\n".join([header, *lines]) + "\r\n\r\n").encode())
    return folder, paths, positions, momenta


def source_of(paths, **kwargs):
    return streaming.EventSource(files=tuple(paths), seed=4, **kwargs)


def test_data_files_path_glob_and_list(shards, tmp_path):
    folder, paths, *_ = shards
    assert streaming.data_files(str(paths[1])) == (paths[1],)
    # A glob expands sorted, whatever order the file system lists.
    assert streaming.data_files(str(folder / "part-*.csv")) == tuple(paths)
    listed = f"{paths[2]}, {folder / 'part-0[01].csv'}"
    assert streaming.data_files(listed) == (paths[2], paths[0], paths[1])


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{folder}/nothing-*.csv", "matches no file; expected CSV files"),
        ("{folder}", "is not a file; expected a CSV file"),
        ("{folder}/part-00.csv,{folder}/part-0*.csv", "more than once"),
        (" , ", "names no file"),
    ],
)
def test_data_files_refusals(shards, spec, message):
    with pytest.raises(UserInputError, match=message):
        streaming.data_files(spec.format(folder=shards[0]))


def test_blocks_number_rows_per_file_and_split_them_by_hash(shards):
    _, paths, positions, _ = shards
    source = source_of(paths, block_rows=64)
    blocks = list(source.blocks())
    assert max(len(block.rows) for block in blocks) == 64
    for file_index, size in enumerate((300, 250, 170)):
        rows = np.concatenate([b.rows for b in blocks if b.file_index == file_index])
        np.testing.assert_array_equal(rows, np.arange(size))  # blank lines are not rows
        parts = np.concatenate([b.parts for b in blocks if b.file_index == file_index])
        expected = data.split_parts(np.arange(size), 0.7, 0.15, seed=4, file_index=file_index)
        np.testing.assert_array_equal(parts, expected)
    read = np.concatenate([block.events.positions for block in blocks])
    np.testing.assert_allclose(read, positions, rtol=1e-11)  # 12 significant digits in the CSV


def test_scan_agrees_with_the_data_loaded_whole(shards, tmp_path):
    _, paths, *_ = shards
    source = source_of(paths, block_rows=50, center="com")
    events, split = source.load()
    summary = source.scan("momentum", check_sample_size=120, cache_dir=tmp_path)
    np.testing.assert_array_equal(
        summary.part_sizes, [len(split.train), len(split.validation), len(split.test)]
    )
    prepared = source.prepare(events)
    np.testing.assert_array_equal(summary.test.positions, prepared.positions[split.test])
    np.testing.assert_array_equal(summary.test.momenta, events.momenta[split.test])
    np.testing.assert_array_equal(summary.check_sample.positions, events.positions[:120])
    np.testing.assert_allclose(
        summary.mean_geometry, prepared.positions[split.train].mean(axis=0), atol=1e-12
    )
    # Statistics of the training part in the momentum frame: block by block equals whole.
    table = data.to_table
    positions, momenta = frames.model_frame_tables(
        "momentum", table(prepared.positions[split.train]), table(events.momenta[split.train])
    )
    for streamed, whole in (
        (summary.position_statistics, positions),
        (summary.momentum_statistics, momenta),
    ):
        for method in preprocessing.NORMALIZATIONS:
            offset, variance = streamed.normalization(method)
            expected_offset, expected_variance = preprocessing.normalization_statistics(
                method, whole
            )
            np.testing.assert_allclose(offset, expected_offset, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(variance, expected_variance, rtol=1e-10)


def test_a_bad_cell_deep_in_a_later_block_is_named_by_row_and_line(tmp_path):
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(400, seed=1))
    path = tmp_path / "events.csv"
    data.write_events_csv(path, positions, momenta)
    lines = path.read_text().splitlines()
    cells = lines[351].split(",")  # data row 351 (line 352 of the file)
    cells[4] = "nan"
    lines[351] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserInputError, match=r"data rows 351 \(first in column 'oy'\)"):
        source_of([path], block_rows=100).scan("lab", check_sample_size=10, cache_dir=tmp_path)


@pytest.fixture(scope="module")
def scanned(shards, tmp_path_factory):
    """The shards loaded whole, and scanned into part files of 64-row blocks."""
    _, paths, *_ = shards
    source = source_of(paths, block_rows=64, center="com")
    summary = source.scan("lab", check_sample_size=1, cache_dir=tmp_path_factory.mktemp("c"))
    events, split = source.load()
    return source.prepare(events), split, summary


@pytest.mark.parametrize("part", ["train", "validation"])
def test_part_files_hold_exactly_the_parts_rows(scanned, part):
    events, split, summary = scanned
    rows = getattr(split, part)
    part_file = dataclasses.replace(getattr(summary, part), block_rows=40)
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
    _, split, summary = scanned
    part_file = dataclasses.replace(summary.train, block_rows=40)
    sizes = [len(m) for m, _ in part_file.tables(shuffle_buffer=100, seed=(1, 0))]
    # Each block adds 40 rows; everything beyond the 100 buffered leaves at once.
    assert max(sizes[:-1]) <= 40 and sizes[-1] <= 100 and sum(sizes) == len(split.train)
