"""Event CSV files: reading by column name, every bad input, writing, the files --data names."""

import fcntl
import os

import numpy as np
import pytest

from cvae_tf import csv_files, data, event_files, simulator
from cvae_tf.errors import UserInputError

COLUMNS = [*data.POSITION_COLUMNS, *data.MOMENTUM_COLUMNS]


def write(path, text):
    path.write_text(text)
    return path


def write_bytes(path, content):
    path.write_bytes(content)
    return path


def table_csv(tmp_path, rows=4, columns=COLUMNS, name="events.csv"):
    values = np.arange(rows * len(columns), dtype=float).reshape(rows, len(columns)) + 1
    lines = [",".join(columns)] + [",".join(f"{v:g}" for v in row) for row in values]
    return write(tmp_path / name, "\n".join(lines) + "\n"), values


def test_reads_columns_by_name_in_any_order(tmp_path):
    shuffled = COLUMNS[::-1]
    path, values = table_csv(tmp_path, columns=shuffled)
    events = event_files.load_events(path)
    by_name = dict(zip(shuffled, values.T, strict=True))
    np.testing.assert_array_equal(events.positions[:, 0, 0], by_name["cx"])
    np.testing.assert_array_equal(events.positions[:, 2, 1], by_name["sy"])
    np.testing.assert_array_equal(events.momenta[:, 1, 2], by_name["poz"])
    assert events.positions.shape == events.momenta.shape == (4, 3, 3)


def test_custom_column_names_and_surrounding_white_space(tmp_path):
    names = [f"r{i}" for i in range(9)] + [f"p{i}" for i in range(9)]
    header = ", ".join(names)
    path = write(tmp_path / "custom.csv", header + "\n" + ", ".join(["1"] * 18) + "\n")
    events = event_files.load_events(path, names[:9], names[9:])
    assert events.positions.shape == (1, 3, 3)


def test_write_then_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    positions, momenta = rng.normal(size=(5, 3, 3)), rng.normal(size=(5, 3, 3)) * 200
    path = tmp_path / "round.csv"
    csv_files.write_events_csv(path, positions, momenta)
    events = event_files.load_events(path)
    np.testing.assert_allclose(events.positions, positions, rtol=1e-11)
    np.testing.assert_allclose(events.momenta, momenta, rtol=1e-11)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "absent.csv", "does not exist"),
        (lambda tmp: tmp, "is a directory"),
        (lambda tmp: write(tmp / "empty.csv", ""), "is empty"),
        (lambda tmp: write(tmp / "header.csv", ",".join(COLUMNS) + "\n"), "no data rows"),
        (lambda tmp: write_bytes(tmp / "image.csv", b"\x89PNG\r\n\x1a\n\x00\x00"), "not a text"),
        (lambda tmp: write_bytes(tmp / "latin.csv", b"cx,cy\n\xe9\xff\n"), "not a UTF-8 text"),
        (lambda tmp: write_bytes(tmp / "u16.csv", "\ufeffcx,cy\n1,2\n".encode("utf-16")), "UTF-16"),
        (lambda tmp: write(tmp / "blank.csv", "\n" + ",".join(COLUMNS) + "\n"), "empty line"),
    ],
)
def test_unreadable_files(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(UserInputError, match=message) as error:
        event_files.load_events(path)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_columns_are_listed_with_the_columns_found(tmp_path):
    path, _ = table_csv(tmp_path, columns=[c for c in COLUMNS if c not in ("cy", "psz")])
    with pytest.raises(UserInputError, match=r"lacks columns \['cy', 'psz'\]; columns found: \["):
        event_files.load_events(path)


def test_duplicate_columns(tmp_path):
    path, _ = table_csv(tmp_path, columns=[*COLUMNS, "cx"])
    with pytest.raises(UserInputError, match=r"duplicate column names \['cx'\]"):
        event_files.load_events(path)


def test_non_numeric_cell_names_column_and_row(tmp_path):
    path, _ = table_csv(tmp_path)
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[COLUMNS.index("pox")] = "abc"
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserInputError, match=r"column 'pox' .*'abc' in data row 3 \(line 4\)"):
        event_files.load_events(path)


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", ""])
def test_nan_and_infinite_values_name_the_rows(tmp_path, bad):
    path, _ = table_csv(tmp_path, rows=6)
    lines = path.read_text().splitlines()
    for row in (2, 5):
        cells = lines[row].split(",")
        cells[4] = bad
        lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        UserInputError, match=r"NaN or infinite values in data rows 2, 5 \(first in column 'oy'\);"
    ):
        event_files.load_events(path)


def test_ragged_row(tmp_path):
    path, _ = table_csv(tmp_path)
    path.write_text(path.read_text() + ",".join(["1"] * 20) + "\n")
    with pytest.raises(UserInputError, match="not a well-formed CSV"):
        event_files.load_events(path)


