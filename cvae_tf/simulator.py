"""The forward model: a molecule's geometries drawn from a prior, exploded into final momenta."""

import dataclasses
import functools
import math

import numpy as np

from cvae_tf import chunk_pool, physics
from cvae_tf.errors import UserInputError
from cvae_tf.flag_fields import option
from cvae_tf.molecule import OCS, Molecule, MoleculeConfig, all_pairs, pair_distances

ORIENTATIONS = ("random", "fixed")

# Events per chunk; chunk i draws from its own random stream (chunk_rng), so chunks can be simulated
# in any order by any number of processes. Part of the sampling: changing it changes which events a
# seed gives (so would default_data.py's cached set). A multiple of _BLOCK_EVENTS, so that no chunk
# ends in a small block that costs as much as a full one.
CHUNK_EVENTS = 65_536
# Events integrated together: the integrator's ~40 doubles per event (1.3 MB) then stay in a core's
# 2 MB L2 cache, while numpy's per-call overhead is spread over enough events. Measured on the
# 2-core CPU, two processes at once: 4096 was 5–10 % faster than 8192 (OCS and CHBrClF), 2048 no
# faster than 4096. The momenta do not depend on it: every operation is per event.
_BLOCK_EVENTS = 4096

# A bond under a tenth of its mean (or two fragments closer than a tenth of the reference
# geometry's shortest distance) is a sampling artefact of a wide prior, not a vibration; such
# geometries are redrawn (the bound keeps the redraw loop finite even when spread ≫ mean).
_MIN_BOND_FRACTION = 0.1

# Blanes & Moan (2002), J. Comput. Appl. Math. 142, 313, SRKN₁₁ᵇ: a symmetric 6th-order
# kick-drift splitting for H = T(p) + V(q) with 11 force evaluations per step. Measured against
# Yoshida's 4th order and Kahan & Li's 8th order at equal force evaluations it was 10–1000× more
# accurate here. A step: kick _KICK[0], drift _DRIFT[0], kick _KICK[1], ..., drift _DRIFT[10],
# kick _KICK[11].
_HALF_KICK = [
    0.0414649985182624,
    0.198128671918067,
    -0.0400061921041533,
    0.0752539843015807,
    -0.0115113874206879,
    0.23666992478693111,
]
_HALF_DRIFT = [
    0.123229775946271,
    0.290553797799558,
    -0.127049212625417,
    -0.246331761062075,
    0.357208872795928,
]
_KICK = np.array(_HALF_KICK + _HALF_KICK[::-1])
_DRIFT = np.array([*_HALF_DRIFT, 1.0 - 2.0 * sum(_HALF_DRIFT), *_HALF_DRIFT[::-1]])

# The time schedule, in scaled units where every event's harmonic-mean pair distance is 1 bohr
# (see _explode_block). Steps are uniform in x with t = τ(exp(S·x^γ) − 1), S = ln(1 + T/τ): the
# log time follows the 1/t decay of the forces, and γ > 1 spends steps where the ions still
# accelerate. The straight-line tail after T leaves ≈ 2·10⁻⁹ relative error in the momenta (it
# falls as 1/T²). The four numbers were tuned for OCS²⁺ against a DOP853 reference (rtol 1e-13):
# momenta within ~2·10⁻⁹, |KE/PE − 1| ~ 2·10⁻¹⁰ (median); fewer steps cost accuracy as
# (steps)⁻⁶. Other masses and charges stretch it (_time_steps). Median |KE/PE − 1| measured
# with OCS²⁺'s schedule as it is: OCS⁺ 6·10⁻⁹, CHBrClF⁵⁺ 1.2·10⁻⁹; scaled by the fastest
# fragment alone: CHBrClF⁵⁺ 1.6·10⁻⁸ (its Br⁺ not done by T); stretched at both ends, as now:
# 2·10⁻¹⁰ and 9·10⁻¹⁰, and ≤ 1.4·10⁻⁹ for CH₄⁸⁺, CBr₄⁹⁺, H₂CO, and rings of 6 and 8 ions. A
# fixed schedule cannot resolve close encounters: an H⁺ drawn between Cl³⁺ and Br⁺ (the OCS
# prior with H first) that then runs into the Br⁺ gave 2·10⁻⁷ (median) to 10⁻⁴.
_NUM_STEPS = 48
_TIME_SCALE = 75.0  # τ, scaled time units (≈ 400 a.u. at the equilibrium geometry)
_END_TIME = 5.6e5  # T, scaled time units (≈ 3·10⁶ a.u.)
_STEP_EXPONENT = 2.0  # γ


