"""A data set's physics checked before training: energy, momentum balance, frames, translation."""

import dataclasses
import math

import numpy as np

from cvae_tf import alignment, data, file_flags, physics, progress, simulator
from cvae_tf.errors import UserInputError
from cvae_tf.file_flags import EventFileConfig
from cvae_tf.flag_fields import option
from cvae_tf.molecule import OCS, Molecule

# The model's target accuracy in bohr: a centre-of-mass spread above it cannot be learned.
TARGET_ACCURACY = 0.01
# Median |KE − PE|/KE above which the energy is out of balance; the simulator gives ~1e-10 and a
# 12-digit CSV ~1e-11, while initial motion of a few a.u. already gives ~1e-4 to 1e-3.
ENERGY_TOLERANCE = 1e-3
# KE/PE counts as one constant factor when its robust relative spread across events is below this
# fraction of its distance from 1 (|ln KE/PE|). Initial motion of 5–20 a.u. gives 0.5–0.6.
CONSTANT_RATIO_SPREAD = 0.1
# A constant KE/PE is named after a known slip when it lies within this relative distance of it.
FACTOR_TOLERANCE = 0.03
# Median |Σp| / Σ|p_i| above which events did not start at rest (or carry noise).
BALANCE_TOLERANCE = 1e-3
# Median | |p_given|/|p_simulated| − 1 | above which magnitudes disagree (half ENERGY_TOLERANCE,
# since KE ∝ |p|²).
MAGNITUDE_TOLERANCE = 5e-4
# Frames differ when the best rotation is this large (median, degrees) and removes most of the
# direction mismatch. Initial (zero-point) motion also rotates the final momenta, by up to tens of
# degrees, but a rotation then only halves the mismatch (measured: 0.08 → 0.04 at 5 a.u. spread);
# a frame change is removed down to the remaining physics mismatch.
ANGLE_TOLERANCE = 1.0
ROTATION_GAIN = 10.0

_BOHR_PER_ANGSTROM = 1.0 / 0.529177210544
_HARTREE_IN_EV = 27.211386245988
_ELECTRON_MASSES_PER_DALTON = 1822.888486

# Constant KE/PE factors with a known cause: the data's KE (from momenta) over our PE (from
# positions, the molecule's charges, bohr, hartree). The charge factors are in charge_factors.
KNOWN_FACTORS = (
    (
        1 / _BOHR_PER_ANGSTROM,
        "lengths: the positions look like ångström, not bohr (multiply by 1.8897)",
    ),
    (_BOHR_PER_ANGSTROM, "lengths: the positions are 1.8897× too large (bohr converted twice?)"),
    (_HARTREE_IN_EV, "energies: the momenta are √27.211 = 5.216× too large (eV read as hartree)"),
    (1 / _HARTREE_IN_EV, "energies: the momenta are 5.216× too small (hartree read as eV)"),
    (
        1 / _ELECTRON_MASSES_PER_DALTON,
        "masses: the momenta fit masses in u, not mₑ (42.7× too small)",
    ),
    (_ELECTRON_MASSES_PER_DALTON, "masses: the momenta are 42.7× too large (u→mₑ applied twice?)"),
)


def _charges_text(charges) -> str:
    """ "+2" when every fragment has that charge, else "+2, +1, +2"."""
    texts = [f"+{charge:g}" for charge in charges]
    return texts[0] if len(set(texts)) == 1 else ", ".join(texts)


def charge_factors(fragments: Molecule = OCS) -> tuple[tuple[float, str], ...]:
    """KE/PE factors of charges half and twice the molecule's (PE ∝ q_i·q_j), in its charges."""
    charges = fragments.charge_array
    model = _charges_text(charges)
    return (
        (
            0.25,
            f"charges: the momenta fit ions charged {_charges_text(charges / 2)}, not {model} "
            "(half the model's charges: PE ∝ q_i·q_j), or are halved",
        ),
        (
            4.0,
            f"charges: the momenta fit ions charged {_charges_text(charges * 2)}, not {model} "
            "(twice the model's charges), or are doubled",
        ),
    )