@pytest.mark.parametrize(
    "separator, named", [(";", "';' (semicolon)"), ("\t", "tab"), ("|", "'|'")]
)
def test_another_separator_is_named(tmp_path, separator, named):
    path, _ = table_csv(tmp_path)
    path.write_text(path.read_text().replace(",", separator))
    with pytest.raises(UserInputError) as error:
        event_files.load_events(path)
    assert f"has a single column {repr('cx' + separator + 'cy')[:-1]}" in str(error.value)
    assert f"looks separated by {named}" in str(error.value)
    assert str(error.value).endswith("expected comma-separated values")


def test_byte_order_mark_quotes_spaces_and_trailing_empty_lines_are_read(tmp_path):
    path, values = table_csv(tmp_path)
    header, *rows = path.read_text().splitlines()
    quoted = [", ".join(f'"{cell}"' for cell in line.split(",")) for line in [header, *rows]]
    path.write_text("\ufeff" + "\r\n".join(quoted) + "\r\n\r\n\n   \n")
    events = event_files.load_events(path)
    np.testing.assert_array_equal(data.to_table(events.positions), values[:, :9])
    np.testing.assert_array_equal(data.to_table(events.momenta), values[:, 9:])


def test_magnitudes_beyond_float32_squares_are_refused_with_column_and_row(tmp_path):
    path, _ = table_csv(tmp_path, rows=6)
    lines = path.read_text().splitlines()
    cells = lines[4].split(",")
    cells[COLUMNS.index("psy")] = "-1e300"
    lines[4] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserInputError) as error:
        event_files.load_events(path)
    assert str(error.value) == (
        f"data file '{path}' column 'psy' has the value -1e+300 in data row 4 (line 5), beyond "
        "±1e+18; expected positions in bohr and momenta in a.u. (the model computes in float32)"
    )
    path.write_text(path.read_text().replace("-1e300", "-1e17"))  # large, but squares fit
    assert event_files.load_events(path).momenta.min() == -1e17


def test_an_extra_cell_in_the_first_data_row_is_refused_not_dropped(tmp_path):
    # pandas only warns about it (ParserWarning) and drops the cell with index_col=False.
    path, _ = table_csv(tmp_path)
    header, first, *rest = path.read_text().splitlines()
    path.write_text("\n".join([header, first + ",99", *rest]) + "\n")
    with pytest.raises(UserInputError, match=r"data row 1 \(line 2\) has 19 cells, the header 18"):
        event_files.load_events(path)


def test_numbers_with_stray_spaces_are_read_and_named_junk_is_not(tmp_path):
    path, values = table_csv(tmp_path)
    path.write_text(path.read_text().replace(",2,", ",2 ,", 1))
    np.testing.assert_array_equal(event_files.load_events(path).positions[0, 0], values[0, :3])
    path.write_text(path.read_text().replace(",2 ,", ",2 x,", 1))
    with pytest.raises(UserInputError, match=r"column 'cy' has a non-numeric value '2 x'"):
        event_files.load_events(path)


def test_written_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    old_mask = os.umask(0o027)
    try:
        csv_files.write_events_csv(tmp_path / "events.csv", None, np.zeros((2, 3, 3)))
    finally:
        os.umask(old_mask)
    assert (tmp_path / "events.csv").stat().st_mode & 0o777 == 0o640  # 0666 minus the umask


def test_data_files_path_glob_and_list(shards, tmp_path):
    folder, paths, *_ = shards
    assert csv_files.data_files(str(paths[1])) == (paths[1],)
    # A glob expands sorted, whatever order the file system lists.
    assert csv_files.data_files(str(folder / "part-*.csv")) == tuple(paths)
    listed = f"{paths[2]}, {folder / 'part-0[01].csv'}"
    assert csv_files.data_files(listed) == (paths[2], paths[0], paths[1])


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{folder}/nothing-*.csv", "matches no file; expected CSV or Parquet files"),
        ("{folder}", "is a directory; expected a regular CSV or Parquet file"),
        ("{folder}/part-00.csv,{folder}/part-0*.csv", "more than once"),
        (" , ", "names no file"),
    ],
)
def test_data_files_refusals(shards, spec, message):
    with pytest.raises(UserInputError, match=message):
        csv_files.data_files(spec.format(folder=shards[0]))


def test_only_temporary_files_whose_writer_died_are_removed(tmp_path):
    """A writer holds an flock on its temporary file; one without the lock was abandoned."""
    output = tmp_path / "events.csv"
    alive, dead = (tmp_path / f".events.csv.{name}.tmp" for name in ("alive", "dead"))
    other = tmp_path / ".other.csv.dead.tmp"  # another output's: not ours to judge
    for path in (alive, dead, other):
        path.write_text("x,y\n1,")
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(5, seed=1))
    with open(alive) as writer:  # another open file, so another lock: as another process's
        fcntl.flock(writer, fcntl.LOCK_EX)
        csv_files.write_events_csv(output, positions, momenta)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == [alive.name, other.name, output.name]
