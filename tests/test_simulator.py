"""The forward model: accuracy against physics and an independent integrator, sampling, seeds."""

import math

import numpy as np
import pytest
from scipy import integrate

from cvae_tf import physics, simulator
from cvae_tf.errors import UserInputError

PRIOR = simulator.GeometryPrior()


def geometries(num_events, seed=0, orientation="random", prior=PRIOR):
    return simulator.sample_geometries(num_events, np.random.default_rng(seed), prior, orientation)


def relative_energy_error(final_momenta, positions, initial_momenta=None):
    """|KE(∞) / (PE(0) + KE(0)) − 1| per event."""
    initial_kinetic = 0.0 if initial_momenta is None else physics.kinetic_energy(initial_momenta)
    total = physics.potential_energy(positions) + initial_kinetic
    return np.abs(physics.kinetic_energy(final_momenta) / total - 1)


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


def reference_explode(positions, initial_momenta, end_time=1e13):
    """Momenta from scipy's DOP853 at rtol 1e-13, event by event, in Cartesian coordinates.

    Independent of the simulator: its own forces, all 18 coordinates, log time s = ln(1 + t/τ),
    no tail correction. By t = 10¹³ a.u. the ions are ~10¹¹ bohr apart and the potential energy
    left is ~10⁻¹¹ of the kinetic, below the tolerance compared against.
    """
    masses = np.array([21894.71361, 29164.39289, 58441.80487])  # specification, Table 1
    time_scale = 100.0  # a.u.

    def derivative(s, state):
        position, momentum = state[:9].reshape(3, 3), state[9:].reshape(3, 3)
        force = np.zeros((3, 3))
        for i in range(3):
            for j in range(3):
                if i != j:
                    separation = position[i] - position[j]
                    force[i] += 4.0 * separation / np.linalg.norm(separation) ** 3
        dt_ds = time_scale * math.exp(s)
        return np.concatenate([(momentum / masses[:, None]).ravel(), force.ravel()]) * dt_ds

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
        final.append(solution.y[9:, -1].reshape(3, 3))
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