@dataclasses.dataclass
class DataVerdict:
    """What check_events found: figures, plain-language problems and the flags that repair them."""

    num_events: int  # events in the data set
    num_checked: int  # events in the sample
    energy_diff_median: float  # |KE − PE|/KE of the true positions
    energy_diff_p95: float
    energy_ratio: float  # median KE/PE
    energy_ratio_spread: float  # robust relative spread of KE/PE across events
    momentum_balance: float  # median |Σp| / Σ|p_i|
    magnitude_ratios: tuple[float, ...]  # median |p_given|/|p_simulated| per fragment
    magnitude_deviation: float  # median | |p_given|/|p_simulated| − 1 | over all fragments
    rotation_angle: float  # median angle (degrees) of the rotation simulated → given momenta
    # Median |s·p_simulated − p_given| / |p_given| with s = |p_given|/|p_simulated| per event (norms
    # over nine components), so that a wrong overall size does not hide a wrong direction.
    direction_mismatch_before: float
    direction_mismatch_after: float  # the same after each event's best rotation
    com_spread: float  # RMS over events of the centre of mass about its mean, bohr
    problems: list[str] = dataclasses.field(default_factory=list)
    recommended_flags: list[str] = dataclasses.field(default_factory=list)
    labels: tuple[str, ...] = OCS.labels  # the fragments, in the order of magnitude_ratios

    def _magnitudes(self, digits: int) -> str:
        return ", ".join(
            f"{label} {ratio:.{digits}g}"
            for label, ratio in zip(self.labels, self.magnitude_ratios, strict=True)
        )

    def format(self) -> str:
        """A short verdict: the figures, then the problems and the recommended flags."""
        lines = [
            f"Data check on {self.num_checked} of {self.num_events} events:",
            f"  energy       |KE−PE|/KE median {self.energy_diff_median:.2g}, 95th percentile "
            f"{self.energy_diff_p95:.2g}; KE/PE {self.energy_ratio:.6g} "
            f"(relative spread {self.energy_ratio_spread:.2g})",
            f"  balance      |Σp|/Σ|p_i| median {self.momentum_balance:.2g}",
            f"  magnitudes   |p_given|/|p_simulated| median {self._magnitudes(6)}",
            f"  directions   rotation simulated→given median {self.rotation_angle:.3g}°; "
            f"direction mismatch {self.direction_mismatch_before:.2g} before, "
            f"{self.direction_mismatch_after:.2g} after it",
            f"  translation  centre-of-mass spread {self.com_spread:.3g} bohr "
            f"(target accuracy {TARGET_ACCURACY} bohr)",
        ]
        if not self.problems:
            lines.append("Verdict: consistent; no problems found.")
            return "\n".join(lines)
        lines.append(f"Verdict: {len(self.problems)} problem(s):")
        lines.extend(f"  - {problem}" for problem in self.problems)
        if self.recommended_flags:
            lines.append(f"Recommended flags: {' '.join(self.recommended_flags)}")
        return "\n".join(lines)


# KER quantiles (percent) a momentum check reports.
KER_REPORTED = (5.0, 25.0, 50.0, 75.0, 95.0)


