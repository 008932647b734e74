"""A run's input pipeline: the streamed pass agrees with the data loaded whole; errors stop it."""

import numpy as np
import pytest

from cvae_tf import (
    csv_files,
    data,
    event_source,
    frames,
    input_pipeline,
    physics,
    preprocessing,
    simulator,
)
from cvae_tf.errors import UserInputError
from tests.models import normalization_statistics


def source_of(paths, **kwargs):
    return event_source.EventSource(files=tuple(paths), seed=4, **kwargs)


def test_scan_agrees_with_the_data_loaded_whole(shards, tmp_path):
    _, paths, *_ = shards
    source = source_of(paths, block_rows=50)
    events, split = source.load()
    summary = input_pipeline.scan(
        source, "momentum", "com", check_sample_size=120, cache_dir=tmp_path
    )
    np.testing.assert_array_equal(
        summary.part_sizes, [len(split.train), len(split.validation), len(split.test)]
    )
    # Centred on the centre of mass: masses from physics.MASSES, independently of the code.
    masses = np.asarray(physics.MASSES)[None, :, None]
    centre = (events.positions * masses).sum(axis=1, keepdims=True) / masses.sum()
    prepared = data.Events(events.positions - centre, events.momenta)
    np.testing.assert_allclose(
        summary.test.positions, prepared.positions[split.test], rtol=0, atol=1e-12
    )
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
            expected_offset, expected_variance = normalization_statistics(method, whole)
            np.testing.assert_allclose(offset, expected_offset, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(variance, expected_variance, rtol=1e-10)


def test_a_bad_cell_deep_in_a_later_block_is_named_by_row_and_line(tmp_path):
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(400, seed=1))
    path = tmp_path / "events.csv"
    csv_files.write_events_csv(path, positions, momenta)
    lines = path.read_text().splitlines()
    cells = lines[351].split(",")  # data row 351 (line 352 of the file)
    cells[4] = "nan"
    lines[351] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserInputError, match=r"data rows 351 \(first in column 'oy'\)"):
        input_pipeline.scan(
            source_of([path], block_rows=100),
            "lab",
            "none",
            check_sample_size=10,
            cache_dir=tmp_path,
        )
