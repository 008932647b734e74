"""The run folder's life: its partial folder and lock, its format version, its atomic publishing."""

import contextlib
import ctypes
import dataclasses
import errno
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from cvae_tf import file_writes, flag_fields, molecule, training_momenta
from cvae_tf.config import RESUMABLE_CHANGES, TrainConfig
from cvae_tf.errors import UserInputError
from cvae_tf.file_flags import EventFileConfig

# Bump when a run folder's layout or its SavedModel's endpoints change in a way predict must know.
# 3: molecule.json and the SavedModel's `molecule` endpoint; 4: training_momenta.json
FORMAT_VERSION = 4
RUN_FILE = "run.json"  # written last: its presence marks a complete run
MOLECULE_FILE = "molecule.json"  # the molecule file of the fragments the model was trained on
REQUIRED_FILES = (
    RUN_FILE,
    "config.json",
    MOLECULE_FILE,
    training_momenta.TRAINING_MOMENTA_FILE,
    "metrics.json",
    "saved_model/saved_model.pb",
)
PARTIAL_SUFFIX = ".partial"
RESUME_FILE = "resume.json"  # what a --resume must match: the flags and the data's digest


def partial_path(output_dir: Path, run_name: str) -> Path:
    """Where a run is written until complete: the hidden `<output_dir>/.<run_name>.partial`.

    The name is the same on every attempt so that `--resume` finds an interrupted run.
    """
    return output_dir / f".{run_name}{PARTIAL_SUFFIX}"


def is_partial(path: Path) -> bool:
    """Whether `path` is named like an unfinished run's partial folder."""
    return path.name.startswith(".") and path.name.endswith(PARTIAL_SUFFIX)


def write_run_file(work_dir: Path, **details) -> None:
    """Writes run.json (format version and `details`); call it last, once all else is saved.

    training writes as details: `resumed_at_epochs`, the keras, TensorFlow and cvae_tf versions,
    the command line and the data's SHA-256 (provenance.run_details).
    """
    content = {"format_version": FORMAT_VERSION, **details}
    file_writes.write_text(work_dir / RUN_FILE, json.dumps(content, indent=2) + "\n")


def write_molecule(work_dir: Path, fragments: molecule.Molecule) -> None:
    """Writes molecule.json: the run's molecule as a molecule file (--molecule accepts it)."""
    text = json.dumps(fragments.to_dict(), indent=2, ensure_ascii=False)
    file_writes.write_text(work_dir / MOLECULE_FILE, text + "\n")


def read_molecule(model_dir: Path) -> molecule.Molecule:
    """The molecule of a run folder (molecule.json), checked; a damaged file refused."""
    values = _read_json_object(model_dir, MOLECULE_FILE)
    return molecule.from_dict(values, f"--model_dir='{model_dir}' {MOLECULE_FILE}")


def model_molecule(model_dir: Path, fragments: molecule.MoleculeConfig) -> molecule.Molecule:
    """The run folder's molecule; molecule flags, where given, must describe the same fragments.

    The flags override the model's molecule as they would the built-in one (--charges=1,1,1
    alone is the model's molecule in another channel), and are refused in one line naming both
    if the result differs from it.
    """
    trained = read_molecule(model_dir)
    if fragments.given:
        requested = fragments.resolve(trained)
        if not requested.same_fragments(trained):
            raise UserInputError(
                f"--molecule/--atoms/--masses/--charges describe {_fragments_text(requested)}, "
                f"but --model_dir='{model_dir}' was trained on {_fragments_text(trained)}; leave "
                "those flags out (the model's molecule is used) or use a model of that molecule"
            )
    return trained


def _fragments_text(fragments: molecule.Molecule) -> str:
    masses = ", ".join(f"{mass:.10g}" for mass in fragments.masses)
    return f"{fragments.describe()} with masses {masses} mₑ"


def model_event_file(events: EventFileConfig, model_dir: str | Path) -> EventFileConfig:
    """`events` read as the model in `model_dir` reads them: its molecule and its columns.

    Column flags that name other columns than the model's config.json, and molecule flags that
    describe other fragments (model_molecule), are refused in one line.
    """
    model_dir = Path(model_dir)
    run_config = check_complete(model_dir)
    model_molecule(model_dir, events.fragments)
    for name in ("position_columns", "momentum_columns"):
        given, trained = tuple(getattr(events, name)), tuple(run_config[name])
        if given and given != trained:
            raise UserInputError(
                f"--{name}={','.join(given)} differ from the columns --model_dir='{model_dir}' "
                f"was trained on ({','.join(trained)}); leave --{name} out to read the model's"
            )
    return dataclasses.replace(
        events,
        position_columns=tuple(run_config["position_columns"]),
        momentum_columns=tuple(run_config["momentum_columns"]),
        fragments=molecule.MoleculeConfig(molecule=str(model_dir / MOLECULE_FILE)),
    )


