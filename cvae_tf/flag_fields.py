"""absl flags generated from dataclass fields: each field carries its flag's help and choices.

A configuration is a dataclass whose fields are either settings (made with `option`, one flag
each, named like the field) or parts (fields whose type is itself such a dataclass, flattened
into the same flag namespace), the way TF Model Garden defines flags inside one function from
one description. Flag names are unique across the parts, so a configuration also reads and
writes as one flat {flag name: value} dict (`from_dict`, `to_dict`): the form config.json keeps.
"""

import dataclasses
import typing
from collections.abc import Iterator, Sequence

from absl import flags


def option(default, help: str, *, choices: Sequence[str] | None = None, show_default=True):
    """A dataclass field that is also a flag: its default, help (with the unit) and choices.

    The flag's help ends with "Default: <default>." unless `show_default` is False (then the
    help says it, e.g. in two units).
    """
    return dataclasses.field(
        default=default,
        metadata={"help": help, "choices": choices, "show_default": show_default},
    )


def _settings(config_type) -> Iterator[tuple[dataclasses.Field, type]]:
    """(field, type) of every setting of `config_type` and its parts, in declaration order."""
    hints = typing.get_type_hints(config_type)
    for field in dataclasses.fields(config_type):
        if dataclasses.is_dataclass(hints[field.name]):
            yield from _settings(hints[field.name])
        elif "help" in field.metadata:
            yield field, hints[field.name]


def flag_names(config_type) -> tuple[str, ...]:
    """The names of every flag `define_flags(config_type)` defines."""
    return tuple(field.name for field, _ in _settings(config_type))


def define_flags(config_type, flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one absl flag per setting of `config_type` (parts included), with its default."""
    for field, kind in _settings(config_type):
        name, default, metadata = field.name, field.default, field.metadata
        help_text = metadata["help"]
        if metadata["show_default"]:
            shown = ",".join(default) if isinstance(default, tuple) else repr(default)
            help_text = f"{help_text} Default: {shown}."
        if metadata["choices"]:
            flags.DEFINE_enum(
                name, default, metadata["choices"], help_text, flag_values=flag_values
            )
        elif kind == tuple[str, ...]:
            flags.DEFINE_list(name, list(default), help_text, flag_values=flag_values)
        elif kind is bool:
            flags.DEFINE_boolean(name, default, help_text, flag_values=flag_values)
        elif kind is int:
            flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
        elif kind is float:
            flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(name, default, help_text, flag_values=flag_values)


def values_from_flags(config_type, flag_values: flags.FlagValues) -> dict:
    """{flag name: parsed value} of every setting; list flags as tuples of stripped names."""
    values = {}
    for name in flag_names(config_type):
        value = flag_values[name].value
        if isinstance(value, list):  # "cx, cy" → ("cx", "cy")
            value = tuple(item.strip() for item in value)
        values[name] = value
    return values


def from_flags(config_type, flag_values: flags.FlagValues):
    """A `config_type` built (and so validated) from the parsed flags of its settings."""
    return from_dict(config_type, values_from_flags(config_type, flag_values))


def from_dict(config_type, values: dict):
    """A `config_type` built from flat {flag name: value}; settings not named keep defaults."""
    unknown = set(values) - set(flag_names(config_type))
    if unknown:
        raise TypeError(f"{config_type.__name__} has no settings {sorted(unknown)}")
    hints = typing.get_type_hints(config_type)
    arguments = {}
    for field in dataclasses.fields(config_type):
        if dataclasses.is_dataclass(hints[field.name]):
            part = hints[field.name]
            names = set(flag_names(part))
            arguments[field.name] = from_dict(part, {k: v for k, v in values.items() if k in names})
        elif "help" in field.metadata and field.name in values:
            arguments[field.name] = values[field.name]
    return config_type(**arguments)


def to_dict(config) -> dict:
    """The flat {flag name: value} of a configuration and its parts."""
    values = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            values.update(to_dict(value))
        elif "help" in field.metadata:
            values[field.name] = value
    return values