def _check_orientation(orientation: str) -> None:
    """Raises UserInputError unless orientation is one of ORIENTATIONS."""
    if orientation not in ORIENTATIONS:
        raise UserInputError(f"--orientation={orientation!r}; expected one of {ORIENTATIONS}")


def _check_number(name: str, value: float, unit: str, accepted: str, is_valid) -> None:
    """Raises UserInputError naming the flag and value unless it is a finite real that is_valid."""
    is_real = isinstance(value, int | float | np.floating | np.integer)
    if not is_real or isinstance(value, bool) or not math.isfinite(value) or not is_valid(value):
        raise UserInputError(f"--{name}={value!r}; expected {accepted} {unit}")


def _length_option(what: str, picometres: float):
    """A length setting in bohr whose help gives its default in bohr and in picometres."""
    bohr = picometres * physics.BOHR_PER_PICOMETRE
    shown = f"{bohr:.6g} ({bohr / physics.BOHR_PER_PICOMETRE:.4g} pm)"
    return option(bohr, f"{what}, bohr. Default: {shown}.", show_default=False)


@dataclasses.dataclass(frozen=True)
class GeometryPrior:
    """Gaussian prior of a triatomic's geometry: bond lengths in bohr, the angle in degrees.

    The bonds join the first fragment to the second (OCS: C–O) and to the third (C–S), the angle
    is at the first (O–C–S); the defaults are OCS's literature prior. Molecules with a
    reference_geometry are drawn around it instead (sample_geometries).
    """

    co_bond_mean: float = _length_option("Mean C–O (first–second fragment) bond length", 114.0)
    co_bond_spread: float = _length_option("Standard deviation of the C–O bond length", 12.4)
    cs_bond_mean: float = _length_option("Mean C–S (first–third fragment) bond length", 163.0)
    cs_bond_spread: float = _length_option("Standard deviation of the C–S bond length", 12.4)
    angle_mean: float = option(
        174.4, "Mean O–C–S angle (at the first fragment), degrees (180 = linear)."
    )
    angle_spread: float = option(3.4, "Standard deviation of the O–C–S angle, degrees.")

    def __post_init__(self) -> None:
        for name in ("co_bond_mean", "cs_bond_mean"):
            _check_number(name, getattr(self, name), "bohr", "a length > 0", lambda v: v > 0)
        _check_number(
            "angle_mean", self.angle_mean, "degrees", "an angle in (0, 180]", lambda v: 0 < v <= 180
        )
        for name, unit in (
            ("co_bond_spread", "bohr"),
            ("cs_bond_spread", "bohr"),
            ("angle_spread", "degrees"),
        ):
            _check_number(name, getattr(self, name), unit, "a spread ≥ 0", lambda v: v >= 0)


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """What simulate_events draws: events, seed, molecule, prior, orientation, momentum spreads.

    Every setting is also a flag of the simulate command (flag_fields), the molecule's and the
    prior's included.
    """

    num_events: int = option(50_000, "Number of events to simulate.")
    seed: int = option(0, "Seed of every random draw; same flags, same file.")
    molecule: MoleculeConfig = dataclasses.field(default_factory=MoleculeConfig)
    prior: GeometryPrior = GeometryPrior()
    orientation: str = option(
        "random",
        "random: each molecule rotated uniformly over SO(3); fixed: as drawn (a triatomic in the "
        "xy-plane with its second fragment on +x from the first, O from C for OCS; a reference "
        "geometry in its own axes). Default: random.",
        choices=ORIENTATIONS,
        show_default=False,
    )
    zero_point_momentum_spread: float = option(
        0.0,
        "Standard deviation of each ion's initial momentum per component, a.u. (total momentum "
        "removed). Default: 0 (ions start at rest).",
        show_default=False,
    )
    detector_momentum_noise: float = option(
        0.0,
        "Standard deviation of the Gaussian noise added to each final momentum component, a.u. "
        "Default: 0.",
        show_default=False,
    )
    detector_momentum_resolution: float = option(
        0.0,
        "Relative detector resolution: Gaussian noise of this fraction of each ion's momentum "
        "magnitude added to each of its components (0.01 = 1 %), in [0, 1). Default: 0.",
        show_default=False,
    )

    def __post_init__(self) -> None:
        for name, minimum in (("num_events", 1), ("seed", 0)):
            value = getattr(self, name)
            is_integer = isinstance(value, int | np.integer) and not isinstance(value, bool)
            if not is_integer or value < minimum:
                raise UserInputError(f"--{name}={value!r}; expected an integer ≥ {minimum}")
        _check_orientation(self.orientation)
        for name in ("zero_point_momentum_spread", "detector_momentum_noise"):
            _check_number(name, getattr(self, name), "a.u.", "a spread ≥ 0", lambda v: v >= 0)
        _check_number(
            "detector_momentum_resolution",
            self.detector_momentum_resolution,
            "(a fraction of |p|)",
            "a number in [0, 1)",
            lambda v: 0 <= v < 1,
        )
        check_prior(self.fragments, self.prior)

    @functools.cached_property
    def fragments(self) -> Molecule:
        """The molecule the --molecule/--atoms/--masses/--charges flags name, validated."""
        return self.molecule.resolve()


