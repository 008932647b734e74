"""`python -m cvae_tf.simulate`: simulate OCS Coulomb-explosion events into a CSV file."""

import contextlib
import time

from absl import flags

from cvae_tf import cli, csv_files, physics, simulator
from cvae_tf.cli import UserInputError

_PRIOR = simulator.GeometryPrior()


def _bohr_help(what: str, bohr: float) -> str:
    """Help text for a length flag: unit, default in bohr and in picometres."""
    picometres = bohr / physics.BOHR_PER_PICOMETRE
    return f"{what}, bohr. Default: {bohr:.6g} ({picometres:.4g} pm)."


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """The simulate command's flags; every default is the library's."""
    flags.DEFINE_integer(
        "num_events",
        50_000,
        "Number of events to simulate. Default: 50000.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "seed",
        0,
        "Seed of every random draw; same flags, same file. Default: 0.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "output",
        None,
        "CSV file to write (required); its folder must exist.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "co_bond_mean",
        _PRIOR.co_bond_mean,
        _bohr_help("Mean C–O bond length", _PRIOR.co_bond_mean),
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "co_bond_spread",
        _PRIOR.co_bond_spread,
        _bohr_help("Standard deviation of the C–O bond length", _PRIOR.co_bond_spread),
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "cs_bond_mean",
        _PRIOR.cs_bond_mean,
        _bohr_help("Mean C–S bond length", _PRIOR.cs_bond_mean),
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "cs_bond_spread",
        _PRIOR.cs_bond_spread,
        _bohr_help("Standard deviation of the C–S bond length", _PRIOR.cs_bond_spread),
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "angle_mean",
        _PRIOR.angle_mean,
        f"Mean O–C–S angle, degrees (180 = linear). Default: {_PRIOR.angle_mean}.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "angle_spread",
        _PRIOR.angle_spread,
        f"Standard deviation of the O–C–S angle, degrees. Default: {_PRIOR.angle_spread}.",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "orientation",
        "random",
        simulator.ORIENTATIONS,
        "random: each molecule rotated uniformly over SO(3); fixed: all in the xy-plane with O "
        "on +x from C. Default: random.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "zero_point_momentum_spread",
        0.0,
        "Standard deviation of each ion's initial momentum per component, a.u. (total momentum "
        "removed). Default: 0 (ions start at rest).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "detector_momentum_noise",
        0.0,
        "Standard deviation of the Gaussian noise added to each final momentum component, a.u. "
        "Default: 0.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "detector_momentum_resolution",
        0.0,
        "Relative detector resolution: Gaussian noise of this fraction of each ion's momentum "
        "magnitude added to each of its components (0.01 = 1 %), in [0, 1). Default: 0.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "workers",
        0,
        "Processes that simulate at once, each a chunk of events at a time; 0 uses every core "
        "available. The file does not depend on it. Default: 0.",
        flag_values=flag_values,
    )
    cli.define_overwrite_flag(flag_values)


def config_from_flags(flag_values: flags.FlagValues) -> simulator.SimulationConfig:
    """The validated SimulationConfig of the parsed flags."""
    prior_fields = ("co_bond_mean", "co_bond_spread", "cs_bond_mean", "cs_bond_spread")
    prior_fields += ("angle_mean", "angle_spread")
    try:
        prior = simulator.GeometryPrior(**{name: flag_values[name].value for name in prior_fields})
        return simulator.SimulationConfig(
            num_events=flag_values.num_events,
            seed=flag_values.seed,
            prior=prior,
            orientation=flag_values.orientation,
            zero_point_momentum_spread=flag_values.zero_point_momentum_spread,
            detector_momentum_noise=flag_values.detector_momentum_noise,
            detector_momentum_resolution=flag_values.detector_momentum_resolution,
        )
    except UserInputError as error:
        # The library's messages start with the field name, which is also the flag's name.
        raise UserInputError(f"--{error}") from None


def workers_from_flags(flag_values: flags.FlagValues) -> int:
    """The validated number of worker processes --workers asks for."""
    try:
        return simulator.worker_count(flag_values.workers)
    except UserInputError as error:
        raise UserInputError(f"--{error}") from None


def chunk_csv(config: simulator.SimulationConfig, index: int, chunk_events: int) -> str:
    """One chunk of events as CSV text, the header in the first chunk only: a worker's task."""
    # Formatting here, in the workers, as well as simulating: pandas' to_csv is the slower half
    # (55,000 against 99,000 events/s on one core), and the parent then only writes text.
    positions, momenta = simulator.simulate_chunk(config, index, chunk_events)
    return csv_files.csv_text(csv_files.events_frame(positions, momenta), header=index == 0)


def execute(flag_values: flags.FlagValues) -> None:
    """Validates every flag, simulates, writes the CSV and says where it went."""
    config = config_from_flags(flag_values)
    workers = workers_from_flags(flag_values)
    path = cli.check_output_path(flag_values.output, flag_values.overwrite)
    started = time.perf_counter()
    # Chunk by chunk, in order, into the temporary file: memory stays bounded for any
    # --num_events. closing() stops the workers as soon as writing fails.
    chunks = simulator.map_chunks(chunk_csv, config, workers, progress=True)
    with contextlib.closing(chunks):
        csv_files.write_csv_atomically(path, chunks)
    seconds = time.perf_counter() - started
    print(
        f"Wrote {config.num_events} simulated events (positions in bohr, momenta in a.u.) to "
        f"{path} in {seconds:.1f} s"
    )


if __name__ == "__main__":
    cli.run_command(define_flags, execute)
