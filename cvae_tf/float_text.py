"""Float64 tables as CSV lines in `%.12g`, vectorized: the bytes pandas' to_csv writes for them.

pandas formats each value with Python's `"%.12g" % value` and joins the cells in Python: 17–30 µs
an OCS event, more than the simulation's own cost. Here a block of values goes through a few
dozen numpy operations instead: each value's 12 significant digits are found in float64 (an exact
power of ten times the value, rounded once), cut into groups of four digits, and the groups'
ASCII taken from lookup tables into a fixed slot of 32-bit words per value, whose unused bytes
are zero and then removed. A value whose rounding the product cannot decide (what follows its
12th digit within 5·10⁻⁴ of a half), and any value `%g` writes with an exponent (|value| < 10⁻⁴
or ≥ 10¹²), is formatted by Python itself, so every byte is the one `"%.12g" % value` gives.
numpy's `savetxt` and `char.mod` format value by value in Python too; pyarrow's CSV writer
writes the shortest round-trip digits, not these, so neither fits.
"""

import csv
import io
from collections.abc import Sequence

import numpy as np

# Values formatted a block at a time: a block's few dozen temporaries (256 KB each) stay in cache.
BLOCK_VALUES = 32_768
# The product |value|·10^k (k ≤ 15, an exact power) is rounded once, so it is off by at most
# 2⁻⁵³·10¹² ≈ 1.1·10⁻⁴ of a unit in the 12th digit; a fraction closer to ½ than this margin
# could round either way, and Python decides.
_HALF_MARGIN = 5e-4
_LARGEST_FIXED = 11  # %.12g writes a decimal exponent e with -4 ≤ e < 12 without an exponent
_SMALLEST_FIXED = -4
# 10^k for k = 11 - e, e from -5 to 12 (the exponents outside -4..11 are Python's): 10^-1 to 10^16.
_POWERS = np.array([float(f"1e{k}") for k in range(-1, 17)])  # 10^0..10^16 exact in float64
_INTEGER_POWERS = 10 ** np.arange(16, dtype=np.int64)
_MINUS, _COMMA = ord("-"), ord(",")


def _words(texts) -> np.ndarray:
    """ASCII texts of at most 4 characters, each zero-padded to 4 bytes, as uint32 words."""
    return np.frombuffer(b"".join(text.encode().ljust(4, b"\0") for text in texts), np.uint32)


# Four digits as ASCII: every digit ("0042"); without leading zeros ("\0\0" "42", nothing for 0),
# the last group of an integer part ("0" for 0); without trailing zeros ("0042" -> "0042",
# "4200" -> "42"), the last group of a fraction; and a fraction's first 3 digits after the point.
# Zeros removed are zero bytes, placed where they were, so that a group keeps its position.
_GROUPS = range(10_000)
_DIGITS = _words(f"{group:04d}" for group in _GROUPS)
_NO_LEADING = _words(str(group).rjust(4, "\0") if group else "" for group in _GROUPS)
_INTEGER_END = _words(str(group).rjust(4, "\0") for group in _GROUPS)
_NO_TRAILING = _words(f"{group:04d}".rstrip("0") for group in _GROUPS)
_POINT_DIGITS = _words(f".{group:03d}" for group in range(1000))
_POINT_NO_TRAILING = _words(f".{group:03d}".rstrip(".0") for group in range(1000))


