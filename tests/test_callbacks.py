"""Tests of the relative early stopping and the learning-curve plots."""

import math

import keras
import numpy as np
import pytest

from cvae_tf import callbacks
from cvae_tf.callbacks import (
    FIRST_CURVE_FILE,
    REMAINING_CURVE_FILE,
    LearningCurves,
    RelativeEarlyStopping,
    learning_curve_figures,
    plot_learning_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _small_model() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.stop_training = False
    return model


def _set_epoch_weights(model: keras.Model, epoch: int) -> None:
    """Fills every weight with the epoch number, so restored weights name their epoch."""
    model.set_weights([np.full_like(w, float(epoch)) for w in model.get_weights()])


def _drive(callback, model, losses, monitor=callbacks.MONITOR):
    """Runs a fit-like sequence of epochs with scripted losses; returns the epochs run."""
    model.stop_training = False  # model.fit resets this at the start of every call
    callback.set_model(model)
    callback.on_train_begin()
    epochs_run = 0
    for epoch, loss in enumerate(losses):
        _set_epoch_weights(model, epoch)
        callback.on_epoch_end(epoch, {monitor: loss})
        epochs_run += 1
        if model.stop_training:
            break
    callback.on_train_end()
    return epochs_run


def _weights_epoch(model: keras.Model) -> float:
    values = np.concatenate([w.ravel() for w in model.get_weights()])
    assert np.all(values == values[0])
    return float(values[0])


def test_half_percent_improvement_does_not_count_with_one_percent_factor():
    model = _small_model()
    stopper = RelativeEarlyStopping(min_delta_factor=0.01, patience=1)
    epochs_run = _drive(stopper, model, [1.0, 0.995, 0.99, 0.98])
    # 0.995 is 0.5 % below 1.0 (< 1 %): no improvement, so patience 1 ends it at epoch index 1.
    assert epochs_run == 2
    assert stopper.stopped_epoch == 1
    assert model.stop_training
    assert stopper.best == 1.0
    assert _weights_epoch(model) == 0.0  # restored from the best epoch, not the last


def test_two_percent_improvement_counts_with_one_percent_factor():
    model = _small_model()
    stopper = RelativeEarlyStopping(min_delta_factor=0.01, patience=1)
    # 0.98 is 2 % below 1.0: improves. 0.975 is only ~0.5 % below 0.98: does not.
    epochs_run = _drive(stopper, model, [1.0, 0.98, 0.975, 0.5])
    assert epochs_run == 3
    assert stopper.stopped_epoch == 2
    assert stopper.best == 0.98
    assert stopper.best_epoch == 1
    assert _weights_epoch(model) == 1.0


def test_patience_counts_epochs_without_improvement_and_resets_on_improvement():
    model = _small_model()
    stopper = RelativeEarlyStopping(min_delta_factor=0.01, patience=3)
    # Improvements at epochs 1 and 4; then 5, 6, 7 do not improve on 0.8 by 1 %: stop at 7.
    losses = [1.0, 0.9, 0.95, 0.899, 0.8, 0.81, 0.795, 0.9, 0.1]
    epochs_run = _drive(stopper, model, losses)
    assert epochs_run == 8
    assert stopper.stopped_epoch == 7
    assert stopper.best_epoch == 4
    assert _weights_epoch(model) == 4.0


def test_never_stops_while_improving():
    model = _small_model()
    stopper = RelativeEarlyStopping(min_delta_factor=0.05, patience=0)
    losses = [1.0 * 0.9**epoch for epoch in range(12)]  # 10 % better each epoch
    assert _drive(stopper, model, losses) == 12
    assert stopper.stopped_epoch == 0
    assert not model.stop_training
    assert _weights_epoch(model) == 11.0


def test_reuse_across_two_fit_sequences_resets():
    model = _small_model()
    stopper = RelativeEarlyStopping(min_delta_factor=0.01, patience=1)
    _drive(stopper, model, [0.5, 0.6, 0.7])
    assert stopper.stopped_epoch == 1
    # Second sequence at a worse level: against the old best 0.5 it would stop at once.
    epochs_run = _drive(stopper, model, [5.0, 4.0, 3.0, 2.99, 1.0])
    assert epochs_run == 4
    assert stopper.stopped_epoch == 3
    assert stopper.best == 3.0
    assert _weights_epoch(model) == 2.0


def test_custom_monitor_is_minimized():
    model = _small_model()
    stopper = RelativeEarlyStopping(min_delta_factor=0.0, patience=0, monitor="val_reconstruction")
    # With factor 0 an equal value is no improvement (strictly less is required).
    epochs_run = _drive(stopper, model, [2.0, 1.0, 1.0], monitor="val_reconstruction")
    assert epochs_run == 3
    assert stopper.stopped_epoch == 2
    assert stopper.best == 1.0


def test_negative_losses_need_the_same_relative_drop():
    model = _small_model()
    stopper = RelativeEarlyStopping(min_delta_factor=0.01, patience=0)
    # Best −1.0: the threshold is −1.01; −1.005 does not reach it, −1.02 does (then −1.0302).
    assert _drive(stopper, model, [-1.0, -1.02, -1.031]) == 3
    assert stopper.stopped_epoch == 0
    assert stopper.best == pytest.approx(-1.031)
    assert _drive(stopper, model, [-1.0, -1.005]) == 2
    assert stopper.stopped_epoch == 1


@pytest.mark.parametrize("factor", [-0.1, 1.0, 1.5])
def test_rejects_min_delta_factor_outside_unit_interval(factor):
    with pytest.raises(ValueError, match=f"min_delta_factor={factor}"):
        RelativeEarlyStopping(min_delta_factor=factor, patience=1)


def test_rejects_negative_patience():
    with pytest.raises(ValueError, match="patience=-1"):
        RelativeEarlyStopping(min_delta_factor=0.01, patience=-1)


def test_rejects_mode_override():
    with pytest.raises(ValueError, match="mode='max'"):
        RelativeEarlyStopping(min_delta_factor=0.01, patience=1, mode="max")


def _scripted_history(num_epochs: int) -> dict[str, list[float]]:
    epochs = np.arange(1, num_epochs + 1)
    return {
        "atom_error": list(1.0 / epochs),
        "train_prior_atom_error": list(1.2 / epochs),
        "val_atom_error": list(1.5 / epochs),
        "unregularized_loss": list(1.0 - epochs / 5),
        "train_prior_reconstruction": list(1.2 - epochs / 5),
        "val_reconstruction": list(1.5 - epochs / 5),
        "loss": list(3.0 / epochs),
    }


def _lines_by_key(figure):
    """{history key: (panel, epochs, values)} of the lines drawn, by the [key] in each label."""
    lines = {}
    for panel, axes in enumerate(figure.axes):
        for line in axes.get_lines():
            key = line.get_label().rsplit("[", 1)[1].rstrip("]")
            lines[key] = (panel, list(line.get_xdata()), list(line.get_ydata()))
    return lines


def test_figures_split_epochs_1_to_10_and_11_to_25():
    history = _scripted_history(25)
    first, remaining = learning_curve_figures(history)
    first_lines, remaining_lines = _lines_by_key(first), _lines_by_key(remaining)
    assert set(first_lines) == set(history) - {"loss"}
    assert set(remaining_lines) == set(first_lines)
    for key in first_lines:
        assert first_lines[key][1] == list(range(1, 11))
        assert remaining_lines[key][1] == list(range(11, 26))
    assert first_lines["val_atom_error"][2] == pytest.approx([1.5 / e for e in range(1, 11)])
    assert remaining_lines["atom_error"][2] == pytest.approx([1.0 / e for e in range(11, 26)])


def test_each_panel_pairs_training_and_validation_measured_alike():
    """Like for like: the training sample and validation decoded the same way share a panel."""
    lines = _lines_by_key(learning_curve_figures(_scripted_history(12))[0])
    assert lines["train_prior_atom_error"][0] == lines["val_atom_error"][0] == 0
    assert lines["train_prior_reconstruction"][0] == lines["val_reconstruction"][0] == 1
    figure = learning_curve_figures(_scripted_history(12))[0]
    for axes in figure.axes:  # the encoder's (posterior-z) figure is the dashed one beside them
        dashed = [line.get_label() for line in axes.get_lines() if line.get_linestyle() == "--"]
        assert len(dashed) == 1 and "encoder" in dashed[0]
    assert figure.axes[0].get_yscale() == "log"  # a distance is positive
    assert figure.axes[1].get_yscale() == "linear"  # an NLL may be negative


def test_remaining_figure_has_a_note_when_there_are_only_four_epochs():
    first, remaining = learning_curve_figures(_scripted_history(4))
    assert _lines_by_key(first)["atom_error"][1] == [1, 2, 3, 4]
    assert all(axes.get_lines() == [] for axes in remaining.axes)
    notes = [text.get_text() for text in remaining.axes[0].texts]
    assert notes == ["no epochs after epoch 10"]


def test_log_scale_only_for_positive_values():
    history = {"atom_error": [1.0, 0.5], "val_atom_error": [1.2, 0.6]}
    assert learning_curve_figures(history)[0].axes[0].get_yscale() == "log"
    history["val_atom_error"] = [0.0, -0.1]
    assert learning_curve_figures(history)[0].axes[0].get_yscale() == "linear"


def test_missing_mse_key_is_named():
    with pytest.raises(ValueError, match="'atom_error'"):
        learning_curve_figures({"loss": [1.0]})


def test_learning_rate_is_cut_after_patience_epochs_without_relative_improvement():
    """ReduceLROnPlateau with keras' own cut, but improvement judged relatively."""
    model = _small_model()
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    schedule = callbacks.RelativeReduceLROnPlateau(
        min_delta_factor=0.01, patience=2, factor=0.5, min_lr=0.02
    )
    schedule.set_model(model)
    schedule.on_train_begin()
    rates = []
    # 1.0 → 0.995 is only 0.5 % better: no improvement; two such epochs cut the rate.
    for epoch, value in enumerate([1.0, 0.995, 0.994, 0.5, 0.499, 0.498, 0.497, 0.496, 0.4951]):
        schedule.on_epoch_end(epoch, {callbacks.MONITOR: value})
        rates.append(float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    assert rates == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02])
    assert not model.stop_training and schedule.exhausted_epoch is None
    # At the floor a further plateau of `patience` epochs ends training: nothing left to cut.
    schedule.on_epoch_end(9, {callbacks.MONITOR: 0.4955})
    assert model.stop_training and schedule.exhausted_epoch == 9
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.02)


