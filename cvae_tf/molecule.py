"""The molecule and its charge channel: fragment labels, masses (mₑ), charges (e), bonds, frame.

Each fragment is one detected ion, one group of three columns; fragments are distinguishable
(3 to 8 of them). A molecule comes from a built-in name (`ocs`, the default, and `chbrclf`), from
a JSON molecule file, or from the --atoms/--masses/--charges flags, which also override a named
molecule's fields (`--charges=1,1,1` is OCS in its O⁺ + C⁺ + S⁺ channel).

A molecule file, every length in bohr:

    {"name": "CHBrClF",
     "atoms": ["C", "H", "Br", "Cl", "F"],          # labels; columns cx.., pcx.. derive from them
     "charges": [1, 1, 1, 1, 1],                     # e
     "masses": [21894.71, ...],                      # optional: standard atomic weights × mₑ/u
     "bonds": [["C", "H"], ["C", "Br"], ...],         # optional: every pair if absent
     "frame": ["Br", "Cl", "F"],                      # optional: see `frame_fragments`
     "reference_geometry": [[0, 0, 0], ...],          # optional: the simulator's prior mean
     "position_spread": 0.1}                          # optional: its Gaussian spread per axis

Masses default to the standard atomic weight of each label's element (its leading letters: "C1"
is carbon) in electron masses, the convention of the specification's OCS masses (12.011 u ×
1822.888486 = 21894.71361 mₑ).
"""

import dataclasses
import itertools
import json
import math
import re
from pathlib import Path

import numpy as np

from cvae_tf.errors import UserInputError
from cvae_tf.flag_fields import option

MIN_FRAGMENTS = 3
MAX_FRAGMENTS = 8
# A molecule file without "frame": x̂ along p₂ − p₃, ŷ from p₁ (the second and third fragments,
# then the first), which is OCS's (O, S, C).
DEFAULT_FRAME_FRAGMENTS = (1, 2, 0)
AXES = ("x", "y", "z")
ELECTRON_MASSES_PER_DALTON = 1822.888486

# Conventional standard atomic weights (u, IUPAC 2021 abridged) and names of common elements.
ELEMENTS = {
    "H": (1.008, "Hydrogen"),
    "D": (2.014, "Deuterium"),
    "He": (4.0026, "Helium"),
    "Li": (6.94, "Lithium"),
    "B": (10.81, "Boron"),
    "C": (12.011, "Carbon"),
    "N": (14.007, "Nitrogen"),
    "O": (15.999, "Oxygen"),
    "F": (18.998, "Fluorine"),
    "Ne": (20.180, "Neon"),
    "Na": (22.990, "Sodium"),
    "Mg": (24.305, "Magnesium"),
    "Al": (26.982, "Aluminium"),
    "Si": (28.085, "Silicon"),
    "P": (30.974, "Phosphorus"),
    "S": (32.06, "Sulfur"),
    "Cl": (35.45, "Chlorine"),
    "Ar": (39.95, "Argon"),
    "K": (39.098, "Potassium"),
    "Ca": (40.078, "Calcium"),
    "Fe": (55.845, "Iron"),
    "Cu": (63.546, "Copper"),
    "Zn": (65.38, "Zinc"),
    "Se": (78.971, "Selenium"),
    "Br": (79.904, "Bromine"),
    "Kr": (83.798, "Krypton"),
    "I": (126.90, "Iodine"),
    "Xe": (131.29, "Xenon"),
}

_LABEL = re.compile(r"[A-Z][a-z]?[0-9]*")
_FILE_KEYS = {
    "name",
    "atoms",
    "charges",
    "masses",
    "bonds",
    "frame",
    "reference_geometry",
    "position_spread",
}
BUILT_IN_FOLDER = Path(__file__).parent / "molecules"


def element(label: str) -> str:
    """The element symbol a label names: its letters ("C1" → "C", "Br" → "Br")."""
    return label.rstrip("0123456789")


