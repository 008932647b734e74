"""The code paths of systems without Linux' calls: no fcntl (Windows' msvcrt locks instead), no
resource, no sched_getaffinity, no SIGHUP, no signal masks; run in a subprocess made so."""

import subprocess
import sys
import textwrap

from tests.conftest import REPO

# Run first in the subprocess: fcntl, resource and the Linux calls are gone before cvae_tf is
# imported. msvcrt is a stand-in with Windows' interface (locking a byte range, OSError when
# another holds it), built on the flock taken from the real fcntl before it went.
WITHOUT_LINUX = textwrap.dedent(
    """
    import errno, importlib.abc, os, signal, sys, types
    import fcntl as _real_fcntl

    # The standard library and the dependencies probe for msvcrt to tell Windows (subprocess
    # does): imported first, so that only cvae_tf meets the stand-in.
    import multiprocessing.connection, subprocess, tempfile  # noqa: F401
    import absl.flags, numpy, pandas  # noqa: F401

    class NoSuchModule(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in ("fcntl", "resource"):
                raise ImportError(f"no module named {name!r} on this system")
            return None

    sys.meta_path.insert(0, NoSuchModule())
    for name in ("fcntl", "resource"):
        sys.modules.pop(name, None)
    for name in ("sched_getaffinity", "process_cpu_count"):
        if hasattr(os, name):
            delattr(os, name)
    for name in ("SIGHUP", "pthread_sigmask"):
        delattr(signal, name)

    msvcrt = types.ModuleType("msvcrt")
    msvcrt.LK_UNLCK, msvcrt.LK_LOCK, msvcrt.LK_NBLCK = 0, 1, 2
    msvcrt.calls = []

    def locking(descriptor, mode, nbytes):
        msvcrt.calls.append((mode, os.lseek(descriptor, 0, os.SEEK_CUR), nbytes))
        flags = {0: _real_fcntl.LOCK_UN, 1: _real_fcntl.LOCK_EX}
        flags[2] = _real_fcntl.LOCK_EX | _real_fcntl.LOCK_NB
        try:
            _real_fcntl.flock(descriptor, flags[mode])
        except BlockingIOError:
            raise OSError(errno.EACCES, "Permission denied") from None

    msvcrt.locking = locking
    sys.modules["msvcrt"] = msvcrt
    """
)


def run_without_linux(code: str, tmp_path) -> str:
    """Runs `code` after WITHOUT_LINUX in a fresh interpreter; fails on a non-zero exit."""
    script = tmp_path / "script.py"
    script.write_text(WITHOUT_LINUX + textwrap.dedent(code))
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_stand_in_really_removes_the_linux_calls(tmp_path):
    output = run_without_linux(
        """
        import os, signal
        try:
            import fcntl
        except ImportError:
            print("no fcntl")
        print(hasattr(os, "sched_getaffinity"), hasattr(signal, "SIGHUP"))
        from cvae_tf import file_writes
        print(file_writes.fcntl, file_writes.resource, file_writes.FOLDERS_LOCKABLE)
        """,
        tmp_path,
    )
    assert output.split("\n")[:3] == ["no fcntl", "False False", "None None False"]


def test_worker_count_and_a_simulation_on_two_workers(tmp_path):
    """Every core is os.cpu_count(); two spawned workers give the file one process gives."""
    run_without_linux(
        """
        import os
        from cvae_tf import chunk_pool
        from tests.commands import call

        assert chunk_pool.worker_count(0) == os.cpu_count(), chunk_pool.worker_count(0)
        assert chunk_pool.worker_count(3) == 3
        for workers in (1, 2):
            flags = ["--num_events=500", "--seed=3", f"--workers={workers}"]
            assert call("simulate", *flags, f"--output={workers}.csv") is None
        one, two = open("1.csv").read(), open("2.csv").read()
        assert one == two and len(one.splitlines()) == 501
        assert sorted(os.listdir()) == ["1.csv", "2.csv", "script.py"]  # no temporary left
        """,
        tmp_path,
    )


def test_the_run_folders_lock_refuses_a_second_training_and_is_freed(tmp_path):
    """The partial folder is locked through a .lock file beside it, removed when released."""
    run_without_linux(
        """
        from pathlib import Path
        from cvae_tf import run_folder
        from cvae_tf.errors import UserInputError

        partial = Path(".run.partial")
        with run_folder.locked_partial(partial, fresh=True):
            assert Path(".run.partial.lock").is_file()
            try:
                with run_folder.locked_partial(partial, fresh=False):
                    raise AssertionError("a second lock was granted")
            except UserInputError as error:
                assert "is being written by a training that is still running" in str(error)
            (partial / "weights").write_text("x")
        assert not Path(".run.partial.lock").exists()
        with run_folder.locked_partial(partial, fresh=True):  # --overwrite: removed, made anew
            assert list(partial.iterdir()) == []
        import msvcrt
        assert {(mode, position, size) for mode, position, size in msvcrt.calls} == {(2, 0, 1)}
        """,
        tmp_path,
    )


def test_abandoned_temporaries_are_told_from_held_ones_by_their_lock(tmp_path):
    """A stream folder's lock is its .lock file; a CSV temporary's is the file itself."""
    run_without_linux(
        """
        import os, tempfile
        from pathlib import Path
        from cvae_tf import file_writes, input_pipeline

        held = input_pipeline._StreamFolder()
        assert Path(held.name, file_writes.LOCK_FILE).is_file()
        descriptor, name = file_writes.locked_new(lambda: tempfile.mkstemp(dir="."))
        folders = Path(tempfile.gettempdir()).glob(f"{input_pipeline.STREAM_FOLDER_PREFIX}*")
        assert file_writes.remove_abandoned([*folders, Path(name)]) == []
        os.close(descriptor)  # as the death of its holder would
        os.close(held._descriptor)
        assert input_pipeline.remove_abandoned_stream_folders() == [Path(held.name)]
        assert file_writes.remove_abandoned([Path(name)]) == [Path(name)]
        assert not Path(held.name).exists() and not Path(name).exists()

        cleaned = input_pipeline._StreamFolder()
        cleaned.cleanup()
        assert not Path(cleaned.name).exists()
        file_writes.check_room(".", 10, 10, "a test")  # no ulimit -f to check without resource
        """,
        tmp_path,
    )
