"""The data check: a clean verdict on consistent data, and each slip named with its figures."""

import numpy as np
import pytest

from cvae_tf import data, diagnostics, molecule, physics, simulator
from cvae_tf.errors import UserInputError
from tests.frame_mismatch import frame_mismatched_events

BOHR_PER_ANGSTROM = 1 / 0.529177210544  # CODATA 2022
ELECTRON_MASSES_PER_DALTON = 1822.888486
HARTREE_IN_EV = 27.211386245988


def simulate(num_events=600, seed=21, **noise):
    return simulator.simulate_events(simulator.SimulationConfig(num_events, seed=seed, **noise))


@pytest.fixture(scope="module")
def consistent():
    return data.Events(*simulate())


def test_consistent_data_get_a_clean_verdict(consistent):
    verdict = diagnostics.check_events(consistent)
    assert verdict.problems == [] and verdict.recommended_flags == []
    assert verdict.num_checked == verdict.num_events == 600
    assert verdict.energy_diff_median < 1e-8
    assert verdict.momentum_balance < 1e-12
    np.testing.assert_allclose(verdict.magnitude_ratios, 1.0, atol=1e-9)
    assert verdict.rotation_angle < 1e-6
    assert verdict.direction_mismatch_after < 1e-9
    assert verdict.com_spread < 1e-9
    assert "no problems found" in verdict.format()


def test_frame_mismatch_and_translation_are_named_with_their_figures(consistent):
    bad, position_frames, momentum_frames, translations = frame_mismatched_events(
        consistent.positions, consistent.momenta
    )
    verdict = diagnostics.check_events(bad)
    # Independently: simulated momenta come out in the position frame B, the given ones are in
    # the momentum frame M, so the rotation between them is M·Bᵀ, angle from its trace.
    between = momentum_frames @ np.swapaxes(position_frames, -1, -2)
    cosine = (np.trace(between, axis1=-2, axis2=-1) - 1) / 2
    expected_angle = np.median(np.degrees(np.arccos(np.clip(cosine, -1, 1))))
    assert verdict.rotation_angle == pytest.approx(expected_angle, abs=1e-6)
    assert verdict.rotation_angle > 30  # measured 55.3° for this seed
    # Rotation about the centre of mass keeps it, so the COM is the added translation.
    expected_spread = np.sqrt(np.mean(np.sum((translations - translations.mean(0)) ** 2, -1)))
    assert verdict.com_spread == pytest.approx(expected_spread, rel=1e-9)  # ≈ √3 bohr
    assert verdict.recommended_flags == ["--center=com", "--align_positions"]
    assert len(verdict.problems) == 2
    frames_problem, translation_problem = verdict.problems
    assert (
        "different frames" in frames_problem and f"{verdict.rotation_angle:.1f}°" in frames_problem
    )
    assert (
        "unlearnable" in translation_problem
        and f"{expected_spread:.3g} bohr" in translation_problem
    )
    # Every physical quantity is still right: energy, balance and magnitudes raise nothing.
    assert verdict.energy_diff_median < 1e-8
    np.testing.assert_allclose(verdict.magnitude_ratios, 1.0, atol=1e-9)
    assert "--center=com --align_positions" in verdict.format()


@pytest.mark.parametrize(
    ("position_scale", "momentum_scale", "expected_ratio", "named"),
    [
        # Lengths in ångström: PE ∝ 1/r grows by 1.8897, KE stays.
        (1 / BOHR_PER_ANGSTROM, 1.0, 1 / BOHR_PER_ANGSTROM, "ångström"),
        # Momenta halved: KE ∝ p² falls to 1/4, as ions of charge +1 would give (q_i·q_j = 1).
        (1.0, 0.5, 0.25, "charged +1"),
        (1.0, 2.0, 4.0, "charged +4"),
        # Masses in u: p = √(2 m KE) smaller by √1822.888, so KE/PE = 1/1822.888.
        (1.0, ELECTRON_MASSES_PER_DALTON**-0.5, 1 / ELECTRON_MASSES_PER_DALTON, "masses in u"),
        (1.0, HARTREE_IN_EV**0.5, HARTREE_IN_EV, "eV read as hartree"),
        (1.0, 1.3, 1.69, "matches no known slip"),
    ],
)
def test_constant_energy_factor_is_named(
    consistent, position_scale, momentum_scale, expected_ratio, named
):
    scaled = data.Events(consistent.positions * position_scale, consistent.momenta * momentum_scale)
    verdict = diagnostics.check_events(scaled)
    assert verdict.energy_ratio == pytest.approx(expected_ratio, rel=1e-8)
    assert verdict.energy_ratio_spread < 1e-8
    energy_problem = verdict.problems[0]
    assert named in energy_problem and f"{expected_ratio:.4g}" in energy_problem
    # Sizes, not directions, are off: the magnitude finding, but no frame problem or flags.
    assert any("magnitudes differ" in problem for problem in verdict.problems)
    assert not any("different frames" in problem for problem in verdict.problems)
    assert verdict.recommended_flags == []


