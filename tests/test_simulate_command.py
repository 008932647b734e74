"""`python -m cvae_tf.simulate` as a user runs it: the CSV it writes and every refused input."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cvae_tf import csv_files, data, physics, simulator
from tests.commands import call
from tests.conftest import REPO, wait_or_fail


def simulate(run_command, output, *args):
    return run_command("simulate", "--num_events=300", f"--output={output}", *args)


def test_writes_the_csv_and_says_where(run_command, tmp_path):
    output = tmp_path / "events.csv"
    result = simulate(run_command, output, "--seed=4")
    assert result.returncode == 0, result.stderr
    assert str(output) in result.stdout and "300" in result.stdout
    assert "simulated OCS (C²⁺ + O²⁺ + S²⁺) events" in result.stdout
    table = pd.read_csv(output)
    assert list(table.columns) == [*data.POSITION_COLUMNS, *data.MOMENTUM_COLUMNS]
    assert len(table) == 300
    positions = data.to_events_array(table[list(data.POSITION_COLUMNS)].to_numpy())
    momenta = data.to_events_array(table[list(data.MOMENTUM_COLUMNS)].to_numpy())
    # Written with 12 significant digits, the file still balances the energy to ~1e-11.
    ratio = physics.kinetic_energy(momenta) / physics.potential_energy(positions)
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-8)


def test_same_seed_gives_the_same_bytes(run_command, tmp_path):
    paths = [tmp_path / name for name in ("a.csv", "b.csv", "c.csv")]
    flags = ("--zero_point_momentum_spread=3", "--detector_momentum_noise=1")
    for path, seed in zip(paths, (7, 7, 8), strict=True):
        assert simulate(run_command, path, f"--seed={seed}", *flags).returncode == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_flags_reach_the_simulation(run_command, tmp_path):
    output = tmp_path / "fixed.csv"
    args = ("--orientation=fixed", "--angle_mean=120", "--angle_spread=0", "--co_bond_spread=0")
    assert simulate(run_command, output, *args).returncode == 0
    table = pd.read_csv(output)
    positions = data.to_events_array(table[list(data.POSITION_COLUMNS)].to_numpy())
    np.testing.assert_array_equal(positions[..., 2], 0.0)
    np.testing.assert_allclose(physics.bend_angle(positions), 120.0, atol=1e-8)
    np.testing.assert_allclose(physics.bond_lengths(positions)[:, 0], 2.15429, atol=1e-5)


CHBRCLF_COLUMNS = [f"{atom}{axis}" for atom in ("c", "h", "br", "cl", "f") for axis in "xyz"]


@pytest.mark.parametrize(
    "flag, channel, columns, masses, charges",
    [
        (
            "--molecule=chbrclf",
            "CHBrClF (C⁺ + H⁺ + Br⁺ + Cl⁺ + F⁺)",
            CHBRCLF_COLUMNS + [f"p{column}" for column in CHBRCLF_COLUMNS],
            np.array([12.011, 1.008, 79.904, 35.45, 18.998]) * 1822.888486,
            np.ones(5),
        ),
        (
            "--charges=1,1,1",
            "OCS (C⁺ + O⁺ + S⁺)",
            [*data.POSITION_COLUMNS, *data.MOMENTUM_COLUMNS],
            physics.MASSES,
            np.ones(3),
        ),
    ],
)
def test_any_molecule_and_channel_is_simulated_into_its_columns(
    run_command, tmp_path, flag, channel, columns, masses, charges
):
    output = tmp_path / "events.csv"
    result = run_command("simulate", "--num_events=200", "--workers=1", f"--output={output}", flag)
    assert result.returncode == 0, result.stderr
    assert f"200 simulated {channel} events" in result.stdout.strip().splitlines()[-1]
    table = pd.read_csv(output)
    assert list(table.columns) == columns and len(table) == 200
    half = len(columns) // 2
    positions = data.to_events_array(table[columns[:half]].to_numpy())
    momenta = data.to_events_array(table[columns[half:]].to_numpy())
    # KE of the written momenta balances the Coulomb energy of these charges at the positions.
    ratio = physics.kinetic_energy(momenta, masses) / physics.potential_energy(positions, charges)
    np.testing.assert_allclose(ratio, 1.0, rtol=1e-8)


def test_overwrite_replaces_an_existing_file(run_command, tmp_path):
    output = tmp_path / "events.csv"
    output.write_text("old\n")
    assert simulate(run_command, output, "--overwrite").returncode == 0
    assert len(pd.read_csv(output)) == 300


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--num_events=10"], "--output"),
        (["--num_events=10", "--output={tmp}/missing/events.csv"], "--output"),
        (["--num_events=10", "--output={tmp}/existing.csv"], "--output"),
        (["--num_events=10", "--output={tmp}"], "--output"),
        (["--num_events=0", "--output={tmp}/events.csv"], "--num_events"),
        (["--num_events=-5", "--output={tmp}/events.csv"], "--num_events"),
        (["--co_bond_spread=-1", "--output={tmp}/events.csv"], "--co_bond_spread"),
        (["--cs_bond_mean=0", "--output={tmp}/events.csv"], "--cs_bond_mean"),
        (["--angle_mean=200", "--output={tmp}/events.csv"], "--angle_mean"),
        (["--zero_point_momentum_spread=-2", "--output={tmp}/events.csv"], "--zero_point"),
        (["--detector_momentum_noise=nan", "--output={tmp}/events.csv"], "--detector"),
        (["--orientation=tilted", "--output={tmp}/events.csv"], "--orientation"),
        (["--seed=-1", "--output={tmp}/events.csv"], "--seed"),
        (["--workers=-1", "--output={tmp}/events.csv"], "--workers=-1; expected an integer ≥ 1"),
        (["--workers=two", "--output={tmp}/events.csv"], "--workers"),
        (["--molecule=benzene", "--output={tmp}/events.csv"], "--molecule='benzene'"),
        (["--charges=1,1", "--output={tmp}/events.csv"], "--charges has 2 values"),
        (["--charges=1,-1,1", "--output={tmp}/events.csv"], "--charges: -1.0"),
        (
            ["--molecule=chbrclf", "--angle_mean=170", "--output={tmp}/events.csv"],
            "--angle_mean=170.0: CHBrClF",
        ),
        (
            ["--atoms=C,H,Br,Cl", "--charges=1,1,1,1", "--output={tmp}/events.csv"],
            "no reference_geometry",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_file(run_command, tmp_path, args, flag):
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n")
    before = sorted(tmp_path.rglob("*"))
    result = run_command("simulate", *(arg.format(tmp=tmp_path) for arg in args))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], result.stderr
    assert sorted(tmp_path.rglob("*")) == before
    assert existing.read_text() == "keep me\n"


def test_the_file_does_not_depend_on_the_worker_count(tmp_path, monkeypatch):
    """Chunks simulated and formatted by 1 or 2 processes: the bytes of the in-memory set."""
    monkeypatch.setattr(simulator, "CHUNK_EVENTS", 100)  # 4 chunks; passed to the workers
    flags = ("--num_events=350", "--seed=6", "--zero_point_momentum_spread=3")
    flags += ("--detector_momentum_noise=1",)
    for workers in (1, 2):
        output = tmp_path / f"{workers}.csv"
        assert call("simulate", *flags, f"--workers={workers}", f"--output={output}") is None
    config = simulator.SimulationConfig(
        350, seed=6, zero_point_momentum_spread=3.0, detector_momentum_noise=1.0
    )
    csv_files.write_events_csv(tmp_path / "whole.csv", *simulator.simulate_events(config))
    whole = (tmp_path / "whole.csv").read_bytes()
    lines = whole.splitlines()
    assert len(lines) == 351 and lines.count(lines[0]) == 1  # one header
    assert (tmp_path / "1.csv").read_bytes() == whole
    assert (tmp_path / "2.csv").read_bytes() == whole
    assert sorted(path.name for path in tmp_path.iterdir()) == ["1.csv", "2.csv", "whole.csv"]


def test_only_the_parent_imports_pandas_and_pyarrow_and_nothing_imports_tensorflow(tmp_path):
    """Spawned workers import the command's module and their task's: numpy and the simulator."""
    flags = ["--num_events=65537", "--workers=2", f"--output={tmp_path / 'events.csv'}"]
    result = subprocess.run(  # two chunks, so two workers; -X importtime reaches them too
        [sys.executable, "-X", "importtime", "-m", "cvae_tf.simulate", *flags],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stderr.splitlines()
    imported = [line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time")]
    assert imported.count("cvae_tf.simulation_chunks") == 3  # the parent and both workers
    assert imported.count("pandas") == 1 and imported.count("pyarrow") == 1
    assert not [name for name in imported if name.split(".")[0] in ("tensorflow", "keras")]


def worker_processes(parent: int) -> list[int]:
    """Ids of the multiprocessing workers that `parent` spawned and that still run, from /proc."""
    workers = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            parent_id = int((process / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (process / "cmdline").read_bytes()
        except (OSError, IndexError):  # ended meanwhile
            continue
        if parent_id == parent and b"spawn_main" in command:
            workers.append(int(process.name))
    return workers


def test_ctrl_c_stops_the_workers_and_leaves_no_file(tmp_path):
    """Ctrl-C while the workers simulate: exit 130 at once, no worker left, nothing written."""
    flags = ["--num_events=10000000", "--workers=2", f"--output={tmp_path / 'events.csv'}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "cvae_tf.simulate", *flags],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C's default action even under a runner that started us with it ignored; and our
        # own process group, so that killpg reaches the workers as a terminal's Ctrl-C would.
        preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), os.setpgrp()),
    )
    try:
        deadline = time.monotonic() + 60
        while len(workers := worker_processes(process.pid)) < 2:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.02)
        time.sleep(0.5)  # into their first chunks
    finally:
        os.killpg(process.pid, signal.SIGINT)
        interrupted = time.monotonic()
        _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - interrupted < 5  # not after the chunks under way (~2 s each)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == (
        f"interrupted: stopped before '{tmp_path / 'events.csv'}' was complete; no file was written"
    ), stderr
    assert "Traceback" not in stderr
    assert not any(Path(f"/proc/{worker}").exists() for worker in workers)
    assert list(tmp_path.iterdir()) == []


def child_processes(parent: int) -> list[int]:
    """Ids of every process whose parent is `parent` (workers, the resource tracker), from /proc."""
    children = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if int((process / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                children.append(int(process.name))
        except (OSError, IndexError):  # ended meanwhile
            continue
    return children


def running(process_id: int) -> bool:
    """Whether the process exists and is not a zombie waiting for a parent to reap it."""
    try:
        return Path(f"/proc/{process_id}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_simulation(output: Path, stderr, *flags: str) -> subprocess.Popen:
    """A long simulation on two workers in its own process group, as a shell or SLURM starts it."""

    def default_signals():
        # The stop signals' default actions even under a runner that ignores them (nohup), and
        # a process group of its own, so that killpg reaches the workers as a terminal or a
        # batch system does.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        os.setpgrp()

    flags = ("--num_events=10000000", "--workers=2", f"--output={output}", *flags)
    return subprocess.Popen(
        [sys.executable, "-m", "cvae_tf.simulate", *flags],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=stderr,  # a file, not a pipe: a worker left alive would hold a pipe open
        preexec_fn=default_signals,
    )


def temporaries(output: Path) -> list[Path]:
    return list(output.parent.glob(f".{output.name}.*.tmp"))


def wait_until_writing(process: subprocess.Popen, output: Path, chunks: bool = False) -> list[int]:
    """Polls until both workers and the temporary file (with `chunks`, data in it) exist.

    Returns the ids of every child process of the command.
    """
    deadline = time.monotonic() + 60
    while not (
        len(worker_processes(process.pid)) == 2
        and any(path.stat().st_size or not chunks for path in temporaries(output))
    ):
        assert process.poll() is None and time.monotonic() < deadline, "never started writing"
        time.sleep(0.02)
    return child_processes(process.pid)


def assert_all_end(processes: list[int], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while left := [process for process in processes if running(process)]:
        assert time.monotonic() < deadline, f"processes {left} outlived the command"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "signum, group, chunks",
    [
        (signal.SIGTERM, True, True),  # SLURM at a time limit, every process of the job, mid-file
        (signal.SIGTERM, False, False),  # `kill PID` while the workers start
        (signal.SIGHUP, True, False),  # the terminal closed
        (signal.SIGINT, False, False),  # Ctrl-C sent to the command alone
    ],
)
def test_a_stop_signal_ends_every_worker_and_removes_the_temporary_file(
    tmp_path, signum, group, chunks
):
    """The signal mid-run: exit 128+N at once, one line, no worker left, nothing written."""
    output = tmp_path / "out" / "events.csv"
    output.parent.mkdir()
    with open(tmp_path / "stderr", "w") as stderr:
        process = start_simulation(output, stderr)
        try:
            children = wait_until_writing(process, output, chunks)
        finally:
            (os.killpg if group else os.kill)(process.pid, signum)
        signalled = time.monotonic()
        wait_or_fail(process, "the stopped simulation", timeout_s=30)
    assert time.monotonic() - signalled < 5  # not after the chunks under way (~2 s each)
    assert process.returncode == 128 + signum
    lines = [
        line
        for line in (tmp_path / "stderr").read_text().splitlines()
        if line and not line.startswith("simulating [")  # the progress bar
    ]
    name = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    assert lines == [
        f"interrupted{name}: stopped before '{output}' was complete; no file was written"
    ]
    assert list(output.parent.iterdir()) == []  # neither the file nor its temporary
    assert len(children) >= 2
    assert_all_end(children)


def test_a_killed_simulation_keeps_the_old_file_and_the_next_run_removes_its_temporary(tmp_path):
    """SIGKILL runs no cleanup: the old file stays whole, the workers die with the parent."""
    output = tmp_path / "out" / "events.csv"
    output.parent.mkdir()
    output.write_text("old\n")
    with open(tmp_path / "stderr", "w") as stderr:
        process = start_simulation(output, stderr, "--overwrite")
        try:
            children = wait_until_writing(process, output)
        finally:
            process.kill()
            process.wait()
    assert output.read_text() == "old\n"
    assert len(temporaries(output)) == 1  # abandoned: nobody could remove it
    assert_all_end(children)

    flags = ["--num_events=10", "--workers=1", f"--output={output}", "--overwrite"]
    assert call("simulate", *flags) is None
    assert len(pd.read_csv(output)) == 10
    assert list(output.parent.iterdir()) == [output]  # the abandoned temporary removed
