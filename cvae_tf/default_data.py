"""The default data set: simulated once with a fixed seed on first use, then cached as a CSV."""

import os
from pathlib import Path

from cvae_tf import csv_files, file_writes, simulator

DEFAULT_DATA_EVENTS = 50_000
DEFAULT_DATA_SEED = 20241123  # the specification's date; fixed so every user gets the same set.
_DEFAULT_DATA_VERSION = 2  # bump when the simulator's output for the default set changes.


def cache_dir() -> Path:
    """Where the default data set is kept: $CVAE_TF_CACHE, else $XDG_CACHE_HOME/cvae_tf."""
    if os.environ.get("CVAE_TF_CACHE"):
        return Path(os.environ["CVAE_TF_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cvae_tf"


def default_data_path(num_events: int = DEFAULT_DATA_EVENTS) -> Path:
    """The embedded default data set's CSV, simulated with a fixed seed on first use and cached."""
    path = cache_dir() / f"ocs_default_v{_DEFAULT_DATA_VERSION}_{num_events}.csv"
    if path.exists():
        return path
    try:
        # Before simulating: a cache folder that cannot be made or written fails at once, naming it.
        with file_writes.writing(path.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
        file_writes.check_writable(path)
        print(
            f"Simulating the default OCS data set ({num_events} events) into {path} ...",
            flush=True,
        )
        config = simulator.SimulationConfig(num_events=num_events, seed=DEFAULT_DATA_SEED)
        positions, momenta = simulator.simulate_events(config, progress=True)
        csv_files.write_events_csv(path, positions, momenta)
        print(f"Default data set cached at {path}; later runs reuse it.", flush=True)
    except file_writes.WriteError as error:
        raise file_writes.WriteError(
            f"{error}; the default data set is cached there: set CVAE_TF_CACHE to a writable "
            "folder, or pass --data"
        ) from None
    return path