@pytest.mark.parametrize("spread", [5.0, 20.0])
def test_initial_motion_is_not_mistaken_for_a_frame_problem(spread):
    # Zero-point motion rotates the final momenta too (median 17° at 5 a.u., 55° at 20 a.u.), but
    # the best rotation only halves the mismatch; it must not be called a frame change.
    verdict = diagnostics.check_events(data.Events(*simulate(zero_point_momentum_spread=spread)))
    assert verdict.rotation_angle > 10
    assert verdict.direction_mismatch_after > verdict.direction_mismatch_before / 3
    assert any("initial motion" in problem for problem in verdict.problems)
    assert not any("different frames" in problem for problem in verdict.problems)


def test_initial_motion_makes_the_energy_ratio_vary():
    # KE(∞) = PE + KE(0): KE/PE exceeds 1 by a different amount in every event (median 0.9 %,
    # relative spread 0.55 % at 20 a.u.), not by one constant factor.
    verdict = diagnostics.check_events(data.Events(*simulate(zero_point_momentum_spread=20.0)))
    assert verdict.energy_diff_median > diagnostics.ENERGY_TOLERANCE
    assert "varies between events" in verdict.problems[0]


def test_detector_noise_breaks_the_momentum_balance():
    positions, momenta = simulate(detector_momentum_noise=2.0)
    verdict = diagnostics.check_events(data.Events(positions, momenta))
    balance = np.linalg.norm(physics.total_momentum(momenta), axis=-1) / np.sum(
        np.linalg.norm(momenta, axis=-1), axis=-1
    )
    assert verdict.momentum_balance == pytest.approx(np.median(balance), rel=1e-12)
    assert any("total momentum" in problem for problem in verdict.problems)


def test_a_frame_mismatch_is_found_through_noise():
    positions, momenta = simulate(detector_momentum_noise=1.0)
    bad, *_ = frame_mismatched_events(positions, momenta)
    verdict = diagnostics.check_events(bad)
    assert "--align_positions" in verdict.recommended_flags  # measured 0.92 → 0.0041


def test_a_frame_mismatch_is_found_beside_a_charge_factor(consistent):
    # Halved momenta leave a 50 % size mismatch after any rotation; directions still show frames.
    bad, *_ = frame_mismatched_events(consistent.positions, consistent.momenta)
    verdict = diagnostics.check_events(data.Events(bad.positions, bad.momenta * 0.5))
    assert "charged +1" in verdict.problems[0]
    assert verdict.recommended_flags == ["--center=com", "--align_positions"]


def test_sample_is_random_sized_and_reproducible(consistent):
    first = diagnostics.check_events(consistent, sample_size=100, seed=3)
    assert first.num_checked == 100 and first.num_events == 600
    assert first == diagnostics.check_events(consistent, sample_size=100, seed=3)
    assert first != diagnostics.check_events(consistent, sample_size=100, seed=4)


def test_events_with_coincident_atoms_are_left_out_and_counted(consistent):
    positions = consistent.positions.copy()
    positions[:2] = 0.0
    verdict = diagnostics.check_events(data.Events(positions, consistent.momenta))
    assert verdict.problems == [
        "2 sampled events have coincident atoms or no momentum; they were left out of the check"
    ]
    assert verdict.num_checked == 600 and verdict.energy_diff_median < 1e-8


@pytest.mark.parametrize(("sample_size", "seed"), [(0, 0), (1.5, 0), (10, -1)])
def test_bad_sample_settings_are_user_errors(consistent, sample_size, seed):
    with pytest.raises(UserInputError):
        diagnostics.check_events(consistent, sample_size=sample_size, seed=seed)


@pytest.mark.parametrize(
    ("momentum_scale", "named"), [(0.5, "charged +1, +0.5, +1"), (2, "+4, +2")]
)
def test_charge_factors_are_named_in_the_molecules_charges(momentum_scale, named):
    """KE/PE of 0.25 or 4 means charges half or twice the molecule's own (here +2, +1, +2)."""
    fragments = molecule.MoleculeConfig(charges=("2", "1", "2")).resolve()
    config = simulator.SimulationConfig(
        300, seed=4, molecule=molecule.MoleculeConfig(charges=("2", "1", "2"))
    )
    events = data.Events(*simulator.simulate_events(config))
    scaled = data.Events(events.positions, events.momenta * momentum_scale)
    problem = diagnostics.check_events(scaled, fragments=fragments).problems[0]
    assert named in problem and "not +2, +1, +2" in problem
