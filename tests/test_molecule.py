"""The molecule definition: refused inputs name their flag or file; derived values by hand."""

import json
import math

import numpy as np
import pytest

from cvae_tf import molecule
from cvae_tf.errors import UserInputError
from cvae_tf.molecule import MoleculeConfig

CHBRCLF_FILE = json.loads((molecule.BUILT_IN_FOLDER / "chbrclf.json").read_text())


def refusal(make) -> str:
    """The message of the UserInputError `make()` raises, checked to be one line."""
    with pytest.raises(UserInputError) as error:
        make()
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "flags, expected",
    [
        (dict(atoms=("c", "O", "S")), "--atoms: label 'c'"),
        (dict(atoms=("C-1", "O", "S")), "--atoms: label 'C-1'"),
        (dict(atoms=("", "O", "S")), "--atoms: label ''"),
        (dict(atoms=("C", "C", "S")), "--atoms repeats ['c']"),
        (dict(atoms=("C", "O"), charges=("1", "1")), "--atoms has 2 fragments"),
        (dict(atoms=tuple(f"C{i}" for i in range(9)), charges=("1",) * 9), "--atoms has 9"),
        (dict(atoms=("C", "O", "S", "H")), "--atoms names 4 fragments"),
        (dict(masses=("1", "2")), "--masses has 2 values for 3 fragments"),
        (dict(charges=("1", "2", "3", "4")), "--charges has 4 values for 3 fragments"),
        (dict(masses=("0", "1", "2")), "--masses: 0.0 is not a finite number > 0"),
        (dict(masses=("-1", "1", "2")), "--masses: -1.0 is not"),
        (dict(masses=("nan", "1", "2")), "--masses: nan is not"),
        (dict(masses=("heavy", "1", "2")), "--masses=heavy,1,2; expected comma-separated numbers"),
        (dict(charges=("0", "1", "2")), "--charges: 0.0 is not a finite number > 0"),
        (dict(charges=("-2", "1", "2")), "--charges: -2.0 is not"),
        (dict(charges=("nan", "1", "2")), "--charges: nan is not"),
        (dict(charges=("inf", "1", "2")), "--charges: inf is not"),
        (dict(charges=("two", "1", "2")), "--charges=two,1,2; expected comma-separated numbers"),
        (dict(atoms=("Xx", "O", "S")), "no standard mass for 'Xx'; give --masses"),
        (dict(molecule="benzene"), "--molecule='benzene' is neither a built-in molecule"),
    ],
)
def test_bad_flags_are_one_line_errors_naming_the_flag(flags, expected):
    assert expected in refusal(lambda: MoleculeConfig(**flags).resolve())


def test_an_unknown_element_is_accepted_with_its_masses():
    resolved = MoleculeConfig(atoms=("Xx", "O", "S"), masses=("1000", "2000", "3000")).resolve()
    assert resolved.masses == (1000.0, 2000.0, 3000.0)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"atoms": ["C", "O", "S"],', "not a readable JSON molecule file"),
        ("[1, 2, 3]", "expected a JSON object"),
        (json.dumps(CHBRCLF_FILE | {"colour": "red"}), "unknown keys ['colour']"),
        (json.dumps({"atoms": ["C", "O", "S"]}), "'charges' is missing"),
        (json.dumps(CHBRCLF_FILE | {"atoms": [1, 2, 3, 4, 5]}), "'atoms' must be strings"),
        (json.dumps(CHBRCLF_FILE | {"atoms": ["C", "h", "Br", "Cl", "F"]}), "label 'h'"),
        (json.dumps(CHBRCLF_FILE | {"charges": [1, 1, 0, 1, 1]}), "0 is not a finite number"),
        (json.dumps(CHBRCLF_FILE | {"charges": [1, 1, "x", 1, 1]}), "'x' is not a finite number"),
        (json.dumps(CHBRCLF_FILE | {"bonds": [["C", "I"]]}), "'I' is not one of the fragments"),
        (json.dumps(CHBRCLF_FILE | {"bonds": [["C", "C"]]}), "joins a fragment to itself"),
        (json.dumps(CHBRCLF_FILE | {"bonds": [["C"]]}), "each bond must be a pair of labels"),
        (json.dumps(CHBRCLF_FILE | {"frame": ["Br", "Cl"]}), "'frame' must name 3 distinct"),
        (json.dumps(CHBRCLF_FILE | {"frame": ["Br", "Br", "F"]}), "'frame' must name 3 distinct"),
        (json.dumps(CHBRCLF_FILE | {"frame": ["Br", "Cl", "I"]}), "'I' is not one of"),
        (
            json.dumps(CHBRCLF_FILE | {"reference_geometry": [[0, 0, 0]] * 4}),
            "reference_geometry is shaped (4, 3); expected 5",
        ),
        (
            json.dumps(CHBRCLF_FILE | {"reference_geometry": [[0, 0]] * 5}),
            "reference_geometry is shaped (5, 2)",
        ),
        (
            json.dumps(CHBRCLF_FILE | {"reference_geometry": [["a", 0, 0]] * 5}),
            "'reference_geometry' must be [x, y, z] numbers",
        ),
        (
            json.dumps(
                CHBRCLF_FILE
                | {
                    "reference_geometry": [
                        [1, 0, 0],
                        [1, 0, 0],
                        *CHBRCLF_FILE["reference_geometry"][2:],
                    ]
                }
            ),
            "reference_geometry puts two fragments at one place",
        ),
        (json.dumps(CHBRCLF_FILE | {"position_spread": -0.1}), "position_spread=-0.1"),
    ],
)
def test_a_bad_molecule_file_is_a_one_line_error_naming_the_file(tmp_path, text, expected):
    path = tmp_path / "bad.json"
    path.write_text(text)
    message = refusal(lambda: molecule.load(str(path)))
    assert message.startswith(f"--molecule={str(path)!r}")
    assert expected in message


