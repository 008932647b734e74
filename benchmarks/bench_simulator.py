"""Events per second of the forward model for 3, 4 and 5 fragments, and per fragment pair.

Run from the repository root:

    python -m benchmarks.bench_simulator [--num_events=50000] [--repeats=5] [--baseline=REF]

Each channel's `explode` is timed in turn, round after round (so a busy machine slows all of
them alike), and the median of the rounds reported; `--baseline` also times the simulator.py of
that git revision on the OCS²⁺ events in the same rounds (before and after a change).
"""

import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from cvae_tf import molecule, physics, simulator

flags.DEFINE_integer("num_events", 50_000, "Events per timed run. Default: 50000.")
flags.DEFINE_integer("repeats", 5, "Timed rounds; the median is reported. Default: 5.")
flags.DEFINE_string(
    "baseline", "", "A git revision whose simulator.py is timed on OCS²⁺ too. Default: none."
)

# A 4-fragment channel with unequal masses and charges (the shape of formaldehyde, bohr).
H2CO = molecule.from_dict(
    {
        "name": "H2CO",
        "atoms": ["C", "O", "H1", "H2"],
        "charges": [2, 3, 1, 1],
        "reference_geometry": [[0, 0, 0], [0, 0, 2.28], [1.77, 0, -1.1], [-1.77, 0, -1.1]],
        "position_spread": 0.1,
    }
)
CHANNELS = {
    "OCS (2,2,2)": molecule.OCS,
    "OCS (1,1,1)": molecule.MoleculeConfig(charges=("1", "1", "1")).resolve(),
    "H2CO (2,3,1,1)": H2CO,
    "five-atom CHBrClF (1,1,1,1,1)": molecule.load("chbrclf"),
}


def baseline_simulator(revision: str):
    """The simulator module as it was at the git `revision`, imported under another name."""
    repository = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "-C", str(repository), "show", f"{revision}:cvae_tf/simulator.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_simulator.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_simulator", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main(argv: list[str]) -> None:
    """Times every channel round by round; prints events/s, per pair, and the energy accuracy."""
    del argv  # Unused.
    num_events, repeats = flags.FLAGS.num_events, flags.FLAGS.repeats
    runs = {}  # name: (fragment pairs, the call timed)
    accuracy = {}
    for name, fragments in CHANNELS.items():
        positions = simulator.sample_geometries(
            num_events, np.random.default_rng(1), simulator.GeometryPrior(), "random", fragments
        )
        masses, charges = fragments.mass_array, fragments.charge_array

        def run(positions=positions, masses=masses, charges=charges):
            return simulator.explode(positions, masses=masses, charges=charges)

        momenta = run()  # also warms up caches and the allocator
        ratio = physics.kinetic_energy(momenta, masses) / physics.potential_energy(
            positions, charges
        )
        accuracy[name] = np.abs(ratio - 1)
        runs[name] = (len(fragments.pairs), run)
        if name == "OCS (2,2,2)" and flags.FLAGS.baseline:
            old = baseline_simulator(flags.FLAGS.baseline)
            old.explode(positions)
            runs[f"OCS (2,2,2), {flags.FLAGS.baseline}"] = (
                3,
                lambda p=positions, old=old: old.explode(p),
            )
    config = simulator.SimulationConfig(num_events=num_events, seed=1)
    runs["OCS (2,2,2) simulate_events"] = (3, lambda: simulator.simulate_events(config))

    durations = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (_, run) in runs.items():
            durations[name].append(seconds(run))

    print(f"{num_events} events a run, median of {repeats} rounds")
    print(f"  {'channel':40s} {'events/s':>10s} {'pairs':>5s} {'pair-events/s':>14s}")
    for name, (pairs, _) in runs.items():
        rate = num_events / statistics.median(durations[name])
        print(f"  {name:40s} {rate:10,.0f} {pairs:5d} {rate * pairs:14,.0f}")
    for name, errors in accuracy.items():
        print(
            f"  {name}: |KE_final / PE_initial - 1| median {np.median(errors):.1e}, "
            f"99.9th percentile {np.quantile(errors, 0.999):.1e}"
        )


if __name__ == "__main__":
    app.run(main)