def check_prior(molecule: Molecule, prior: GeometryPrior) -> None:
    """Raises UserInputError unless sample_geometries can draw `molecule` with `prior`."""
    if molecule.reference_geometry is not None:
        changed = [
            field.name
            for field in dataclasses.fields(GeometryPrior)
            if getattr(prior, field.name) != field.default
        ]
        if changed:
            raise UserInputError(
                f"--{changed[0]}={getattr(prior, changed[0])!r}: {molecule.describe()} is drawn "
                "around its reference_geometry; the bond and angle flags are for a triatomic "
                "without one"
            )
    elif molecule.num_fragments != 3:
        raise UserInputError(
            f"{molecule.describe()} has {molecule.num_fragments} fragments and no "
            "reference_geometry; a molecule of more than 3 needs one to simulate (a molecule "
            "file's 'reference_geometry', bohr)"
        )


def sample_geometries(
    num_events: int,
    rng: np.random.Generator,
    prior: GeometryPrior,
    orientation: str,
    molecule: Molecule = OCS,
) -> np.ndarray:
    """Positions (events, fragments, xyz) in bohr drawn from the prior, centre of mass at 0.

    A molecule with a reference_geometry: that geometry plus an isotropic Gaussian displacement
    of position_spread bohr per coordinate. A triatomic without one: two bonds and the angle
    between them drawn from `prior`. Either way the centre of mass is then moved to the origin
    and, with orientation "random", each event rotated uniformly over SO(3).
    """
    _check_orientation(orientation)
    check_prior(molecule, prior)
    if molecule.reference_geometry is None:
        positions = _bonds_and_angle(num_events, rng, prior)
    else:
        positions = _around_reference(num_events, rng, molecule)
    positions -= physics.center_of_mass(positions, molecule.mass_array)[:, None, :]
    if orientation == "fixed":
        return positions
    return np.einsum("nij,naj->nai", random_rotations(num_events, rng), positions)


def _around_reference(num_events: int, rng: np.random.Generator, molecule: Molecule) -> np.ndarray:
    """The reference geometry (bohr) plus Gaussian displacements of position_spread per axis."""
    reference = np.asarray(molecule.reference_geometry, dtype=np.float64)
    spread = molecule.position_spread
    positions = reference + rng.normal(0.0, spread, (num_events, *reference.shape))
    # Redraw, in place and from the same stream, geometries with two fragments absurdly close.
    shortest = _MIN_BOND_FRACTION * pair_distances(reference).min()
    while True:
        too_close = np.any(pair_distances(positions) <= shortest, axis=-1)
        count = int(np.count_nonzero(too_close))
        if count == 0:
            return positions
        positions[too_close] = reference + rng.normal(0.0, spread, (count, *reference.shape))


