"""The saved figures: learning curves split at epoch 10, and the calibration curve."""

import re

import numpy as np
import pytest

from cvae_tf.plots import (
    FIRST_CURVE_FILE,
    REMAINING_CURVE_FILE,
    learning_curve_figures,
    plot_calibration_curve,
    plot_learning_curves,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


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


@pytest.mark.parametrize("num_epochs", [25, 4])
def test_plot_learning_curves_writes_two_pngs(tmp_path, num_epochs):
    paths = plot_learning_curves(_scripted_history(num_epochs), str(tmp_path / "curves"))
    assert [p.rsplit("/", 1)[1] for p in paths] == [FIRST_CURVE_FILE, REMAINING_CURVE_FILE]
    for path in paths:
        with open(path, "rb") as png:
            assert png.read(8) == PNG_MAGIC


def test_plot_calibration_curve_writes_a_png(tmp_path):
    nominal = np.append(np.linspace(0.05, 0.95, 19), 0.99)
    observed = nominal**1.2  # a slightly overconfident predictive
    path = tmp_path / "calibration.png"

    plot_calibration_curve(nominal, observed, path)

    content = path.read_bytes()
    assert content.startswith(PNG_MAGIC)
    assert len(content) > 1000


def test_plot_calibration_curve_refuses_mismatched_curves():
    with pytest.raises(ValueError, match=re.escape("(3,) and (2,)")):
        plot_calibration_curve(np.zeros(3), np.zeros(2), "unused.png")
