"""The README's package map names every module of the package."""

from tests.conftest import REPO


def test_package_map_lists_every_module():
    readme = (REPO / "README.md").read_text()
    package_map = readme.split("## Package map", 1)[1].split("\n## ", 1)[0]
    modules = sorted(path.name for path in (REPO / "cvae_tf").glob("*.py"))
    missing = [
        name
        for name in modules
        if name != "__init__.py"
        and f"`cvae_tf/{name}`" not in package_map
        and f"`{name}`" not in package_map
    ]
    assert missing == []
