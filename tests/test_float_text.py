"""float_text writes the very bytes of pandas' to_csv with "%.12g", on any finite float64 table."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cvae_tf import csv_files, data, float_text, simulator


def pandas_text(table: np.ndarray) -> bytes:
    """The table as the files here were written before float_text: pandas' to_csv."""
    frame = pd.DataFrame(table)
    text = frame.to_csv(header=False, index=False, float_format="%.12g", lineterminator="\n")
    return text.encode()


# Values where %.12g changes form or rounding: zeros of both signs, the fixed/exponent limits
# (1e-4 and 1e12) and either side of them, carries to the next power of ten, exact ties of the
# 13th digit (rounded half to even), exact integers, the extremes of float64.
EDGES = [
    *(0.0, -0.0, 0.5, 0.1, 1 / 3, 7.0, 100.0, 12.5, 2.0**52 + 0.5, 2.0**53),
    *(1e-4, 9.9999999999995e-5, 9.99999999999e-5, 1e-5, 0.00099999999999995, 3e-4),
    *(1e11, 999999999999.0, 999999999999.4, 999999999999.5, 999999999998.5, 1e12, 1e13),
    *(123456789012.0, 1234567890123.0, 12345678901.25, 1234567890.125, 1234567890.375),
    *(9.9999999999995, 9.99999999999949, 99.9999999999995, 0.99999999999995),
    *(5e-324, 2.2250738585072014e-308, 1e-300, 1e300, 1.7976931348623157e308),
]
EDGES += [float(f"{digits}e{exponent}") for exponent in range(-20, 20) for digits in (1, 9.5)]
EDGES += [float(np.nextafter(10.0**k, towards)) for k in range(-6, 14) for towards in (0, np.inf)]
EDGES += [-value for value in EDGES]


def test_edge_values_are_python_s_own_percent_12g():
    column = np.array(EDGES).reshape(-1, 1)
    assert float_text.table_text(column).split(b"\n")[:-1] == [b"%.12g" % v for v in EDGES]


def test_ties_round_half_to_even_as_python_does():
    ties = np.array([[12345678901.25, 1234567890.125, 1234567890.375, 0.5]])
    assert float_text.table_text(ties) == b"12345678901.2,1234567890.12,1234567890.38,0.5\n"


@settings(max_examples=60, deadline=None)
@given(
    table=st.integers(1, 40).flatmap(
        lambda rows: hnp.arrays(
            np.float64,
            (rows, 3),
            elements=st.floats(allow_nan=False, allow_infinity=False)
            | st.floats(-1e4, 1e4)
            | st.integers(-(10**13), 10**13).map(float),
        )
    )
)
def test_any_finite_table_is_the_bytes_pandas_writes(table):
    assert float_text.table_text(table) == pandas_text(table)


def test_simulated_events_are_the_bytes_pandas_writes():
    """Positions and momenta as the simulate command writes them, noise and fixed frames too."""
    for config in (
        simulator.SimulationConfig(num_events=3000, seed=5),
        simulator.SimulationConfig(
            num_events=3000, seed=6, orientation="fixed", zero_point_momentum_spread=3.0
        ),
    ):
        positions, momenta = simulator.simulate_events(config)
        table = np.concatenate([data.to_table(positions), data.to_table(momenta)], axis=1)
        assert float_text.table_text(table) == pandas_text(table)


def test_log_uniform_values_over_every_fixed_magnitude_are_the_bytes_pandas_writes():
    rng = np.random.default_rng(3)
    values = 10.0 ** rng.uniform(-6, 14, 200_000) * rng.choice([-1.0, 1.0], 200_000)
    assert float_text.table_text(values.reshape(-1, 8)) == pandas_text(values.reshape(-1, 8))


def test_header_is_quoted_as_pandas_quotes_it():
    names = ["cx", "a,b", 'say "hi"', "two\nlines", ""]
    frame = pd.DataFrame(columns=names)
    assert float_text.header_text(names) == frame.to_csv(index=False, lineterminator="\n").encode()


def test_an_empty_table_is_no_text_and_non_finite_values_are_refused():
    assert float_text.table_text(np.zeros((0, 3))) == b""
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="NaN or infinite"):
            float_text.table_text(np.array([[1.0, bad]]))


def test_csv_files_writes_to_csv_s_bytes_for_floats_nans_text_and_integers(tmp_path):
    """The same bytes either way: to_csv's, for floats, NaNs, text and integer columns alike."""
    floats = pd.DataFrame({"a": [1.5, -0.0, 1e-7], "b": [2.0, 3.25, 1e15]})
    mixed = floats.assign(b=[np.nan, 1.0, 2.0], name=["x", "y,z", "é"], count=[1, 2, 3])
    for frame in (floats, mixed, floats.iloc[:0]):
        path = tmp_path / "table.csv"
        csv_files.write_csv_atomically(path, frame)
        expected = frame.to_csv(index=False, float_format="%.12g", lineterminator="\n")
        assert path.read_bytes() == expected.encode()
