"""The forward model: accuracy against physics and an independent integrator, sampling, seeds."""

import math

import numpy as np
import pytest
from scipy import integrate

from cvae_tf import molecule, physics, simulator
from cvae_tf.errors import UserInputError

PRIOR = simulator.GeometryPrior()
CHBRCLF = molecule.load("chbrclf")
# Formaldehyde's shape with unequal charges: 4 fragments, masses from 1.008 u to 16 u.
H2CO = molecule.from_dict(
    {
        "name": "H2CO",
        "atoms": ["C", "O", "H1", "H2"],
        "charges": [2, 3, 1, 1],
        "reference_geometry": [[0, 0, 0], [0, 0, 2.28], [1.77, 0, -1.1], [-1.77, 0, -1.1]],
        "position_spread": 0.1,
    }
)


def geometries(num_events, seed=0, orientation="random", prior=PRIOR):
    return simulator.sample_geometries(num_events, np.random.default_rng(seed), prior, orientation)


def relative_energy_error(
    final_momenta, positions, initial_momenta=None, masses=physics.MASSES, charges=physics.CHARGES
):
    """|KE(∞) / (PE(0) + KE(0)) − 1| per event."""
    initial_kinetic = 0.0
    if initial_momenta is not None:
        initial_kinetic = physics.kinetic_energy(initial_momenta, masses)
    total = physics.potential_energy(positions, charges) + initial_kinetic
    return np.abs(physics.kinetic_energy(final_momenta, masses) / total - 1)


@pytest.fixture(scope="module")
def from_rest():
    positions = geometries(400, seed=3)
    return positions, simulator.explode(positions)


def test_kinetic_energy_at_infinity_equals_initial_potential_energy(from_rest):
    positions, momenta = from_rest
    errors = relative_energy_error(momenta, positions)
    assert np.median(errors) < 1e-8  # the requirement; measured ≈ 2e-10
    assert np.max(errors) < 1e-7


def test_total_momentum_stays_zero_from_rest(from_rest):
    _, momenta = from_rest
    imbalance = np.linalg.norm(momenta.sum(axis=1), axis=-1)
    assert np.max(imbalance / np.linalg.norm(momenta, axis=-1).sum(axis=-1)) < 1e-8


def reference_explode(positions, initial_momenta, masses=None, charges=None, end_time=1e13):
    """Momenta from scipy's DOP853 at rtol 1e-13, event by event, in Cartesian coordinates.

    Independent of the simulator: its own forces on every fragment from every other one, all
    6n coordinates, log time s = ln(1 + t/τ), no tail correction. By t = 10¹³ a.u. the ions are
    ~10¹¹ bohr apart and the potential energy left is ~10⁻¹¹ of the kinetic, below the tolerance
    compared against. Masses and charges default to the specification's OCS (Table 1, +2 each).
    """
    masses = np.array([21894.71361, 29164.39289, 58441.80487] if masses is None else masses)
    charges = np.full(len(masses), 2.0) if charges is None else np.asarray(charges, float)
    count = len(masses)
    charge_products = np.outer(charges, charges) * (1 - np.eye(count))
    time_scale = 100.0  # a.u.

    def derivative(s, state):
        position, momentum = state[: 3 * count].reshape(count, 3), state[3 * count :]
        separation = position[:, None, :] - position[None, :, :]  # r_i − r_j
        distance = np.linalg.norm(separation, axis=-1) + np.eye(count)  # 1 on the diagonal
        force = np.sum(charge_products[..., None] * separation / distance[..., None] ** 3, axis=1)
        dt_ds = time_scale * math.exp(s)
        velocity = momentum.reshape(count, 3) / masses[:, None]
        return np.concatenate([velocity.ravel(), force.ravel()]) * dt_ds

    final = []
    for position, momentum in zip(positions, initial_momenta, strict=True):
        solution = integrate.solve_ivp(
            derivative,
            (0.0, math.log1p(end_time / time_scale)),
            np.concatenate([position.ravel(), momentum.ravel()]),
            method="DOP853",
            rtol=1e-13,
            atol=1e-12,
        )
        assert solution.success, solution.message
        final.append(solution.y[3 * count :, -1].reshape(count, 3))
    return np.array(final)


