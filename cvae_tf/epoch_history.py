"""The per-epoch history of a run: CSVLogger's file read back, each epoch once, and rewritten."""

import csv
import math
import os
from pathlib import Path


def read_history(path: Path) -> dict[str, list[float]]:
    """Per-epoch values by log key from CSVLogger's file; an epoch redone after resume counts once.

    A kill between the CSV line and the backup of an epoch makes --resume redo that epoch, so the
    last line of each epoch wins; a line cut short by the kill is skipped.
    """
    by_epoch = {}
    with open(path, newline="") as stream:
        for row in csv.DictReader(stream):
            if None in row or None in row.values() or "" in row.values():  # a cut line
                continue
            by_epoch[int(row.pop("epoch"))] = row
    history: dict[str, list[float]] = {}
    for epoch in sorted(by_epoch):
        for key, value in by_epoch[epoch].items():
            history.setdefault(key, []).append(_to_float(value))
    return history


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # CSVLogger's "NA" for a key missing that epoch
        return math.nan


def write_history(path: Path, history: dict[str, list[float]]) -> None:
    """Writes per-epoch values as CSVLogger does: an epoch column (0-based), then sorted keys."""
    keys = sorted(history)
    # Beside it, then renamed: a full disk mid-rewrite must not cut the file a --resume reads.
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["epoch", *keys])
            for epoch, values in enumerate(zip(*(history[key] for key in keys), strict=True)):
                writer.writerow([epoch, *values])
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
