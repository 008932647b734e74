"""A pandas table as the CSV text to_csv writes for it, built column by column in numpy.

pandas' to_csv formats every cell in Python, about 1 µs a value: for predict's output, some
thirty columns an event, that was three quarters of the command's time. Here the cells of each
run of float columns come from float_text (numpy, the same `%.12g` bytes), those of a text
column (a CSV's kept cells) from its Arrow buffers, and every other column's from to_csv itself,
one column at a time; the cells are laid side by side as fixed-width byte rows, whose zero
padding is then removed: a table's lines, byte for byte the ones to_csv writes with
FLOAT_FORMAT, no index and '\\n' line ends. Where that cannot be sure (a cell with a line break
or a zero byte, a table of one column, names that are not one line of strings) the caller falls
back to to_csv.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cvae_tf import float_text

FLOAT_FORMAT = "%.12g"  # 12 significant digits: far below the simulator's 1e-8 energy accuracy.


def header_text(frame: pd.DataFrame) -> bytes | None:
    """The header line to_csv writes for `frame`, or None unless its names are strings."""
    names = frame.columns
    if names.empty or names.nlevels != 1 or not all(isinstance(name, str) for name in names):
        return None
    return float_text.header_text(list(names))


def rows_text(frame: pd.DataFrame) -> bytes | None:
    """`frame`'s rows as to_csv writes them (no header, no index), or None where it cannot say.

    Runs of adjacent numpy float32 or float64 columns go through float_text.row_cells; any other
    column (integers, booleans, text, categories, nullable or object columns) through to_csv.
    A table of one column is left to to_csv: it writes a lone empty cell as '""'.
    """
    if frame.shape[1] < 2:
        return None
    runs = []  # (first column, float values (rows, columns) or None, to_csv's cells or None)
    for first, end, is_float in _column_runs(frame):
        if is_float:
            runs.append((first, frame.iloc[:, first:end].to_numpy(dtype=np.float64), None))
            continue
        column = frame.iloc[:, first]
        cells = _text_cells(column, first) if _is_text(column.dtype) else None
        if cells is None:
            cells = _pandas_cells(column, first)
        if cells is None:
            return None
        runs.append((first, None, cells))
    float_columns = sum(values.shape[1] for _, values, _ in runs if values is not None)
    block_rows = max(1, float_text.BLOCK_VALUES // max(1, float_columns))
    blocks = []
    for start in range(0, len(frame), block_rows):
        rows = slice(start, start + block_rows)
        block = [
            cells[rows] if values is None else float_text.row_cells(values[rows], _separator(first))
            for first, values, cells in runs
        ]
        text = np.concatenate(block, axis=1).tobytes().translate(None, b"\0")
        blocks.append(text[1:] + b"\n")  # each row's cells start with a separator: '\n' first
    return b"".join(blocks)


def _separator(position: int) -> bytes:
    """What to_csv writes before a row's cell: '\\n' (ending the line before) first, else ','."""
    return b"," if position else b"\n"


def _is_float(dtype) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize in (4, 8)


def _is_text(dtype) -> bool:
    return isinstance(dtype, pd.StringDtype)


# Bytes that make the csv module quote a cell (QUOTE_MINIMAL, ',' and '"', '\\n' lines), and
# the zero byte, padding here: a text column that has any is left to to_csv.
_NOT_AS_IS = np.zeros(256, bool)
_NOT_AS_IS[list(b',"\n\r\0')] = True


def _text_cells(column: pd.Series, position: int) -> np.ndarray | None:
    """A string column's cells, each after its separator, (rows, width) uint8; None if quoted.

    Its text as it is (a missing value as the empty cell, to_csv's na_rep), from Arrow's
    buffers, where no cell has a byte that to_csv would quote.
    """
    strings = pa.array(column, type=pa.large_string())
    if strings.null_count:
        strings = pc.fill_null(strings, "")
    _, offset_buffer, data_buffer = strings.buffers()
    offsets = np.frombuffer(offset_buffer, np.int64)[strings.offset :][: len(strings) + 1]
    data = np.frombuffer(data_buffer or b"", np.uint8)[offsets[0] : offsets[-1]]
    if _NOT_AS_IS[data].any():
        return None
    lengths = np.diff(offsets)
    cells = np.zeros((len(strings), 1 + int(lengths.max(initial=0))), np.uint8)
    cells[:, 0] = ord(_separator(position))
    rows = np.repeat(np.arange(len(strings)), lengths)
    places = np.arange(len(data)) - np.repeat(offsets[:-1] - offsets[0], lengths) + 1
    cells[rows, places] = data
    return cells


def _column_runs(frame: pd.DataFrame) -> list[tuple[int, int, bool]]:
    """(first, end, float or not) of each run of float columns and of each other column."""
    runs = []
    for position, dtype in enumerate(frame.dtypes):
        is_float = _is_float(dtype)
        if is_float and runs and runs[-1][2]:
            runs[-1] = (runs[-1][0], position + 1, True)
        else:
            runs.append((position, position + 1, is_float))
    return runs


def _pandas_cells(column: pd.Series, position: int) -> np.ndarray | None:
    """The column's cells as to_csv writes them, each after its separator: (rows, width) uint8.

    None if a cell has a line break (to_csv quotes it over two lines) or a zero byte.
    """
    # to_csv's own cell, after a column of zeros: a lone empty cell would be written '""'
    # (the csv module's mark of an empty row), one among others as nothing.
    zeros = np.zeros(len(column), np.int8)
    pair = pd.DataFrame({"zero": zeros, "cell": column.reset_index(drop=True)})
    text = pair.to_csv(header=False, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    text = text.encode()
    lines = text.split(b"\n")[:-1]
    if len(lines) != len(column) or b"\0" in text:
        return None
    separator = _separator(position)
    cells = np.array([separator + line[2:] for line in lines], dtype=bytes)
    return cells.view(np.uint8).reshape(len(cells), cells.dtype.itemsize)
