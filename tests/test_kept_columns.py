"""predict keeps the input's columns, in order and exactly, and reads and writes Parquet."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cvae_tf import data
from tests.commands import call

PREDICTED = [*data.POSITION_COLUMNS, "r_co", "r_cs", "angle_ocs", "out_of_distribution"]


def measured_frame(events_csv, rows=20):
    """Momenta with an id of text, a 20-digit run number and a detector flag around them."""
    momenta = pd.read_csv(events_csv).iloc[:rows]
    frame = pd.DataFrame({"event_id": [f"run7-{index:06d}" for index in range(rows)]})
    frame = pd.concat([frame, momenta[list(data.MOMENTUM_COLUMNS)]], axis=1)
    frame["run"] = "12345678901234567890"
    frame["detector_ok"] = ["", "1"] * (rows // 2)
    return frame, momenta


def test_predict_keeps_every_input_column_as_its_text(quick_run, events_csv, tmp_path):
    run_dir, _ = quick_run
    frame, _ = measured_frame(events_csv)
    source = tmp_path / "measured.csv"
    frame.to_csv(source, index=False)
    output = tmp_path / "predicted.csv"
    args = [f"--model_dir={run_dir}", f"--input={source}", f"--output={output}"]
    assert call("predict", *args) is None
    written = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert list(written.columns) == [*frame.columns, *PREDICTED]
    original = pd.read_csv(source, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(written[list(frame.columns)], original)  # text, exactly
    # The same events through Parquet: the same predictions, the kept columns in their types.
    parquet_in, parquet_out = tmp_path / "measured.parquet", tmp_path / "predicted.parquet"
    pq.write_table(pa.Table.from_pandas(frame.assign(run=2**62), preserve_index=False), parquet_in)
    args = [f"--model_dir={run_dir}", f"--input={parquet_in}", f"--output={parquet_out}"]
    assert call("predict", *args) is None
    table = pq.read_table(parquet_out)
    assert table.column_names == [*frame.columns, *PREDICTED]
    assert table.schema.field("run").type == pa.int64()
    assert table.column("run").to_pylist() == [2**62] * 20
    assert table.column("event_id").to_pylist() == frame["event_id"].tolist()
    np.testing.assert_allclose(
        table.select(PREDICTED).to_pandas().to_numpy(),
        written[PREDICTED].to_numpy(dtype=float),
        rtol=1e-10,  # the CSV's 12 significant digits
        atol=1e-12,
    )


def test_input_columns_named_like_predicted_ones_are_renamed(
    quick_run, events_csv, tmp_path, capsys
):
    run_dir, _ = quick_run
    source = tmp_path / "events.parquet"  # a simulated file: its true positions too
    pq.write_table(pa.Table.from_pandas(pd.read_csv(events_csv).iloc[:10]), source)
    output = tmp_path / "out.csv"
    assert (
        call("predict", f"--model_dir={run_dir}", f"--input={source}", f"--output={output}") is None
    )
    truth = [f"{name}_input" for name in data.POSITION_COLUMNS]
    written = pd.read_csv(output)
    assert list(written.columns) == [*truth, *data.MOMENTUM_COLUMNS, *PREDICTED]
    np.testing.assert_array_equal(
        written[truth].to_numpy(), pd.read_csv(events_csv).iloc[:10][list(data.POSITION_COLUMNS)]
    )
    assert "kept renamed: cx as cx_input" in capsys.readouterr().out
    # A renamed name that is taken too is refused, before the model loads, nothing written.
    taken = tmp_path / "taken.csv"
    pd.read_csv(events_csv).iloc[:10].assign(cx_input=1.0).to_csv(taken, index=False)
    message = call(
        "predict", f"--model_dir={run_dir}", f"--input={taken}", f"--output={tmp_path / 'x.csv'}"
    )
    assert "that predict writes, and ['cx_input'] too" in message
    assert not (tmp_path / "x.csv").exists()
