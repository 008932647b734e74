"""Every user mistake in every command: one line naming the file, flag or value; nothing written.

The commands run in-process (tests/commands.py); the subprocess tests of each command check
that such an error leaves with exit code 2 and no traceback.
"""

import contextlib
import gzip
import json
import os
import re
import shutil
import socket
import threading

import numpy as np
import pandas as pd
import pytest

from cvae_tf import csv_files, data, event_files, run_folder
from tests.commands import call

COLUMNS = [*data.POSITION_COLUMNS, *data.MOMENTUM_COLUMNS]
ROWS = 20


def csv_text(columns=COLUMNS, rows=ROWS, sep=",", cell=None) -> str:
    """A small table; `cell=(row, column, text)` replaces one cell's text."""
    values = np.arange(rows * len(columns)).reshape(rows, len(columns)) % 7 + 1.5
    lines = [[f"{value:g}" for value in row] for row in values]
    if cell:
        row, column, text = cell
        lines[row][columns.index(column)] = text
    return "\n".join([sep.join(columns)] + [sep.join(line) for line in lines]) + "\n"


def text_file(text, encoding="utf-8"):
    return lambda path: path.write_bytes(text.encode(encoding))


def bytes_file(content):
    return lambda path: path.write_bytes(content)


# Name → (how to write the file at `path`, what the message must say besides the path).
BAD_FILES = {
    "missing": (None, "does not exist|is not a file"),
    "directory": ("dir", "is a directory|is not a file"),
    "empty": (text_file(""), "is empty; expected a header line"),
    "blank first line": (text_file("\n" + csv_text()), "starts with an empty line"),
    "header only": (text_file(",".join(COLUMNS) + "\n"), "has a header but no data rows"),
    "PNG image": (bytes_file(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "not a text CSV file"),
    "gzip archive": (bytes_file(gzip.compress(csv_text().encode())), "not a text CSV file"),
    "UTF-16": (text_file("\ufeff" + csv_text(), "utf-16-le"), "is UTF-16 text; expected UTF-8"),
    "Latin-1": (text_file(csv_text().replace("pcx", "pcé"), "latin-1"), "not a UTF-8 text"),
    "semicolons": (text_file(csv_text(sep=";")), r"separated by ';' \(semicolon\); expected comma"),
    "tabs": (text_file(csv_text(sep="\t")), "separated by tab; expected comma-separated"),
    "missing column": (
        text_file(csv_text([c for c in COLUMNS if c != "pcy"])),
        r"lacks columns \['pcy'\]; columns found: \[",
    ),
    "duplicate column": (
        text_file(csv_text([*COLUMNS, "pcx"])),
        r"duplicate column names \['pcx'\]",
    ),
    "text cell": (
        text_file(csv_text(cell=(2, "pox", "abc"))),
        r"column 'pox' has a non-numeric value 'abc' in data row 3 \(line 4\)",
    ),
    "NaN cell": (
        text_file(csv_text(cell=(4, "psz", "nan"))),
        r"NaN or infinite values in data rows 5 \(first in column 'psz'\)",
    ),
    "infinite cell": (text_file(csv_text(cell=(0, "pcx", "-inf"))), "NaN or infinite values"),
    "empty cell": (
        text_file(csv_text(cell=(1, "poy", ""))),
        "NaN or infinite values in data rows 2",
    ),
    "1e300": (
        text_file(csv_text(cell=(6, "pcx", "1e300"))),
        r"column 'pcx' has the value 1e\+300 in data row 7 \(line 8\), beyond ±1e\+18",
    ),
    "ragged row": (text_file(csv_text() + ",".join(["1"] * 20) + "\n"), "not a well-formed CSV"),
    "open quote": (text_file(csv_text(cell=(3, "pcz", '"1.5'))), "not a well-formed CSV"),
}


def make_bad_file(tmp_path, case):
    writer = BAD_FILES[case][0]
    path = tmp_path / "events.csv"
    if writer == "dir":
        path.mkdir()
    elif writer is not None:
        writer(path)
    return path


def command_args(command, path, tmp_path, run_dir=None):
    """The command line that reads `path`, writing (if at all) into tmp_path/out."""
    output = tmp_path / "out"
    return {
        "train": ("train", f"--data={path}", f"--output_dir={output}", "--epochs=1"),
        "check_data": ("check_data", f"--data={path}"),
        "align": ("align", f"--data={path}", f"--output={output}"),
        "predict": ("predict", f"--model_dir={run_dir}", f"--input={path}", f"--output={output}"),
    }[command]


def assert_refused(message, *fragments):
    assert message is not None, "the input was accepted"
    for fragment in fragments:
        assert re.search(fragment, message), (fragment, message)


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("command", ["train", "check_data", "align"])
def test_bad_data_files(tmp_path, command, case):
    path = make_bad_file(tmp_path, case)
    before = sorted(tmp_path.rglob("*"))
    message = call(*command_args(command, path, tmp_path))
    assert_refused(message, re.escape(str(path)), BAD_FILES[case][1])
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_momenta_files_for_predict(quick_run, tmp_path, case):
    run_dir, _ = quick_run
    path = make_bad_file(tmp_path, case)
    before = sorted(tmp_path.rglob("*"))
    message = call(*command_args("predict", path, tmp_path, run_dir))
    assert_refused(message, re.escape(str(path)), BAD_FILES[case][1])
    assert sorted(tmp_path.rglob("*")) == before


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "events.csv"
    path.write_text(csv_text())

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(csv_files, "open", denied, raising=False)  # chmod is no barrier to root
    message = call("check_data", f"--data={path}")
    assert_refused(message, f"data file '{path}' cannot be read: Permission denied")


def reformatted(events_csv, tmp_path, *, bom=False, quoted=False, spaced=False, crlf=False):
    """The simulated events, written with a spreadsheet's habits."""
    frame = pd.read_csv(events_csv, dtype=str)
    quote = '"' if quoted else ""
    sep = ", " if spaced else ","
    newline = "\r\n" if crlf else "\n"
    lines = [sep.join(f"{quote}{name}{quote}" for name in frame.columns)]
    lines += [sep.join(f"{quote}{cell}{quote}" for cell in row) for row in frame.to_numpy()]
    text = ("\ufeff" if bom else "") + newline.join(lines) + newline * 4  # trailing empty lines
    path = tmp_path / "formatted.csv"
    path.write_bytes(text.encode())
    return path


@pytest.mark.parametrize(
    "habit", [{}, {"bom": True}, {"quoted": True}, {"spaced": True}, {"crlf": True}]
)
def test_spreadsheet_habits_are_read(events_csv, tmp_path, habit):
    path = reformatted(events_csv, tmp_path, **habit)
    np.testing.assert_array_equal(
        event_files.load_events(path).momenta, event_files.load_events(events_csv).momenta
    )
    assert call("check_data", f"--data={path}", "--sample_size=50") is None


def test_predict_reads_every_habit_at_once(quick_run, events_csv, tmp_path):
    run_dir, _ = quick_run
    path = reformatted(events_csv, tmp_path, bom=True, quoted=True, spaced=True, crlf=True)
    output = tmp_path / "positions.csv"
    args = (f"--model_dir={run_dir}", f"--input={path}", f"--output={output}")
    assert call("predict", *args) is None
    assert len(pd.read_csv(output)) == 600


# Train flags: each refused before any data is read or folder made.
TRAIN_FLAGS = [
    ("--hidden_dim=0", "--hidden_dim=0; expected an integer ≥ 1"),
    ("--hidden_dim=abc", "flag --hidden_dim=abc: invalid literal for int"),
    ("--num_layers=0", "--num_layers=0; expected an integer ≥ 1"),
    ("--num_layers=40", r"make a layer .* units wide; expected hidden_dim·2\^\(num_layers−1\) ≤"),
    ("--latent_dim=-1", "--latent_dim=-1; expected an integer ≥ 0"),
    ("--batch_size=0", "--batch_size=0; expected an integer ≥ 1"),
    ("--steps_per_execution=0", "--steps_per_execution=0; expected an integer ≥ 1"),
    ("--epochs=0", "--epochs=0; expected an integer ≥ 1"),
    ("--epochs=1.5", "flag --epochs=1.5: invalid literal for int"),
    ("--patience=-1", "--patience=-1; expected an integer ≥ 0"),
    ("--num_samples=0", "--num_samples=0; expected an integer ≥ 1"),
    ("--num_display_samples=-2", "--num_display_samples=-2; expected an integer ≥ 0"),
    ("--learning_rate=0", "--learning_rate=0.0; expected a number > 0"),
    ("--learning_rate=-1e-3", "--learning_rate=-0.001; expected a number > 0"),
    ("--learning_rate=inf", "--learning_rate=inf; expected a finite number > 0"),
    ("--learning_rate=abc", "flag --learning_rate=abc: could not convert"),
    ("--beta=-1", "--beta=-1.0; expected a number ≥ 0"),
    ("--beta=inf", "--beta=inf; expected a finite number ≥ 0"),
    ("--l1=-0.1", "--l1=-0.1; expected a number ≥ 0"),
    ("--l2=nan", "--l2=nan; expected a number ≥ 0"),
    ("--nll_beta=2", r"--nll_beta=2.0; expected a number in \[0, 1\]"),
    ("--prior_weight=1", r"--prior_weight=1.0; expected a number in \[0, 1\)"),
    ("--lr_factor=1", r"--lr_factor=1.0; expected a number in \(0, 1\)"),
    ("--lr_patience=-1", "--lr_patience=-1; expected an integer ≥ 0"),
    ("--min_epoch_steps=0", "--min_epoch_steps=0; expected an integer ≥ 1"),
    ("--min_learning_rate=-1", "--min_learning_rate=-1.0; expected a finite number ≥ 0"),
    ("--min_delta_factor=1", r"--min_delta_factor=1.0; expected a number in \[0, 1\)"),
    ("--min_delta_factor=-0.1", r"--min_delta_factor=-0.1; expected a number in \[0, 1\)"),
    ("--train_fraction=0", r"--train_fraction=0.0; expected a number in \(0, 1\)"),
    ("--train_fraction=1.5", r"--train_fraction=1.5; expected a number in \(0, 1\)"),
    ("--val_fraction=-0.2", r"--val_fraction=-0.2; expected a number in \(0, 1\)"),
    ("--train_fraction=0.9", "--train_fraction \\+ --val_fraction = 1.05 leaves no test events"),
    ("--seed=-1", r"--seed=-1; expected an integer in \[0, 4294967295\]"),
    ("--seed=4294967296", r"--seed=4294967296; expected an integer in \[0, 4294967295\]"),
    ("--activation=sigmoidal", "--activation='sigmoidal' is not a keras activation.*relu"),
    ("--activation=threshold", "--activation='threshold' is not a keras activation usable here"),
    ("--position_norm=zscore", "flag --position_norm=zscore: value should be one of <none|"),
    ("--momentum_norm=robust", "flag --momentum_norm=robust: value should be one of <none|"),
    ("--latent_prior=flat", "flag --latent_prior=flat: value should be one of"),
    ("--frame=body", "flag --frame=body: value should be one of"),
    ("--select=best", "flag --select=best: value should be one of"),
    ("--center=mass", "flag --center=mass: value should be one of"),
    ("--jit_compile=maybe", "flag --jit_compile=maybe: .*Non-boolean argument"),
    ("--position_columns=cx,cy", r"--position_columns has 2 names \['cx', 'cy'\]; expected 9"),
    ("--momentum_columns=" + ",".join(["p"] * 9), "expected 9 distinct names"),
    ("--momentum_columns=" + ",".join(data.POSITION_COLUMNS), "share"),
    ("--position_columns=" + ",".join(f"r{i}" for i in range(9)), r"lacks columns \['r0'"),
    ("--data=/no/such.csv", "--data='/no/such.csv' is not a file; expected a CSV or Parquet file"),
    ("--run_name=a/b", "--run_name='a/b'; expected a plain folder name"),
    ("--run_name=.hidden", "--run_name='.hidden'; expected a plain folder name, not starting"),
    ("--resume", "--resume needs the --run_name of the run to continue"),
    ("--resume --overwrite", "--resume and --overwrite contradict each other"),
    ("--no_such_flag=1", "Unknown command line flag 'no_such_flag'"),
]


@pytest.mark.parametrize("flag, message", TRAIN_FLAGS)
def test_bad_train_flags(events_csv, tmp_path, flag, message):
    args = ["train", f"--data={events_csv}", f"--output_dir={tmp_path / 'runs'}", *flag.split()]
    assert_refused(call(*args), message)
    assert not (tmp_path / "runs").exists()


def test_output_dir_that_is_a_file(events_csv, tmp_path):
    not_a_folder = tmp_path / "runs"
    not_a_folder.write_text("keep me\n")
    message = call("train", f"--data={events_csv}", f"--output_dir={not_a_folder}")
    assert_refused(message, f"--output_dir='{not_a_folder}' is a file; expected a folder")
    assert not_a_folder.read_text() == "keep me\n"


@pytest.fixture
def momenta_csv(events_csv, tmp_path):
    path = tmp_path / "momenta.csv"
    pd.read_csv(events_csv).iloc[:10][list(data.MOMENTUM_COLUMNS)].to_csv(path, index=False)
    return path


def damaged_copy(run_dir, tmp_path, name, damage):
    """A copy of a complete run folder, damaged by `damage(folder)`."""
    copy = tmp_path / name
    shutil.copytree(run_dir, copy)
    damage(copy)
    return copy


def write_run_file(content):
    return lambda folder: (folder / run_folder.RUN_FILE).write_text(content)


def test_bad_predict_inputs(quick_run, momenta_csv, tmp_path):
    run_dir, _ = quick_run
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n")
    positions_only = tmp_path / "positions_only.csv"
    positions_only.write_text(",".join(data.POSITION_COLUMNS) + "\n" + ",".join("1" * 9) + "\n")
    partial = damaged_copy(run_dir, tmp_path, ".quick.partial", lambda f: None)
    old = damaged_copy(run_dir, tmp_path, "old", write_run_file('{"format_version": 0}'))
    garbled = damaged_copy(run_dir, tmp_path, "garbled", write_run_file("{not json"))
    no_run_file = damaged_copy(
        run_dir, tmp_path, "no_run_file", lambda f: f.joinpath("run.json").unlink()
    )
    no_model = damaged_copy(
        run_dir, tmp_path, "no_model", lambda f: shutil.rmtree(f / "saved_model")
    )
    no_metrics = damaged_copy(
        run_dir, tmp_path, "no_metrics", lambda f: (f / "metrics.json").unlink()
    )
    output = tmp_path / "out.csv"
    cases = [
        ({"--model_dir": None}, "--model_dir is required"),
        ({"--input": None}, "--input is required"),
        ({"--output": None}, "--output is required"),
        ({"--model_dir": tmp_path / "nope"}, "is not a folder; expected a run folder"),
        ({"--model_dir": existing}, "is not a folder; expected a run folder"),
        ({"--model_dir": tmp_path}, "has no run.json: not a complete run folder"),
        ({"--model_dir": partial}, "is the partial folder of an unfinished training.*--resume"),
        ({"--model_dir": no_run_file}, "has no run.json: not a complete run folder"),
        (
            {"--model_dir": old},
            "written in run format version 0; this cvae_tf reads version "
            f"{run_folder.FORMAT_VERSION}",
        ),
        ({"--model_dir": garbled}, "has an unreadable run.json"),
        ({"--model_dir": no_model}, "lacks saved_model/saved_model.pb: an incomplete run folder"),
        ({"--model_dir": no_metrics}, "lacks metrics.json: an incomplete run folder"),
        ({"--input": positions_only}, r"lacks columns \['pcx'"),
        ({"--output": momenta_csv}, "is the input file; choose another path"),
        ({"--output": existing}, "exists; pass --overwrite to replace it"),
        ({"--output": tmp_path}, "is a folder; expected a CSV or Parquet"),
        ({"--output": tmp_path / "missing" / "out.csv"}, "folder '.*missing' is missing"),
        ({"--num_samples": 0}, "--num_samples=0; expected an integer ≥ 1"),
        ({"--num_samples": -3}, "--num_samples=-3; expected an integer ≥ 1"),
        ({"--num_samples": 2.5}, "flag --num_samples=2.5: invalid literal for int"),
        ({"--select": "best"}, "flag --select=best: value should be one of <none|energy>"),
    ]
    for change, message in cases:
        given = {"--model_dir": run_dir, "--input": momenta_csv, "--output": output, **change}
        args = [f"{flag}={value}" for flag, value in given.items() if value is not None]
        before = sorted(tmp_path.rglob("*"))
        assert_refused(call("predict", *args), message)
        assert sorted(tmp_path.rglob("*")) == before, change  # nothing written
    assert existing.read_text() == "keep me\n"


def _variables_data(folder):
    return next((folder / "saved_model" / "variables").glob("variables.data-*"))


def _halve(path):
    os.truncate(path, path.stat().st_size // 2)


def _garble(path, offset=0):
    with open(path, "r+b") as stream:
        stream.seek(offset)
        stream.write(b"\xff" * 64)


# Name → (how the copied run folder is damaged, what the message must say besides the folder).
DAMAGED_MODELS = {
    "saved_model.pb junk": (
        lambda f: (f / "saved_model" / "saved_model.pb").write_bytes(b"not a protobuf" * 9),
        r"damaged saved_model/saved_model.pb \(not a SavedModel protobuf\)",
    ),
    "saved_model.pb truncated": (
        lambda f: _halve(f / "saved_model" / "saved_model.pb"),
        "damaged saved_model/saved_model.pb",
    ),
    "saved_model.pb empty": (
        lambda f: os.truncate(f / "saved_model" / "saved_model.pb", 0),
        "damaged saved_model/saved_model.pb",
    ),
    "variables.index missing": (
        lambda f: (f / "saved_model" / "variables" / "variables.index").unlink(),
        "lacks saved_model/variables/variables.index: an incomplete run folder",
    ),
    "variables.index junk": (
        lambda f: (f / "saved_model" / "variables" / "variables.index").write_bytes(b"junk"),
        r"damaged saved_model/variables \(truncated or garbled\)",
    ),
    "variables.data truncated": (
        lambda f: _halve(_variables_data(f)),
        r"damaged saved_model/variables \(truncated or garbled\)",
    ),
    "variables.data missing": (
        lambda f: _variables_data(f).unlink(),
        r"lacks saved_model/variables/variables.data-\*",
    ),
    "variables.data garbled": (
        lambda f: _garble(_variables_data(f)),
        r"damaged saved_model/variables \(truncated or garbled\)",
    ),
    "config.json garbled": (
        lambda f: (f / "config.json").write_text("{not json"),
        "has an unreadable config.json",
    ),
    "config.json without columns": (
        lambda f: (f / "config.json").write_text('{"seed": 0}'),
        "damaged config.json: 'position_columns' is null, expected a list of 9 column names",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_MODELS))
def test_damaged_model_folders_are_refused(quick_run, momenta_csv, tmp_path, case):
    """A truncated, garbled or missing file of a run folder: one line naming folder and file."""
    run_dir, _ = quick_run
    damage, message = DAMAGED_MODELS[case]
    damaged = damaged_copy(run_dir, tmp_path, "damaged", damage)
    output = tmp_path / "out.csv"
    before = sorted(tmp_path.rglob("*"))
    given = call(
        "predict", f"--model_dir={damaged}", f"--input={momenta_csv}", f"--output={output}"
    )
    assert_refused(given, re.escape(f"--model_dir='{damaged}'"), message)
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


class _FifoUnblocker:
    """Opens a FIFO's writing end, then closes it, once a reader waits: a test cannot hang.

    A non-blocking open for writing succeeds only while the FIFO has a reader; the reader then
    sees the end of the file.
    """

    def __init__(self, path):
        self.path, self.done = path, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self):
        while not self.done.wait(0.1):
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # ENXIO: no reader yet
                continue

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def make_special_file(tmp_path, kind):
    """A path that is no regular file: a FIFO, a bound UNIX socket, or /dev/zero."""
    if kind == "/dev/zero":
        return "/dev/zero"
    path = tmp_path / f"{kind}.csv"
    if kind == "FIFO":
        os.mkfifo(path)
    else:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()  # the socket file stays
    return str(path)


SPECIAL_KINDS = {
    "FIFO": r"is a FIFO \(named pipe\)",
    "socket": "is a socket",
    "/dev/zero": "is a character device",
}


@pytest.mark.parametrize("kind", sorted(SPECIAL_KINDS))
@pytest.mark.parametrize("command", ["train", "check_data", "align", "predict"])
def test_files_that_are_not_regular_are_refused_before_reading(quick_run, tmp_path, command, kind):
    """FIFOs, sockets and devices: named with their kind before any read could block or run."""
    path = make_special_file(tmp_path, kind)
    output = tmp_path / "out"
    with _FifoUnblocker(path) if kind == "FIFO" else contextlib.nullcontext():
        message = call(*command_args(command, path, tmp_path, quick_run[0]))
    assert_refused(message, re.escape(path), SPECIAL_KINDS[kind], "expected a regular CSV")
    assert not output.exists()


def test_predict_overwrite_replaces_an_existing_output(quick_run, momenta_csv, tmp_path):
    run_dir, _ = quick_run
    output = tmp_path / "out.csv"
    output.write_text("old\n")
    args = (f"--model_dir={run_dir}", f"--input={momenta_csv}", f"--output={output}")
    assert call("predict", *args, "--overwrite") is None
    assert len(pd.read_csv(output)) == 10


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--sample_size=0", "--sample_size=0; expected an integer ≥ 1"),
        ("--sample_size=ten", "flag --sample_size=ten: invalid literal for int"),
        ("--seed=-1", "--seed=-1; expected an integer ≥ 0"),
        ("--data=", "--data is required; expected a CSV or Parquet file of events"),
        ("--position_columns=cx,cy", "--position_columns has 2 names"),
        ("--momentum_columns=" + ",".join(data.POSITION_COLUMNS), "share"),
        ("--momentum_columns=" + ",".join(f"q{i}" for i in range(9)), r"lacks columns \['q0'"),
        ("--verbose_report", "Unknown command line flag 'verbose_report'"),
    ],
)
def test_bad_check_data_flags(events_csv, flag, message):
    assert_refused(call("check_data", f"--data={events_csv}", flag), message)


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--output=", "--output is required; expected a CSV or Parquet path"),
        ("--output={events}", "is the input file; choose another path"),
        ("--output={tmp}", "is a folder; expected a CSV or Parquet"),
        ("--output={tmp}/existing.csv", "exists; pass --overwrite to replace it"),
        ("--output={tmp}/missing/out.csv", "folder '.*missing' is missing"),
        ("--data=", "--data is required"),
        ("--position_columns=cx", "--position_columns has 1 names"),
        ("--position_columns=" + ",".join(f"r{i}" for i in range(9)), r"lacks columns \['r0'"),
    ],
)
def test_bad_align_flags(events_csv, tmp_path, flag, message):
    (tmp_path / "existing.csv").write_text("keep me\n")
    before = sorted(tmp_path.rglob("*"))
    output = f"--output={tmp_path / 'out.csv'}"
    flag = flag.format(events=events_csv, tmp=tmp_path)
    assert_refused(call("align", f"--data={events_csv}", output, flag), message)
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    "flag, message",
    [
        ("--num_events=0", "--num_events"),
        ("--num_events=1.5", "flag --num_events=1.5: invalid literal for int"),
        ("--seed=-1", "--seed"),
        ("--co_bond_spread=-1", "--co_bond_spread"),
        ("--angle_spread=-3", "--angle_spread"),
        ("--angle_mean=200", "--angle_mean"),
        ("--detector_momentum_noise=inf", "--detector_momentum_noise"),
        (
            "--detector_momentum_resolution=1",
            r"--detector_momentum_resolution=1.0; expected a number in \[0, 1\)",
        ),
        ("--orientation=tilted", "flag --orientation=tilted: value should be one of"),
        ("--output={tmp}", "is a folder; expected a CSV or Parquet"),
        ("--output={tmp}/existing.csv", "exists; pass --overwrite"),
        ("--output=", "--output is required"),
    ],
)
def test_bad_simulate_flags(tmp_path, flag, message):
    (tmp_path / "existing.csv").write_text("keep me\n")
    before = sorted(tmp_path.rglob("*"))
    output = f"--output={tmp_path / 'out.csv'}"
    message_given = call("simulate", "--num_events=10", output, flag.format(tmp=tmp_path))
    assert_refused(message_given, message)
    assert sorted(tmp_path.rglob("*")) == before


def test_every_command_maps_a_bad_input_to_exit_2(run_command, tmp_path):
    """The in-process messages above are what users see: one stderr line, exit 2."""
    semicolons = tmp_path / "events.csv"
    semicolons.write_text(csv_text(sep=";"))
    for command, *args in [
        ("train", f"--data={semicolons}", f"--output_dir={tmp_path / 'runs'}"),
        ("check_data", f"--data={semicolons}"),
    ]:
        result = run_command(command, *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"error: data file '{semicolons}' has a single column "
            "'cx;cy;cz;ox;oy;oz;sx;sy;sz;pcx;pcy;pc...': it looks separated by ';' (semicolon); "
            "expected comma-separated values"
        ]


def test_run_file_records_the_format_version(quick_run):
    run_dir, _ = quick_run
    recorded = json.loads((run_dir / run_folder.RUN_FILE).read_text())
    assert recorded["format_version"] == run_folder.FORMAT_VERSION
    assert recorded["resumed_at_epochs"] == []