@pytest.mark.parametrize("num_epochs", [25, 4])
def test_plot_learning_curves_writes_two_pngs(tmp_path, num_epochs):
    paths = plot_learning_curves(_scripted_history(num_epochs), str(tmp_path / "curves"))
    assert [p.rsplit("/", 1)[1] for p in paths] == [FIRST_CURVE_FILE, REMAINING_CURVE_FILE]
    for path in paths:
        with open(path, "rb") as png:
            assert png.read(8) == PNG_MAGIC


def test_learning_curves_callback_collects_logs_and_plots(tmp_path):
    callback = LearningCurves(str(tmp_path))
    callback.on_train_begin()
    for epoch in range(25):
        logs = {"atom_error": 1.0 / (epoch + 1), "loss": 2.0}
        if epoch % 2 == 1:  # validation every second epoch only
            logs["val_atom_error"] = 1.5 / (epoch + 1)
        callback.on_epoch_end(epoch, logs)
    callback.on_train_end()
    assert callback.history["atom_error"] == pytest.approx([1.0 / e for e in range(1, 26)])
    val = callback.history["val_atom_error"]
    assert len(val) == 25
    assert math.isnan(val[0]) and math.isnan(val[2]) and val[1] == pytest.approx(0.75)
    for path in callback.paths:
        with open(path, "rb") as png:
            assert png.read(8) == PNG_MAGIC