def test_ocs_keeps_the_specifications_columns_masses_bonds_and_channel():
    ocs = molecule.load("ocs")
    axes = ("x", "y", "z")
    assert ocs.position_columns == tuple(f"{atom}{axis}" for atom in "cos" for axis in axes)
    assert ocs.momentum_columns == tuple(f"p{atom}{axis}" for atom in "cos" for axis in axes)
    assert ocs.position_columns[:3] == ("cx", "cy", "cz")
    assert ocs.momentum_columns[-1] == "psz"
    assert ocs.masses == (21894.71361, 29164.39289, 58441.80487)
    assert ocs.bonds == ((0, 1), (0, 2))
    assert ocs.angles == ((1, 0, 2),)
    assert ocs.angle_names == ("O–C–S",)
    assert ocs.pairs == ((0, 1), (0, 2), (1, 2))
    assert ocs.channel == "C²⁺ + O²⁺ + S²⁺"
    assert ocs.describe() == "OCS (C²⁺ + O²⁺ + S²⁺)"


def test_chbrclf_has_standard_masses_and_singly_charged_fragments():
    chbrclf = molecule.load("chbrclf")
    # Standard atomic weights (u) by hand, times mₑ per u.
    weights = {"C": 12.011, "H": 1.008, "Br": 79.904, "Cl": 35.45, "F": 18.998}
    expected = [weights[label] * 1822.888486 for label in ("C", "H", "Br", "Cl", "F")]
    np.testing.assert_allclose(chbrclf.masses, expected, rtol=1e-15)
    assert chbrclf.channel == "C⁺ + H⁺ + Br⁺ + Cl⁺ + F⁺"
    assert chbrclf.position_columns[6:9] == ("brx", "bry", "brz")
    assert chbrclf.num_coordinates == 15 and len(chbrclf.pairs) == 10
    assert chbrclf.frame_fragments == (2, 3, 4)
    assert chbrclf.bond_names == ("C–H", "C–Br", "C–Cl", "C–F")
    assert len(chbrclf.angles) == 6  # every two of C's four bonds
    assert chbrclf.position_spread == 0.1


def test_flags_override_the_named_molecules_charges_and_labels():
    singly = MoleculeConfig(charges=("1", "1", "1")).resolve()
    assert singly.channel == "C⁺ + O⁺ + S⁺"
    assert singly.masses == molecule.OCS.masses
    numbered = MoleculeConfig(atoms=("C1", "C2", "O"), charges=("3", "1", "2")).resolve()
    assert numbered.channel == "C1³⁺ + C2⁺ + O²⁺"
    assert numbered.position_columns[:4] == ("c1x", "c1y", "c1z", "c2x")
    assert numbered.masses[0] == numbered.masses[1] == pytest.approx(12.011 * 1822.888486)
    assert numbered.fragment_names == ("Carbon 1", "Carbon 2", "Oxygen")


def test_a_molecule_file_round_trips(tmp_path):
    chbrclf = molecule.load("chbrclf")
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(chbrclf.to_dict()))
    assert molecule.load(str(path)) == chbrclf
    assert math.isclose(molecule.standard_mass("Br2"), 79.904 * 1822.888486)
