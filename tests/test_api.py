"""The Python API: train with the flags' settings, load a run, predict from arrays and frames."""

import random

import numpy as np
import pandas as pd
import pytest

import cvae_tf
from cvae_tf.errors import UserInputError
from tests.commands import call
from tests.conftest import QUICK


@pytest.fixture(scope="module")
def api_run(events_csv, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("api_runs")
    return cvae_tf.train(data=str(events_csv), output_dir=str(output_dir), run_name="api", **QUICK)


def test_train_returns_the_run_folder_its_metrics_and_the_loaded_model(api_run):
    assert (api_run.run_dir / "run.json").is_file()
    assert api_run.metrics["per_atom_error_bohr"] > 0
    assert "mean distance error per atom" in api_run.report
    assert isinstance(api_run.model, cvae_tf.Model)
    assert api_run.model.molecule.labels == ("C", "O", "S")


def test_a_dataframe_keeps_its_other_columns_and_its_index(api_run, events_csv):
    events = pd.read_csv(events_csv)
    momenta = events[[f"p{atom}{axis}" for atom in "cos" for axis in "xyz"]].head(40)
    frame = momenta.assign(event_id=np.arange(1000, 1040), detector="A")
    frame = frame[["event_id", *momenta.columns, "detector"]].set_axis(range(5, 45))
    prediction = cvae_tf.load(api_run.run_dir).predict(frame, num_samples=4)
    out = prediction.frame
    assert list(out.columns[: len(frame.columns)]) == list(frame.columns)
    assert list(out.index) == list(range(5, 45))
    np.testing.assert_array_equal(out["event_id"], np.arange(1000, 1040))
    assert (out["detector"] == "A").all()
    np.testing.assert_allclose(out[["cx", "cy", "cz"]].to_numpy(), prediction.positions[:, 0])
    np.testing.assert_allclose(out["sz_std"], prediction.spreads[:, 2, 2])


def test_arrays_in_either_shape_give_the_shapes_the_docstring_promises(api_run, events_csv):
    events = pd.read_csv(events_csv).head(30)
    table = events[[f"p{atom}{axis}" for atom in "cos" for axis in "xyz"]].to_numpy()
    flat = cvae_tf.load(api_run.run_dir).predict(table, num_samples=5)
    nested = cvae_tf.load(api_run.run_dir).predict(table.reshape(30, 3, 3), num_samples=5)
    assert flat.positions.shape == flat.spreads.shape == (30, 3, 3)
    assert flat.samples.shape == (5, 30, 3, 3)
    assert flat.frame is None
    # A fresh load starts the SavedModel's sampler from its saved state: the same draws.
    np.testing.assert_array_equal(flat.positions, nested.positions)
    # The predictive mean of a handful of draws lies within a few spreads of each draw.
    assert np.all(np.abs(flat.samples - flat.positions) < 10 * flat.spreads + 1e-9)


def test_the_api_predicts_what_the_predict_command_writes(api_run, events_csv, tmp_path):
    momenta = pd.read_csv(events_csv)[[f"p{atom}{axis}" for atom in "cos" for axis in "xyz"]]
    momenta.head(60).to_csv(tmp_path / "momenta.csv", index=False)
    output = tmp_path / "positions.csv"
    arguments = (f"--model_dir={api_run.run_dir}", f"--input={tmp_path / 'momenta.csv'}")
    assert call("predict", *arguments, f"--output={output}", "--num_samples=8") is None
    written = pd.read_csv(output)
    prediction = cvae_tf.load(api_run.run_dir).predict(momenta.head(60), num_samples=8)
    columns = [f"{atom}{axis}" for atom in "cos" for axis in "xyz"]
    np.testing.assert_allclose(prediction.frame[columns], written[columns], rtol=1e-9)
    stds = [f"{name}_std" for name in columns]
    np.testing.assert_allclose(prediction.frame[stds], written[stds], rtol=1e-9)


def test_bad_settings_raise_what_the_command_prints(events_csv, tmp_path):
    message = call("train", "--hidden_dim=0", f"--data={events_csv}")
    with pytest.raises(UserInputError) as error:
        cvae_tf.train(hidden_dim=0, data=str(events_csv), output_dir=str(tmp_path))
    assert str(error.value) == message
    with pytest.raises(TypeError, match="no settings"):
        cvae_tf.train(hidden_dims=64)
    assert not any(tmp_path.iterdir())


def test_bad_momenta_are_one_line_errors(api_run):
    model = cvae_tf.load(api_run.run_dir)
    with pytest.raises(UserInputError, match=r"expected \(events, 9\)"):
        model.predict(np.zeros((4, 8)))
    with pytest.raises(UserInputError, match=r"lacks the model's momentum columns \['pcx'"):
        model.predict(pd.DataFrame({"x": [1.0]}))
    with pytest.raises(UserInputError, match="NaN"):
        model.predict(np.full((2, 9), np.nan))
    with pytest.raises(UserInputError, match="num_samples=0"):
        model.predict(np.ones((2, 9)), num_samples=0)


def test_training_leaves_the_global_random_states_as_they_were(events_csv, tmp_path):
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.random())
    random.seed(123)
    np.random.seed(123)
    cvae_tf.train(data=str(events_csv), output_dir=str(tmp_path), **{**QUICK, "epochs": 1})
    assert (random.random(), np.random.random()) == expected
