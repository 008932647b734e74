"""Where a run came from: cvae_tf's version, the command line, the data's digests, flags.cfg."""

import dataclasses
import importlib.metadata
import shlex
import tomllib
from collections.abc import Sequence
from pathlib import Path

from cvae_tf import flag_fields, molecule
from cvae_tf.config import TrainConfig

FLAGFILE = "flags.cfg"
LIBRARY_CALL = "library call: cvae_tf.training.train(config), not a command"
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# Set to a retrain's own values rather than the run's: a retrain starts afresh and never
# replaces a run folder (the flags of a --resume or --overwrite say what happened to the
# folder, not how the model was made).
FRESH_START = {"resume": False, "overwrite": False}
# Left to the retrain's command line, commented out, so that it never writes into this run's
# own folder.
LEFT_OUT = ("output_dir", "run_name")


def package_version() -> str:
    """cvae_tf's version: the installed distribution's, else pyproject.toml's, else "unknown"."""
    try:
        return importlib.metadata.version("cvae_tf")
    except importlib.metadata.PackageNotFoundError:  # run from a source checkout
        pass
    try:
        return str(tomllib.loads(PYPROJECT.read_text())["project"]["version"])
    except (OSError, ValueError, KeyError, TypeError):  # no pyproject beside the package
        return "unknown"


def command_line(argv: Sequence[str], module: str = "cvae_tf.train") -> str:
    """The shell command that ran `python -m <module>` with argv (sys.argv), quoted for a shell."""
    return shlex.join(["python", "-m", module, *argv[1:]])


def run_details(command: str | None, data_digests: dict[str, str], data_sha256: str) -> dict:
    """What run.json records of a run's origin besides keras' and TensorFlow's versions.

    Args:
      command: the command line (command_line), or None for a library call.
      data_digests: {data file: its SHA-256}, in the run's file order.
      data_sha256: the digest --resume compares (run_folder.files_digest of the files).
    """
    return {
        "cvae_tf_version": package_version(),
        "command_line": command if command is not None else LIBRARY_CALL,
        "data_sha256": data_sha256,
        "data_files_sha256": data_digests,
    }


def flagfile_text(config: TrainConfig) -> str:
    """flags.cfg: every flag of the run, one `--name=value` a line, grouped by configuration part.

    `python -m cvae_tf.train --flagfile=<run>/flags.cfg --output_dir=X --run_name=Y` retrains the
    run: --data names the files it read (absolute, a glob expanded in its sorted order; empty for
    the embedded default data set, which is the same everywhere), a molecule file is named by its
    absolute path, --noresume and --nooverwrite start afresh (FRESH_START), and --output_dir and
    --run_name are commented out (LEFT_OUT).
    """
    values = {**flag_fields.to_dict(config), **FRESH_START}
    values["data"] = ",".join(str(path.resolve()) for path in config.data.files)
    spec = values["molecule"]
    if "/" in spec or spec.lower() not in molecule.built_in_names():  # a molecule file's path
        values["molecule"] = str(Path(spec).resolve())
    lines = [
        "# The flags of this run: python -m cvae_tf.train --flagfile=<this file> "
        "--output_dir=DIR --run_name=NAME",
        "# retrains it (same seed and settings: the same metrics on the same machine). The run's",
        "# own --output_dir and --run_name are commented out so that a retrain never writes into",
        "# this folder; --data names the files the run read (run.json has their SHA-256);",
        "# --resume and --overwrite are off whatever the run had.",
    ]
    for title, names in _parts(config):
        lines += ["", f"# {title}"]
        for name in names:
            line = flag_line(name, values[name])
            lines.append(f"# {line}" if name in LEFT_OUT else line)
    return "\n".join(lines) + "\n"


def flag_line(name: str, value) -> str:
    """One flagfile line absl reads back as `value`: booleans as --name / --noname, lists joined."""
    if isinstance(value, bool):
        return f"--{name}" if value else f"--no{name}"
    if isinstance(value, tuple | list):
        return f"--{name}={','.join(str(item) for item in value)}"
    if isinstance(value, float):
        return f"--{name}={value!r}"  # repr: the shortest text that reads back as the same float
    return f"--{name}={value}"


def _parts(config: TrainConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(header, flag names) per part of the configuration; the top level's settings first."""
    parts = []
    for field in dataclasses.fields(config):
        part = getattr(config, field.name)
        if dataclasses.is_dataclass(part):
            parts.append((type(part).__doc__.splitlines()[0], flag_fields.flag_names(type(part))))
    in_parts = {name for _, names in parts for name in names}
    top = tuple(name for name in flag_fields.flag_names(type(config)) if name not in in_parts)
    return [("The run as a whole", top), *parts]