def test_momenta_agree_with_an_independent_tight_integration():
    rng = np.random.default_rng(11)
    positions = simulator.sample_geometries(20, rng, PRIOR, "random")
    initial = np.zeros_like(positions)
    # Half start with zero-point motion plus a net drift, to check the centre-of-mass bookkeeping.
    initial[10:] = simulator.zero_point_momenta(10, rng, 8.0) + np.array([3.0, -2.0, 1.0])
    expected = reference_explode(positions, initial)
    actual = simulator.explode(positions, initial)
    errors = np.linalg.norm(actual - expected, axis=(1, 2)) / np.linalg.norm(expected, axis=(1, 2))
    assert np.max(errors) < 1e-6  # the requirement; measured ≈ 2e-9


# (molecule, charges): OCS in its (1, 1, 1) channel, 4 fragments with charges 2, 3, 1, 1 and
# CHBrClF at +1 each, whose H⁺ is 79 times lighter than its Br⁺.
CHANNELS = {
    "OCS (1,1,1)": (molecule.OCS, (1.0, 1.0, 1.0)),
    "H2CO (2,3,1,1)": (H2CO, H2CO.charges),
    "CHBrClF (1,1,1,1,1)": (CHBRCLF, CHBRCLF.charges),
}


@pytest.mark.parametrize("channel", CHANNELS)
def test_n_fragments_conserve_energy_and_momentum(channel):
    fragments, charges = CHANNELS[channel]
    positions = simulator.sample_geometries(
        300, np.random.default_rng(5), PRIOR, "random", fragments
    )
    momenta = simulator.explode(positions, masses=fragments.mass_array, charges=charges)
    errors = relative_energy_error(momenta, positions, None, fragments.mass_array, charges)
    assert np.median(errors) < 1e-8  # the requirement; measured 1.8e-10, 4.0e-10, 9.0e-10
    assert np.max(errors) < 1e-7
    imbalance = np.linalg.norm(momenta.sum(axis=1), axis=-1)
    assert np.max(imbalance / np.linalg.norm(momenta, axis=-1).sum(axis=-1)) < 1e-8


@pytest.mark.parametrize("channel", CHANNELS)
def test_n_fragment_momenta_agree_with_an_independent_tight_integration(channel):
    fragments, charges = CHANNELS[channel]
    masses = fragments.mass_array
    rng = np.random.default_rng(12)
    positions = simulator.sample_geometries(8, rng, PRIOR, "random", fragments)
    initial = np.zeros_like(positions)
    initial[4:] = simulator.zero_point_momenta(4, rng, 8.0, masses) + np.array([3.0, -2.0, 1.0])
    expected = reference_explode(positions, initial, masses, charges)
    actual = simulator.explode(positions, initial, masses, charges)
    errors = np.linalg.norm(actual - expected, axis=(1, 2)) / np.linalg.norm(expected, axis=(1, 2))
    assert np.max(errors) < 1e-6  # the requirement; measured 1.6e-9, 1.8e-10, 1.4e-9


def test_the_schedule_is_ocs_doubly_charged_own_and_scales_with_mass_and_charge():
    """OCS²⁺ gets exactly the 48 tuned steps, OCS⁺ the same 2× slower (time ∝ √(m/q²))."""
    ocs_steps = simulator._time_steps(physics.MASSES, physics.CHARGES)
    assert len(ocs_steps) == simulator._NUM_STEPS
    np.testing.assert_allclose(ocs_steps.sum(), simulator._END_TIME, rtol=1e-12)
    singly = simulator._time_steps(physics.MASSES, np.ones(3))
    np.testing.assert_allclose(singly, 2 * ocs_steps, rtol=1e-14)
    heavier = simulator._time_steps(4 * physics.MASSES, physics.CHARGES)
    np.testing.assert_allclose(heavier, 2 * ocs_steps, rtol=1e-14)
    # CHBrClF's H⁺ starts 2.4× faster than C²⁺ and its Br⁺ ends 2.2× slower than S²⁺: more steps.
    assert len(simulator._time_steps(CHBRCLF.mass_array, CHBRCLF.charge_array)) > 48


def test_zero_point_motion_keeps_the_energy_balance_and_zero_total_momentum():
    rng = np.random.default_rng(4)
    positions = simulator.sample_geometries(300, rng, PRIOR, "random")
    initial = simulator.zero_point_momenta(300, rng, 10.0)
    np.testing.assert_allclose(initial.sum(axis=1), 0.0, atol=1e-12)
    final = simulator.explode(positions, initial)
    assert np.median(relative_energy_error(final, positions, initial)) < 1e-8
    np.testing.assert_allclose(final.sum(axis=1), 0.0, atol=1e-9)
    # Zero-point motion out of the molecular plane carries the final momenta out of it too.
    normal = np.cross(positions[:, 1] - positions[:, 0], positions[:, 2] - positions[:, 0])
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    assert np.abs(np.einsum("nak,nk->na", final, normal)).max() > 1.0