def standard_mass(label: str) -> float:
    """The standard atomic weight of the label's element in electron masses."""
    symbol = element(label)
    if symbol not in ELEMENTS:
        raise UserInputError(
            f"no standard mass for {label!r}; give --masses (electron masses) or use one of "
            f"{sorted(ELEMENTS)}"
        )
    return ELEMENTS[symbol][0] * ELECTRON_MASSES_PER_DALTON


@dataclasses.dataclass(frozen=True)
class Molecule:
    """Distinguishable fragments: labels, masses (mₑ), charges (e), bonds, frame, prior geometry.

    Attributes:
      labels: one per fragment, an element symbol optionally numbered ("C", "Br", "C2").
      masses: electron masses, one per fragment, > 0.
      charges: elementary charges, one per fragment, > 0 (the fragments repel).
      bonds: index pairs (i, j), i < j: the bonds the metrics and outputs report.
      frame_fragments: (a, b, c): the momentum frame's x̂ runs along p_a − p_b and ŷ along the
        part of p_c perpendicular to it (frames.momentum_frame). OCS: (O, S, C).
      reference_geometry: positions (fragments × 3) in bohr, the prior's mean, or None.
      position_spread: the prior's Gaussian spread per coordinate about it, bohr.
      name: what reports call it.
    """

    labels: tuple[str, ...]
    masses: tuple[float, ...]
    charges: tuple[float, ...]
    bonds: tuple[tuple[int, int], ...]
    frame_fragments: tuple[int, int, int]
    reference_geometry: tuple[tuple[float, float, float], ...] | None = None
    position_spread: float = 0.0
    name: str = ""

    def __post_init__(self) -> None:
        count = len(self.labels)
        if not MIN_FRAGMENTS <= count <= MAX_FRAGMENTS:
            raise UserInputError(
                f"--atoms has {count} fragments {list(self.labels)}; expected "
                f"{MIN_FRAGMENTS} to {MAX_FRAGMENTS}"
            )
        _check_labels(self.labels)
        lowered = [label.lower() for label in self.labels]
        if len(set(lowered)) != count:
            repeated = sorted({label for label in lowered if lowered.count(label) > 1})
            raise UserInputError(
                f"--atoms repeats {repeated}; fragments must be distinguishable: number them "
                "(C1, C2)"
            )
        for name, values in (("masses", self.masses), ("charges", self.charges)):
            if len(values) != count:
                raise UserInputError(
                    f"--{name} has {len(values)} values for {count} fragments {list(self.labels)}; "
                    "expected one each"
                )
            for value in values:
                if not _is_real(value) or not value > 0:
                    raise UserInputError(
                        f"--{name}: {value!r} is not a finite number > 0; expected "
                        + ("electron masses" if name == "masses" else "positive charges (e)")
                    )
        for i, j in self.bonds:
            if not (0 <= i < j < count):
                raise ValueError(f"bond {(i, j)} is not an ordered pair of fragments")
        if len(set(self.frame_fragments)) != 3 or not all(
            0 <= index < count for index in self.frame_fragments
        ):
            raise ValueError(f"frame_fragments {self.frame_fragments} are not 3 distinct fragments")
        if self.reference_geometry is not None:
            shape = np.shape(self.reference_geometry)
            if shape != (count, 3) or not np.all(np.isfinite(self.reference_geometry)):
                raise UserInputError(
                    f"reference_geometry is shaped {shape}; expected {count} finite [x, y, z] "
                    "positions in bohr, one per fragment"
                )
            distances = pair_distances(np.asarray(self.reference_geometry, dtype=float), count)
            if np.any(distances <= 0):
                raise UserInputError("reference_geometry puts two fragments at one place")
        if not _is_real(self.position_spread) or self.position_spread < 0:
            raise UserInputError(
                f"position_spread={self.position_spread!r}; expected a spread ≥ 0 in bohr"
            )

    # --- What the rest of the package reads ------------------------------------------------------

    @property
    def num_fragments(self) -> int:
        return len(self.labels)

    @property
    def num_coordinates(self) -> int:
        """Columns per table: 3 per fragment."""
        return 3 * len(self.labels)

    @property
    def mass_array(self) -> np.ndarray:
        """Masses (fragments,) in electron masses."""
        return np.asarray(self.masses, dtype=np.float64)

    @property
    def charge_array(self) -> np.ndarray:
        """Charges (fragments,) in e."""
        return np.asarray(self.charges, dtype=np.float64)

    @property
    def pairs(self) -> tuple[tuple[int, int], ...]:
        """Every fragment pair (i, j), i < j, in lexicographic order (OCS: CO, CS, OS)."""
        return all_pairs(len(self.labels))

    @property
    def angles(self) -> tuple[tuple[int, int, int], ...]:
        """(i, vertex, k) for each two bonds sharing a fragment: the bond angles reported."""
        triples = []
        for vertex in range(len(self.labels)):
            ends = [j if i == vertex else i for i, j in self.bonds if vertex in (i, j)]
            triples += [(i, vertex, k) for i, k in itertools.combinations(ends, 2)]
        return tuple(triples)

    @property
    def position_columns(self) -> tuple[str, ...]:
        """Default position columns: the lowercase label then the axis (cx, cy, cz, ox, ...)."""
        return tuple(f"{label.lower()}{axis}" for label in self.labels for axis in AXES)

    @property
    def momentum_columns(self) -> tuple[str, ...]:
        """Default momentum columns: "p", the lowercase label, the axis (pcx, pcy, ...)."""
        return tuple(f"p{label.lower()}{axis}" for label in self.labels for axis in AXES)

    @property
    def coordinate_names(self) -> tuple[str, ...]:
        """Label and axis of each table column, as reports print them (Cx, Cy, ...)."""
        return tuple(f"{label}{axis}" for label in self.labels for axis in AXES)

    @property
    def fragment_names(self) -> tuple[str, ...]:
        """Element names of the fragments, numbered like their labels ("Carbon 2")."""
        names = []
        for label in self.labels:
            number = label[len(element(label)) :]
            base = ELEMENTS.get(element(label), (None, element(label)))[1]
            names.append(f"{base} {number}" if number else base)
        return tuple(names)

    @property
    def bond_names(self) -> tuple[str, ...]:
        """ "C–O" for each bond."""
        return tuple(f"{self.labels[i]}–{self.labels[j]}" for i, j in self.bonds)

    @property
    def angle_names(self) -> tuple[str, ...]:
        """ "O–C–S" for each angle."""
        return tuple("–".join(self.labels[index] for index in triple) for triple in self.angles)

    @property
    def bond_tags(self) -> tuple[str, ...]:
        """ "co" for each bond: the lowercase labels, as column and metric names spell bonds."""
        return tuple((self.labels[i] + self.labels[j]).lower() for i, j in self.bonds)

    @property
    def angle_tags(self) -> tuple[str, ...]:
        """ "ocs" for each angle: the lowercase labels, vertex in the middle."""
        return tuple("".join(self.labels[k] for k in triple).lower() for triple in self.angles)

    @property
    def channel(self) -> str:
        """The charge channel as ions, e.g. "C²⁺ + O²⁺ + S²⁺"."""
        return " + ".join(
            f"{label}{_superscript_charge(charge)}"
            for label, charge in zip(self.labels, self.charges, strict=True)
        )

    def describe(self) -> str:
        """One line: the name, and the channel."""
        return f"{self.name or ''.join(self.labels)} ({self.channel})"

    def to_dict(self) -> dict:
        """The molecule as a molecule file's JSON object (labels, not indices)."""
        values = {
            "name": self.name,
            "atoms": list(self.labels),
            "charges": list(self.charges),
            "masses": list(self.masses),
            "bonds": [[self.labels[i], self.labels[j]] for i, j in self.bonds],
            "frame": [self.labels[index] for index in self.frame_fragments],
        }
        if self.reference_geometry is not None:
            values["reference_geometry"] = [list(row) for row in self.reference_geometry]
            values["position_spread"] = self.position_spread
        return values

    def same_fragments(self, other: "Molecule") -> bool:
        """Whether both have the same labels, masses and charges (a model fits the other's data)."""
        return (
            self.labels == other.labels
            and np.allclose(self.masses, other.masses, rtol=1e-9)
            and np.allclose(self.charges, other.charges, rtol=1e-12)
        )


