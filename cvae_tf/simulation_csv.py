"""Simulated events into a CSV or Parquet file: the simulate command's output settings and call."""

import contextlib
import dataclasses
from pathlib import Path

import pyarrow as pa

from cvae_tf import (
    chunk_pool,
    csv_files,
    file_flags,
    parquet_files,
    progress,
    simulation_chunks,
    simulator,
)
from cvae_tf.flag_fields import option
from cvae_tf.molecule import OCS, Molecule


@dataclasses.dataclass(frozen=True)
class CsvOutput:
    """Where the simulated events go and how many processes simulate them."""

    output: str | None = file_flags.output_option(
        "CSV file to write (required), or Parquet if it ends in .parquet or .pq; its folder "
        "must exist."
    )
    overwrite: bool = file_flags.overwrite_option()
    workers: int = option(
        0,
        "Processes that simulate at once, each a chunk of events at a time; 0 uses every core "
        "available. The file does not depend on it.",
    )

    def __post_init__(self) -> None:
        chunk_pool.worker_count(self.workers)  # raises UserInputError naming a bad --workers


def simulate_csv(config: simulator.SimulationConfig, output: CsvOutput) -> Path:
    """Simulates `config`'s events into the file `output.output` (CSV or Parquet); its path.

    Positions in bohr, momenta in a.u., in the molecule's columns (OCS: cx..sz, pcx..psz); the
    same config gives the same bytes for any number of workers. A progress bar goes to stderr
    on a terminal; the file appears only when complete.
    """
    path = file_flags.check_output_path(output.output, output.overwrite)
    as_parquet = parquet_files.is_parquet(path)
    # Chunk by chunk, in order, into the temporary file: memory stays bounded for any
    # --num_events. closing() stops the workers as soon as writing fails. CHUNK_EVENTS is passed
    # on because a spawned worker would read its own module's value.
    chunks = chunk_pool.map_chunks(
        simulation_chunks.chunk_columns if as_parquet else simulation_chunks.chunk_csv,
        config,
        simulator.CHUNK_EVENTS,
        output.workers,
        progress=progress.shown(),
    )
    # The file's largest possible size is reserved before the workers start (map_chunks is a
    # generator: they start at the first chunk asked for). Stopping workers while one sends its
    # chunk (~17 MB) left the pool waiting forever for the rest of the message, so a full disk
    # or a reached ulimit -f hung the command; reserved, they fail at once, with no worker yet.
    with contextlib.closing(chunks):
        if as_parquet:
            molecule = config.fragments
            names = [*molecule.position_columns, *molecule.momentum_columns]
            tables = (pa.Table.from_arrays(list(columns), names=names) for columns in chunks)
            num_chunks = -(-config.num_events // simulator.CHUNK_EVENTS)
            reserve_bytes = parquet_files.max_bytes(config.num_events * len(names), num_chunks)
            parquet_files.write_atomically(path, tables, reserve_bytes=reserve_bytes)
        else:
            reserve_bytes = max_csv_bytes(config.num_events, config.fragments)
            csv_files.write_csv_atomically(path, chunks, reserve_bytes=reserve_bytes)
    return path


def max_csv_bytes(num_events: int, molecule: Molecule = OCS) -> int:
    """An upper bound on the simulate command's file size for `num_events` events (bytes)."""
    header = len(",".join([*molecule.position_columns, *molecule.momentum_columns]))
    # 6 values a fragment (18 for OCS) an event, each at most 19 characters in FLOAT_FORMAT
    # ("-1.23456789012e-100") and its comma or newline: about 1.4 times the typical 260 bytes
    # an OCS event.
    return header + 1 + num_events * 2 * molecule.num_coordinates * 20
