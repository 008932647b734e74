"""The test part's pictures: one panel per coordinate, bond and angle, any molecule; the clouds."""

import numpy as np
import pytest

from cvae_tf import data, figures, molecule

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OCS = molecule.OCS
CHBRCLF = molecule.load("chbrclf")  # five fragments: four bonds to C, six angles at C


def _events(fragments, count=200, error=1e-3, seed=0):
    """(true, predicted) tables [count, 3n]: jittered copies of a fixed geometry, bohr."""
    rng = np.random.default_rng(seed)
    geometry = rng.normal(0.0, 2.0, (fragments.num_fragments, 3))
    true = geometry + 0.1 * rng.standard_normal((count, fragments.num_fragments, 3))
    predicted = true + error * rng.standard_normal(true.shape)
    return data.to_table(true), data.to_table(predicted)


def _visible_axes(figure):
    return [axes for axes in figure.axes if axes.axison]


@pytest.mark.parametrize("fragments", [OCS, CHBRCLF], ids=["ocs", "chbrclf"])
def test_one_panel_per_coordinate_bond_and_angle_and_shown_event(fragments):
    true, predicted = _events(fragments)
    shown = np.array([3, 50, 120])
    draws = np.stack([predicted[shown]] * 8)
    made = figures.evaluation_figures(true, predicted, shown, draws, fragments)
    assert list(made) == [
        figures.PARITY_FILE,
        figures.ATOM_ERRORS_FILE,
        figures.GEOMETRY_FILE,
        figures.POSTERIOR_FILE,
    ]
    parity = _visible_axes(made[figures.PARITY_FILE])
    assert [axes.get_title().split(":")[0] for axes in parity] == list(fragments.coordinate_names)
    # Each parity panel: the y = x line, then the events.
    np.testing.assert_array_equal(parity[4].get_lines()[1].get_xdata(), true[:, 4])
    assert len(made[figures.ATOM_ERRORS_FILE].axes[0].patches) == fragments.num_fragments
    geometry = _visible_axes(made[figures.GEOMETRY_FILE])
    names = [f"{name} bond length (bohr)" for name in fragments.bond_names]
    names += [f"{name} angle (°)" for name in fragments.angle_names]
    assert [axes.get_xlabel() for axes in geometry] == names
    assert len(geometry) == (2 + 1 if fragments is OCS else 4 + 6)
    clouds = _visible_axes(made[figures.POSTERIOR_FILE])
    assert [axes.get_title() for axes in clouds] == [f"test event {i}" for i in shown]
    # Per panel: a line per bond, and per fragment its cloud and its true position.
    assert len(clouds[0].get_lines()) == len(fragments.bonds)
    assert len(clouds[0].collections) == 2 * fragments.num_fragments


def test_sample_clouds_are_magnified_by_the_power_of_ten_the_title_names():
    true, _ = _events(OCS, count=2)
    positions = data.to_events_array(true)
    rng = np.random.default_rng(1)
    # Every draw 1e-4 bohr from the truth: 0.1 of the molecule's extent / 1e-4 is 10^3.6..10^3.7
    # for a geometry a few bohr wide, so ×10⁴ (the nearest power of ten).
    offsets = rng.standard_normal((16, 2, 3, 3))
    offsets *= 1e-4 / np.linalg.norm(offsets, axis=-1, keepdims=True)
    extent = np.max(molecule.pair_distances(positions))
    assert 10**3.5 < 0.1 * extent / 1e-4 < 10**4.5
    figure = figures.posterior_samples_figure(positions, positions + offsets, OCS, [0, 1])
    assert "×10000" in figure.get_suptitle()
    # The cloud is drawn in the geometry's principal plane, 10⁴ times as far from the truth.
    centre, plane = figures._principal_plane(positions[0])
    carbon_cloud = _visible_axes(figure)[0].collections[0].get_offsets()
    expected = (positions[0, 0] + 1e4 * offsets[:, 0, 0] - centre) @ plane
    np.testing.assert_allclose(carbon_cloud, expected, atol=1e-9)
    # A posterior as wide as the molecule is drawn as it is.
    wide = figures.posterior_samples_figure(positions, positions + 1e4 * offsets, OCS, [0, 1])
    assert "true scale" in wide.get_suptitle()


def test_no_shown_events_and_exact_predictions_still_draw(tmp_path):
    true, _ = _events(OCS, count=20)
    made = figures.evaluation_figures(true, true, np.array([], int), np.zeros((2, 0, 9)), OCS)
    paths = figures.save(made, tmp_path)
    assert [path.name for path in paths] == list(made)
    for path in paths:
        assert path.read_bytes().startswith(PNG_MAGIC)


def test_many_events_are_drawn_as_a_seeded_sample():
    rows = figures._drawn_rows(figures.MAX_EVENTS + 5, seed=3)
    assert len(rows) == figures.MAX_EVENTS == len(set(rows)) and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, figures._drawn_rows(figures.MAX_EVENTS + 5, seed=3))
    np.testing.assert_array_equal(figures._drawn_rows(7, seed=3), np.arange(7))