def all_pairs(count: int) -> tuple[tuple[int, int], ...]:
    """Every pair (i, j), 0 ≤ i < j < count, in lexicographic order."""
    return tuple(itertools.combinations(range(count), 2))


def pair_distances(positions: np.ndarray, count: int | None = None) -> np.ndarray:
    """Distances (..., pairs) in bohr of positions (..., fragments, 3), pairs as `all_pairs`."""
    count = positions.shape[-2] if count is None else count
    first, second = np.array(all_pairs(count)).T
    return np.linalg.norm(positions[..., first, :] - positions[..., second, :], axis=-1)


def _check_labels(labels) -> None:
    """Raises UserInputError naming --atoms unless every label is a symbol with a number or not."""
    for label in labels:
        if not isinstance(label, str) or not _LABEL.fullmatch(label):
            raise UserInputError(
                f"--atoms: label {label!r} is not an element symbol with an optional number; "
                "expected labels such as C, Br, C1, C2"
            )


def _is_real(value) -> bool:
    is_number = isinstance(value, int | float | np.floating | np.integer)
    return is_number and not isinstance(value, bool) and math.isfinite(value)


def _superscript_charge(charge: float) -> str:
    digits = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
    text = f"{charge:g}" if charge != 1 else ""
    return text.translate(digits) + "⁺"


