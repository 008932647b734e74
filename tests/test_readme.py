"""The README's package map: every module named, none that is gone, the layers the imports obey."""

import ast
import re

from tests.conftest import REPO

PACKAGE = REPO / "cvae_tf"


def _package_map() -> str:
    readme = (REPO / "README.md").read_text()
    return readme.split("## Package map", 1)[1].split("\n## ", 1)[0]


def _modules() -> list[str]:
    return sorted(path.name for path in PACKAGE.glob("*.py") if path.name != "__init__.py")


def _layers() -> dict[str, int]:
    """{module file name: layer index} from the map's bullet list of layers."""
    layers = {}
    items = re.findall(r"^- \*\*[^*]+:\*\* (.*?)(?=^- \*\*|^$)", _package_map(), re.M | re.S)
    for index, item in enumerate(items):
        for name in re.findall(r"`([a-z_]+\.py)`", item):
            layers[name] = index
    return layers


def _imports(name: str) -> set[str]:
    """The cvae_tf modules `name` imports, as file names."""
    tree = ast.parse((PACKAGE / name).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "cvae_tf":
            imported |= {f"{alias.name}.py" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cvae_tf."):
            imported.add(node.module.split(".")[1] + ".py")
    return imported - {name}


def test_package_map_lists_every_module():
    package_map = _package_map()
    missing = [
        name
        for name in _modules()
        if f"`cvae_tf/{name}`" not in package_map and f"`{name}`" not in package_map
    ]
    assert missing == []


def test_package_map_names_no_module_that_is_gone():
    named = set(re.findall(r"`(?:cvae_tf/)?([a-z_]+\.py)`", _package_map()))
    benchmarks = {path.name for path in (REPO / "benchmarks").glob("*.py")}
    assert named - set(_modules()) - benchmarks == set()


def test_every_module_has_a_layer_and_imports_only_from_its_own_or_higher_layers():
    layers = _layers()
    assert sorted(layers) == _modules()
    upward = {
        (name, imported)
        for name in _modules()
        for imported in _imports(name)
        if layers[imported] > layers[name]
    }
    assert upward == set()
