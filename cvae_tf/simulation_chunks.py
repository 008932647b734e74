"""One chunk of simulated events as CSV text or as float64 columns: the simulate command's tasks.

Each runs in a spawned worker process (chunk_pool), which imports this module, so it imports
numpy and the simulator alone: a worker starts in a fraction of the time pandas and pyarrow took.
"""

import numpy as np

from cvae_tf import data, float_text, simulator


def chunk_csv(config: simulator.SimulationConfig, index: int, chunk_events: int) -> bytes:
    """One chunk of events as CSV text, the header in the first chunk only: a worker's task."""
    # Formatted here, in the workers, as well as simulated: the parent then only writes bytes.
    text = float_text.table_text(_chunk_table(config, index, chunk_events))
    if index == 0:
        molecule = config.fragments
        header = float_text.header_text([*molecule.position_columns, *molecule.momentum_columns])
        text = header + text
    return text


def chunk_columns(config: simulator.SimulationConfig, index: int, chunk_events: int) -> np.ndarray:
    """One chunk of events as float64 columns [6n, events], positions then momenta: a task."""
    # Arrays, not Parquet bytes: they pickle at memory speed, and encoding float64 columns
    # plainly costs the parent little next to the simulation. Column by column, each contiguous,
    # so that pyarrow takes them without a copy.
    return np.ascontiguousarray(_chunk_table(config, index, chunk_events).T)


def _chunk_table(config: simulator.SimulationConfig, index: int, chunk_events: int) -> np.ndarray:
    """Chunk `index`'s events as a table [events, 6n]: positions (bohr), then momenta (a.u.)."""
    positions, momenta = simulator.simulate_chunk(config, index, chunk_events)
    return np.concatenate([data.to_table(positions), data.to_table(momenta)], axis=1)