def _bonds_and_angle(num_events: int, rng: np.random.Generator, prior: GeometryPrior) -> np.ndarray:
    """A triatomic's positions (events, 3, xyz), bohr, first fragment at 0, second on +x."""
    co_bond = rng.normal(prior.co_bond_mean, prior.co_bond_spread, num_events)
    cs_bond = rng.normal(prior.cs_bond_mean, prior.cs_bond_spread, num_events)
    angle = rng.normal(prior.angle_mean, prior.angle_spread, num_events)
    # Redraw, in place and from the same stream, geometries with a bond or the O–S distance
    # absurdly short; each redraw pass keeps the result a function of the seed alone.
    shortest = _MIN_BOND_FRACTION * min(prior.co_bond_mean, prior.cs_bond_mean)
    while True:
        too_short = (
            (co_bond <= _MIN_BOND_FRACTION * prior.co_bond_mean)
            | (cs_bond <= _MIN_BOND_FRACTION * prior.cs_bond_mean)
            | (_os_distance(co_bond, cs_bond, angle) <= shortest)
        )
        count = int(np.count_nonzero(too_short))
        if count == 0:
            break
        co_bond[too_short] = rng.normal(prior.co_bond_mean, prior.co_bond_spread, count)
        cs_bond[too_short] = rng.normal(prior.cs_bond_mean, prior.cs_bond_spread, count)
        angle[too_short] = rng.normal(prior.angle_mean, prior.angle_spread, count)
    # An angle of 180° + δ is the same bent molecule as 180° − δ (and −δ the same as +δ).
    bend = np.radians(np.abs((angle + 180.0) % 360.0 - 180.0))

    # Body frame: C at the origin, O on +x, S in the xy-plane.
    positions = np.zeros((num_events, 3, 3))
    positions[:, 1, 0] = co_bond
    positions[:, 2, 0] = cs_bond * np.cos(bend)
    positions[:, 2, 1] = cs_bond * np.sin(bend)
    return positions


def _os_distance(co_bond: np.ndarray, cs_bond: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """r_OS in bohr from the two bonds and the O–C–S angle in degrees (law of cosines)."""
    cosine = np.cos(np.radians(angle))
    return np.sqrt(np.maximum(co_bond**2 + cs_bond**2 - 2 * co_bond * cs_bond * cosine, 0.0))


def random_rotations(num_events: int, rng: np.random.Generator) -> np.ndarray:
    """Rotation matrices (events, 3, 3) uniform over SO(3): normalized 4-d Gaussian quaternions."""
    # scipy's Rotation.random does the same; numpy alone keeps scipy out of the library.
    quaternion = rng.normal(size=(num_events, 4))
    w, x, y, z = (quaternion / np.linalg.norm(quaternion, axis=1, keepdims=True)).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=-1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=-1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=-1),
        ],
        axis=-2,
    )


def zero_point_momenta(
    num_events: int, rng: np.random.Generator, spread: float, masses: np.ndarray = physics.MASSES
) -> np.ndarray:
    """Gaussian initial momenta (events, fragments, xyz) in a.u. with the total momentum removed."""
    momenta = rng.normal(0.0, spread, (num_events, len(masses), 3))
    # Subtracting m_i/M · P from each fragment keeps the molecule's centre of mass at rest.
    mass_fraction = masses / masses.sum()
    return momenta - mass_fraction[:, None] * physics.total_momentum(momenta)[:, None, :]


def explode(
    positions: np.ndarray,
    initial_momenta: np.ndarray | None = None,
    masses: np.ndarray = physics.MASSES,
    charges: np.ndarray = physics.CHARGES,
) -> np.ndarray:
    """Asymptotic (t → ∞) momenta in a.u. of ions of `charges` starting at positions (bohr).

    Args:
        positions: (..., fragments, 3 axes) in bohr, fragments in the order of masses and
          charges (default: OCS, C²⁺ + O²⁺ + S²⁺); any origin.
        initial_momenta: same shape, a.u.; None starts every ion at rest.
        masses: (fragments,) electron masses, 2 or more fragments.
        charges: (fragments,) e, all > 0.

    Returns:
        Final momenta, same shape, in a.u.; their sum equals the initial total momentum.
    """
    fragments = _fragments(tuple(np.asarray(masses, float)), tuple(np.asarray(charges, float)))
    count = len(fragments.masses)
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim < 2 or positions.shape[-2:] != (count, 3):
        raise ValueError(
            f"positions must be shaped (..., {count}, 3) for {count} fragments; received "
            f"{positions.shape}"
        )
    if initial_momenta is None:
        initial_momenta = np.zeros_like(positions)
    initial_momenta = np.asarray(initial_momenta, dtype=np.float64)
    if initial_momenta.shape != positions.shape:
        raise ValueError(
            f"initial_momenta shape {initial_momenta.shape} != positions shape {positions.shape}"
        )
    flat_positions = positions.reshape(-1, count, 3)
    flat_momenta = initial_momenta.reshape(-1, count, 3)
    final = np.empty_like(flat_positions)
    for start in range(0, len(flat_positions), fragments.block_events):
        block = slice(start, start + fragments.block_events)
        final[block] = _explode_block(flat_positions[block], flat_momenta[block], fragments)
    return final.reshape(positions.shape)