def test_two_body_limit_matches_the_analytic_relative_momentum():
    # With S 10⁸ bohr away, C and O fly apart as a two-body problem: their relative momentum
    # reaches √(2μ·q_C q_O/r) along the bond (the far S shifts it by ~r/10⁸ only).
    bond = 2.2
    positions = np.array([[0.0, 0.0, 0.0], [bond, 0.0, 0.0], [0.0, 1e8, 0.0]])
    momenta = simulator.explode(positions)
    m_c, m_o = 21894.71361, 29164.39289
    relative = (m_c * momenta[1] - m_o * momenta[0]) / (m_c + m_o)
    reduced_mass = m_c * m_o / (m_c + m_o)
    expected = math.sqrt(2 * reduced_mass * 4.0 / bond)
    np.testing.assert_allclose(relative, [expected, 0.0, 0.0], rtol=1e-7, atol=1e-10 * expected)


def test_linear_molecule_explodes_along_its_axis():
    axis = np.array([1.0, 2.0, -2.0]) / 3.0
    positions = np.outer([0.0, -2.2, 2.9], axis)  # O–C–S on one line, C at the origin
    momenta = simulator.explode(positions)
    along = momenta @ axis
    np.testing.assert_allclose(momenta, np.outer(along, axis), atol=1e-12 * np.abs(along).max())
    assert along[1] < 0 < along[2]  # the outer ions fly outwards
    assert physics.kinetic_energy(momenta) == pytest.approx(physics.potential_energy(positions))


def test_explode_takes_any_batch_shape_and_blocks_do_not_matter():
    positions = geometries(10_000, seed=5)  # more than one integration block
    batched = simulator.explode(positions)
    np.testing.assert_allclose(simulator.explode(positions[9_995:]), batched[9_995:], rtol=1e-13)
    assert simulator.explode(positions[0]).shape == (3, 3)
    np.testing.assert_allclose(simulator.explode(positions[0]), batched[0], rtol=1e-13)
    with pytest.raises(ValueError, match="positions"):
        simulator.explode(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 5, 3\) for 5 fragments"):
        simulator.explode(positions[:2], masses=CHBRCLF.mass_array, charges=CHBRCLF.charge_array)
    with pytest.raises(ValueError, match="initial_momenta"):
        simulator.explode(positions[:2], np.zeros((3, 3, 3)))


def folded_normal_moments(mean, spread):
    """Mean and standard deviation of 180 − |180 − A| for A ~ N(mean, spread), in closed form."""
    offset = 180.0 - mean  # |180 − A| is a folded normal with this location
    phi = 0.5 * (1 + math.erf(-offset / (spread * math.sqrt(2))))
    folded_mean = spread * math.sqrt(2 / math.pi) * math.exp(-(offset**2) / (2 * spread**2))
    folded_mean += offset * (1 - 2 * phi)
    folded_variance = offset**2 + spread**2 - folded_mean**2
    return 180.0 - folded_mean, math.sqrt(folded_variance)


def test_sampled_bonds_and_angles_follow_the_prior():
    count = 20_000
    positions = geometries(count, seed=8)
    co_bond, cs_bond = physics.bond_lengths(positions).T
    for sample, mean, spread in (
        (co_bond, PRIOR.co_bond_mean, PRIOR.co_bond_spread),
        (cs_bond, PRIOR.cs_bond_mean, PRIOR.cs_bond_spread),
    ):
        assert abs(sample.mean() - mean) < 4 * spread / math.sqrt(count)
        assert abs(sample.std() - spread) < 4 * spread / math.sqrt(2 * count)
    # Angles drawn above 180° are reflected (the same bent molecule), folding the Gaussian.
    angle_mean, angle_spread = folded_normal_moments(PRIOR.angle_mean, PRIOR.angle_spread)
    angle = physics.bend_angle(positions)
    assert angle.max() <= 180.0
    assert abs(angle.mean() - angle_mean) < 4 * angle_spread / math.sqrt(count)
    assert abs(angle.std() - angle_spread) < 4 * angle_spread / math.sqrt(2 * count)


def test_absurdly_short_bonds_are_redrawn():
    wide = simulator.GeometryPrior(co_bond_mean=2.0, co_bond_spread=2.0, angle_spread=60.0)
    positions = geometries(5_000, seed=2, prior=wide)
    assert physics.pair_distances(positions).min() > 0.1 * 2.0


