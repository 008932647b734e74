"""Event files of either format: Parquet round trips, its one-line errors, kept columns, bars."""

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cvae_tf import csv_files, data, event_files, file_writes, progress, simulator
from cvae_tf.errors import UserInputError

COLUMNS = [*data.POSITION_COLUMNS, *data.MOMENTUM_COLUMNS]


def simulated(num_events=50):
    return simulator.simulate_events(simulator.SimulationConfig(num_events=num_events, seed=3))


def test_events_round_trip_through_parquet_exactly(tmp_path):
    positions, momenta = simulated()
    path = tmp_path / "events.parquet"
    event_files.write_atomically(path, csv_files.events_frame(positions, momenta))
    events = event_files.load_events(path)
    # Binary float64: every bit back, where the CSV keeps 12 significant digits.
    np.testing.assert_array_equal(events.positions, positions)
    np.testing.assert_array_equal(events.momenta, momenta)
    assert event_files.count_events(path) == 50
    assert event_files.read_header(path) == COLUMNS
    assert [p.name for p in tmp_path.iterdir()] == ["events.parquet"]  # no temporary left


def test_a_stream_of_tables_becomes_one_row_group_each_read_back_in_blocks(tmp_path):
    positions, momenta = simulated(30)
    frame = csv_files.events_frame(positions, momenta)
    path = tmp_path / "events.pq"  # the short suffix too
    event_files.write_atomically(path, (frame.iloc[start : start + 10] for start in (0, 10, 20)))
    assert pq.ParquetFile(path).num_row_groups == 3
    blocks = list(event_files.read_column_chunks(path, data.MOMENTUM_COLUMNS, chunk_rows=7))
    assert [len(block) for block in blocks] == [7, 7, 7, 7, 2]
    np.testing.assert_array_equal(np.concatenate(blocks), data.to_table(momenta))


def test_csv_and_parquet_files_mix_in_one_data_list(tmp_path):
    positions, momenta = simulated(20)
    frame = csv_files.events_frame(positions, momenta)
    csv_files.write_csv_atomically(tmp_path / "a.csv", frame.iloc[:10])
    event_files.write_atomically(tmp_path / "b.parquet", frame.iloc[10:])
    files = csv_files.data_files(f"{tmp_path / 'a.csv'},{tmp_path / 'b.parquet'}")
    loaded = np.concatenate([event_files.read_columns(path, COLUMNS) for path in files])
    np.testing.assert_allclose(loaded, frame.to_numpy(), rtol=1e-11)


def test_kept_columns_come_back_exactly_as_read(tmp_path):
    text = (
        "event_id,pcx,pcy,pcz,pox,poy,poz,psx,psy,psz,run,flag\n"
        "run7-000123,1,2,3,4,5,6,7,8,9.000000000000001,12345678901234567890,\n"
        "run7-000124,1,2,3,4,5,6,7,8,9,0012,NA\n"
    )
    path = tmp_path / "momenta.csv"
    path.write_text(text)
    ((values, kept),) = event_files.read_kept_chunks(path, data.MOMENTUM_COLUMNS)
    assert list(kept.columns) == ["event_id", *data.MOMENTUM_COLUMNS, "run", "flag"]
    assert kept["event_id"].tolist() == ["run7-000123", "run7-000124"]
    assert kept["run"].tolist() == ["12345678901234567890", "0012"]  # no int64, no lost zeros
    assert kept["flag"].tolist() == ["", "NA"]  # not NaN
    assert kept["psz"].tolist() == ["9.000000000000001", "9"]  # the text, every digit
    assert values[0, -1] == 9.000000000000001
    # Parquet keeps each column's own type.
    table = pa.table({"event_id": pa.array([2**62, 5], pa.int64()), "pcx": [1.0, 2.0]})
    parquet = tmp_path / "m.parquet"
    pq.write_table(table, parquet)
    ((_, kept),) = event_files.read_kept_chunks(parquet, ["pcx"])
    assert kept["event_id"].tolist() == [2**62, 5] and kept["event_id"].dtype == np.int64