@dataclasses.dataclass(frozen=True, eq=False)
class _Fragments:
    """The integrator's constants for one set of masses and charges.

    It works in relative coordinates u_k = r_k − r_0 (k = 1..n−1), which carry all the dynamics:
    the pair vectors r_j − r_i of molecule.all_pairs order are u_j for the pairs (0, j), which
    come first, and u_j − u_i for the others (`far_pairs`). With f_p = pair vector / |pair|³,
    ü = relative_acceleration @ f (from m_i r̈_i = Σ_j q_i q_j (r_i − r_j)/r³).
    """

    masses: np.ndarray  # (n,) mₑ
    charges: np.ndarray  # (n,) e
    pair_charges: np.ndarray  # (pairs,) q_i q_j
    relative_acceleration: np.ndarray  # (n − 1, pairs)
    far_pairs: tuple[tuple[int, int, int], ...]  # (pair, i − 1, j − 1) for pairs (i, j), i ≥ 1
    kicks: list[np.ndarray]  # the schedule: kick matrices (n − 1, pairs) ...
    drifts: list[float]  # ... alternating with drift lengths, scaled time units
    block_events: int  # events integrated together


@functools.lru_cache(maxsize=16)
def _fragments(masses: tuple[float, ...], charges: tuple[float, ...]) -> _Fragments:
    """The integrator's constants for these masses (mₑ) and charges (e), built once each."""
    masses, charges = np.array(masses), np.array(charges)
    count = len(masses)
    if count < 2 or charges.shape != masses.shape:
        raise ValueError(f"{count} masses and {len(charges)} charges; expected ≥ 2 of each")
    if not (np.all(masses > 0) and np.all(charges > 0)):
        raise ValueError(f"masses {masses} and charges {charges} must be > 0")
    pairs = all_pairs(count)
    pair_charges = physics.pair_charge_products(charges)
    # d(r_j − r_i)/dt² per unit f_p, fragment by fragment: +1/m_j on j, −1/m_i on i; then
    # relative to fragment 0 (subtracting −1/m_0 adds 1/m_0 exactly, as the 3-body code did).
    per_fragment = np.zeros((count, len(pairs)))
    for pair, (i, j) in enumerate(pairs):
        per_fragment[j, pair] = 1 / masses[j]
        per_fragment[i, pair] = -1 / masses[i]
    relative_acceleration = pair_charges * (per_fragment[1:] - per_fragment[0])
    far_pairs = tuple((pair, i - 1, j - 1) for pair, (i, j) in enumerate(pairs) if i > 0)
    kicks, drifts = _kicks_and_drifts(relative_acceleration, _time_steps(masses, charges))
    # ~40 doubles an event for 3 fragments: 4096 events stay in cache; fewer when more pairs.
    block_events = _BLOCK_EVENTS * 3 // max(3, len(pairs))
    return _Fragments(
        masses, charges, pair_charges, relative_acceleration, far_pairs, kicks, drifts, block_events
    )


