"""Properties of the CSV loader and of every normalization, on tables hypothesis makes up."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cvae_tf import csv_files, data, event_files, preprocessing
from cvae_tf.errors import UserInputError
from tests.models import normalization_statistics

COLUMNS = [*data.POSITION_COLUMNS, *data.MOMENTUM_COLUMNS]
FEW = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Every finite float the loader accepts: subnormal to its ±1e18 limit, and zero.
accepted_floats = st.floats(
    min_value=-csv_files.MAX_MAGNITUDE, max_value=csv_files.MAX_MAGNITUDE, allow_nan=False
)


def tables(columns: int, elements=accepted_floats, max_rows: int = 12):
    """Float64 arrays (rows, columns), sometimes with repeated (constant) values."""
    rows = st.integers(1, max_rows)
    return rows.flatmap(lambda n: hnp.arrays(np.float64, (n, columns), elements=elements))


def scratch_file(text: str | bytes) -> Path:
    folder = Path(tempfile.mkdtemp())
    path = folder / "events.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@FEW
@given(table=tables(18), order=st.permutations(COLUMNS), extra=st.booleans())
def test_finite_tables_round_trip_in_any_column_order(table, order, extra):
    folder = Path(tempfile.mkdtemp())
    written = folder / "written.csv"
    positions, momenta = data.to_events_array(table[:, :9]), data.to_events_array(table[:, 9:])
    csv_files.write_events_csv(written, positions, momenta)
    # The same file with its columns shuffled (and maybe a text column added) reads the same.
    header, *rows = [line.split(",") for line in written.read_text().splitlines()]
    index = [header.index(name) for name in order]
    shuffled = [list(order) + (["comment"] if extra else [])]
    shuffled += [[row[i] for i in index] + (["note"] if extra else []) for row in rows]
    path = folder / "shuffled.csv"
    path.write_text("\n".join(",".join(row) for row in shuffled) + "\n")
    for loaded in (event_files.load_events(written), event_files.load_events(path)):
        # 12 significant digits (csv_files.FLOAT_FORMAT); atol for subnormals, which hold fewer.
        np.testing.assert_allclose(loaded.positions, positions, rtol=1e-11, atol=1e-300)
        np.testing.assert_allclose(loaded.momenta, momenta, rtol=1e-11, atol=1e-300)


# Any text, and text made of what numbers and CSV structure are made of (commas, quotes, ends of
# lines), where the loader's corner cases lie.
any_cell = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12) | st.text(
    alphabet=st.sampled_from(list('0123456789.,+-eE"\n\r \tnaif_')), max_size=8
)


def three_rows_with(cell: str, row: int, column: str) -> str:
    """CSV text of three valid events with `cell` in place of one value."""
    lines = [[str(1.5 + i) for i in range(18)] for _ in range(3)]
    lines[row][COLUMNS.index(column)] = cell
    return "\n".join([",".join(COLUMNS)] + [",".join(line) for line in lines]) + "\n"


@FEW
@given(cell=any_cell, row=st.integers(0, 2), column=st.sampled_from(COLUMNS))
def test_any_cell_gives_finite_numbers_or_a_one_line_user_error(cell, row, column):
    text = three_rows_with(cell, row, column)
    try:
        events = event_files.load_events(scratch_file(text))
    except UserInputError as error:
        assert "\n" not in str(error)
        return
    assert np.all(np.isfinite(events.positions)) and np.all(np.isfinite(events.momenta))


def is_a_number(text: str) -> bool:
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


# Junk that leaves the CSV's structure alone: no separator, quote or end of line.
plain_junk = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters=',"\n\r'), max_size=12
).filter(lambda text: not is_a_number(text))


@FEW
@given(cell=plain_junk, row=st.integers(0, 2), column=st.sampled_from(COLUMNS))
def test_junk_cells_are_always_refused(cell, row, column):
    text = three_rows_with(cell, row, column)
    with pytest.raises(UserInputError):
        event_files.load_events(scratch_file(text))


@FEW
@given(content=st.binary(max_size=64))
def test_arbitrary_bytes_never_raise_anything_but_a_user_error(content):
    try:
        event_files.load_events(scratch_file(content))
    except UserInputError:
        pass
    else:
        pytest.fail("random bytes read as a table of 18 named columns")


# Normalization: any finite table the float32 model can hold, constant columns included, goes
# forward and back.
modest_floats = st.floats(-1e6, 1e6, width=32)
with_constants = st.one_of(modest_floats, st.sampled_from([0.0, 3.0]))


@pytest.mark.parametrize("method", preprocessing.NORMALIZATIONS)
@settings(max_examples=25, deadline=None)
@given(table=tables(4, elements=with_constants, max_rows=30))
def test_normalization_round_trip(method, table):
    offset, variance = normalization_statistics(method, table)
    assert np.all(variance > 0)  # never a division by zero, constant columns included
    forward, inverse = preprocessing.normalization_layers(offset, variance, name="t")
    normalized = forward(table.astype(np.float32)).numpy()
    assert np.all(np.isfinite(normalized))
    restored = inverse(normalized).numpy()
    # float32 throughout: errors scale with each column's largest magnitude.
    scale = np.abs(table).max(axis=0) + 1e-30
    assert np.all(np.abs(restored - table) <= 1e-5 * scale), (restored, table)
