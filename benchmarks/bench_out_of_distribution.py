"""How often the out-of-distribution criterion flags events like, and unlike, the training data.

Run from the repository root:
  python -m benchmarks.bench_out_of_distribution [--num_events=20000] [--model_dir=RUN]
Without --model_dir it fits the summary a run fits (training_momenta.fit on 8,192 simulated OCS
events, the size of a run's training sample) and judges freshly simulated sets; with --model_dir
it runs `python -m cvae_tf.predict` with that run on each set and counts the
`out_of_distribution` column. Sets: in-distribution (another seed), momenta × 0.6, the
C²⁺ + O²⁺ + S⁺ channel, a C–S bond prior stretched from 163 to 190 pm; and two the model's
physics tolerates, which should stay mostly unflagged: zero-point motion of 3 a.u. and a 1 %
detector resolution. Targets: ≤ 1 % flagged in distribution, ≥ 95 % at × 0.6.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from absl import app, flags

from cvae_tf import csv_files, data, molecule, simulator, training_momenta

flags.DEFINE_integer("num_events", 20_000, "Events in each judged set. Default: 20000.")
flags.DEFINE_string("model_dir", None, "A run folder to predict with (OCS). Default: none.")

_TRAINING_EVENTS = 8_192  # input_pipeline.TRAIN_SAMPLE_SIZE: what a run fits the summary on


def judged_sets(num_events: int) -> dict[str, np.ndarray]:
    """{name: momenta table [events, 9]} of each set."""

    def momenta(seed: int, **settings) -> np.ndarray:
        config = simulator.SimulationConfig(num_events, seed=seed, **settings)
        return data.to_table(simulator.simulate_events(config)[1])

    in_distribution = momenta(4)
    return {
        "in distribution": in_distribution,
        "momenta × 0.6": in_distribution * 0.6,
        "C²⁺ + O²⁺ + S⁺": momenta(5, molecule=molecule.MoleculeConfig(charges=("2", "2", "1"))),
        "C–S stretched 163→190 pm": momenta(8, prior=simulator.GeometryPrior(cs_bond_mean=190.0)),
        "zero-point 3 a.u.": momenta(6, zero_point_momentum_spread=3.0),
        "resolution 1 %": momenta(7, detector_momentum_resolution=0.01),
    }


def flagged_by_fit(sets: dict[str, np.ndarray]) -> dict[str, float]:
    """The fraction flagged in each set by a summary fitted on fresh simulated training events."""
    training = simulator.simulate_events(simulator.SimulationConfig(_TRAINING_EVENTS, seed=3))[1]
    summary = training_momenta.fit(data.to_table(training), molecule.OCS)
    return {name: float(summary.out_of_distribution(table).mean()) for name, table in sets.items()}


def flagged_by_predict(sets: dict[str, np.ndarray], model_dir: str) -> dict[str, float]:
    """The fraction of each set whose `out_of_distribution` column predict sets to 1."""
    fractions = {}
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, table) in enumerate(sets.items()):
            momenta_csv, output = Path(folder) / f"{index}.csv", Path(folder) / f"{index}.out.csv"
            csv_files.write_events_csv(momenta_csv, None, data.to_events_array(table))
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cvae_tf.predict",
                    f"--model_dir={model_dir}",
                    f"--input={momenta_csv}",
                    f"--output={output}",
                ],
                check=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                stdout=subprocess.DEVNULL,
            )
            fractions[name] = float(pd.read_csv(output)["out_of_distribution"].mean())
    return fractions


def main(argv) -> None:
    del argv
    sets = judged_sets(flags.FLAGS.num_events)
    if flags.FLAGS.model_dir:
        fractions = flagged_by_predict(sets, flags.FLAGS.model_dir)
        source = f"predict with {flags.FLAGS.model_dir}"
    else:
        fractions = flagged_by_fit(sets)
        source = f"a summary fitted on {_TRAINING_EVENTS:,} simulated training events"
    print(f"Out of distribution, {flags.FLAGS.num_events:,} events a set, {source}:")
    for name, fraction in fractions.items():
        print(f"  {name:<26} {100 * fraction:7.2f} % flagged")


if __name__ == "__main__":
    app.run(main)