def test_centre_of_mass_is_at_the_origin():
    for orientation in simulator.ORIENTATIONS:
        np.testing.assert_allclose(
            physics.center_of_mass(geometries(1000, orientation=orientation)), 0.0, atol=1e-12
        )


def test_fixed_orientation_puts_the_molecule_in_the_xy_plane_with_o_on_x():
    positions = geometries(1000, orientation="fixed")
    np.testing.assert_array_equal(positions[..., 2], 0.0)
    carbon_to_oxygen = positions[:, 1] - positions[:, 0]
    np.testing.assert_allclose(carbon_to_oxygen[:, 1], 0.0, atol=1e-12)
    assert np.all(carbon_to_oxygen[:, 0] > 0)


def test_random_orientation_only_rotates_and_covers_all_directions():
    fixed, rotated = geometries(20_000, orientation="fixed"), geometries(20_000)
    # The same seed draws the same internal geometry; the rotation comes after it.
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=-1), np.linalg.norm(fixed, axis=-1))
    axis = rotated[:, 1] - rotated[:, 0]
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    # Uniform directions: mean ≈ 0, each ⟨n_k²⟩ = 1/3 (standard errors ≈ 0.004 and 0.002).
    np.testing.assert_allclose(axis.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose((axis**2).mean(axis=0), 1 / 3, atol=0.01)
    rotations = simulator.random_rotations(100, np.random.default_rng(0))
    np.testing.assert_allclose(
        rotations @ rotations.transpose(0, 2, 1), np.eye(3)[None] + 0 * rotations, atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0)


def test_a_reference_geometry_is_drawn_with_its_gaussian_spread_about_its_centre_of_mass():
    """Fixed orientation: mean = reference − its centre of mass; spread by the closed form."""
    count = 20_000
    positions = simulator.sample_geometries(
        count, np.random.default_rng(6), PRIOR, "fixed", CHBRCLF
    )
    masses, spread = CHBRCLF.mass_array, CHBRCLF.position_spread
    reference = np.array(CHBRCLF.reference_geometry)
    expected_mean = reference - masses @ reference / masses.sum()
    np.testing.assert_allclose(physics.center_of_mass(positions, masses), 0.0, atol=1e-12)
    # x_a = r_a + d_a − Σ_b w_b (r_b + d_b), w = m/M, d ~ N(0, σ²): var = σ²(1 − 2w_a + Σ w_b²).
    weights = masses / masses.sum()
    expected_spread = spread * np.sqrt(1 - 2 * weights + np.sum(weights**2))
    standard_error = expected_spread[:, None] / math.sqrt(count)
    assert np.all(np.abs(positions.mean(axis=0) - expected_mean) < 4 * standard_error)
    relative = positions.std(axis=0) / expected_spread[:, None] - 1
    assert np.all(np.abs(relative) < 4 / math.sqrt(2 * count))


def test_a_random_orientation_rotates_the_fixed_draw():
    """Same seed: the random draw is the fixed one times the rotations drawn after it."""
    fixed_rng = np.random.default_rng(9)
    fixed = simulator.sample_geometries(500, fixed_rng, PRIOR, "fixed", H2CO)
    rotations = simulator.random_rotations(500, fixed_rng)
    rotated = simulator.sample_geometries(500, np.random.default_rng(9), PRIOR, "random", H2CO)
    np.testing.assert_allclose(rotated, np.einsum("nij,naj->nai", rotations, fixed), atol=1e-12)
    # Undoing each rotation brings back the reference shape about its centre of mass.
    undone = np.einsum("nji,naj->nai", rotations, rotated)
    reference = np.array(H2CO.reference_geometry)
    centred = reference - H2CO.mass_array @ reference / H2CO.mass_array.sum()
    np.testing.assert_allclose(undone.mean(axis=0), centred, atol=4 * 0.1 / math.sqrt(500))


def test_a_zero_spread_reference_gives_the_reference_itself_about_its_centre_of_mass():
    still = molecule.from_dict(H2CO.to_dict() | {"position_spread": 0.0})
    positions = simulator.sample_geometries(3, np.random.default_rng(0), PRIOR, "fixed", still)
    # C at the origin; the centre of mass is at z = (16.0·2.28 − 2·1.008·1.1)·mₑ/u / M, x = 0.
    masses = still.mass_array
    com_z = (masses[1] * 2.28 - (masses[2] + masses[3]) * 1.1) / masses.sum()
    expected = np.array([[0, 0, 0], [0, 0, 2.28], [1.77, 0, -1.1], [-1.77, 0, -1.1]])
    expected = expected - np.array([0.0, 0.0, com_z])
    np.testing.assert_allclose(positions, np.broadcast_to(expected, (3, 4, 3)), atol=1e-14)


def test_more_than_three_fragments_need_a_reference_geometry():
    bare = molecule.from_dict({k: v for k, v in CHBRCLF.to_dict().items() if "geometry" not in k})
    with pytest.raises(UserInputError) as error:
        simulator.sample_geometries(10, np.random.default_rng(0), PRIOR, "fixed", bare)
    message = str(error.value)
    assert "\n" not in message and "CHBrClF" in message and "reference_geometry" in message
    atoms = molecule.MoleculeConfig(atoms=("C", "H", "Br", "Cl"), charges=("1",) * 4)
    with pytest.raises(UserInputError, match=r"CHBrCl .* 4 fragments and no reference_geometry"):
        simulator.SimulationConfig(10, molecule=atoms)


def test_bond_and_angle_flags_are_refused_for_a_molecule_with_a_reference_geometry():
    chbrclf = molecule.MoleculeConfig(molecule="chbrclf")
    with pytest.raises(UserInputError, match=r"--angle_mean=170\.0: CHBrClF") as error:
        simulator.SimulationConfig(
            10, molecule=chbrclf, prior=simulator.GeometryPrior(angle_mean=170.0)
        )
    assert "\n" not in str(error.value)
    # Their defaults are no choice: a triatomic other than OCS takes them as its prior.
    assert simulator.SimulationConfig(10, molecule=chbrclf).fragments == CHBRCLF
    other = molecule.MoleculeConfig(atoms=("Cl", "H", "Br"), charges=("2", "1", "1"))
    positions, _ = simulator.simulate_events(simulator.SimulationConfig(300, molecule=other))
    assert physics.bond_lengths(positions).mean(axis=0) == pytest.approx(
        [PRIOR.co_bond_mean, PRIOR.cs_bond_mean], rel=0.03
    )


def test_a_simulated_molecule_balances_its_energy_with_its_own_masses_and_charges():
    config = simulator.SimulationConfig(
        300, seed=2, molecule=molecule.MoleculeConfig(molecule="chbrclf"), orientation="fixed"
    )
    positions, momenta = simulator.simulate_events(config)
    assert positions.shape == momenta.shape == (300, 5, 3)
    errors = relative_energy_error(momenta, positions, None, CHBRCLF.mass_array, CHBRCLF.charges)
    assert np.median(errors) < 1e-8
    noisy = simulator.SimulationConfig(
        300,
        seed=2,
        molecule=molecule.MoleculeConfig(molecule="chbrclf"),
        orientation="fixed",
        zero_point_momentum_spread=3.0,
        detector_momentum_noise=1.0,
        detector_momentum_resolution=0.01,
    )
    noisy_positions, noisy_momenta = simulator.simulate_events(noisy)
    np.testing.assert_array_equal(noisy_positions, positions)  # motion and noise drawn after
    assert 0 < np.abs(noisy_momenta - momenta).mean() < 10


def noisy_config(**changes):
    values = dict(
        num_events=700, seed=0, zero_point_momentum_spread=5.0, detector_momentum_noise=2.0
    )
    return simulator.SimulationConfig(**(values | changes))


def test_same_config_gives_identical_arrays_and_another_seed_does_not():
    first = simulator.simulate_events(noisy_config())
    second = simulator.simulate_events(noisy_config(), progress=True)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    other = simulator.simulate_events(noisy_config(seed=1))
    assert not np.allclose(first[0], other[0])
    assert not np.allclose(first[1], other[1])


def test_detector_noise_is_added_after_the_explosion():
    clean_positions, clean = simulator.simulate_events(noisy_config(detector_momentum_noise=0.0))
    positions, noisy = simulator.simulate_events(noisy_config())
    np.testing.assert_array_equal(positions, clean_positions)  # noise is drawn last
    noise = noisy - clean
    assert abs(noise.mean()) < 4 * 2.0 / math.sqrt(noise.size)
    assert noise.std() == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: simulator.SimulationConfig(num_events=0), "num_events"),
        (lambda: simulator.SimulationConfig(num_events=2.5), "num_events"),
        (lambda: simulator.SimulationConfig(num_events=5, seed=-1), "seed"),
        (lambda: simulator.SimulationConfig(num_events=5, orientation="tilted"), "orientation"),
        (
            lambda: simulator.SimulationConfig(num_events=5, zero_point_momentum_spread=-1.0),
            "zero_point_momentum_spread",
        ),
        (
            lambda: simulator.SimulationConfig(num_events=5, detector_momentum_noise=math.nan),
            "detector_momentum_noise",
        ),
        (lambda: simulator.GeometryPrior(co_bond_mean=0.0), "co_bond_mean"),
        (lambda: simulator.GeometryPrior(cs_bond_spread=-0.1), "cs_bond_spread"),
        (lambda: simulator.GeometryPrior(angle_mean=190.0), "angle_mean"),
        (lambda: simulator.GeometryPrior(angle_spread=math.inf), "angle_spread"),
    ],
)
def test_bad_config_values_are_user_errors_naming_the_value(make, name):
    with pytest.raises(UserInputError, match=name) as error:
        make()
    assert "\n" not in str(error.value)
    assert "expected" in str(error.value)


