"""Training callbacks: relative early stopping and learning-rate cuts, like-for-like training
metrics, the latent statistics' reset, and the learning-curve plots."""

import csv
import math
import os
from pathlib import Path

import keras
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

FIRST_CURVE_FILE = "learning_curve_first_10_epochs.png"
REMAINING_CURVE_FILE = "learning_curve_remaining_epochs.png"

# History key → (legend label, line style), per panel. In each panel training and validation show
# the SAME quantity computed the same way (z from the training latent distribution, positions
# only as the target), on one y scale as the specification asks; dashed beside them, the training
# values with z from the encoder, which sees the positions.
ERROR_CURVES = {
    "train_prior_atom_error": ("training sample, z from the training latent distribution", "-"),
    "val_atom_error": ("validation, z from the training latent distribution", "-"),
    "atom_error": ("training, z from the encoder (sees the positions)", "--"),
}
LOSS_CURVES = {
    "train_prior_reconstruction": (
        "training sample: decoder NLL, z from the training latent distribution",
        "-",
    ),
    "val_reconstruction": ("validation: decoder NLL, z from the training latent distribution", "-"),
    "unregularized_loss": ("training loss without L1/L2: NLL + β·KL, z from the encoder", "--"),
}
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
        self.momenta, self.positions, self.batch_size = momenta, positions, batch_size

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        results = self.model.evaluate(
            self.momenta, self.positions, batch_size=self.batch_size, verbose=0, return_dict=True
        )
        logs.update({f"train_prior_{name}": float(value) for name, value in results.items()})


def learning_curve_figures(
    history: dict[str, list[float]], *, split_epoch: int = 10
) -> tuple[Figure, Figure]:
    """The two learning-curve figures: epochs 1..split_epoch, and split_epoch + 1..end.

    Each has two panels: the per-atom distance error of the decoder's mean (bohr; ERROR_CURVES)
    and the decoder's negative log-likelihood per event (nats, normalized units; LOSS_CURVES).

    Args:
        history: Per-epoch values by log key; "atom_error" is required unless history is
            empty, the other keys of ERROR_CURVES and LOSS_CURVES are drawn when present. NaN
            marks an epoch without a value.
        split_epoch: Last epoch (1-based) of the first figure.

    Returns:
        (first, remaining): matplotlib Figures, not attached to pyplot, two axes each.
    """
    if history and "atom_error" not in history:
        raise ValueError(f"history needs the key 'atom_error'; received keys: {sorted(history)}")
    if split_epoch < 1:
        raise ValueError(f"split_epoch must be ≥ 1; received: split_epoch={split_epoch}")
    first = _curve_figure(history, 1, split_epoch, f"Learning curves, epochs 1–{split_epoch}")
    remaining = _curve_figure(
        history, split_epoch + 1, None, f"Learning curves, epochs {split_epoch + 1} onwards"
    )
    return first, remaining


def plot_learning_curves(
    history: dict[str, list[float]], output_dir: str, *, split_epoch: int = 10
) -> tuple[str, str]:
    """Writes the two learning-curve PNGs into output_dir and returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = (
        os.path.join(output_dir, FIRST_CURVE_FILE),
        os.path.join(output_dir, REMAINING_CURVE_FILE),
    )
    for figure, path in zip(
        learning_curve_figures(history, split_epoch=split_epoch), paths, strict=True
    ):
        figure.savefig(path, dpi=100)
    return paths


def _curve_figure(
    history: dict[str, list[float]], first_epoch: int, last_epoch: int | None, title: str
) -> Figure:
    """One figure, both panels, for epochs first_epoch..last_epoch (1-based, inclusive)."""
    # A bare Figure (no pyplot) needs no display and is freed with its last reference, so there
    # is no global figure registry to close.
    figure = Figure(figsize=(8, 10), layout="constrained")
    figure.suptitle(title)
    error_axes, loss_axes = figure.subplots(2, 1, sharex=True)
    for axes, curves, quantity in (
        (error_axes, ERROR_CURVES, "per-atom distance error of the decoder mean (bohr)"),
        (loss_axes, LOSS_CURVES, "negative log-likelihood per event (nats)"),
    ):
        _curve_panel(axes, history, curves, quantity, first_epoch, last_epoch)
    loss_axes.set_xlabel("epoch (1 = first)")
    return figure


def _curve_panel(axes, history, curves, quantity: str, first_epoch: int, last_epoch) -> None:
    plotted = []
    for key, (label, style) in curves.items():
        values = np.asarray(history.get(key, []), dtype=float)
        end = len(values) if last_epoch is None else min(last_epoch, len(values))
        if end < first_epoch:
            continue
        epochs = np.arange(first_epoch, end + 1)
        window = values[first_epoch - 1 : end]
        axes.plot(epochs, window, style, marker="o", markersize=3, label=f"{label} [{key}]")
        plotted.append(window)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not plotted:
        axes.text(
            0.5,
            0.5,
            f"no epochs after epoch {first_epoch - 1}" if first_epoch > 1 else "no epochs",
            ha="center",
            va="center",
            transform=axes.transAxes,
        )
        axes.set_xticks([])
        axes.set_yticks([])
        return
    finite = np.concatenate(plotted)
    finite = finite[np.isfinite(finite)]
    # Log scale shows both the fast first drop and the slow tail, but only for positive values.
    log_scale = finite.size > 0 and bool(np.all(finite > 0))
    if log_scale:
        axes.set_yscale("log")
    axes.set_ylabel(quantity + (", log scale" if log_scale else ""))
    axes.legend(fontsize="small")
    axes.grid(True, alpha=0.3)


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
            history = read_history(Path(self.history_csv))
        self.paths = plot_learning_curves(history, self.output_dir, split_epoch=self.split_epoch)


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


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch values by log key from CSVLogger's file; an epoch redone after resume counts once.

    A kill between the CSV line and the backup of an epoch makes --resume redo that epoch, so the
    last line of each epoch wins; a line cut short by the kill is skipped.
    """
    by_epoch = {}
    with open(path, newline="") as stream:
        for row in csv.DictReader(stream):
            if None in row or None in row.values() or "" in row.values():  # a cut line
                continue
            by_epoch[int(row.pop("epoch"))] = row
    history: dict[str, list[float]] = {}
    for epoch in sorted(by_epoch):
        for key, value in by_epoch[epoch].items():
            history.setdefault(key, []).append(_to_float(value))
    return history


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # CSVLogger's "NA" for a key missing that epoch
        return math.nan


def write_history(path: Path, history: dict[str, list[float]]) -> None:
    """Writes per-epoch values as CSVLogger does: an epoch column (0-based), then sorted keys."""
    keys = sorted(history)
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["epoch", *keys])
        for epoch, values in enumerate(zip(*(history[key] for key in keys), strict=True)):
            writer.writerow([epoch, *values])