def _index(labels: tuple[str, ...], label, where: str) -> int:
    if label not in labels:
        raise UserInputError(f"{where}: {label!r} is not one of the fragments {list(labels)}")
    return labels.index(label)


def from_dict(values: dict, where: str = "molecule") -> "Molecule":
    """A Molecule from a molecule file's JSON object; `where` names it in errors."""
    try:
        return _from_dict(values, where)
    except UserInputError as error:
        if where.startswith("--molecule=") and not str(error).startswith(where):
            raise UserInputError(f"{where}: {error}") from None  # name the file, not just a key
        raise


def _from_dict(values: dict, where: str) -> "Molecule":
    if not isinstance(values, dict):
        raise UserInputError(f"{where}: expected a JSON object with 'atoms' and 'charges'")
    unknown = sorted(set(values) - _FILE_KEYS)
    if unknown:
        raise UserInputError(
            f"{where}: unknown keys {unknown}; expected some of {sorted(_FILE_KEYS)}"
        )
    for key in ("atoms", "charges"):
        if key not in values or not isinstance(values[key], list):
            raise UserInputError(f"{where}: '{key}' is missing or not a list")
    labels = tuple(values["atoms"])
    if not all(isinstance(label, str) for label in labels):
        raise UserInputError(f'{where}: \'atoms\' must be strings such as "C", "Br"')
    masses = values.get("masses")
    if masses is None:
        _check_labels(labels)  # before looking their elements up
        masses = [standard_mass(label) for label in labels]
    bonds = values.get("bonds")
    if bonds is None:
        bond_pairs = all_pairs(len(labels))
    else:
        bond_pairs = []
        for bond in bonds:
            if not isinstance(bond, list) or len(bond) != 2:
                raise UserInputError(f"{where}: each bond must be a pair of labels, got {bond!r}")
            i, j = sorted(_index(labels, label, f"{where} bonds") for label in bond)
            if i == j:
                raise UserInputError(f"{where}: bond {bond!r} joins a fragment to itself")
            bond_pairs.append((i, j))
        bond_pairs = tuple(sorted(set(bond_pairs)))
    frame = values.get("frame")
    if frame is None:
        frame_fragments = DEFAULT_FRAME_FRAGMENTS
    else:
        if not isinstance(frame, list) or len(frame) != 3 or len(set(frame)) != 3:
            raise UserInputError(f"{where}: 'frame' must name 3 distinct fragments, got {frame!r}")
        frame_fragments = tuple(_index(labels, label, f"{where} frame") for label in frame)
    reference = values.get("reference_geometry")
    if reference is not None:
        try:
            reference = tuple(tuple(float(x) for x in row) for row in reference)
        except (TypeError, ValueError):
            raise UserInputError(
                f"{where}: 'reference_geometry' must be [x, y, z] numbers in bohr per fragment"
            ) from None
    return Molecule(
        labels=labels,
        masses=tuple(masses),
        charges=tuple(values["charges"]),
        bonds=bond_pairs,
        frame_fragments=frame_fragments,
        reference_geometry=reference,
        position_spread=values.get("position_spread", 0.0),
        name=str(values.get("name", "")),
    )