def table_text(values: np.ndarray) -> bytes:
    """The rows of `values` (rows, columns; finite) as CSV lines: `%.12g` cells, ',' and '\\n'.

    Exactly the bytes of pandas' `to_csv(header=False, index=False, float_format="%.12g",
    lineterminator="\\n")` for the same float64 table (so an event file's values read back
    unchanged); ASCII, one line per row, each ending in '\\n'.

    Raises:
      ValueError: a NaN or infinite value (pandas writes those differently).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"expected a table (rows, columns); received shape {values.shape}")
    rows, columns = values.shape
    if rows == 0:
        return b""
    if columns == 0:
        raise ValueError("expected a table of at least one column; received none")
    if not np.isfinite(values).all():
        raise ValueError("the table has NaN or infinite values; expected finite numbers")
    block_rows = max(1, BLOCK_VALUES // columns)
    pieces = [
        row_cells(values[start : start + block_rows], b"\n").tobytes().translate(None, b"\0")
        for start in range(0, rows, block_rows)
    ]
    return b"".join(pieces)[1:] + b"\n"  # each line starts with its '\n': the table's first not


def row_cells(values: np.ndarray, first_separator: bytes) -> np.ndarray:
    """Rows of float cells as pandas' to_csv writes them, zero-padded: (rows, width) uint8.

    Row i holds, for each value of `values[i]` (rows, columns), a separator (`first_separator`
    before the first, ',' before the others) and `"%.12g" % value`, with zero bytes after each
    cell; a NaN is an empty cell and ±inf is "inf" or "-inf", as to_csv writes them. float32
    values are written as the float64 they convert to exactly, as to_csv does. Side by side, the
    cells of a table's columns are its CSV lines once the zero bytes are removed (see csv_text).
    """
    values = np.asarray(values, dtype=np.float64)
    rows, columns = values.shape
    flat = values.ravel()
    finite = np.isfinite(flat)
    all_finite = finite.all()  # as events always are: no copy then
    separators = np.full((rows, columns), _COMMA, dtype=np.uint32)
    separators[:, 0] = ord(first_separator)
    slot = _slots(flat if all_finite else np.where(finite, flat, 0.0), separators.ravel())
    if not all_finite:
        indices = np.flatnonzero(~finite)
        texts = [b"" if np.isnan(value) else b"%.12g" % value for value in flat[indices]]
        slot_bytes = slot.view(np.uint8)
        slot_bytes[indices, 1] = 0  # no sign: it is in Python's text
        slot_bytes[indices, 4:] = _padded(texts, 4 * (slot.shape[1] - 1))
    return slot.view(np.uint8).reshape(rows, -1)


def _padded(texts: list[bytes], width: int) -> np.ndarray:
    """Texts of at most `width` bytes, zero-padded, as a (texts, width) uint8 array."""
    return np.frombuffer(b"".join(text.ljust(width, b"\0") for text in texts), np.uint8).reshape(
        len(texts), width
    )


def _slots(values: np.ndarray, separators: np.ndarray) -> np.ndarray:
    """Each finite value's separator and `%.12g` text in a row of uint32 words, zero-padded."""
    magnitudes = np.abs(values)
    digits, exponents, by_python = _significant_digits(magnitudes)
    # The integer and fraction parts of the rounded value: digits // 10^(11 - e) and the rest,
    # scaled to 15 fraction digits (e ≥ -4: at most 15 of them).
    fraction_digits = _LARGEST_FIXED - exponents
    unit = _INTEGER_POWERS[fraction_digits]
    integers = digits // unit
    fractions = (digits - integers * unit) * _INTEGER_POWERS[15 - fraction_digits]

    small = exponents.max() < 4  # every integer part of at most 4 digits: one word for it
    slot = np.zeros((values.size, 6 if small else 8), dtype=np.uint32)
    slot[:, 0] = separators | np.signbit(values).astype(np.uint32) * (_MINUS << 8)
    if small:
        slot[:, 1] = _INTEGER_END[integers]
        _fraction_words(fractions, slot[:, 2:])
    else:
        high = integers // 10**8
        middle = (integers - high * 10**8) // 10**4
        low = integers - integers // 10**4 * 10**4
        slot[:, 1] = _NO_LEADING[high]
        slot[:, 2] = np.where(high > 0, _DIGITS[middle], _NO_LEADING[middle])
        slot[:, 3] = np.where(integers >= 10**4, _DIGITS[low], _INTEGER_END[low])
        _fraction_words(fractions, slot[:, 4:])

    if by_python.any():
        # Python's own text, in the slot after the separator's word (19 characters at most:
        # "-1.23456789012e-100" fits the slot's 20 bytes or more).
        indices = np.flatnonzero(by_python)
        width = 4 * (slot.shape[1] - 1)
        slot_bytes = slot.view(np.uint8)
        slot_bytes[indices, 4:] = _padded([b"%.12g" % v for v in values[indices].tolist()], width)
        slot_bytes[indices, 1] = 0  # the sign is in Python's text
    return slot


def _significant_digits(magnitudes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(12 significant digits as an integer, decimal exponent, left to Python) of each |value|.

    A value is |value| = digits·10^(exponent - 11) rounded to 12 digits (half to even, as
    Python's correctly rounded %g); zeros come out as digits 0, exponent 11. Values left to
    Python get digits 0 and exponent 11 too.
    """
    with np.errstate(divide="ignore"):  # log10(0) = -inf, clipped away
        exponents = np.floor(np.log10(magnitudes))
    np.clip(exponents, _SMALLEST_FIXED - 1, _LARGEST_FIXED + 1, out=exponents)
    exponents = exponents.astype(np.int64)
    scaled = magnitudes * _POWERS[_LARGEST_FIXED + 1 - exponents]
    # log10 can be off by one next to a power of ten: then the product is outside [10¹¹, 10¹²).
    off = (scaled < 1e11) | (scaled >= 1e12)
    if off.any():
        exponents[off] += np.where(scaled[off] >= 1e12, 1, -1)
        exponents[off] = np.clip(exponents[off], _SMALLEST_FIXED - 1, _LARGEST_FIXED + 1)
        scaled[off] = magnitudes[off] * _POWERS[_LARGEST_FIXED + 1 - exponents[off]]
    rounded = np.rint(scaled)
    by_python = np.abs(scaled - rounded) > 0.5 - _HALF_MARGIN
    carried = rounded >= 1e12  # 999999999999.7 rounds to 10¹²: one more digit before the point
    if carried.any():
        rounded[carried] = 1e11
        exponents[carried] += 1
    by_python |= (exponents < _SMALLEST_FIXED) | (exponents > _LARGEST_FIXED) | (rounded < 1e11)
    zero = magnitudes == 0
    by_python &= ~zero
    unused = by_python | zero
    rounded[unused] = 0
    exponents[unused] = _LARGEST_FIXED
    return rounded.astype(np.int64), exponents, by_python


def _fraction_words(fractions: np.ndarray, words: np.ndarray) -> None:
    """Into `words` (values, 4): '.' and the 15 fraction digits, trailing zeros as zero bytes."""
    # x // c and x - q·c rather than divmod or %: numpy divides by a constant quickly (libdivide)
    # but not so its remainder.
    first = fractions // 10**12
    last_twelve = fractions - first * 10**12
    second = last_twelve // 10**8
    last_eight = last_twelve - second * 10**8
    third = last_eight // 10**4
    fourth = last_eight - third * 10**4
    words[:, 3] = _NO_TRAILING[fourth]
    words[:, 2] = np.where(fourth != 0, _DIGITS[third], _NO_TRAILING[third])
    words[:, 1] = np.where(last_eight != 0, _DIGITS[second], _NO_TRAILING[second])
    words[:, 0] = np.where(last_twelve != 0, _POINT_DIGITS[first], _POINT_NO_TRAILING[first])


def header_text(columns: Sequence[str]) -> bytes:
    """The header line of these column names, quoted where needed, as pandas' to_csv writes it."""
    line = io.StringIO()
    csv.writer(line, lineterminator="\n").writerow(columns)  # the writer pandas' to_csv uses
    return line.getvalue().encode()
