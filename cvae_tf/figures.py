"""The test part's pictures: parity, per-fragment errors, bond and angle distributions, clouds."""

import math
from os import PathLike
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cvae_tf import data, physics
from cvae_tf.molecule import Molecule

PARITY_FILE = "parity.png"
ATOM_ERRORS_FILE = "atom_errors.png"
GEOMETRY_FILE = "geometry_distributions.png"
POSTERIOR_FILE = "posterior_samples.png"
DPI = 100
# Events a scatter or histogram draws at most, a seeded random subset: a picture shows the look
# of the errors, and 20,000 points draw in a fraction of a second where 750,000 take many.
MAX_EVENTS = 20_000
CLOUD_SIZE = 0.1  # magnified sample clouds spread over about this fraction of the molecule


def evaluation_figures(
    true_table: np.ndarray,
    predicted_table: np.ndarray,
    shown_events: np.ndarray,
    shown_draws: np.ndarray,
    fragments: Molecule,
    seed: int = 0,
) -> dict[str, Figure]:
    """{file name: figure} of the test part's pictures.

    Args:
      true_table: true positions (bohr) [events, 3n], the molecule's column order.
      predicted_table: the point predictions, same shape.
      shown_events: indices of the events whose posterior samples are drawn.
      shown_draws: their posterior samples [draws, len(shown_events), 3n], bohr.
      fragments: the molecule (labels, bonds, angles).
      seed: picks the events drawn when there are more than MAX_EVENTS.
    """
    drawn = _drawn_rows(len(true_table), seed)
    true_positions = data.to_events_array(true_table[drawn])
    predicted_positions = data.to_events_array(predicted_table[drawn])
    return {
        PARITY_FILE: parity_figure(true_table[drawn], predicted_table[drawn], fragments),
        ATOM_ERRORS_FILE: atom_errors_figure(true_positions, predicted_positions, fragments),
        GEOMETRY_FILE: geometry_figure(true_positions, predicted_positions, fragments),
        POSTERIOR_FILE: posterior_samples_figure(
            data.to_events_array(true_table[shown_events]),
            shown_draws.reshape(len(shown_draws), len(shown_events), fragments.num_fragments, 3),
            fragments,
            shown_events,
        ),
    }


def save(figures: dict[str, Figure], folder: str | PathLike[str]) -> list[Path]:
    """Writes each figure as `folder/<file name>` PNG; returns the paths."""
    paths = []
    for name, figure in figures.items():
        path = Path(folder) / name
        figure.savefig(path, dpi=DPI)
        paths.append(path)
    return paths


def _drawn_rows(num_events: int, seed: int) -> np.ndarray:
    if num_events <= MAX_EVENTS:
        return np.arange(num_events)
    return np.sort(np.random.default_rng(seed).choice(num_events, MAX_EVENTS, replace=False))


def _grid(figure: Figure, panels: int, columns: int) -> list:
    """`panels` axes in rows of `columns`; the unused cells of the last row switched off."""
    rows = max(1, math.ceil(panels / columns))
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
    for unused in axes[panels:]:
        unused.set_axis_off()
    return list(axes[:panels])


def parity_figure(true_table: np.ndarray, predicted_table: np.ndarray, fragments: Molecule):
    """True against predicted, one panel per coordinate (a row per fragment), with y = x."""
    rows = fragments.num_fragments
    # A bare Figure (no pyplot) needs no display and is freed with its last reference.
    figure = Figure(figsize=(9, 2.4 * rows + 0.6), layout="constrained")
    figure.suptitle(f"Predicted against true position, {len(true_table)} test events (bohr)")
    for column, (axes, name) in enumerate(
        zip(_grid(figure, 3 * rows, 3), fragments.coordinate_names, strict=True)
    ):
        true, predicted = true_table[:, column], predicted_table[:, column]
        low, high = _finite_range(np.concatenate([true, predicted]))
        axes.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle="--")
        axes.plot(true, predicted, ".", markersize=1.5, alpha=0.3, rasterized=True)
        axes.set_title(
            f"{name}: mean |error| {np.mean(np.abs(predicted - true)):.2g} bohr", fontsize="small"
        )
        axes.tick_params(labelsize="x-small")
        if column % 3 == 0:
            axes.set_ylabel("predicted", fontsize="small")
        if column >= 3 * (rows - 1):
            axes.set_xlabel("true", fontsize="small")
    return figure