def check_complete(model_dir: Path) -> dict:
    """The config.json of a complete run folder this version can read; else UserInputError."""
    if not model_dir.is_dir():
        raise UserInputError(
            f"--model_dir='{model_dir}' is not a folder; expected a run folder written by "
            "cvae_tf.train"
        )
    if is_partial(model_dir):
        run_name = model_dir.name[1 : -len(PARTIAL_SUFFIX)]
        raise UserInputError(
            f"--model_dir='{model_dir}' is the partial folder of an unfinished training "
            f"(interrupted or still running); finish it with cvae_tf.train --run_name={run_name} "
            "--resume, or use a complete run folder"
        )
    if not (model_dir / RUN_FILE).is_file():
        raise UserInputError(
            f"--model_dir='{model_dir}' has no {RUN_FILE}: not a complete run folder; expected "
            "a folder written by cvae_tf.train"
        )
    version = _read_json_object(model_dir, RUN_FILE).get("format_version")
    if version != FORMAT_VERSION:
        raise UserInputError(
            f"--model_dir='{model_dir}' was written in run format version {version}; this "
            f"cvae_tf reads version {FORMAT_VERSION}: retrain the model with this version"
        )
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise UserInputError(
            f"--model_dir='{model_dir}' lacks {', '.join(missing)}: an incomplete run folder"
        )
    run_config = _read_json_object(model_dir, "config.json")
    count = read_molecule(model_dir).num_coordinates
    for name in ("position_columns", "momentum_columns"):
        columns = run_config.get(name)
        if not (
            isinstance(columns, list)
            and len(columns) == count
            and all(isinstance(column, str) for column in columns)
        ):
            raise UserInputError(
                f"--model_dir='{model_dir}' has a damaged config.json: '{name}' is "
                f"{json.dumps(columns)[:80]}, expected a list of {count} column names"
            )
    return run_config


def _read_json_object(model_dir: Path, name: str) -> dict:
    """The JSON object in `model_dir / name`; a garbled, non-UTF-8 or unreadable file refused."""
    try:
        content = json.loads((model_dir / name).read_text(encoding="utf-8"))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        raise UserInputError(
            f"--model_dir='{model_dir}' has an unreadable {name} (not JSON text): a damaged run "
            "folder; retrain, or copy the folder again"
        ) from None
    except OSError as error:
        raise UserInputError(
            f"--model_dir='{model_dir}' has an unreadable {name}: {error.strerror}"
        ) from None
    if not isinstance(content, dict):
        raise UserInputError(
            f"--model_dir='{model_dir}' has an unreadable {name} (a JSON {type(content).__name__}"
            ", not an object): a damaged run folder"
        )
    return content


@contextlib.contextmanager
def locked_partial(path: Path, fresh: bool) -> Iterator[Path]:
    """Creates (or, unless `fresh`, reuses) the partial folder and holds its lock meanwhile.

    The lock (file_writes.lock) is on the folder itself, or on Windows, which cannot open a
    folder and would not rename one with a file open inside, on a `.lock` file beside it: the
    system drops it when the process dies, however it dies, so a killed training never leaves a
    folder that looks busy. A `fresh` start first removes a leftover folder, which only
    --overwrite asks for.
    """
    if fresh and path.exists():
        with _flock(path):
            shutil.rmtree(path)
    try:
        with file_writes.writing(path):
            path.mkdir(exist_ok=not fresh)
    except FileExistsError:
        raise UserInputError(f"'{path}' was just created by another training") from None
    with _flock(path):
        yield path


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    if file_writes.FOLDERS_LOCKABLE:
        beside = None
        descriptor = os.open(path, os.O_RDONLY)
    else:
        beside = path.with_name(f"{path.name}.lock")
        with file_writes.writing(beside):
            descriptor = os.open(beside, os.O_RDWR | os.O_CREAT)
    try:
        try:
            file_writes.lock(descriptor, wait=False)
        except BlockingIOError:
            raise UserInputError(
                f"'{path}' is being written by a training that is still running; wait for it "
                "to end or stop it first"
            ) from None
        yield
    finally:
        os.close(descriptor)  # releases the lock
        if beside is not None:
            with contextlib.suppress(OSError):  # another training's lock now, or already gone
                beside.unlink()


