"""Accuracy by molecule and charge channel, default flags: OCS (2,2,2) and (1,1,1), CHBrClF.

Each channel is simulated noise-free from rest, the same number of events with the same seed
(OCS as the default data set: seed 20241123, the literature prior; CHBrClF: its reference
geometry with a 0.1 bohr spread per coordinate), and trained with the default flags, nothing
tuned per channel. The table gives the test part's figures.

Run from the repository root:
  python -m benchmarks.bench_molecules                       # 50,000 events each, ~15 min
  python -m benchmarks.bench_molecules --num_events=5000     # a quick look
"""

import tempfile
import time
from pathlib import Path

from absl import app, flags

from cvae_tf import config, csv_files, default_data, simulator, training
from cvae_tf.molecule import MoleculeConfig

CHANNELS = {
    "ocs_222": ("OCS (2,2,2)", {}),
    "ocs_111": ("OCS (1,1,1)", {"charges": ("1", "1", "1")}),
    "chbrclf": ("CHBrClF (1,1,1,1,1)", {"molecule": "chbrclf"}),
}

flags.DEFINE_integer("num_events", 50_000, "Events simulated per channel.")
flags.DEFINE_list("channels", list(CHANNELS), f"Channels, of {list(CHANNELS)}.")
flags.DEFINE_integer("epochs", 300, "Maximum epochs. Default: 300 (the train default).")
FLAGS = flags.FLAGS


def _simulate(molecule_flags: dict, path: Path) -> None:
    simulation = simulator.SimulationConfig(
        num_events=FLAGS.num_events,
        seed=default_data.DEFAULT_DATA_SEED,
        molecule=MoleculeConfig(**molecule_flags),
    )
    positions, momenta = simulator.simulate_events(simulation)
    fragments = simulation.fragments
    csv_files.write_events_csv(
        path, positions, momenta, fragments.position_columns, fragments.momentum_columns
    )


def main(argv) -> None:
    del argv
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in FLAGS.channels:
            title, molecule_flags = CHANNELS[name]
            path = Path(folder) / f"{name}.csv"
            _simulate(molecule_flags, path)
            run_config = config.from_dict(
                {
                    "data": str(path),
                    "output_dir": folder,
                    "run_name": name,
                    "epochs": FLAGS.epochs,
                    **molecule_flags,
                }
            )
            started = time.perf_counter()
            result = training.train(run_config, verbose=0)
            seconds = time.perf_counter() - started
            results = result.metrics
            rows.append(
                f"| {title} | {FLAGS.num_events:,} | {results['per_atom_error_bohr']:.4e} | "
                f"{results['superposition_rmsd_bohr']:.4e} | {results['angle_mae_degrees']:.4f} | "
                f"{results['coverage_68']:.3f} | {results['coverage_95']:.3f} | "
                f"{results['epochs_trained']} | {seconds:.0f} |"
            )
            print(rows[-1], flush=True)
    print()
    print(
        "| channel | events | per-atom error (bohr) | RMSD (bohr) | angle MAE (°) | cov. 68 % "
        "| cov. 95 % | epochs | time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    app.run(main)