def atom_errors_figure(
    true_positions: np.ndarray, predicted_positions: np.ndarray, fragments: Molecule
) -> Figure:
    """Histograms of each fragment's distance error |predicted − true| (bohr), log x."""
    errors = np.linalg.norm(predicted_positions - true_positions, axis=-1)  # (events, fragments)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    positive = errors[np.isfinite(errors) & (errors > 0)]
    if positive.size == 0:
        axes.text(0.5, 0.5, "every error is zero", ha="center", transform=axes.transAxes)
        return figure
    # Zero errors sit in the first bin rather than vanishing from a log axis.
    floor = positive.min()
    bins = np.geomspace(floor, max(positive.max(), floor * 1.01), 60)
    for index, label in enumerate(fragments.labels):
        errors_of = np.clip(errors[:, index], floor, None)
        axes.hist(
            errors_of,
            bins=bins,
            histtype="step",
            linewidth=1.3,
            label=f"{label} (median {np.median(errors[:, index]):.2g} bohr)",
        )
    axes.set_xscale("log")
    axes.set_xlabel("distance between predicted and true position (bohr), log scale")
    axes.set_ylabel("test events")
    axes.set_title(f"Per-fragment distance error, {len(errors)} test events")
    axes.legend(fontsize="small")
    axes.grid(True, alpha=0.3)
    return figure


def geometry_figure(
    true_positions: np.ndarray, predicted_positions: np.ndarray, fragments: Molecule
) -> Figure:
    """Every bond length (bohr) and bond angle (°) of the molecule: predicted against true."""
    panels = [
        (f"{name} bond length (bohr)", index, "bond")
        for index, name in enumerate(fragments.bond_names)
    ] + [(f"{name} angle (°)", index, "angle") for index, name in enumerate(fragments.angle_names)]
    values = {
        "bond": [
            physics.bond_lengths(p, fragments.bonds) for p in (true_positions, predicted_positions)
        ],
        "angle": [
            physics.bond_angles(p, fragments.angles) if fragments.angles else None
            for p in (true_positions, predicted_positions)
        ],
    }
    columns = min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    figure = Figure(figsize=(3.4 * columns, 2.8 * rows + 0.5), layout="constrained")
    figure.suptitle(f"Bond lengths and angles, {len(true_positions)} test events")
    if not panels:
        figure.subplots().text(0.5, 0.5, "the molecule has no bonds", ha="center")
        return figure
    for axes, (title, index, kind) in zip(_grid(figure, len(panels), columns), panels, strict=True):
        true, predicted = (table[:, index] for table in values[kind])
        low, high = _finite_range(np.concatenate([true, predicted]), percentiles=(0.5, 99.5))
        bins = np.linspace(low, high, 50)
        axes.hist(true, bins=bins, histtype="stepfilled", alpha=0.35, color="grey", label="true")
        axes.hist(predicted, bins=bins, histtype="step", linewidth=1.3, label="predicted")
        axes.set_xlabel(title, fontsize="small")
        axes.tick_params(labelsize="x-small")
        axes.legend(fontsize="x-small")
    return figure


