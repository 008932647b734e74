"""What before-and-after benchmarks share: another git revision's files, and a file's digest."""

import hashlib
import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def exported_tree(revision: str, folder: Path) -> Path:
    """The files of git `revision` of this repository, exported into `folder`/baseline."""
    tree = folder / "baseline"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", revision], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def digest(path: Path) -> str:
    """The file's SHA-256, hex."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
