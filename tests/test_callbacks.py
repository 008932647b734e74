"""Tests of the callbacks: relative early stopping and learning-rate cuts, training-sample
metrics, and the learning-curve callback."""

import math

import keras
import numpy as np
import pytest

from cvae_tf import callbacks
from cvae_tf.callbacks import LearningCurves, RelativeEarlyStopping

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


@pytest.mark.parametrize(
    "patience, losses, epochs_run, best_epoch",
    [
        # 0.995 is 0.5 % below 1.0 (< 1 %): no improvement, so patience 1 ends it at epoch index 1.
        (1, [1.0, 0.995, 0.99, 0.98], 2, 0),
        # 0.98 is 2 % below 1.0: improves. 0.975 is only ~0.5 % below 0.98: does not.
        (1, [1.0, 0.98, 0.975, 0.5], 3, 1),
        # Improvements at epochs 1 and 4; then 5, 6, 7 do not improve on 0.8 by 1 %: stop at 7.
        (3, [1.0, 0.9, 0.95, 0.899, 0.8, 0.81, 0.795, 0.9, 0.1], 8, 4),
    ],
    ids=["half_percent_is_no_improvement", "two_percent_is_one", "patience_resets"],
)
def test_one_percent_factor_counts_relative_improvements_and_restores_the_best(
    patience, losses, epochs_run, best_epoch
):
    model = _small_model()
    stopper = RelativeEarlyStopping(min_delta_factor=0.01, patience=patience)
    assert _drive(stopper, model, losses) == epochs_run
    assert stopper.stopped_epoch == epochs_run - 1
    assert model.stop_training
    assert stopper.best == losses[best_epoch]
    assert stopper.best_epoch == best_epoch
    assert _weights_epoch(model) == best_epoch  # restored from the best epoch, not the last


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
