"""The training figures (learning curves per epoch, the test part's calibration curve) and
predict's histograms."""

import os
from os import PathLike

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

FIRST_CURVE_FILE = "learning_curve_first_10_epochs.png"
REMAINING_CURVE_FILE = "learning_curve_remaining_epochs.png"
CALIBRATION_TITLE = "Calibration: observed against nominal coverage"

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


def plot_calibration_curve(
    nominal: np.ndarray,
    observed: np.ndarray,
    path: str | PathLike[str],
    title: str = CALIBRATION_TITLE,
) -> None:
    """Write the calibration curve, with the ideal diagonal, to a PNG at path."""
    calibration_curve_figure(nominal, observed, title).savefig(path, dpi=100)


def calibration_curve_figure(
    nominal: np.ndarray, observed: np.ndarray, title: str = CALIBRATION_TITLE
) -> Figure:
    """The calibration curve with the ideal diagonal.

    Args:
        nominal: Nominal central-interval probabilities, 1-D.
        observed: Observed coverage at each, same length.
        title: Figure title.
    """
    nominal = np.asarray(nominal, dtype=float)
    observed = np.asarray(observed, dtype=float)
    if nominal.ndim != 1 or nominal.shape != observed.shape:
        raise ValueError(
            "nominal and observed must be 1-D arrays of one length; received shapes "
            f"{nominal.shape} and {observed.shape}"
        )
    # A bare Figure (no pyplot) needs no display backend and is freed with its last reference,
    # so report runs neither leak figures nor depend on the interactive state.
    figure = Figure(figsize=(6, 6), layout="constrained")
    axes = figure.subplots()
    axes.plot([0.0, 1.0], [0.0, 1.0], linestyle="--", color="grey", label="ideal")
    axes.plot(nominal, observed, marker="o", label="observed")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("nominal coverage of the central interval")
    axes.set_ylabel("observed coverage")
    axes.set_title(title)
    axes.grid(True)
    axes.legend(loc="upper left")
    return figure


def plot_histogram(
    counts: np.ndarray, edges: np.ndarray, path: str | PathLike[str], xlabel: str, title: str
) -> None:
    """Write a histogram of precomputed `counts` in bins `edges` (len(counts) + 1) to a PNG."""
    counts, edges = np.asarray(counts), np.asarray(edges, dtype=float)
    if edges.shape != (len(counts) + 1,):
        raise ValueError(
            f"edges must have one value more than counts; received {len(edges)} edges for "
            f"{len(counts)} counts"
        )
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    axes.stairs(counts, edges, fill=True, alpha=0.7)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("events per bin")
    axes.set_title(title, fontsize="medium")
    axes.grid(True, alpha=0.3)
    figure.savefig(path, dpi=100)
