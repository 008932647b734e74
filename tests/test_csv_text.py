"""csv_text writes pandas' to_csv bytes for tables of any column types, and its fast paths hold."""

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cvae_tf import csv_files, csv_text

from .test_float_text import EDGES


def pandas_csv(frame: pd.DataFrame) -> bytes:
    """The reference: the file as pandas writes it, with the project's format."""
    text = frame.to_csv(index=False, float_format="%.12g", lineterminator="\n")
    return text.encode()


def written(frame: pd.DataFrame) -> bytes:
    stream = io.BytesIO()
    csv_files.write_csv(frame, stream)
    return stream.getvalue()


# Cells that csv quotes (',', '"', line breaks), that it does not (spaces, tabs, non-ASCII),
# the empty cell, and text that looks like a number.
TEXTS = ["", "a", "b c", " lead", "tab\there", "é ü ✓", "1.2345678901234567", "a,b", 'say "hi"']
FLOATS = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(EDGES)
    | st.floats(-1e4, 1e4)
    | st.just(np.nan)
)


@st.composite
def tables(draw) -> pd.DataFrame:
    """Tables of 2 to 6 columns of the types files here hold, and some they might."""
    rows = draw(st.integers(0, 25))
    kinds = draw(
        st.lists(
            st.sampled_from(
                ["float64", "float32", "int64", "bool", "str", "object", "category", "Int64"]
            ),
            min_size=2,
            max_size=6,
        )
    )
    columns = {}
    for index, kind in enumerate(kinds):
        name = f"c{index}"
        if kind in ("float64", "float32"):
            values = draw(hnp.arrays(np.float64, rows, elements=FLOATS))
            with np.errstate(over="ignore"):  # float32 holds ±inf for what it cannot
                columns[name] = values.astype(kind)
        elif kind == "int64":
            columns[name] = draw(hnp.arrays(np.int64, rows))
        elif kind == "bool":
            columns[name] = draw(hnp.arrays(np.bool_, rows))
        elif kind == "str":
            texts = draw(st.lists(st.sampled_from([*TEXTS, None]), min_size=rows, max_size=rows))
            columns[name] = pd.Series(texts, dtype=draw(st.sampled_from(["str", "string"])))
        elif kind == "object":
            cells = st.sampled_from([*TEXTS, None, 1.5, 1 / 3, 7, np.nan])
            columns[name] = pd.Series(
                draw(st.lists(cells, min_size=rows, max_size=rows)), dtype=object
            )
        elif kind == "category":
            texts = draw(st.lists(st.sampled_from(TEXTS[:4]), min_size=rows, max_size=rows))
            columns[name] = pd.Categorical(texts)
        else:
            integers = draw(st.lists(st.integers(-5, 5) | st.none(), min_size=rows, max_size=rows))
            columns[name] = pd.array(integers, dtype="Int64")
    return pd.DataFrame(columns)


@settings(max_examples=150, deadline=None)
@given(frame=tables())
def test_any_table_is_the_bytes_pandas_writes(frame):
    assert written(frame) == pandas_csv(frame)


def test_tables_of_events_and_predictions_take_the_fast_path():
    """Float columns beside integer flags and text cells (a CSV's kept columns) are built in
    numpy; to_csv writes none of them (a slow path taken by mistake would match the bytes too)."""
    rng = np.random.default_rng(0)
    kept = pd.DataFrame(
        {name: pd.Series([f"{v:.9g}" for v in rng.normal(size=500)], dtype="str") for name in "ab"}
    )
    predicted = pd.DataFrame(
        {"cx": rng.normal(size=500), "r_co": rng.normal(size=500).astype(np.float32)}
    )
    predicted["out_of_distribution"] = rng.integers(0, 2, 500)
    frame = pd.concat([kept, predicted], axis=1)
    assert csv_text.rows_text(frame) == pandas_csv(frame).split(b"\n", 1)[1]
    cells = csv_text._text_cells(kept["a"], 0)
    assert cells is not None and cells.shape[0] == 500
    assert csv_text._text_cells(pd.Series(["a,b", "c"], dtype="str"), 1) is None  # quoted


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"text": ["two\nlines", "x"], "value": [1.0, 2.0]}),  # quoted over two lines
        pd.DataFrame({"text": ["nul\0byte", "x"], "value": [1.0, 2.0]}),
        pd.DataFrame({"alone": [1.0, np.nan, 3.0]}),  # to_csv writes a lone empty cell as ""
        pd.DataFrame({0: [1.0], 1: [2.0]}),  # names that are not strings
    ],
)
def test_tables_it_cannot_be_sure_of_are_left_to_pandas(frame):
    assert csv_text.rows_text(frame) is None or csv_text.header_text(frame) is None
    assert written(frame) == pandas_csv(frame)


def test_a_chunk_left_to_pandas_keeps_the_other_chunks_fast_and_the_bytes(monkeypatch):
    monkeypatch.setattr(csv_files, "CHUNK_ROWS", 4)
    frame = pd.DataFrame({"text": ["a", "b", "c", "d", "line\nbreak", "f", "g"]})
    frame["value"] = np.arange(7) / 3
    calls = []
    to_csv = pd.DataFrame.to_csv

    def counted(self, *args, **kwargs):
        calls.append(len(self))
        return to_csv(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", counted)
    assert written(frame) == pandas_csv(frame)
    # The second chunk (rows 4-6) went to to_csv; the reference call is the whole table's.
    assert 3 in calls and 4 not in calls


def test_float_cells_are_python_s_percent_12g_and_to_csv_s_empty_nan():
    values = np.array([[1.5, np.nan, np.inf], [-np.inf, -0.0, 1e-300]])
    cells = csv_text.float_text.row_cells(values, b"\n")
    lines = cells.tobytes().translate(None, b"\0").split(b"\n")[1:]
    assert lines == [b"1.5,,inf", b"-inf,-0,1e-300"]
