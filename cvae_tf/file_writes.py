"""Writes that fail as one line: a full disk, a size limit, a read-only or unwritable place."""

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from cvae_tf.errors import UserInputError

# The system's locks and limits: fcntl and resource are POSIX's, msvcrt Windows'.
try:
    import fcntl
except ImportError:
    fcntl = None
try:
    import msvcrt
except ImportError:
    msvcrt = None
try:
    import resource
except ImportError:
    resource = None

# What each errno means for the user, and what would let the write succeed.
_REASONS = {
    errno.ENOSPC: "the disk is full (no space left on device); free some space or choose a folder "
    "on another disk",
    getattr(errno, "EDQUOT", errno.ENOSPC): "the disk quota is exceeded; free some space or choose "
    "a folder on another disk",
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
    if resource is None:  # Windows: no file-size limit to check
        return
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY and largest_file > limit:
        raise WriteError(
            f"cannot write '{path}': {what} needs a file of about {_megabytes(largest_file)}, "
            f"above the file-size limit (ulimit -f) of {_megabytes(limit)}; raise it (ulimit -f "
            "unlimited) or write less"
        )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.2f} MB"


# Whether a folder can be opened, so locked, itself: flock's systems can, Windows cannot; there a
# folder's lock is a LOCK_FILE inside it.
FOLDERS_LOCKABLE = fcntl is not None
LOCK_FILE = ".lock"


def lock(descriptor: int, wait: bool = True) -> None:
    """An exclusive lock on the open file or folder `descriptor`, held until it is closed.

    The system drops it too when its process dies, however it dies (SIGKILL included). Raises
    BlockingIOError when another holder has it and `wait` is False. flock where the system has it
    (POSIX), else msvcrt.locking of the file's first byte (Windows; a lock may lie past the end,
    and LK_LOCK gives up after 10 s, as BlockingIOError too); where neither exists, nothing.
    """
    if fcntl is not None:
        fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    elif msvcrt is not None:
        os.lseek(descriptor, 0, os.SEEK_SET)  # locking covers bytes from the current position
        try:
            msvcrt.locking(descriptor, msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
        except OSError as error:
            raise BlockingIOError(errno.EAGAIN, "locked by another process") from error


def lock_path(path: str | os.PathLike) -> Path:
    """The file whose lock stands for `path`: itself, or a folder's LOCK_FILE where folders
    cannot be opened (Windows)."""
    path = Path(path)
    if not FOLDERS_LOCKABLE and path.is_dir():
        return path / LOCK_FILE
    return path


def open_for_lock(path: str | os.PathLike) -> int:
    """A descriptor on `path`'s lock_path to lock: a folder's LOCK_FILE is made if missing."""
    target = lock_path(path)
    if target != Path(path):
        return os.open(target, os.O_RDWR | os.O_CREAT)
    return os.open(target, os.O_RDONLY)


def locked_new(make: Callable[[], tuple[int, str]]) -> tuple[int, str]:
    """A new temporary file or folder from `make`, locked: its lock's descriptor and its name.

    `make` creates it and returns a descriptor to lock it by (open_for_lock's, or mkstemp's for
    a file) and its name. A holder keeps the descriptor open, so the lock, as long as the file or
    folder lives; remove_abandoned takes only those whose lock is free.
    """
    while True:
        descriptor, name = make()
        lock(descriptor)
        try:
            if os.path.samestat(os.stat(lock_path(name)), os.fstat(descriptor)):
                return descriptor, name
        except FileNotFoundError:
            pass
        # Another process's remove_abandoned found it in the instant before the lock.
        os.close(descriptor)


def remove_abandoned(candidates: Iterable[Path]) -> list[Path]:
    """Removes the temporary files and folders whose holder died (SIGKILL); returns them.

    Their holder (see locked_new) keeps a lock on each as long as it lives, and the system
    drops the lock when the holder dies, however it dies: one whose lock can be taken was
    therefore abandoned. Chosen over a holder's PID in the name: a PID may be reused, and on a
    shared file system (a cluster's) it names a process on another machine, while NFS passes
    flock locks between machines. Where the system has no locks, nothing is removed.
    """
    if fcntl is None and msvcrt is None:
        return []
    removed = []
    for candidate in candidates:
        try:
            descriptor = _open_candidate(candidate)
        except OSError:  # gone meanwhile, a link, no lock file yet, or not ours to read: leave it
            continue
        try:
            lock(descriptor, wait=False)
            # The descriptor is on the candidate itself, except for a Windows folder's lock file.
            is_folder = (
                stat.S_ISDIR(os.fstat(descriptor).st_mode) or lock_path(candidate) != candidate
            )
            if fcntl is None:  # Windows removes no open file: release first
                os.close(descriptor)
                descriptor = None
            # With flock, under the lock, so a holder that takes it next sees it gone.
            if is_folder:
                shutil.rmtree(candidate)
            else:
                candidate.unlink()
            removed.append(candidate)
        except OSError:  # locked: its holder still runs; or it cannot be removed
            pass
        finally:
            if descriptor is not None:
                os.close(descriptor)
    return removed


def _open_candidate(candidate: Path) -> int:
    """A descriptor on a candidate of remove_abandoned for its lock; OSError if there is none."""
    if fcntl is None:
        if candidate.is_symlink():
            raise OSError(errno.ELOOP, "a link", str(candidate))
        target = lock_path(candidate)  # a folder's lock file is never made here
        return os.open(target, os.O_RDWR if target != candidate else os.O_RDONLY)
    # NOFOLLOW: never a link's target; NONBLOCK: opening a FIFO of that name must not wait for a
    # writer.
    return os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)


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
    """Makes a rename or creation inside `folder` durable (its entry reaches the disk).

    Nothing where a folder cannot be opened (Windows, whose NTFS journals its folders itself).
    """
    if not hasattr(os, "O_DIRECTORY"):
        return
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
