"""Writes that fail for real (full disk, ulimit -f, read-only, /proc): one line, exit 2."""

import errno
import os
import re
import resource
import shutil
import subprocess
import sys

import pytest

from cvae_tf import file_writes
from tests.conftest import REPO

FILE_SIZE_LIMIT = "the file-size limit (ulimit -f) was reached"
DISK_FULL = "the disk is full"
NOT_WRITABLE = "is not writable (no file can be created there)"
TIMEOUT_S = 60  # a hang fails the test instead of the suite


# The faults are real, not mocks: RLIMIT_FSIZE set in the child, a small or read-only tmpfs
# mounted in a private mount namespace (unshare), and /proc, where not even root can create files.


def _can_mount() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = ["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"]
    return subprocess.run(probe, capture_output=True).returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="no unshare/mount for a private tmpfs")


def run(module, *args, file_size=None, disk=None, disk_bytes=0, read_only=False, env=None):
    """`python -m cvae_tf.<module> args` under a real fault; returns the CompletedProcess.

    file_size: RLIMIT_FSIZE in bytes. disk: a folder that becomes, for this run only, a tmpfs of
    `disk_bytes` (read-only if asked); what it holds afterwards is written to `<disk>.left`.
    """
    command = [sys.executable, "-m", f"cvae_tf.{module}", *args]
    if disk is not None:
        options = f"size={disk_bytes}" if disk_bytes else ""
        script = f'mount -t tmpfs -o "{options}" tmpfs "$0" || exit 99;'
        if read_only:
            script += ' mount -o remount,ro "$0" || exit 99;'
        script += ' "$@"; code=$?; ls -A "$0" > "$0.left"; exit $code'
        command = ["unshare", "-rm", "sh", "-c", script, str(disk), *command]

    def limit():
        if file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        command,
        cwd=REPO,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=limit,
    )


def assert_one_line_error(result, path, reason):
    """Exit 2 and exactly one stderr line, naming `path` and `reason`, without a traceback."""
    # The default data set's progress bar, if it ran, is not an error line.
    lines = [line for line in result.stderr.strip().splitlines() if "simulating [" not in line]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"error: cannot write '{path}") and reason in lines[0], lines[0]


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (errno.ENOSPC, DISK_FULL),
        (errno.EDQUOT, "quota"),
        (errno.EFBIG, FILE_SIZE_LIMIT),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "not writable (permission denied)"),
        (errno.EPERM, "not writable (operation not permitted)"),
    ],
)
def test_each_write_errno_has_its_message(tmp_path, code, says):
    error = file_writes.write_error(OSError(code, os.strerror(code)), tmp_path / "out.csv")
    assert isinstance(error, file_writes.WriteError)
    assert str(error).startswith(f"cannot write '{tmp_path / 'out.csv'}': ") and says in str(error)


def test_a_missing_folder_and_an_unwritable_one_are_told_apart(tmp_path):
    missing = file_writes.write_error(OSError(errno.ENOENT, "x"), tmp_path / "no" / "out.csv")
    assert f"folder '{tmp_path / 'no'}' is missing" in str(missing)
    with pytest.raises(
        file_writes.WriteError,
        match=re.escape(f"folder '/proc' {NOT_WRITABLE}"),
    ):
        file_writes.check_writable("/proc/out.csv")
    file_writes.check_writable(tmp_path / "new" / "run")  # made later, with its parents
    assert list(tmp_path.iterdir()) == []  # the probe is gone
    assert file_writes.write_error(OSError(errno.EIO, "I/O error"), tmp_path) is None


def test_simulate_under_a_file_size_limit_fails_at_once_without_a_file(tmp_path):
    """It hung: workers stopped while sending a chunk left the pool waiting for the rest."""
    output = tmp_path / "events.csv"
    result = run(
        "simulate", "--num_events=200000", "--workers=2", f"--output={output}", file_size=10**6
    )
    assert_one_line_error(result, output, FILE_SIZE_LIMIT)
    assert list(tmp_path.iterdir()) == []


@needs_mount
def test_simulate_on_a_full_disk_leaves_nothing(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    result = run(
        "simulate",
        "--num_events=2000",
        f"--output={disk / 'events.csv'}",
        disk=disk,
        disk_bytes=64 * 1024,
    )
    assert_one_line_error(result, disk / "events.csv", DISK_FULL)
    assert (tmp_path / "disk.left").read_text() == ""


def test_predict_under_a_file_size_limit_leaves_no_file(quick_run, events_csv, tmp_path):
    run_dir, _ = quick_run
    output = tmp_path / "positions.csv"
    result = run(
        "predict",
        f"--model_dir={run_dir}",
        f"--input={events_csv}",
        f"--output={output}",
        file_size=20_000,
    )
    assert_one_line_error(result, output, FILE_SIZE_LIMIT)
    assert list(tmp_path.iterdir()) == []


@needs_mount
def test_predict_on_a_full_disk_leaves_no_file(quick_run, events_csv, tmp_path):
    run_dir, _ = quick_run
    disk = tmp_path / "disk"
    disk.mkdir()
    result = run(
        "predict",
        f"--model_dir={run_dir}",
        f"--input={events_csv}",
        f"--output={disk / 'positions.csv'}",
        disk=disk,
        disk_bytes=16 * 1024,
    )
    # Refused up front: the output's estimated size (events × columns × 20 bytes) against the
    # disk's free space, before the model is loaded; nothing was written, nothing is left.
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"error: --output='{disk / 'positions.csv'}': 600 events"), lines
    assert "free space or choose another --output folder" in lines[0]
    assert (tmp_path / "disk.left").read_text() == ""


