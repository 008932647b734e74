"""Training callbacks: relative early stopping and learning-rate cuts, like-for-like training
metrics, the latent statistics' reset, the learning curves drawn when training ends, and the
epoch backup that checks for room first."""

import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cvae_tf import epoch_history, file_writes, plots

MONITOR = "val_atom_error"  # what early stopping and the learning-rate schedule watch


class RelativeImprovement:
    """Mixin for keras monitor callbacks: improvement means value < best − factor·|best|."""

    min_delta_factor = 0.0

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        reference = float(reference_value)
        # Subtracting factor·|best| rather than multiplying by (1 − factor) keeps the threshold
        # below the best also for a negative loss; for positive losses the two are the same.
        return float(monitor_value) < reference - self.min_delta_factor * abs(reference)


class RelativeEarlyStopping(RelativeImprovement, keras.callbacks.EarlyStopping):
    """Keras' EarlyStopping, but an epoch improves only if value < best·(1 − min_delta_factor)."""

    def __init__(
        self,
        min_delta_factor: float,
        patience: int,
        monitor: str = MONITOR,
        restore_best_weights: bool = True,
        **kwargs,
    ):
        """Stops after `patience` epochs without a relative improvement of `min_delta_factor`.

        Args:
            min_delta_factor: Fraction in [0, 1) by which the monitored value must fall below the
                best so far to count as an improvement (0.01: at least 1 % lower).
            patience: Epochs without improvement, ≥ 0, before training stops.
            monitor: Log key to watch; it is always minimized.
            restore_best_weights: Whether to restore the weights of the best epoch at the end.
            **kwargs: Passed to keras.callbacks.EarlyStopping (verbose, baseline,
                start_from_epoch); not mode or min_delta, which this class fixes.
        """
        if not 0.0 <= min_delta_factor < 1.0:
            raise ValueError(
                f"min_delta_factor must be in [0, 1); received: min_delta_factor={min_delta_factor}"
            )
        if patience < 0:
            raise ValueError(f"patience must be ≥ 0; received: patience={patience}")
        fixed = sorted({"mode", "min_delta"} & kwargs.keys())
        if fixed:
            raise ValueError(
                f"RelativeEarlyStopping fixes mode='min' and a relative min_delta; "
                f"received: {', '.join(f'{key}={kwargs[key]!r}' for key in fixed)}"
            )
        # mode="min" always: "auto" cannot tell which way a custom tracker should go.
        super().__init__(
            monitor=monitor,
            min_delta=0,
            patience=patience,
            mode="min",
            restore_best_weights=restore_best_weights,
            **kwargs,
        )
        self.min_delta_factor = min_delta_factor


class RelativeReduceLROnPlateau(RelativeImprovement, keras.callbacks.ReduceLROnPlateau):
    """Keras' ReduceLROnPlateau with the relative improvement test of RelativeEarlyStopping.

    Keras' min_delta is absolute, which means nothing for a loss that falls by orders of
    magnitude on noise-free data and sits at a noise floor on noisy data; only the comparison is
    replaced. It also logs `learning_rate` every epoch (keras does), so history.csv has it.

    Training also ends when the schedule is exhausted: a plateau of `patience` epochs with the
    rate already at `min_lr`. Keras would go on counting; at the floor the validation error of
    the main job still crept down by 3 % over 145 more epochs, 45 % of the run's time.
    EarlyStopping (restore_best_weights) then restores the best epoch.
    """

    def __init__(self, min_delta_factor: float, patience: int, monitor: str = MONITOR, **kwargs):
        super().__init__(monitor=monitor, mode="min", min_delta=0, patience=patience, **kwargs)
        self.min_delta_factor = min_delta_factor
        self.exhausted_epoch = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.exhausted_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        # Past patience after keras' step only when the rate could not be cut any further.
        if self.patience and self.wait >= self.patience:
            self.exhausted_epoch = epoch
            self.model.stop_training = True