def _explode_block(positions: np.ndarray, momenta: np.ndarray, fragments: _Fragments) -> np.ndarray:
    """explode() on (events, fragments, 3) arrays small enough to integrate at once."""
    num_events, count = positions.shape[:2]
    masses = fragments.masses
    velocities = momenta / masses[:, None]
    com_velocity = physics.total_momentum(momenta) / masses.sum()

    # Coulomb scaling r → λr, t → λ^{3/2}t, p → λ^{-1/2}p maps solutions to solutions; scaling each
    # event to unit harmonic-mean pair distance λ = Σ q_i q_j / PE lets one step schedule serve
    # every geometry, compressed or stretched, with the same relative accuracy.
    length = fragments.pair_charges.sum() / physics.potential_energy(positions, fragments.charges)
    velocity_scale = np.sqrt(length)

    # Axis-first layout (pair, xyz, event) so every numpy call streams over contiguous events.
    pair_vectors = np.empty((len(fragments.pair_charges), 3, num_events))
    relative_velocities = np.empty((count - 1, 3, num_events))
    for k in range(1, count):
        pair_vectors[k - 1] = ((positions[:, k] - positions[:, 0]) / length[:, None]).T
        relative_velocities[k - 1] = (
            (velocities[:, k] - velocities[:, 0]) * velocity_scale[:, None]
        ).T

    _integrate(pair_vectors, relative_velocities, fragments)
    relative_velocities += _straight_line_tail(pair_vectors, relative_velocities, fragments)

    relative_velocities /= velocity_scale
    # Back to fragments: the centre of mass keeps its velocity, v_0 follows from Σ m_i v_i = M·V.
    relative = relative_velocities.transpose(0, 2, 1)  # (fragments − 1, events, xyz)
    weighted = masses[1] * relative[0]
    for k in range(2, count):
        weighted = weighted + masses[k] * relative[k - 1]
    first = com_velocity - weighted / masses.sum()
    final_velocities = np.stack([first, *(first + each for each in relative)], axis=1)
    return final_velocities * masses[:, None]