@dataclasses.dataclass
class MomentumVerdict:
    """What check_momenta found in a file without positions (measured data), and the comparison.

    The training fields stay None unless a model's training data were compared
    (file_check.check_file with --model_dir).
    """

    num_events: int
    balance_median: float  # |Σp| / Σ|p_i|
    balance_p95: float
    ker_percentiles: dict[float, float]  # {percent: KER in hartree} at KER_REPORTED
    problems: list[str] = dataclasses.field(default_factory=list)
    model_dir: str | None = None
    training_events: int | None = None
    training_ker_percentiles: dict[float, float] | None = None
    ker_bounds: tuple[float, float] | None = None  # hartree: the criterion's KER range
    out_of_distribution: int | None = None  # events the criterion flags

    def format(self) -> str:
        """The figures, the comparison with the training data if made, then the problems."""
        median = self.ker_percentiles[50.0]
        others = [percent for percent in KER_REPORTED if percent != 50.0]
        percents = "/".join(f"{percent:g}" for percent in others)
        hartree = ", ".join(f"{self.ker_percentiles[percent]:.4g}" for percent in others)
        electronvolt = ", ".join(
            f"{self.ker_percentiles[percent] * _HARTREE_IN_EV:.4g}" for percent in others
        )
        lines = [
            f"Momentum check on {self.num_events} events (no position columns: momenta only):",
            f"  balance      |Σp|/Σ|p_i| median {self.balance_median:.2g}, 95th percentile "
            f"{self.balance_p95:.2g}",
            f"  KER          median {median:.4g} hartree ({median * _HARTREE_IN_EV:.4g} eV); "
            f"{percents} %: {hartree} hartree ({electronvolt} eV)",
        ]
        if self.training_ker_percentiles is not None:
            lines.append(
                f"Against the training data of '{self.model_dir}' ({self.training_events} events "
                "of its training sample), KER in hartree:"
            )
            lines.append(f"  {'percentile':>10}  {'this file':>10}  {'training':>10}")
            for percent in KER_REPORTED:
                lines.append(
                    f"  {percent:>8g} %  {self.ker_percentiles[percent]:>10.4g}  "
                    f"{self.training_ker_percentiles[percent]:>10.4g}"
                )
            low, high = self.ker_bounds
            share = 100 * self.out_of_distribution / self.num_events
            lines.append(
                f"  out of distribution  {self.out_of_distribution} of {self.num_events} events "
                f"({share:.3g} %): KER outside [{low:.4g}, {high:.4g}] hartree or a momentum "
                "shape unlike the training data's"
            )
        if not self.problems:
            lines.append("Verdict: consistent; no problems found.")
            return "\n".join(lines)
        lines.append(f"Verdict: {len(self.problems)} problem(s):")
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


def check_momenta(momenta: np.ndarray, fragments: Molecule = OCS) -> MomentumVerdict:
    """Momentum balance and the KER distribution of momenta (events, fragments, 3) in a.u."""
    with np.errstate(divide="ignore", invalid="ignore"):
        balance = np.linalg.norm(physics.total_momentum(momenta), axis=-1) / np.sum(
            np.linalg.norm(momenta, axis=-1), axis=-1
        )
    balance = balance[np.isfinite(balance)]
    kinetic = physics.kinetic_energy(momenta, fragments.mass_array)
    verdict = MomentumVerdict(
        num_events=len(momenta),
        balance_median=float(np.median(balance)) if len(balance) else math.nan,
        balance_p95=float(np.percentile(balance, 95)) if len(balance) else math.nan,
        ker_percentiles=dict(
            zip(KER_REPORTED, (float(v) for v in np.percentile(kinetic, KER_REPORTED)), strict=True)
        ),
    )
    if verdict.balance_median > BALANCE_TOLERANCE:
        verdict.problems.append(
            f"total momentum is {verdict.balance_median:.2g} of the momenta's size (median), "
            "not ≈ 0: the ions did not start at rest, the momenta carry noise, a fragment was "
            "missed, or a fragment's columns are wrong"
        )
    return verdict


@dataclasses.dataclass(frozen=True)
class CheckDataConfig:
    """The events to check, and the random sample of them that is checked."""

    events: EventFileConfig
    model_dir: str | None = file_flags.model_dir_option()
    sample_size: int = option(2000, "Events checked, drawn at random (each one simulated).")
    seed: int = option(0, "Seed of the random sample.")

    def __post_init__(self) -> None:
        for name, minimum in (("sample_size", 1), ("seed", 0)):
            if getattr(self, name) < minimum:
                raise UserInputError(
                    f"--{name}={getattr(self, name)}; expected an integer ≥ {minimum}"
                )


def check_file(config: CheckDataConfig) -> DataVerdict:
    """The verdict on a random sample of the events in one CSV file."""
    return check_events(
        config.events.load(), config.sample_size, config.seed, config.events.molecule
    )