def posterior_samples_figure(
    true_positions: np.ndarray,
    draws: np.ndarray,
    fragments: Molecule,
    event_indices,
) -> Figure:
    """Each shown event's posterior samples as point clouds around its true geometry.

    Each panel is the plane of the event's true geometry's first two principal axes (through its
    centroid), with the bonds drawn. The samples' deviations from the true positions are
    magnified by one power of ten for the whole figure, so that clouds far smaller than the
    molecule still show their shape and their offset from the truth; the title says by how much.

    Args:
      true_positions: (events, fragments, 3), bohr.
      draws: posterior samples (draws, events, fragments, 3), bohr.
      fragments: the molecule.
      event_indices: the events' test-part indices, for the titles.
    """
    count = len(true_positions)
    columns = max(1, min(3, count))
    figure = Figure(figsize=(4.2 * columns, 4.4 * math.ceil(max(count, 1) / columns)))
    figure.set_layout_engine("constrained")
    if count == 0:
        figure.subplots().text(0.5, 0.5, "no events shown (--num_display_samples=0)", ha="center")
        return figure
    magnification = _magnification(true_positions, draws)
    shown = f"deviations from the truth ×{magnification:g}" if magnification > 1 else "true scale"
    # Two lines: one panel is too narrow for the whole title on one.
    figure.suptitle(f"Posterior samples, {len(draws)} per event\n({shown})")
    colours = [f"C{index % 10}" for index in range(fragments.num_fragments)]
    for axes, event, truth, samples in zip(
        _grid(figure, count, columns),
        event_indices,
        true_positions,
        np.moveaxis(draws, 1, 0),
        strict=True,
    ):
        centre, plane = _principal_plane(truth)
        flat_truth = (truth - centre) @ plane
        clouds = (truth + magnification * (samples - truth) - centre) @ plane
        for i, j in fragments.bonds:
            axes.plot(*flat_truth[[i, j]].T, color="black", linewidth=1.5, zorder=1)
        for index, label in enumerate(fragments.labels):
            axes.scatter(
                *clouds[:, index].T, s=6, alpha=0.4, color=colours[index], linewidths=0, zorder=2
            )
            axes.scatter(
                *flat_truth[index],
                s=70,
                facecolor="none",  # hollow: the cloud around the truth stays visible
                edgecolor=colours[index],
                linewidths=2,
                zorder=3,
            )
            axes.annotate(
                label, flat_truth[index], xytext=(6, 6), textcoords="offset points", zorder=4
            )
        axes.set_aspect("equal", adjustable="datalim")
        axes.set_title(f"test event {event}", fontsize="small")
        axes.set_xlabel("1st principal axis of the true geometry (bohr)", fontsize="x-small")
        axes.set_ylabel("2nd principal axis (bohr)", fontsize="x-small")
        axes.tick_params(labelsize="x-small")
        axes.grid(True, alpha=0.3)
    return figure


def _principal_plane(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centroid (3,) of positions (fragments, 3) and their first two principal axes (3, 2)."""
    centre = positions.mean(axis=0)
    # Right singular vectors, largest spread first; a linear molecule's second axis is any
    # perpendicular one, which is still a plane the geometry lies in.
    _, _, rows = np.linalg.svd(positions - centre)
    return centre, rows[:2].T


def _magnification(true_positions: np.ndarray, draws: np.ndarray) -> float:
    """The power of ten nearest to spreading the samples over CLOUD_SIZE of the molecule, ≥ 1."""
    deviation = np.median(np.linalg.norm(draws - true_positions, axis=-1))
    extent = np.max(physics.pair_distances(true_positions))
    if not (np.isfinite(deviation) and deviation > 0 and np.isfinite(extent)):
        return 1.0
    return float(10 ** max(0, round(math.log10(CLOUD_SIZE * extent / deviation))))


def _finite_range(values: np.ndarray, percentiles=(0.0, 100.0)) -> tuple[float, float]:
    """(low, high) of the finite values (at the given percentiles), never an empty interval."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(value) for value in np.percentile(finite, percentiles))
    if high <= low:
        pad = max(abs(low) * 1e-6, 1e-12)
        return low - pad, high + pad
    return low, high