def _acceleration_scales(masses: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """q_i Σ_{j≠i} q_j / m_i: each fragment's acceleration with every other one 1 bohr away."""
    return charges * (charges.sum() - charges) / masses


_OCS_SCALES = _acceleration_scales(physics.MASSES, physics.CHARGES)
_OCS_LOG_SPAN = math.log1p(_END_TIME / _TIME_SCALE)


def _time_steps(masses: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """The fixed schedule's step lengths in scaled time units, for these masses and charges.

    Time goes as 1/√(acceleration): the schedule starts as much earlier than OCS²⁺'s as the
    fastest fragment accelerates faster than C²⁺ does, and ends as much later as the slowest
    is slower than S²⁺, with steps in proportion to the log span (at least OCS²⁺'s 48).
    OCS²⁺'s own schedule comes out exactly, and OCS⁺ (1, 1, 1) gets it 2× slower.
    """
    scales = _acceleration_scales(masses, charges)
    time_scale = _TIME_SCALE * math.sqrt(_OCS_SCALES.max() / scales.max())
    end_time = _END_TIME * math.sqrt(_OCS_SCALES.min() / scales.min())
    log_span = math.log1p(end_time / time_scale)
    num_steps = max(_NUM_STEPS, round(_NUM_STEPS * log_span / _OCS_LOG_SPAN))
    fractions = np.linspace(0.0, 1.0, num_steps + 1) ** _STEP_EXPONENT
    return np.diff(time_scale * np.expm1(log_span * fractions))


def _kicks_and_drifts(
    relative_acceleration: np.ndarray, steps: np.ndarray
) -> tuple[list[np.ndarray], list[float]]:
    """The schedule as alternating kick matrices and drift lengths, merging kicks across steps."""
    kicks, drifts = [], []
    carried_kick = 0.0  # the last kick of one step and the first of the next share one force
    for step in steps:
        kicks.append((carried_kick + step * _KICK[0]) * relative_acceleration)
        kicks.extend(step * _KICK[1:-1, None, None] * relative_acceleration)
        drifts.extend(step * _DRIFT)
        carried_kick = step * _KICK[-1]
    kicks.append(carried_kick * relative_acceleration)
    return kicks, drifts


def _integrate(
    pair_vectors: np.ndarray, relative_velocities: np.ndarray, fragments: _Fragments
) -> None:
    """Flies the scaled ions from t = 0 to the schedule's end in place: pair vectors, velocities."""
    count, num_events = len(relative_velocities) + 1, pair_vectors.shape[-1]
    num_pairs = len(pair_vectors)
    relative_positions = pair_vectors[: count - 1]  # a view, so drifts update the pair vectors
    flat_velocities = relative_velocities.reshape(count - 1, 3 * num_events)
    scaled_forces = np.empty_like(pair_vectors)
    flat_forces = scaled_forces.reshape(num_pairs, 3 * num_events)
    squared = np.empty((num_pairs, num_events))
    inverse_cubes = np.empty((num_pairs, num_events))
    velocity_change = np.empty_like(flat_velocities)
    position_change = np.empty_like(relative_positions)

    def update_forces() -> None:
        # f_p = r_p / |r_p|³ for every pair; those without fragment 0 follow from the others.
        for pair, first, second in fragments.far_pairs:
            np.subtract(pair_vectors[second], pair_vectors[first], out=pair_vectors[pair])
        np.einsum("pkn,pkn->pn", pair_vectors, pair_vectors, out=squared)
        np.sqrt(squared, out=inverse_cubes)
        np.multiply(inverse_cubes, squared, out=inverse_cubes)
        np.divide(1.0, inverse_cubes, out=inverse_cubes)
        np.multiply(pair_vectors, inverse_cubes[:, None, :], out=scaled_forces)

    def kick(matrix: np.ndarray) -> None:
        np.matmul(matrix, flat_forces, out=velocity_change)
        np.add(flat_velocities, velocity_change, out=flat_velocities)

    kicks, drifts = fragments.kicks, fragments.drifts
    update_forces()
    for kick_matrix, drift in zip(kicks[:-1], drifts, strict=True):
        kick(kick_matrix)
        np.multiply(relative_velocities, drift, out=position_change)
        relative_positions += position_change
        update_forces()
    kick(kicks[-1])


def _straight_line_tail(
    pair_vectors: np.ndarray, relative_velocities: np.ndarray, fragments: _Fragments
) -> np.ndarray:
    """Velocity change (fragments − 1, 3, events) from the schedule's end to ∞ on straight lines.

    Along r(t) = r + v·t, ∫₀^∞ r(t)/|r(t)|³ dt = (r̂ + v̂) / (|r||v| + r·v) in closed form (this form
    of it does not cancel for the near-radial motion of late times). Its error is second order in
    the remaining fraction of potential energy.
    """
    pair_velocities = np.empty_like(pair_vectors)
    pair_velocities[: len(relative_velocities)] = relative_velocities
    for pair, first, second in fragments.far_pairs:
        pair_velocities[pair] = relative_velocities[second] - relative_velocities[first]
    distances = np.linalg.norm(pair_vectors, axis=1)
    speeds = np.linalg.norm(pair_velocities, axis=1)
    alignment = np.einsum("pkn,pkn->pn", pair_vectors, pair_velocities)
    directions = pair_vectors / distances[:, None] + pair_velocities / speeds[:, None]
    impulses = directions / (distances * speeds + alignment)[:, None]
    return np.einsum("ap,pkn->akn", fragments.relative_acceleration, impulses)


def simulate_events(
    config: SimulationConfig, progress: bool = False, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (bohr) and final momenta (a.u.), each (events, fragments, xyz), drawn from config.

    The same config gives bit-identical arrays, whatever the number of `workers` processes that
    simulate its chunks (as in chunk_pool.map_chunks; 1: this process alone).
    """
    chunks = list(chunk_pool.map_chunks(simulate_chunk, config, CHUNK_EVENTS, workers, progress))
    return tuple(np.concatenate(parts) for parts in zip(*chunks, strict=True))


def chunk_rng(seed: int, index: int) -> np.random.Generator:
    """Chunk `index`'s random stream: SeedSequence(seed).spawn(n)[index]'s, for any n > index."""
    # spawn_key=(index,) is what SeedSequence.spawn gives its index-th child (numpy's documented
    # way to independent streams), without building the children before it.
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def simulate_chunk(
    config: SimulationConfig, index: int, chunk_events: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions and momenta of events index·chunk_events onwards (at most chunk_events of them)."""
    size = min(chunk_events, config.num_events - index * chunk_events)
    if size < 1:
        raise ValueError(
            f"chunk {index} of {chunk_events} events is past the {config.num_events} events"
        )
    rng = chunk_rng(config.seed, index)
    molecule = config.fragments
    masses = molecule.mass_array
    positions = sample_geometries(size, rng, config.prior, config.orientation, molecule)
    initial = None
    if config.zero_point_momentum_spread > 0:
        initial = zero_point_momenta(size, rng, config.zero_point_momentum_spread, masses)
    momenta = explode(positions, initial, masses, molecule.charge_array)
    if config.detector_momentum_noise > 0:
        momenta += rng.normal(0.0, config.detector_momentum_noise, momenta.shape)
    if config.detector_momentum_resolution > 0:
        magnitudes = np.linalg.norm(momenta, axis=-1, keepdims=True)
        spread = config.detector_momentum_resolution * magnitudes
        momenta += spread * rng.standard_normal(momenta.shape)
    return positions, momenta
