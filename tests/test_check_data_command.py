"""`python -m cvae_tf.check_data` and `python -m cvae_tf.align` as a user runs them."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cvae_tf import data, event_files, simulator
from tests.conftest import REPO
from tests.frame_mismatch import frame_mismatched_events

# Another group's naming, exported with a space after every comma ("cx, cy, ...").
POSITION_NAMES = [f"{atom}_{axis}" for atom in ("C", "O", "S") for axis in "xyz"]
MOMENTUM_NAMES = [f"p{atom}_{axis}" for atom in ("C", "O", "S") for axis in "xyz"]
COLUMN_FLAGS = (
    "--position_columns=" + ", ".join(POSITION_NAMES),
    "--momentum_columns=" + ", ".join(MOMENTUM_NAMES),
)


def relative_forward_mismatch(positions, momenta):
    """|explode(positions) − momenta| / |momenta| per event, computed here from the simulator."""
    difference = simulator.explode(positions) - momenta
    return np.linalg.norm(difference.reshape(-1, 9), axis=1) / np.linalg.norm(
        momenta.reshape(-1, 9), axis=1
    )


@pytest.fixture(scope="module")
def bad_csv(events_csv, tmp_path_factory):
    """The issue's bad data set, momenta columns first, an event_id column, a spaced header."""
    events = event_files.load_events(events_csv)
    bad, _, momentum_frames, _ = frame_mismatched_events(events.positions, events.momenta)
    table = pd.DataFrame(data.to_table(bad.momenta), columns=MOMENTUM_NAMES)
    table.insert(0, "event_id", [f"run7-{row:04d}" for row in range(len(bad))])
    table[POSITION_NAMES] = data.to_table(bad.positions)
    path = tmp_path_factory.mktemp("bad") / "bad.csv"
    lines = [", ".join(table.columns)] + [
        ", ".join(f"{value:.17g}" if isinstance(value, float) else value for value in row)
        for row in table.itertuples(index=False)
    ]
    path.write_text("\n".join(lines) + "\n")
    # The simulated positions are COM-centred: aligned, they should be these.
    return path, np.einsum("nij,naj->nai", momentum_frames, events.positions)


def test_check_data_gives_a_clean_verdict_on_simulated_data(run_command, events_csv):
    result = run_command("check_data", f"--data={events_csv}", "--sample_size=300")
    assert result.returncode == 0, result.stderr
    assert "Data check on 300 of 600 events" in result.stdout
    assert "no problems found" in result.stdout


def test_check_data_names_the_frames_and_the_translation(run_command, bad_csv):
    path, _ = bad_csv
    result = run_command("check_data", f"--data={path}", *COLUMN_FLAGS)
    assert result.returncode == 0, result.stderr  # a report: problems are not a failure
    assert "different frames" in result.stdout and "unlearnable" in result.stdout
    assert "Recommended flags: --center=com --align_positions" in result.stdout
    angle = float(result.stdout.split("rotation simulated→given median ")[1].split("°")[0])
    assert angle > 30  # measured 55.0° on the 600 fixture events


def test_align_repairs_the_bad_data_set(run_command, bad_csv, tmp_path):
    path, true_in_momentum_frame = bad_csv
    output = tmp_path / "aligned.csv"
    result = run_command("align", f"--data={path}", f"--output={output}", *COLUMN_FLAGS)
    assert result.returncode == 0, result.stderr
    assert "before alignment" in result.stdout and "after alignment" in result.stdout
    written = pd.read_csv(output, dtype=str)
    original = pd.read_csv(path, dtype=str, skipinitialspace=True)
    assert list(written.columns) == list(original.columns)  # order kept, header stripped
    untouched = ["event_id", *MOMENTUM_NAMES]
    pd.testing.assert_frame_equal(written[untouched], original[untouched])  # copied as text
    positions = data.to_events_array(written[POSITION_NAMES].to_numpy(dtype=float))
    momenta = data.to_events_array(written[MOMENTUM_NAMES].to_numpy(dtype=float))
    mismatch = relative_forward_mismatch(positions, momenta)
    assert np.median(mismatch) <= 1e-4 and np.max(mismatch) <= 1e-4  # measured ~1e-12
    np.testing.assert_allclose(positions, true_in_momentum_frame, atol=1e-8)
    checked = run_command("check_data", f"--data={output}", *COLUMN_FLAGS)
    assert "no problems found" in checked.stdout, checked.stdout


def test_align_leaves_consistent_data_unchanged(run_command, events_csv, tmp_path):
    output = tmp_path / "aligned.csv"
    result = run_command("align", f"--data={events_csv}", f"--output={output}")
    assert result.returncode == 0, result.stderr
    before = event_files.load_events(events_csv)
    after = event_files.load_events(output)
    np.testing.assert_allclose(after.positions, before.positions, atol=1e-8)
    np.testing.assert_array_equal(after.momenta, before.momenta)


def test_align_refuses_outputs_that_would_lose_data(run_command, events_csv, tmp_path):
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n")
    cases = [
        (events_csv, "is the input file"),
        (existing, "pass --overwrite"),
        (tmp_path / "missing" / "out.csv", "is missing"),
    ]
    for output, message in cases:
        result = run_command("align", f"--data={events_csv}", f"--output={output}")
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert existing.read_text() == "keep me\n"
    assert not (tmp_path / "missing").exists()
    assert list(tmp_path.iterdir()) == [existing]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--data=/no/such.csv",), "does not exist"),
        (("--data=",), "--data is required"),
        (("--position_columns=cx,cy",), "expected 9 distinct names"),
        (("--momentum_columns=" + ",".join(data.POSITION_COLUMNS),), "share"),
        (("--position_columns=" + ",".join(POSITION_NAMES),), "lacks columns"),
        (("--sample_size=0",), "--sample_size=0"),
        (("--seed=-1",), "--seed=-1"),
    ],
)
def test_check_data_bad_input_is_one_line_and_exit_2(run_command, events_csv, args, message):
    result = run_command("check_data", f"--data={events_csv}", *args)  # a later --data wins
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def _cpu_seconds(process_id: int) -> float:
    """User + system CPU time the process has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{process_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_align_stopped_by_sigterm_mid_run_ends_with_one_line_and_nothing_written(
    events_csv, tmp_path
):
    """SIGTERM while align works through 120,000 events: exit 143, one line, no file."""
    frame = pd.read_csv(events_csv)
    many = tmp_path / "many.csv"
    pd.concat([frame] * 200).to_csv(many, index=False)
    output = tmp_path / "out" / "aligned.csv"
    output.parent.mkdir()
    flags = [f"--data={many}", f"--output={output}"]
    with open(tmp_path / "stderr", "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "cvae_tf.align", *flags],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        deadline = time.monotonic() + 120
        # Past the imports and into the work: reading 120,000 events and exploding them.
        while _cpu_seconds(process.pid) < 4.0:
            assert process.poll() is None, "the command ended before the signal"
            assert time.monotonic() < deadline, "the command never got to work"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    lines = [line for line in (tmp_path / "stderr").read_text().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("interrupted by SIGTERM: "), lines
    assert list(output.parent.iterdir()) == []
