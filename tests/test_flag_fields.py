"""flag_fields on a small configuration of its own: flags, parts, flat dicts, refused names."""

import dataclasses

import pytest
from absl import flags

from cvae_tf import flag_fields
from cvae_tf.flag_fields import option


@dataclasses.dataclass(frozen=True)
class Inner:
    """A part: its settings become flags of the whole configuration."""

    width: int = option(8, "Layer width, units.")
    scale: float = option(0.5, "Scale, bohr.")


@dataclasses.dataclass(frozen=True)
class Outer:
    """Settings of every kind, one part, and a field that is no flag."""

    name: str | None = option(None, "Run name (required).", show_default=False)
    mode: str = option("fast", "How to run.", choices=("fast", "exact"))
    columns: tuple[str, ...] = option(("a", "b"), "Column names.")
    verbose: bool = option(False, "Print more.")
    inner: Inner = Inner()
    cache: tuple = ()  # not a flag: no help


def defined() -> flags.FlagValues:
    flag_values = flags.FlagValues()
    flag_fields.define_flags(Outer, flag_values)
    return flag_values


def test_one_flag_per_setting_in_declaration_order_parts_flattened():
    assert flag_fields.flag_names(Outer) == ("name", "mode", "columns", "verbose", "width", "scale")


def test_each_kind_of_setting_gets_its_absl_flag_help_and_default():
    flag_values = defined()
    expected = {  # absl itself puts an enum's choices in front of its help
        "name": ("Run name (required).", None),
        "mode": ("<fast|exact>: How to run. Default: 'fast'.", "fast"),
        "columns": ("Column names. Default: a,b.", ["a", "b"]),
        "verbose": ("Print more. Default: False.", False),
        "width": ("Layer width, units. Default: 8.", 8),
        "scale": ("Scale, bohr. Default: 0.5.", 0.5),
    }
    for name, (help_text, default) in expected.items():
        assert flag_values[name].help == help_text, name
        assert flag_values[name].default == default, name
    assert flag_values["mode"].parser.enum_values == ["fast", "exact"]
    kinds = {name: flag_values[name].parser.flag_type() for name in expected}
    assert kinds == {
        "name": "string",
        "mode": "string enum",
        "columns": "comma separated list of strings",
        "verbose": "bool",
        "width": "int",
        "scale": "float",
    }


def test_parsed_flags_build_the_configuration_with_its_part():
    flag_values = defined()
    flag_values(["prog", "--name=x", "--mode=exact", "--columns= c, d", "--verbose", "--width=3"])
    config = flag_fields.from_flags(Outer, flag_values)
    assert config == Outer(
        name="x", mode="exact", columns=("c", "d"), verbose=True, inner=Inner(width=3)
    )


def test_flat_dict_round_trip_and_unnamed_settings_keep_defaults():
    config = Outer(name="run", columns=("z",), inner=Inner(scale=2.0))
    values = flag_fields.to_dict(config)
    assert values == {
        "name": "run",
        "mode": "fast",
        "columns": ("z",),
        "verbose": False,
        "width": 8,
        "scale": 2.0,
    }
    assert flag_fields.from_dict(Outer, values) == config
    assert flag_fields.from_dict(Outer, {"width": 5}) == Outer(inner=Inner(width=5))


def test_unknown_names_are_refused_naming_them():
    with pytest.raises(TypeError, match=r"Outer has no settings \['cache', 'depth'\]"):
        flag_fields.from_dict(Outer, {"depth": 2, "cache": (), "width": 1})