def test_chunk_i_draws_from_the_ith_spawned_seed_sequence(monkeypatch):
    """numpy's independent streams: chunk i is SeedSequence(seed).spawn(n)[i], run by hand here."""
    monkeypatch.setattr(simulator, "CHUNK_EVENTS", 100)
    config = noisy_config(num_events=250, seed=4, orientation="fixed")
    positions, momenta = simulator.simulate_events(config)
    streams = np.random.SeedSequence(4).spawn(3)
    for stream, start, size in zip(streams, (0, 100, 200), (100, 100, 50), strict=True):
        rng = np.random.default_rng(stream)
        expected_positions = simulator.sample_geometries(size, rng, PRIOR, "fixed")
        initial = simulator.zero_point_momenta(size, rng, 5.0)
        expected_momenta = simulator.explode(expected_positions, initial)
        expected_momenta += rng.normal(0.0, 2.0, (size, 3, 3))
        np.testing.assert_array_equal(positions[start : start + size], expected_positions)
        np.testing.assert_array_equal(momenta[start : start + size], expected_momenta)


def test_chunks_of_a_seed_and_of_the_next_seed_do_not_repeat_or_correlate(monkeypatch):
    """Seeding chunk i with seed + i would make chunk 1 of seed 0 chunk 0 of seed 1."""
    monkeypatch.setattr(simulator, "CHUNK_EVENTS", 200)
    chunks = []
    for seed in (0, 1):
        positions, _ = simulator.simulate_events(simulator.SimulationConfig(1000, seed=seed))
        chunks.extend(np.split(physics.bond_lengths(positions)[:, 0], 5))  # C–O bond per chunk
    firsts = [chunk[0] for chunk in chunks]
    assert len(set(firsts)) == len(firsts)
    assert len(np.unique(np.concatenate(chunks))) == 2000
    # Independent streams: correlations between chunks are those of noise, |r| ≲ 1/√200.
    correlations = np.corrcoef(chunks)[np.triu_indices(len(chunks), k=1)]
    assert np.abs(correlations).max() < 4 / math.sqrt(200)


def test_the_events_do_not_depend_on_the_number_of_worker_processes(monkeypatch):
    monkeypatch.setattr(simulator, "CHUNK_EVENTS", 100)  # passed to the workers explicitly
    config = noisy_config(num_events=450)
    alone = simulator.simulate_events(config)
    shared = simulator.simulate_events(config, workers=2)
    for one, two in zip(alone, shared, strict=True):
        np.testing.assert_array_equal(one, two)


def test_relative_detector_resolution_is_that_fraction_of_each_momentum():
    """Same seed with and without 1 % resolution: the difference is N(0, (0.01·|p_i|)²)."""
    clean_config = simulator.SimulationConfig(20_000, seed=4)
    noisy_config = simulator.SimulationConfig(20_000, seed=4, detector_momentum_resolution=0.01)
    clean_positions, clean = simulator.simulate_events(clean_config)
    noisy_positions, noisy = simulator.simulate_events(noisy_config)
    np.testing.assert_array_equal(noisy_positions, clean_positions)
    standardized = (noisy - clean) / (0.01 * np.linalg.norm(clean, axis=-1, keepdims=True))
    assert standardized.mean() == pytest.approx(0.0, abs=0.01)
    assert standardized.std() == pytest.approx(1.0, rel=0.01)
