"""Shared fixtures: a small simulated data set, and commands run as a user would run them."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# First, before anything imports TensorFlow: importing cli sets the commands' environment
# (TF_CPP_MIN_LOG_LEVEL, TF_ENABLE_ONEDNN_OPTS), so that this process and every subprocess it
# starts compute as the commands do; in-process runs are compared bit for bit with commands.
from cvae_tf import (
    cli,  # noqa: F401  (imported for its environment)
    config,
    csv_files,
    simulator,
)

REPO = Path(__file__).resolve().parents[1]

# The quick flagfile's settings, without XLA (its compilation is most of a tiny run's time).
QUICK = dict(
    hidden_dim=16,
    num_layers=2,
    latent_dim=2,
    batch_size=64,
    epochs=3,
    patience=2,
    num_display_samples=1,
    num_samples=4,
    jit_compile=False,
    check_data=False,
)


def wait_or_fail(process: subprocess.Popen, name: str, timeout_s: float) -> None:
    """Waits for `process`; one that outlives `timeout_s` is killed and fails the test."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{name} did not finish within {timeout_s} s")


def free_ports(count: int) -> list[int]:
    """`count` TCP ports on 127.0.0.1 that were free a moment ago (for local worker clusters)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def quick_config(events_csv, output_dir, **changes) -> config.TrainConfig:
    values = {**QUICK, "data": str(events_csv), "output_dir": str(output_dir), **changes}
    return config.from_dict(values)


@pytest.fixture(scope="session")
def events_csv(tmp_path_factory) -> Path:
    """600 simulated OCS events (random orientation, from rest) as a CSV with default columns."""
    path = tmp_path_factory.mktemp("data") / "events.csv"
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(600, seed=5))
    csv_files.write_events_csv(path, positions, momenta)
    return path


@pytest.fixture(scope="session")
def run_command():
    """Runs `python -m cvae_tf.<module> args...` as a user would; returns the CompletedProcess."""

    def run(module: str, *args: str, cwd: Path = REPO, env: dict | None = None):
        environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
        return subprocess.run(
            [sys.executable, "-m", f"cvae_tf.{module}", *args],
            cwd=cwd,
            env={**environment, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run


@pytest.fixture(scope="session")
def quick_run(events_csv, tmp_path_factory, run_command):
    """One quick training run into a temporary output folder."""
    output_dir = tmp_path_factory.mktemp("runs")
    result = run_command(
        "train",
        "--flagfile=flags/quick.cfg",
        f"--data={events_csv}",
        f"--output_dir={output_dir}",
        "--run_name=quick",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir / "quick", result


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Three CSV shards of 300, 250 and 170 events (the last with blank lines, CRLF, quotes)."""
    folder = tmp_path_factory.mktemp("shards")
    positions, momenta = simulator.simulate_events(simulator.SimulationConfig(720, seed=11))
    bounds = [0, 300, 550, 720]
    paths = []
    for index in range(3):
        path = folder / f"part-{index:02d}.csv"
        part = slice(bounds[index], bounds[index + 1])
        csv_files.write_events_csv(path, positions[part], momenta[part])
        paths.append(path)
    header, *lines = paths[2].read_text().splitlines()
    lines[40] = ", ".join(f'"{cell}"' for cell in lines[40].split(","))
    lines.insert(100, "")  # a blank line: skipped, not a data row
    paths[2].write_bytes(("\r\n".join([header, *lines]) + "\r\n\r\n").encode())
    return folder, paths, positions, momenta