EXPLODE_CHUNK_EVENTS = 8192  # sampled events exploded at a time, between progress redraws


def explode_sample(positions: np.ndarray, fragments: Molecule) -> np.ndarray:
    """The simulator's momenta (a.u.) for `positions` (bohr), a chunk at a time, with a bar."""
    parts = []
    with progress.Bar("checking", len(positions)) as bar:
        for start in range(0, len(positions), EXPLODE_CHUNK_EVENTS):
            chunk = positions[start : start + EXPLODE_CHUNK_EVENTS]
            parts.append(
                simulator.explode(chunk, None, fragments.mass_array, fragments.charge_array)
            )
            bar.update(start + len(chunk))
    return np.concatenate(parts)


def check_events(
    events: data.Events, sample_size: int = 2000, seed: int = 0, fragments: Molecule = OCS
) -> DataVerdict:
    """Checks a random sample of events against the physics the model assumes.

    Args:
        events: positions (bohr) and momenta (a.u.), each (events, fragments, 3 axes).
        sample_size: events checked at most (each one is exploded by the simulator).
        seed: seed of the sample.
        fragments: the molecule, whose masses and charges the physics uses.

    Returns:
        The verdict, with its figures, problems and recommended flags.
    """
    if (
        isinstance(sample_size, bool)
        or not isinstance(sample_size, int | np.integer)
        or sample_size < 1
    ):
        raise UserInputError(f"sample_size={sample_size!r}; expected an integer ≥ 1")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UserInputError(f"seed={seed!r}; expected an integer ≥ 0")
    rng = np.random.default_rng(seed)
    rows = np.arange(len(events))
    if len(events) > sample_size:
        rows = np.sort(rng.choice(len(events), sample_size, replace=False))
    positions, momenta = events.positions[rows], events.momenta[rows]

    problems = []
    with np.errstate(divide="ignore", invalid="ignore"):
        kinetic = physics.kinetic_energy(momenta, fragments.mass_array)
        potential = physics.potential_energy(positions, fragments.charge_array)
    usable = np.isfinite(potential) & (kinetic > 0)
    if not usable.all():
        problems.append(
            f"{np.count_nonzero(~usable)} sampled events have coincident atoms or no momentum; "
            "they were left out of the check"
        )
    if not usable.any():
        raise UserInputError("no sampled event has distinct atom positions and non-zero momenta")
    positions, momenta = positions[usable], momenta[usable]
    kinetic, potential = kinetic[usable], potential[usable]

    ratio = kinetic / potential
    energy_diff = physics.energy_diff_1(kinetic, potential)
    lower, upper = np.percentile(ratio, [25, 75])
    ratio_spread = float((upper - lower) / 1.349 / np.median(ratio))  # σ of a normal from its IQR

    balance = np.linalg.norm(physics.total_momentum(momenta), axis=-1) / np.sum(
        np.linalg.norm(momenta, axis=-1), axis=-1
    )

    simulated = explode_sample(positions, fragments)
    magnitude_ratios = np.linalg.norm(momenta, axis=-1) / np.linalg.norm(simulated, axis=-1)
    rotations = alignment.kabsch_rotations(simulated, momenta)
    # Rotations are blind to a common scale; the mismatch is made blind to it too.
    scale = np.linalg.norm(momenta, axis=(-2, -1)) / np.linalg.norm(simulated, axis=(-2, -1))
    scaled = simulated * scale[:, None, None]
    mismatch_before = alignment.relative_mismatch(scaled, momenta)
    mismatch_after = alignment.relative_mismatch(alignment.rotate(rotations, scaled), momenta)

    centres = physics.center_of_mass(positions, fragments.mass_array)
    com_spread = math.sqrt(np.mean(np.sum(np.square(centres - centres.mean(axis=0)), axis=-1)))

    verdict = DataVerdict(
        num_events=len(events),
        num_checked=len(rows),
        energy_diff_median=float(np.median(energy_diff)),
        energy_diff_p95=float(np.percentile(energy_diff, 95)),
        energy_ratio=float(np.median(ratio)),
        energy_ratio_spread=ratio_spread,
        momentum_balance=float(np.median(balance)),
        magnitude_ratios=tuple(float(value) for value in np.median(magnitude_ratios, axis=0)),
        magnitude_deviation=float(np.median(np.abs(magnitude_ratios - 1))),
        rotation_angle=float(np.median(alignment.rotation_angles(rotations))),
        direction_mismatch_before=float(np.median(mismatch_before)),
        direction_mismatch_after=float(np.median(mismatch_after)),
        com_spread=com_spread,
        problems=problems,
        labels=fragments.labels,
    )
    _find_problems(verdict, fragments)
    return verdict