def test_missing_words_in_kept_text_reading_are_named_as_the_csv_reader_names_them(tmp_path):
    path = tmp_path / "momenta.csv"
    path.write_text("pcx,id\n1,a\nnan,b\n")
    with pytest.raises(UserInputError, match=r"NaN or infinite values in data rows 2 "):
        list(csv_files.read_kept_chunks(path, ["pcx"]))
    path.write_text("pcx,id\n1,a\nabc,b\n")
    with pytest.raises(UserInputError, match=r"non-numeric value 'abc' in data row 2 \(line 3\)"):
        list(csv_files.read_kept_chunks(path, ["pcx"]))


def parquet_of(path, **columns):
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), r"is empty; expected a Parquet file"),
        (lambda p: p.write_text("pcx\n1.5\n2.5\n"), r"is not a readable Parquet file \(.*magic"),
        (lambda p: parquet_of(p, pcx=pa.array([], pa.float64())), r"has columns but no data rows"),
        (lambda p: parquet_of(p, pcy=[1.0]), r"lacks columns \['pcx'\]; columns found: \['pcy'\]"),
        (lambda p: parquet_of(p, pcx=["1.0"]), r"column 'pcx' holds string values; expected"),
        (lambda p: parquet_of(p, pcx=[1.0, None]), r"NaN or infinite values in data rows 2 "),
        (lambda p: parquet_of(p, pcx=[1.0, np.inf]), r"NaN or infinite values in data rows 2 "),
        (lambda p: parquet_of(p, pcx=[1.0, 1e19]), r"1e\+19 in data row 2, beyond"),
    ],
)
def test_bad_parquet_files_are_one_line_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.parquet"
    make(path)
    with pytest.raises(UserInputError, match=message) as raised:
        list(event_files.read_column_chunks(path, ["pcx"]))
    assert "\n" not in str(raised.value) and str(path) in str(raised.value)


def test_missing_parquet_and_folders_are_named_with_the_format(tmp_path):
    with pytest.raises(UserInputError, match="does not exist; expected a Parquet file"):
        event_files.read_header(tmp_path / "none.parquet")
    folder = tmp_path / "folder.parquet"
    folder.mkdir()
    with pytest.raises(UserInputError, match="is a directory; expected a regular Parquet file"):
        event_files.read_header(folder)


def test_a_failed_parquet_write_leaves_no_file_and_no_temporary(tmp_path):
    def tables():
        yield pd.DataFrame({"pcx": [1.0]})
        raise OSError(28, "No space left on device")

    path = tmp_path / "out.parquet"
    with pytest.raises(file_writes.WriteError, match="the disk is full"):
        event_files.write_atomically(path, tables())
    assert list(tmp_path.iterdir()) == []


def test_the_suffix_chooses_the_format():
    assert [event_files.format_name(name) for name in ("a.parquet", "b.PQ", "c.csv", "d")] == [
        "Parquet",
        "Parquet",
        "CSV",
        "CSV",
    ]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_progress_bar_is_drawn_on_a_terminal_only():
    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        with progress.Bar("predicting", 10, stream=stream) as bar:
            bar.update(4)
            bar.update(10)
    assert log.getvalue() == ""  # a file or a pipe: nothing, so errors stay one line
    assert terminal.getvalue().startswith("\rpredicting [########            ] 4/10 events (40%)")
    assert "\rpredicting [####################] 10/10 events (100%)" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n") and terminal.getvalue().count("\n") == 1


def test_a_progress_bar_stopped_by_an_error_ends_its_line_first():
    terminal = _Terminal()
    with pytest.raises(UserInputError), progress.Bar("aligning", 10, stream=terminal) as bar:
        bar.update(3)
        raise UserInputError("bad")
    assert terminal.getvalue().endswith("\n")  # the error's one line starts on its own