def built_in_names() -> tuple[str, ...]:
    """The names --molecule accepts besides a file: the JSON files shipped in molecules/."""
    return tuple(sorted(path.stem for path in BUILT_IN_FOLDER.glob("*.json")))


def load(spec: str) -> Molecule:
    """The molecule a --molecule value names: a built-in name or a molecule file's path."""
    built_in = BUILT_IN_FOLDER / f"{spec.lower()}.json"
    path = built_in if spec and "/" not in spec and built_in.is_file() else Path(spec)
    where = f"--molecule={spec!r}"
    if not path.is_file():
        raise UserInputError(
            f"{where} is neither a built-in molecule {list(built_in_names())} nor a file"
        )
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else str(error).splitlines()[0]
        raise UserInputError(f"{where}: not a readable JSON molecule file ({reason})") from None
    return from_dict(values, where)


OCS = load("ocs")


def _numbers(name: str, values: tuple[str, ...]) -> tuple[float, ...]:
    try:
        return tuple(float(value) for value in values)
    except ValueError:
        raise UserInputError(
            f"--{name}={','.join(values)}; expected comma-separated numbers"
        ) from None


@dataclasses.dataclass(frozen=True)
class MoleculeConfig:
    """The molecule flags every command shares: a named or filed molecule, and overrides."""

    molecule: str = option(
        "ocs",
        f"The molecule and charge channel: a built-in name ({', '.join(built_in_names())}) or "
        "a JSON molecule file (see cvae_tf/molecule.py). Default: ocs (C²⁺ + O²⁺ + S²⁺, the "
        "specification's masses).",
        show_default=False,
    )
    atoms: tuple[str, ...] = option(
        (),
        "Fragment labels in column order, replacing the molecule's (element symbols, numbered "
        "if repeated: C1,C2); masses then default to standard atomic weights. Default: the "
        "molecule's.",
        show_default=False,
    )
    masses: tuple[str, ...] = option(
        (),
        "Fragment masses, electron masses, in --atoms order. Default: the molecule's.",
        show_default=False,
    )
    charges: tuple[str, ...] = option(
        (),
        "Fragment charges, e, in --atoms order: the charge channel (1,1,1 for OCS's "
        "O⁺ + C⁺ + S⁺). Default: the molecule's.",
        show_default=False,
    )

    @property
    def given(self) -> bool:
        """Whether any molecule flag differs from its default (a bare --molecule=ocs does not)."""
        return self != MoleculeConfig()

    def resolve(self, default: Molecule | None = None) -> Molecule:
        """The molecule these flags describe, validated (UserInputError naming the flag).

        `default` (a model's molecule) replaces the built-in OCS where --molecule is not given,
        so that --charges alone describes that molecule in another charge channel.
        """
        if default is not None and self.molecule == MoleculeConfig.molecule:
            base = default
        else:
            base = load(self.molecule)
        values = base.to_dict()
        if self.atoms and tuple(self.atoms) != base.labels:
            values = {"name": "", "atoms": list(self.atoms), "charges": values["charges"]}
            if not self.charges and len(self.atoms) != base.num_fragments:
                raise UserInputError(
                    f"--atoms names {len(self.atoms)} fragments but --molecule={self.molecule} "
                    f"has {base.num_fragments}; give --charges too"
                )
        if self.charges:
            values["charges"] = list(_numbers("charges", self.charges))
        if self.masses:
            values["masses"] = list(_numbers("masses", self.masses))
        if len(values["charges"]) != len(values["atoms"]):
            raise UserInputError(
                f"--charges has {len(values['charges'])} values for {len(values['atoms'])} "
                f"fragments {values['atoms']}; expected one each"
            )
        return from_dict(values, "--atoms/--masses/--charges")