def _find_problems(verdict: DataVerdict, fragments: Molecule = OCS) -> None:
    """Appends each finding to verdict.problems and its repair to verdict.recommended_flags."""
    if verdict.energy_diff_median > ENERGY_TOLERANCE:
        verdict.problems.append(_energy_finding(verdict, fragments))
    if verdict.momentum_balance > BALANCE_TOLERANCE:
        verdict.problems.append(
            f"total momentum is {verdict.momentum_balance:.2g} of the momenta's size (median), "
            "not ≈ 0: the ions did not start at rest, the momenta carry noise, or a fragment's "
            "columns are wrong"
        )
    if verdict.magnitude_deviation > MAGNITUDE_TOLERANCE:
        verdict.problems.append(
            f"momentum magnitudes differ from those the simulator gives for the positions "
            f"(|p_given|/|p_simulated| median {verdict._magnitudes(4)}): masses, "
            "charges, units or initial motion differ from the model's physics"
        )
    rotation_removes_mismatch = (
        verdict.direction_mismatch_after * ROTATION_GAIN < verdict.direction_mismatch_before
    )
    if verdict.rotation_angle > ANGLE_TOLERANCE and rotation_removes_mismatch:
        verdict.problems.append(
            "positions and momenta are in different frames: the momenta simulated from the "
            "positions match the given ones only after a rotation of "
            f"{verdict.rotation_angle:.1f}° (median; direction mismatch "
            f"{verdict.direction_mismatch_before:.2g} → {verdict.direction_mismatch_after:.2g}), "
            "which the momenta alone cannot reveal; align the positions to the momenta"
        )
        verdict.recommended_flags.append("--align_positions")
    if verdict.com_spread > TARGET_ACCURACY:
        verdict.problems.append(
            f"the positions' centre of mass wanders by {verdict.com_spread:.3g} bohr (RMS over "
            f"events), above the {TARGET_ACCURACY} bohr target accuracy; momenta cannot fix a "
            "translation, so absolute positions are unlearnable: centre them"
        )
        verdict.recommended_flags.insert(0, "--center=com")


def _energy_finding(verdict: DataVerdict, fragments: Molecule = OCS) -> str:
    """What an energy imbalance suggests: a known constant factor, or event-to-event variation."""
    summary = (
        f"KE of the momenta differs from PE of the positions: |KE−PE|/KE median "
        f"{verdict.energy_diff_median:.3g}"
    )
    ratio = verdict.energy_ratio
    if verdict.energy_ratio_spread > CONSTANT_RATIO_SPREAD * abs(math.log(ratio)):
        return (
            f"{summary}, and KE/PE varies between events (median {ratio:.4g}, relative spread "
            f"{verdict.energy_ratio_spread:.2g}): ions not starting at rest (initial motion), "
            "momentum noise, or masses other than the model's"
        )
    known_factors = charge_factors(fragments) + KNOWN_FACTORS
    factor, cause = min(known_factors, key=lambda known: abs(math.log(ratio / known[0])))
    if abs(math.log(ratio / factor)) < FACTOR_TOLERANCE:
        return f"{summary}; KE/PE = {ratio:.4g} in every event, near {factor:.6g}: {cause}"
    return (
        f"{summary}; KE/PE = {ratio:.4g} in every event, a constant factor that matches no known "
        f"slip of charges ({_charges_text(fragments.charges)}), lengths (bohr), energies "
        "(hartree) or masses (mₑ)"
    )
