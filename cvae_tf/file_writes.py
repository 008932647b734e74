"""Writes that fail as one line: a full disk, a size limit, a read-only or unwritable place."""

import contextlib
import errno
import fcntl
import os
import resource
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from cvae_tf.errors import UserInputError

# What each errno means for the user, and what would let the write succeed.
_REASONS = {
    errno.ENOSPC: "the disk is full (no space left on device); free some space or choose a folder "
    "on another disk",
    errno.EDQUOT: "the disk quota is exceeded; free some space or choose a folder on another disk",
    errno.EFBIG: "the file-size limit (ulimit -f) was reached; raise it (ulimit -f unlimited) or "
    "write less",
    errno.EROFS: "it is on a read-only file system; choose a folder on a writable one",
    errno.EACCES: "it is not writable (permission denied); choose a folder you may write in",
    errno.EPERM: "it is not writable (operation not permitted); choose a folder you may write in",
}
_MISSING = (errno.ENOENT, errno.ENOTDIR)


class WriteError(UserInputError):
    """A file or folder could not be written (disk, limit, permissions): one line, exit code 2."""


def write_error(error: OSError, path: str | os.PathLike | None = None) -> WriteError | None:
    """The one-line WriteError for a failed write of `path` (else the error's file), or None.

    None means the error is not one of a full disk, a size limit, a read-only file system, a
    permission or a missing folder: a fault of the machine rather than of the place chosen.
    """
    target = Path(path if path is not None else error.filename or "?")
    if error.errno in _REASONS:
        return WriteError(f"cannot write '{target}': {_REASONS[error.errno]}")
    if error.errno in _MISSING:
        folder = _existing_ancestor(target.parent)
        if folder != target.parent:
            return WriteError(
                f"cannot write '{target}': folder '{target.parent}' is missing; create it or "
                "choose another"
            )
        # The folder exists yet a file cannot be made in it: /proc and other virtual file systems.
        return WriteError(_not_writable(target, folder))
    return None


def write_error_of(error: BaseException, path: str | os.PathLike) -> WriteError | None:
    """The one-line WriteError for an error a library raised from a write of `path`, or None.

    For an OSError with its errno, as write_error. h5py (OSError without errno, RuntimeError)
    and TensorFlow (tf.errors.OpError: OutOfRangeError, ResourceExhaustedError, UnknownError)
    carry the system's reason only in their message ("File too large", "No space left on
    device"), so the reason is found there; an error that names none is not a write fault.
    """
    if isinstance(error, OSError) and error.errno is not None:
        return write_error(error, error.filename or path)
    message = str(error)
    for code in _REASONS:
        if os.strerror(code) in message:
            return write_error(OSError(code, os.strerror(code)), path)
    return None


@contextlib.contextmanager
def writing(path: str | os.PathLike | None = None) -> Iterator[None]:
    """Turns an OSError of a write of `path` (None: the error's own file) into a WriteError."""
    try:
        yield
    except OSError as error:
        converted = write_error(error, path)
        if converted is None:
            raise
        raise converted from None


def check_writable(path: str | os.PathLike) -> None:
    """Refuses, before heavy work, a file or folder that could not be created at `path`."""
    path = Path(path)
    existing = _existing_ancestor(path.parent)
    if not existing.is_dir():
        raise WriteError(f"cannot write '{path}': '{existing}' is a file, not a folder")
    # A file really made (and removed) rather than os.access: root passes every permission
    # check, and /proc, a read-only mount or a full disk only show themselves on a creation.
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".cvae_tf-probe-")
    except OSError as error:
        if error.errno in _MISSING:  # the folder exists, yet no file can be made in it
            raise WriteError(_not_writable(path, existing)) from None
        raise write_error(error, path) or error from None
    os.close(handle)
    os.unlink(probe)


def check_room(path: str | os.PathLike, size: int, largest_file: int, what: str) -> None:
    """Refuses, before heavy work, `what` of `size` bytes at `path` that could not be written.

    Checked against the free space of the disk `path` would be on, and against the file-size
    limit (ulimit -f, RLIMIT_FSIZE's soft limit) for its largest file of `largest_file` bytes.
    `what` names the output in the message, e.g. "the run (a model of 2,218 weights)".
    """
    path = Path(path)
    folder = _existing_ancestor(path)
    free = shutil.disk_usage(folder).free
    if size > free:
        raise WriteError(
            f"cannot write '{path}': {what} needs about {_megabytes(size)}, but '{folder}' has "
            f"{_megabytes(free)} free; free some space or choose a folder on another disk"
        )
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY and largest_file > limit:
        raise WriteError(
            f"cannot write '{path}': {what} needs a file of about {_megabytes(largest_file)}, "
            f"above the file-size limit (ulimit -f) of {_megabytes(limit)}; raise it (ulimit -f "
            "unlimited) or write less"
        )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.2f} MB"


def locked_new(make: Callable[[], tuple[int, str]]) -> tuple[int, str]:
    """A new temporary file or folder from `make`, flocked: its open descriptor and its name.

    `make` creates it and returns a descriptor open on it and its name (mkstemp's pair). A
    holder keeps the descriptor open, so the flock, as long as the file or folder lives;
    remove_abandoned takes only those whose lock is free.
    """
    while True:
        descriptor, name = make()
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            if os.stat(name).st_ino == os.fstat(descriptor).st_ino:
                return descriptor, name
        except FileNotFoundError:
            pass
        # Another process's remove_abandoned found it in the instant before the lock.
        os.close(descriptor)


def remove_abandoned(candidates: Iterable[Path]) -> list[Path]:
    """Removes the temporary files and folders whose holder died (SIGKILL); returns them.

    Their holder (see locked_new) keeps an flock on each as long as it lives, and the system
    drops the lock when the holder dies, however it dies: one whose lock can be taken was
    therefore abandoned. Chosen over a holder's PID in the name: a PID may be reused, and on a
    shared file system (a cluster's) it names a process on another machine, while NFS passes
    flock locks between machines.
    """
    removed = []
    for candidate in candidates:
        try:  # NONBLOCK: opening a FIFO of that name must not wait for a writer
            descriptor = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:  # gone meanwhile, a link, or not ours to read: leave it
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Under the lock, so a holder that takes it next sees it gone.
            if stat.S_ISDIR(os.fstat(descriptor).st_mode):
                shutil.rmtree(candidate)
            else:
                candidate.unlink()
            removed.append(candidate)
        except OSError:  # locked: its holder still runs; or it cannot be removed
            pass
        finally:
            os.close(descriptor)
    return removed


def _not_writable(target: Path, folder: Path) -> str:
    return (
        f"cannot write '{target}': folder '{folder}' is not writable (no file can be created "
        "there); choose another folder"
    )


def _existing_ancestor(folder: Path) -> Path:
    """`folder` itself if it exists, else its nearest parent that does."""
    folder = Path(os.path.abspath(folder))
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def fsync_directory(folder: str | os.PathLike) -> None:
    """Makes a rename or creation inside `folder` durable (its entry reaches the disk)."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(folder: str | os.PathLike) -> None:
    """fsyncs every file and folder under `folder`: its content is on the disk before a publish."""
    for root, _, files in os.walk(folder):
        for name in files:
            descriptor = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        fsync_directory(root)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Writes a small text file atomically and durably: a temporary file, fsync, rename, fsync."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with writing(path):
        try:
            with open(temporary, "w") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        fsync_directory(path.parent)