def test_learning_curves_and_early_stopping_in_a_real_fit(tmp_path):
    """Smoke test: both callbacks work inside keras' own fit loop on a custom metric name."""
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(64, 2)).astype("float32")
    targets = inputs @ np.array([[1.0], [-2.0]], dtype="float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss="mse",
        metrics=[keras.metrics.MeanSquaredError(name="atom_error")],
    )
    curves = LearningCurves(str(tmp_path))
    stopper = RelativeEarlyStopping(0.01, patience=2, monitor="val_atom_error")
    history = model.fit(
        inputs,
        targets,
        validation_split=0.25,
        epochs=3,
        batch_size=16,
        verbose=0,
        callbacks=[curves, stopper],
    )
    assert curves.history["val_atom_error"] == pytest.approx(history.history["val_atom_error"])
    assert len(curves.history["atom_error"]) == 3
    assert all(path.endswith(".png") for path in curves.paths)


def test_training_sample_metrics_measure_training_events_as_validation_is():
    """train_prior_<name> = the model's test step on the fixed sample, added to the epoch logs."""
    rng = np.random.default_rng(1)
    inputs = rng.normal(size=(40, 2)).astype("float32")
    targets = inputs @ np.array([[1.0], [-2.0]], dtype="float32")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=[keras.metrics.MeanAbsoluteError()])
    callback = callbacks.TrainingSampleMetrics(inputs[:10], targets[:10], batch_size=4)
    callback.set_model(model)
    logs = {"loss": 1.0}
    callback.on_epoch_end(0, logs)
    predicted = model.predict(inputs[:10], verbose=0)
    assert logs["loss"] == 1.0  # the epoch's own figures are kept
    assert logs["train_prior_loss"] == pytest.approx(np.mean((predicted - targets[:10]) ** 2))
    assert logs["train_prior_mean_absolute_error"] == pytest.approx(
        np.mean(np.abs(predicted - targets[:10]))
    )
