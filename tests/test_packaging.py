"""The installable package: what its wheel holds and declares, and imports without side effects."""

import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO

COMMANDS = ("train", "predict", "simulate", "check_data", "align")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The wheel `pip install <checkout>` builds and installs, built offline from a copy of the
    checkout (setuptools builds in the source tree)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("cvae_tf", "flags"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    folder = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*command, "-w", str(folder), str(source)], check=True, timeout=300)
    (path,) = folder.glob("cvae_tf-*.whl")
    return zipfile.ZipFile(path)


def _dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [each for each in wheel.namelist() if each.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


def test_the_wheel_holds_the_package_alone_with_its_molecules_and_flagfiles(wheel):
    names = wheel.namelist()
    assert {name.split("/")[0] for name in names} - {"cvae_tf"} == {"cvae_tf-0.1.0.dist-info"}
    modules = {path.name for path in (REPO / "cvae_tf").glob("*.py")}
    assert {name.split("/")[1] for name in names if name.count("/") == 1} >= modules
    molecules = {path.name for path in (REPO / "cvae_tf" / "molecules").glob("*.json")}
    assert {name.rsplit("/", 1)[1] for name in names if "/molecules/" in name} == molecules
    assert "cvae_tf/flags/quick.cfg" in names and "cvae_tf/flags/default.cfg" in names
    assert wheel.read("cvae_tf/flags/quick.cfg") == (REPO / "flags" / "quick.cfg").read_bytes()


def test_the_console_scripts_are_the_commands(wheel):
    scripts = _dist_info(wheel, "entry_points.txt").split("[console_scripts]")[1]
    lines = {line.replace(" ", "") for line in scripts.strip().splitlines()}
    expected = {f"cvae-{name.replace('_', '-')}=cvae_tf.cli:{name}" for name in COMMANDS}
    assert lines == expected


def _requirements(wheel: zipfile.ZipFile) -> list:
    from packaging.requirements import Requirement

    return [
        Requirement(line.split(":", 1)[1].strip())
        for line in _dist_info(wheel, "METADATA").splitlines()
        if line.startswith("Requires-Dist:")
    ]


PLATFORMS = (("linux", "x86_64"), ("win32", "AMD64"), ("linux", "aarch64"), ("darwin", "arm64"))


def test_one_tensorflow_distribution_with_every_extra_on_every_platform(wheel):
    """The plain `tensorflow` alone, the [gpu] extra adding its and-cuda libraries to the same
    distribution: tensorflow-cpu, a second distribution of the same module, appears nowhere."""
    requires = _requirements(wheel)
    headers = _dist_info(wheel, "METADATA").split("\n\n", 1)[0]  # then the README
    assert "tensorflow-cpu" not in headers and "tensorflow_cpu" not in headers
    for platform, machine in PLATFORMS:
        for extra in ("", "dev", "gpu"):
            where = {"sys_platform": platform, "platform_machine": machine, "extra": extra}
            names = {
                requirement.name
                for requirement in requires
                if requirement.marker is None or requirement.marker.evaluate(where)
            }
            assert names & {"tensorflow", "tensorflow-cpu"} == {"tensorflow"}, where


def test_the_gpu_extra_is_tensorflows_and_cuda_on_x86_64_linux_only(wheel):
    """`pip install ".[gpu]"` adds NVIDIA's pip libraries where TensorFlow has a CUDA build, and
    nothing elsewhere; its version range is the base dependency's."""
    requires = _requirements(wheel)
    (base,) = [each for each in requires if each.name == "tensorflow" and each.marker is None]
    (gpu,) = [each for each in requires if each.name == "tensorflow" and each.extras]
    assert gpu.extras == {"and-cuda"} and gpu.specifier == base.specifier
    for platform, machine in PLATFORMS:
        for extra in ("", "dev", "gpu"):
            where = {"sys_platform": platform, "platform_machine": machine, "extra": extra}
            expected = extra == "gpu" and (platform, machine) == ("linux", "x86_64")
            assert gpu.marker.evaluate(where) == expected, where


def _environment_changes(code: str) -> dict:
    """The environment variables `code` sets or changes, run in a fresh interpreter."""
    script = (
        "import json, os\n"
        "before = dict(os.environ)\n"
        f"{code}\n"
        "print(json.dumps({k: v for k, v in os.environ.items() if before.get(k) != v}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_importing_the_library_sets_no_environment_variable():
    """Every module but the commands' imported: only TensorFlow's own variables appear."""
    commands = ", ".join(repr(name) for name in ("cli", *COMMANDS))
    library = _environment_changes(
        "import importlib, pkgutil, cvae_tf\n"
        "for module in pkgutil.iter_modules(cvae_tf.__path__):\n"
        f"    if module.name not in ({commands}):\n"
        "        importlib.import_module(f'cvae_tf.{module.name}')"
    )
    dependencies = _environment_changes("import keras, matplotlib, pandas, tensorflow")
    assert "TF_CPP_MIN_LOG_LEVEL" not in library and "TF_ENABLE_ONEDNN_OPTS" not in library
    assert set(library) <= set(dependencies), library


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_sets_tensorflows_variables_before_tensorflow_is_imported(name):
    """What TensorFlow finds at its import, recorded by an import hook, for each command module."""
    changes = _environment_changes(
        "import importlib.abc, sys\n"
        "seen = {}\n"
        "class Hook(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, fullname, path=None, target=None):\n"
        "        if fullname == 'tensorflow' and not seen:\n"
        "            seen.update((k, os.environ.get(k)) for k in\n"
        "                        ('TF_CPP_MIN_LOG_LEVEL', 'TF_ENABLE_ONEDNN_OPTS'))\n"
        "sys.meta_path.insert(0, Hook())\n"
        f"import cvae_tf.{name}\n"
        "import tensorflow\n"
        "os.environ['SEEN'] = json.dumps(seen)"
    )
    expected = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}
    assert json.loads(changes["SEEN"]) == expected
