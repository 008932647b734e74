"""`python -m cvae_tf.simulate`: simulate a molecule's Coulomb-explosion events into a CSV file."""

import time

from absl import flags

from cvae_tf import cli, flag_fields, simulator

# simulation_csv (pandas, pyarrow) is imported in the functions that use it, not here: every
# worker process the command spawns imports this module first (multiprocessing's spawn
# re-imports the parent's main module), and pandas and pyarrow took each worker 0.4 s of CPU to
# import for nothing (1.8 s when the workers start together on a busy machine); a worker needs
# only the simulator and simulation_chunks.


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The simulate command's flags: SimulationConfig's (molecule and prior too) and CsvOutput's."""
    from cvae_tf import simulation_csv  # see above

    flag_fields.define_flags(simulator.SimulationConfig, flag_values)
    flag_fields.define_flags(simulation_csv.CsvOutput, flag_values)


def execute(flag_values: flags.FlagValues) -> None:
    """Validates every flag, simulates, writes the CSV and says where it went."""
    from cvae_tf import simulation_csv  # see above

    config = flag_fields.from_flags(simulator.SimulationConfig, flag_values)
    output = flag_fields.from_flags(simulation_csv.CsvOutput, flag_values)
    started = time.perf_counter()
    path = simulation_csv.simulate_csv(config, output)
    seconds = time.perf_counter() - started
    print(
        f"Wrote {config.num_events} simulated {config.fragments.describe()} events (positions in "
        f"bohr, momenta in a.u.) to {path} in {seconds:.1f} s"
    )


if __name__ == "__main__":
    cli.run_command(define_flags, execute)
