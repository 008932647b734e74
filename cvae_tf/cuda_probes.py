"""TensorFlow's CUDA probes: what its GPU build prints where there is no GPU, kept off stderr."""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# The lines that the plain `tensorflow` wheel (on x86-64 Linux the CUDA build) writes to file
# descriptor 2 on a machine without a GPU, each with absl's or TensorFlow's prefix (severity,
# time, thread, source file), matched by what follows. C++ writes them straight to the file
# descriptor, so Python's sys.stderr never sees them, and TF_CPP_MIN_LOG_LEVEL=3 hides the cuInit
# line only: the others come before absl's logging is set up. Measured with 2.21 and 2.19.
PROBE_LINES = tuple(
    re.compile(pattern)
    for pattern in (
        # absl's notice before a shared library's first log line (each library has its own).
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
        r"STDERR$",
        # No libcuda.so (no NVIDIA driver): twice at import, at any log level (2.21, without
        # NVIDIA's pip libraries, which [gpu] adds).
        r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be "
        r"used\.$",
        # cuInit at the first device listing, below TF_CPP_MIN_LOG_LEVEL=3: without a driver
        # (303, the stub's CUDA_ERROR_SHARED_OBJECT_INIT_FAILED) or without a device (a driver
        # but no GPU, or CUDA_VISIBLE_DEVICES=""; CUDA's name for it, not measured here). Any
        # other cause is a GPU that cannot be used, and shown.
        r"\] failed call to cuInit: .*(?:UNKNOWN ERROR \(303\)|CUDA_ERROR_NO_DEVICE)",
        # 2.17 to 2.19, at import, GPU or not: CUDA plugins and the computation placer
        # registered twice by two of TensorFlow's libraries, harmless (tensorflow#62075).
        r"\] Unable to register (cuFFT|cuDNN|cuBLAS) factory: Attempting to register factory "
        r"for plugin \1 when one has already been registered$",
        r"computation_placer\.cc:\d+\] computation placer already registered\. Please check "
        r"linkage and avoid linking the same target more than once\.$",
    )
)


def is_probe(line: str) -> bool:
    """Whether `line` (without its line break) is one of PROBE_LINES."""
    return any(pattern.search(line) for pattern in PROBE_LINES)


def _flush_stderr() -> None:
    if sys.stderr is not None:  # None under pythonw
        sys.stderr.flush()


def _write_all(descriptor: int, data: bytes) -> None:
    while data:
        data = data[os.write(descriptor, data) :]


@contextlib.contextmanager
def probes_kept_off_stderr() -> Iterator[None]:
    """Runs the block with file descriptor 2 captured, then writes what it got there, but probes.

    If the block raises, every captured line is written, probes included: they may be why.
    Python's own writes to sys.stderr pass through descriptor 2 as well, in their order.
    """
    _flush_stderr()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to keep anything off
        yield
        return
    failed = True
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
            failed = False
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().splitlines(keepends=True)
            kept = [
                line
                for line in lines
                if failed or not is_probe(line.decode(errors="replace").rstrip("\r\n"))
            ]
            _write_all(2, b"".join(kept))


class _ProbeFilteringLoader(importlib.abc.Loader):
    """The `tensorflow` package's own loader, run under probes_kept_off_stderr, devices listed."""

    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__loader__ = module.__spec__.loader = self.loader  # no trace of this wrapper
        with probes_kept_off_stderr():
            self.loader.exec_module(module)
            # cuInit runs, and logs, at the first device listing or operation, which may come
            # just before a one-line error; listing physical devices does not start the runtime
            # (a MultiWorkerMirroredStrategy can still be created, logical devices configured).
            module.config.list_physical_devices()


class _ProbeFilteringFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the other finders do, once, and gives it _ProbeFilteringLoader."""

    def __init__(self):
        self.used = False  # then it stays, inert: the import system is iterating sys.meta_path

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow" or self.used:
            return None
        self.used = True
        spec = importlib.util.find_spec(fullname)  # the other finders' (this one is used)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _ProbeFilteringLoader(spec.loader)
        return spec


def filter_tensorflow_import() -> None:
    """Keeps the probes of TensorFlow's first import in this process, wherever it happens, off
    stderr (and of its first device listing, done then): the commands' one-line errors stay one
    line on a machine without a GPU, and nothing else TensorFlow prints is lost.

    An import hook rather than an import here, so that the commands that never need TensorFlow
    (simulate; check_data and align without --model_dir) do not load it. absl's Python logging
    and TF_CPP_MIN_LOG_LEVEL cannot reach these lines (C++, before absl is initialized), and
    contextlib.redirect_stderr replaces sys.stderr only, not the file descriptor.
    """
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _ProbeFilteringFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ProbeFilteringFinder())