class LatentStatisticsReset(keras.callbacks.Callback):
    """Starts each epoch's running latent statistics afresh, so validation sees this epoch's.

    A callback, not keras' own reset of `Model.metrics`: keras resets those at every `evaluate`
    too, which would empty the sums at each validation pass.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.latent_distribution.reset_state()


class TrainingSampleMetrics(keras.callbacks.Callback):
    """Adds `train_prior_<name>` logs: the test step on a fixed sample of training events.

    The training step's own figures decode z from the encoder, which sees the positions; the
    validation figures decode z from the training latent distribution. This callback measures
    the training events the way validation is measured, so that a gap between the two curves
    means overfitting and nothing else. Place it before the callbacks that read the logs.
    """

    def __init__(self, momenta: np.ndarray, positions: np.ndarray, batch_size: int):
        super().__init__()
        # One dataset for every epoch, the batches keras makes of the arrays: evaluate() on
        # arrays builds its input pipeline anew at each call, which took as long as the test
        # step itself on 8,192 events (106 against 47 ms an epoch, 2-core CPU).
        self.batches = tf.data.Dataset.from_tensor_slices((momenta, positions))
        self.batches = self.batches.batch(batch_size).cache()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        results = self.model.evaluate(self.batches, verbose=0, return_dict=True)
        logs.update({f"train_prior_{name}": float(value) for name, value in results.items()})


class LearningCurves(keras.callbacks.Callback):
    """Collects each epoch's logs and writes the two learning-curve PNGs when training ends."""

    def __init__(self, output_dir: str, *, split_epoch: int = 10, history_csv: str | None = None):
        super().__init__()
        self.output_dir = output_dir
        # A CSVLogger file to plot from instead of this fit's logs, so that a resumed run's
        # curves show every epoch (place this callback after that CSVLogger).
        self.history_csv = history_csv
        self.split_epoch = split_epoch
        self.history: dict[str, list[float]] = {}
        self.paths: tuple[str, str] | None = None
        self._epochs = 0

    def on_train_begin(self, logs=None):
        # Fresh curves for every fit call, as keras' own History does.
        self.history = {}
        self.paths = None
        self._epochs = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key in logs.keys() - self.history.keys():
            # A key first seen now (validation every few epochs) gets NaN for the epochs before,
            # so every list stays aligned with the epoch number.
            self.history[key] = [math.nan] * self._epochs
        for key, values in self.history.items():
            values.append(float(logs[key]) if key in logs else math.nan)
        self._epochs += 1

    def on_train_end(self, logs=None):
        history = self.history
        if self.history_csv and Path(self.history_csv).is_file():
            history = epoch_history.read_history(Path(self.history_csv))
        self.paths = plots.plot_learning_curves(
            history, self.output_dir, split_epoch=self.split_epoch
        )


class EpochWatch(keras.callbacks.TerminateOnNaN):
    """keras' TerminateOnNaN, also on the validation loss, noting where it stopped and started.

    `diverged` is (1-based epoch, log key, value) of the first NaN or infinite loss; `first_epoch`
    the 0-based epoch this fit began at, above 0 when BackupAndRestore resumed a run.
    """

    def __init__(self, resume: bool = False):
        super().__init__()
        self.resume = resume
        self.diverged: tuple[int, str, float] | None = None
        self.first_epoch: int | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch
            if self.resume:
                print(
                    f"Resuming the unfinished run at epoch {epoch + 1}"
                    + (" (no completed epoch was saved)" if epoch == 0 else ""),
                    flush=True,
                )
        self._epoch = epoch + 1

    def on_batch_end(self, batch, logs=None):
        self._note((logs or {}).get("loss"), "loss", self._epoch)
        super().on_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for key in ("loss", "val_loss"):
            if self._note((logs or {}).get(key), key, epoch + 1):
                self.model.stop_training = True

    def _note(self, value, key: str, epoch: int) -> bool:
        if value is None or np.isfinite(value):
            return False
        if self.diverged is None:
            self.diverged = (epoch, key, float(value))
        return True


class RoomCheckedBackup(keras.callbacks.BackupAndRestore):
    """keras' BackupAndRestore that refuses an epoch's checkpoint the disk has no room for.

    h5py, when a write inside its file fails (a full disk, ulimit -f), floods stderr with
    errors from its objects' clean-up and may crash the process at exit; checking the free
    space and the file-size limit against `checkpoint_bytes` (an estimate from above) first
    turns a disk that filled up during training into one WriteError, the last completed
    epoch's checkpoint intact.
    """

    def __init__(self, backup_dir: str, checkpoint_bytes: int, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.checkpoint_bytes = checkpoint_bytes

    def on_epoch_end(self, epoch, logs=None):
        file_writes.check_room(
            Path(self.backup_dir) / "latest.weights.h5",
            self.checkpoint_bytes,
            self.checkpoint_bytes,
            f"epoch {epoch + 1}'s checkpoint",
        )
        super().on_epoch_end(epoch, logs)