def publish(work_dir: Path, run_dir: Path) -> None:
    """Moves a finished run into place; an existing run is swapped out in one step, then removed.

    The old run is never deleted before the new one stands complete under its name.
    """
    if not run_dir.exists():
        os.rename(work_dir, run_dir)
    else:
        exchange(work_dir, run_dir)
        shutil.rmtree(work_dir)  # now the old run
    file_writes.fsync_directory(run_dir.parent)  # the new name reaches the disk


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(first: Path, second: Path) -> None:
    """Swaps two folders atomically with Linux' renameat2(RENAME_EXCHANGE).

    os.replace cannot put a folder onto a non-empty one, and no standard-library call swaps two,
    hence the C call. Where the system lacks it, three renames do the same with a moment in which
    `second` is missing, though its content always exists under one of the names.
    """
    renameat2 = None
    if sys.platform.startswith("linux"):  # elsewhere ctypes.CDLL(None) may not even load
        renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is not None:
        if not renameat2(
            _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
        ):
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):  # EINVAL: the file system cannot swap
            raise OSError(code, os.strerror(code), str(first), None, str(second))
    aside = second.with_name(f".{second.name}.replaced")
    os.rename(second, aside)
    os.rename(first, second)
    os.rename(aside, first)


def check_run_name(config: TrainConfig, run_dir: Path, work_dir: Path) -> None:
    """Refuses, before any heavy work, a run that would replace or ignore another one."""
    output = config.output
    if run_dir.exists() and not output.overwrite:
        if output.resume:
            raise UserInputError(
                f"run folder '{run_dir}' is already complete, there is nothing to resume; pass "
                "--overwrite instead of --resume to train it afresh"
            )
        raise UserInputError(
            f"run folder '{run_dir}' already exists; choose another --run_name or pass "
            "--overwrite to replace it"
        )
    if not work_dir.exists():
        if output.resume:
            raise UserInputError(
                f"--resume: there is no unfinished run '{work_dir}' to continue; start the run "
                "without --resume"
            )
        return
    if not (output.resume or output.overwrite):
        raise UserInputError(
            f"'{work_dir}' holds an unfinished run of '{run_dir.name}' (interrupted, or still "
            "running); pass --resume to continue it or --overwrite to start afresh"
        )
    if output.resume and (work_dir / RESUME_FILE).is_file():
        started = json.loads((work_dir / RESUME_FILE).read_text())["config"]
        now = _resumable_config(config)
        for name, value in started.items():
            if now.get(name) != value:
                raise UserInputError(
                    f"--resume: the unfinished run in '{work_dir}' was started with "
                    f"--{name}={_flag_text(value)}, not {_flag_text(now.get(name))}; resume with "
                    "the same flags (only --epochs and the evaluation flags may change) or pass "
                    "--overwrite to start afresh"
                )


def _resumable_config(config: TrainConfig) -> dict:
    """The flags a --resume must repeat, as JSON values."""
    values = flag_fields.to_dict(config)
    kept = {name: value for name, value in values.items() if name not in RESUMABLE_CHANGES}
    return json.loads(json.dumps(kept))


def _flag_text(value) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


def start_or_resume(config: TrainConfig, work_dir: Path, data_digest: str) -> dict:
    """The partial folder's resume state: read and checked on --resume, else written afresh."""
    resume_file = work_dir / RESUME_FILE
    if config.output.resume and resume_file.is_file():
        state = json.loads(resume_file.read_text())
        if state["data_sha256"] != data_digest:
            raise UserInputError(
                f"--resume: the data differ from those the unfinished run in '{work_dir}' "
                "started on (another file content); resume on the same data or pass --overwrite"
            )
        return state
    state = {"config": _resumable_config(config), "data_sha256": data_digest}
    state["resumed_at_epochs"] = []
    # Atomically: a kill mid-write leaves the old file whole.
    file_writes.write_text(resume_file, json.dumps(state, indent=2) + "\n")
    return state


def files_digest(paths: Sequence[Path]) -> str:
    """The SHA-256 of one file's content, or of the sequence of several files' digests."""
    return combined_digest([file_digest(path) for path in paths])


def combined_digest(digests: Sequence[str]) -> str:
    """The digest of several files from theirs (files_digest); one file's is its own."""
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