def test_predict_refuses_an_unwritable_output_before_reading_the_model(tmp_path):
    # The model folder does not exist: the output is checked first, before any work.
    result = run(
        "predict",
        f"--model_dir={tmp_path / 'no-model'}",
        f"--input={tmp_path / 'in.csv'}",
        "--output=/proc/positions.csv",
    )
    assert_one_line_error(result, "/proc/positions.csv", NOT_WRITABLE)


def test_align_refuses_an_unwritable_output_and_stops_at_the_size_limit(events_csv, tmp_path):
    result = run("align", f"--data={events_csv}", "--output=/proc/aligned.csv")
    assert_one_line_error(result, "/proc/aligned.csv", NOT_WRITABLE)
    output = tmp_path / "aligned.csv"
    result = run("align", f"--data={events_csv}", f"--output={output}", file_size=20_000)
    assert_one_line_error(result, output, FILE_SIZE_LIMIT)
    assert list(tmp_path.iterdir()) == []


@needs_mount
def test_align_onto_a_read_only_file_system_is_refused(events_csv, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    output = disk / "aligned.csv"
    result = run("align", f"--data={events_csv}", f"--output={output}", disk=disk, read_only=True)
    assert_one_line_error(result, output, "read-only file system")


def test_train_refuses_an_unwritable_output_dir_before_training(events_csv):
    result = run(
        "train",
        "--flagfile=flags/quick.cfg",
        f"--data={events_csv}",
        "--output_dir=/proc/nope",
        "--run_name=quick",
    )
    assert_one_line_error(result, "/proc/nope/quick", NOT_WRITABLE)
    assert "Epoch" not in result.stdout  # refused before the fit


def test_train_under_a_file_size_limit_below_its_checkpoint_is_refused_before_training(
    events_csv, tmp_path
):
    """keras' checkpoint, written by h5py, failed mid-fit: a flood of errors, then SIGSEGV."""
    output_dir = tmp_path / "runs"
    result = run(
        "train",
        "--flagfile=flags/quick.cfg",
        f"--data={events_csv}",
        f"--output_dir={output_dir}",
        "--run_name=quick",
        file_size=60_000,  # below the checkpoint's real size, 89 kB
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(
        f"error: cannot write '{output_dir / 'quick'}': the run (a model of 2,218 weights, up "
        "to 3 epochs) needs a file of about 1."
    ), lines
    assert "above the file-size limit (ulimit -f) of 0.06 MB; raise it" in lines[0]
    assert "Epoch" not in result.stdout  # refused before the fit
    assert list(tmp_path.iterdir()) == []  # neither a run folder nor a partial one


@needs_mount
def test_train_onto_a_disk_too_small_for_the_run_is_refused_before_training(events_csv, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    output_dir = disk / "runs"
    result = run(
        "train",
        "--flagfile=flags/quick.cfg",
        f"--data={events_csv}",
        f"--output_dir={output_dir}",
        "--run_name=quick",
        disk=disk,
        disk_bytes=256 * 1024,  # the run takes 0.55 MB
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(
        f"error: cannot write '{output_dir / 'quick'}': the run (a model of 2,218 weights, up "
        "to 3 epochs) needs about "
    ), lines
    assert f"but '{disk}' has 0.26 MB free; free some space or choose a folder" in lines[0]
    assert "Epoch" not in result.stdout
    assert (tmp_path / "disk.left").read_text() == ""  # not even the output folder


def test_streamed_training_under_a_file_size_limit_leaves_no_part_files(events_csv, tmp_path):
    temporary, output_dir = tmp_path / "tmp", tmp_path / "runs"
    temporary.mkdir()
    result = run(
        "train",
        "--flagfile=flags/quick.cfg",
        f"--data={events_csv}",
        "--data_loading=stream",
        f"--output_dir={output_dir}",
        "--run_name=quick",
        file_size=10_000,
        env={"TMPDIR": str(temporary)},
    )
    assert_one_line_error(result, temporary, FILE_SIZE_LIMIT)
    assert "set TMPDIR to a folder with room" in result.stderr
    assert list(temporary.iterdir()) == []
    assert not output_dir.exists() or list(output_dir.iterdir()) == []


def test_an_unwritable_default_data_cache_is_one_line_before_simulating(tmp_path):
    result = run("train", "--flagfile=flags/quick.cfg", env={"CVAE_TF_CACHE": "/proc/nope"})
    assert_one_line_error(result, "/proc/nope", NOT_WRITABLE)
    assert "set CVAE_TF_CACHE to a writable folder" in result.stderr
    assert "Simulating" not in result.stdout


def test_the_default_data_cache_under_a_file_size_limit_leaves_no_file(tmp_path):
    # The default set's size through default_data_path's num_events hook: 2,000 events, not 50,000.
    script = (
        "from cvae_tf import cli, default_data\n"
        "cli.run(lambda argv: default_data.default_data_path(num_events=2000))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO), "CVAE_TF_CACHE": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000)),
    )
    assert_one_line_error(result, tmp_path / "ocs_default_v2_2000.csv", FILE_SIZE_LIMIT)
    assert list(tmp_path.iterdir()) == []
