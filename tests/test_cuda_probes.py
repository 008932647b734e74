"""The GPU build's CUDA probes kept off the commands' stderr (file descriptor 2), nothing else."""

import subprocess
import sys
import textwrap

import pytest

from cvae_tf import cuda_probes
from tests.conftest import REPO

# Verbatim from the plain `tensorflow` wheel on a 2-core machine without a GPU or NVIDIA driver,
# TF_CPP_MIN_LOG_LEVEL=2 (the commands'): 2.21 alone, 2.21 with [and-cuda], and 2.19.
PROBES_2_21 = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796179980.828238   27427 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1796179986.155330   27427 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
]
PROBES_2_19 = [
    "2026-12-02 02:59:11.705038: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:467] "
    "Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT when one "
    "has already been registered",
    "E0000 00:00:1796180351.720423    3671 cuda_dnn.cc:8579] Unable to register cuDNN factory: "
    "Attempting to register factory for plugin cuDNN when one has already been registered",
    "E0000 00:00:1796180351.724794    3671 cuda_blas.cc:1407] Unable to register cuBLAS factory: "
    "Attempting to register factory for plugin cuBLAS when one has already been registered",
    "W0000 00:00:1796180351.736609    3671 computation_placer.cc:177] computation placer already "
    "registered. Please check linkage and avoid linking the same target more than once.",
    "2026-12-02 02:59:14.107192: E external/local_xla/xla/stream_executor/cuda/"
    "cuda_platform.cc:51] failed call to cuInit: INTERNAL: CUDA error: Failed call to cuInit: "
    "UNKNOWN ERROR (303)",
]
# A driver installed but no GPU (or CUDA_VISIBLE_DEVICES=""), as TensorFlow words it.
NO_DEVICE = (
    "E0000 00:00:1796180000.000000    1234 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected"
)
# What stays: a GPU that is there but cannot be used, TensorFlow's other messages, ours.
KEPT = [
    "E0000 00:00:1796180000.000000    1234 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH: system has "
    "unsupported display driver / cuda driver combination",
    "I0000 00:00:1796179965.721370   27180 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "W0000 00:00:1796180000.000000    1234 gpu_device.cc:2342] Cannot dlopen some GPU libraries.",
    "error: --hidden_dim=-1; expected an integer ≥ 1",
]


@pytest.mark.parametrize("line", [*PROBES_2_21, *PROBES_2_19, NO_DEVICE])
def test_each_measured_probe_line_is_a_probe(line):
    assert cuda_probes.is_probe(line)


@pytest.mark.parametrize("line", KEPT)
def test_a_gpu_that_fails_and_every_other_line_is_not(line):
    assert not cuda_probes.is_probe(line)


def _stderr_of(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter (cvae_tf importable) and returns what it printed."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


# C's write(2, ...), as TensorFlow's C++ logging does it, bypassing Python's sys.stderr.
C_WRITES = """
import ctypes, os, sys
from cvae_tf import cuda_probes

libc = ctypes.CDLL(None)

def c_write(lines):
    for line in lines:
        data = (line + "\\n").encode()
        assert libc.write(2, data, len(data)) == len(data)
"""


def test_probes_written_by_c_to_descriptor_2_are_dropped_and_the_rest_kept_in_order():
    result = _stderr_of(
        C_WRITES
        + f"""
print("before", file=sys.stderr)
with cuda_probes.probes_kept_off_stderr():
    c_write({PROBES_2_21[:2]!r})
    c_write({KEPT[:1]!r})
    print("python's own line", file=sys.stderr)
    c_write({PROBES_2_19!r})
    os.write(2, {KEPT[1] + chr(10)!r}.encode())
    c_write({[PROBES_2_21[2], NO_DEVICE]!r})
print("after", file=sys.stderr)
"""
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["before", KEPT[0], "python's own line", KEPT[1], "after"]


def test_a_failing_block_shows_everything_it_wrote_probes_included():
    result = _stderr_of(
        C_WRITES
        + f"""
with cuda_probes.probes_kept_off_stderr():
    c_write({PROBES_2_21!r})
    raise ImportError("libcudnn.so.9: cannot open shared object file")
"""
    )
    lines = result.stderr.splitlines()
    assert result.returncode == 1
    assert lines[:3] == PROBES_2_21
    assert lines[-1] == "ImportError: libcudnn.so.9: cannot open shared object file"


@pytest.fixture
def fake_tensorflow(tmp_path):
    """A stand-in `tensorflow` package that prints as the GPU build does, at import and at its
    first device listing, and says whether the import failed (FAIL set) and when devices were
    listed."""
    package = tmp_path / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            f"""
            import ctypes, os, sys, types
            libc = ctypes.CDLL(None)
            def c_write(lines):
                for line in lines:
                    data = (line + "\\n").encode()
                    libc.write(2, data, len(data))
            c_write({[*PROBES_2_21[:2], KEPT[1], PROBES_2_21[0], PROBES_2_21[1]]!r})
            if os.environ.get("FAIL"):
                raise ImportError("DLL load failed while importing _pywrap_tensorflow_internal")
            def list_physical_devices(device_type=None):
                c_write({[PROBES_2_21[2]]!r})
                print("listed", flush=True)
                return []
            config = types.SimpleNamespace(list_physical_devices=list_physical_devices)
            """
        )
    )
    return tmp_path


def _import_under_cli(fake_tensorflow, env: dict | None = None) -> subprocess.CompletedProcess:
    return _stderr_of(
        """
        import sys
        from cvae_tf import cli
        assert "tensorflow" not in sys.modules  # the hook imports nothing itself
        print("imported cli", flush=True)
        import tensorflow
        print(type(tensorflow.__loader__).__name__, type(tensorflow.__spec__.loader).__name__)
        import tensorflow  # a second import finds the module, and prints nothing
        """,
        env={"PYTHONPATH": f"{fake_tensorflow}:{REPO}", **(env or {})},
    )


def test_the_commands_first_tensorflow_import_keeps_the_probes_off_stderr(fake_tensorflow):
    result = _import_under_cli(fake_tensorflow)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [KEPT[1]]
    # Devices listed during the import, under the filter; the module keeps its own loader.
    assert result.stdout.splitlines() == [
        "imported cli",
        "listed",
        "SourceFileLoader SourceFileLoader",
    ]


def test_a_failing_tensorflow_import_shows_what_tensorflow_printed(fake_tensorflow):
    result = _import_under_cli(fake_tensorflow, env={"FAIL": "1"})
    lines = result.stderr.splitlines()
    assert result.returncode == 1
    assert lines[:5] == [*PROBES_2_21[:2], KEPT[1], PROBES_2_21[0], PROBES_2_21[1]]
    assert lines[-1] == ("ImportError: DLL load failed while importing _pywrap_tensorflow_internal")


def test_the_commands_that_need_no_tensorflow_still_do_not_load_it():
    """The hook waits for an import: simulate, check_data and align (without --model_dir) run
    without TensorFlow's seconds of start-up."""
    result = _stderr_of(
        """
        import sys
        import cvae_tf.align, cvae_tf.check_data, cvae_tf.simulate
        print("tensorflow" in sys.modules)
        """
    )
    assert result.stdout.split() == ["False"], result.stderr
