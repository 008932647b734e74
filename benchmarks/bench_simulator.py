"""Events per second of the forward model: `explode` alone and `simulate_events` end to end.

Run from the repository root: python -m benchmarks.bench_simulator [--num_events=100000]
"""

import statistics
import time

import numpy as np
from absl import app, flags

from cvae_tf import physics, simulator

flags.DEFINE_integer("num_events", 100_000, "Events per timed run. Default: 100000.")
flags.DEFINE_integer("repeats", 5, "Timed runs of each; the median is reported. Default: 5.")


def median_seconds(function, repeats: int) -> float:
    """Median wall-clock seconds of `repeats` calls of function()."""
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def main(argv: list[str]) -> None:
    """Times both paths and prints events/s, with the energy accuracy of the timed events."""
    del argv  # Unused.
    num_events, repeats = flags.FLAGS.num_events, flags.FLAGS.repeats
    config = simulator.SimulationConfig(num_events=num_events, seed=1)
    positions = simulator.sample_geometries(
        num_events, np.random.default_rng(1), config.prior, config.orientation
    )
    momenta = simulator.explode(positions)  # also warms up caches and the allocator
    energy_ratio = physics.kinetic_energy(momenta) / physics.potential_energy(positions)
    relative_error = np.abs(energy_ratio - 1)

    explode_seconds = median_seconds(lambda: simulator.explode(positions), repeats)
    simulate_seconds = median_seconds(lambda: simulator.simulate_events(config), repeats)
    print(f"{num_events} events, median of {repeats} runs")
    print(f"  explode:          {num_events / explode_seconds:10,.0f} events/s")
    print(f"  simulate_events:  {num_events / simulate_seconds:10,.0f} events/s")
    print(
        f"  |KE_final / PE_initial - 1|: median {np.median(relative_error):.1e}, "
        f"99.9th percentile {np.quantile(relative_error, 0.999):.1e}"
    )


if __name__ == "__main__":
    app.run(main)
