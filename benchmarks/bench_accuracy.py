"""Accuracy of the CVAE against baselines on one split of simulated data; writes a markdown table.

Methods, all on the same split: predict the training-mean geometry; k-nearest neighbours in the
momentum frame; a deterministic network of the CVAE's size (the same code with latent_dim=0);
the CVAE with the default flags. Two data sets: noise-free events from rest, and the same
geometries with a zero-point momentum spread, where the CVAE's intervals are also checked.

Run from the repository root (about 15 minutes on 2 cores):
  python -m benchmarks.bench_accuracy --output=benchmarks/RESULTS.md
"""

import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags
from scipy.spatial import cKDTree

from cvae_tf import config, data, export, frames, metrics, simulator, training

flags.DEFINE_integer("num_events", 50_000, "Simulated events per data set. Default: 50000.")
flags.DEFINE_float("zero_point_momentum_spread", 5.0, "Spread of the noisy set, a.u. Default: 5.")
flags.DEFINE_integer("neighbours", 8, "k of the k-nearest-neighbours baseline. Default: 8.")
flags.DEFINE_string("output", "", "Markdown file for the table; empty prints it only.")
flags.DEFINE_integer("epochs", 300, "Maximum epochs of the networks. Default: 300.")

COLUMNS = (
    ("per_atom_error_bohr", "per-atom error (bohr)", ".4f"),
    ("bond_co_mae_bohr", "C–O MAE (bohr)", ".4f"),
    ("bond_cs_mae_bohr", "C–S MAE (bohr)", ".4f"),
    ("angle_mae_degrees", "angle MAE (°)", ".3f"),
    ("energy_diff_1_median", "EnergyDiff₁ median", ".2e"),
    ("forward_momentum_error_median", "forward Δp/p median", ".2e"),
    ("coverage_68", "68 % coverage", ".3f"),
    ("coverage_95", "95 % coverage", ".3f"),
    ("energy_selected_per_atom_error_bohr", "per-atom error, --select=energy", ".4f"),
    ("energy_selected_energy_diff_1_median", "EnergyDiff₁ median, --select=energy", ".2e"),
    ("train_seconds", "training time (s)", ".0f"),
    ("events_per_second", "inference (events/s)", ",.0f"),
)


def momentum_frame_tables(events: data.Events) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotations, and momenta and positions in each event's momentum frame, (events, 9)."""
    rotations = np.asarray(frames.momentum_frame(events.momenta))
    momenta = np.asarray(frames.to_frame(rotations, events.momenta)).reshape(-1, 9)
    positions = np.asarray(frames.to_frame(rotations, events.positions)).reshape(-1, 9)
    return rotations, momenta, positions


def nearest_neighbours(events: data.Events, split: data.Split, k: int) -> tuple[np.ndarray, dict]:
    """kNN on standardized momentum-frame momenta, averaging neighbours' frame positions."""
    rotations, momenta, positions = momentum_frame_tables(events)
    scale = momenta[split.train].std(axis=0)
    scale = np.where(scale > 1e-6 * scale.max(), scale, 1.0)
    started = time.perf_counter()
    tree = cKDTree(momenta[split.train] / scale)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    _, neighbours = tree.query(momenta[split.test] / scale, k=k)
    query_seconds = time.perf_counter() - started
    in_frame = positions[split.train][neighbours].mean(axis=1).reshape(-1, 3, 3)
    predicted = np.asarray(frames.from_frame(rotations[split.test], in_frame))
    return predicted, {
        "train_seconds": train_seconds,
        "events_per_second": len(split.test) / query_seconds,
    }


def saved_model_speed(run_dir: Path, momenta: np.ndarray, batch: int = 8192) -> float:
    """Median events/s of the run's SavedModel `serve` at batch 8192."""
    serving = export.load_saved_model(run_dir / export.SAVED_MODEL_DIR)
    inputs = np.resize(momenta.reshape(-1, 9), (batch, 9)).astype(np.float32)
    serving.serve(inputs)
    durations = []
    for _ in range(7):
        started = time.perf_counter()
        serving.serve(inputs).numpy()
        durations.append(time.perf_counter() - started)
    return batch / statistics.median(durations)


def network(csv: Path, output_dir: Path, name: str, latent_dim: int) -> dict:
    """Trains the default network on the CSV; its test metrics, training time and speed."""
    run_config = dataclasses.replace(
        config.TrainConfig(),
        data=str(csv),
        output_dir=str(output_dir),
        run_name=name,
        latent_dim=latent_dim,
        epochs=flags.FLAGS.epochs,
        num_display_samples=0,
        num_samples=64 if latent_dim else 1,
    )
    started = time.perf_counter()
    result = training.train(run_config, verbose=0)
    result.metrics["train_seconds"] = time.perf_counter() - started
    events = data.load_events(csv)
    result.metrics["events_per_second"] = saved_model_speed(result.run_dir, events.momenta)
    return result.metrics


def benchmark(csv: Path, work: Path) -> dict[str, dict]:
    """Every method's metrics on the test split of one data set."""
    events = data.load_events(csv)
    defaults = config.TrainConfig()
    split = data.split_indices(
        len(events), defaults.train_fraction, defaults.val_fraction, defaults.seed
    )
    truth, momenta = events.positions[split.test], events.momenta[split.test]
    results = {}
    mean_geometry = np.broadcast_to(events.positions[split.train].mean(axis=0), truth.shape)
    results["training mean"] = metrics.evaluate_positions(truth, mean_geometry, momenta)
    predicted, timing = nearest_neighbours(events, split, flags.FLAGS.neighbours)
    results[f"kNN (k={flags.FLAGS.neighbours}, momentum frame)"] = {
        **metrics.evaluate_positions(truth, predicted, momenta),
        **timing,
    }
    results["deterministic network (latent_dim=0)"] = network(csv, work, "deterministic", 0)
    results["CVAE (defaults)"] = network(csv, work, "cvae", config.TrainConfig().latent_dim)
    return results


def table(results: dict[str, dict]) -> str:
    """A markdown table, one row per method."""
    lines = [
        "| method | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for method, values in results.items():
        cells = [format(values[key], spec) if key in values else "–" for key, _, spec in COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """Simulates both data sets, runs every method, prints (and writes) the tables."""
    del argv  # Unused.
    sections = [
        "# Accuracy benchmark",
        "",
        f"Made by `python -m benchmarks.bench_accuracy {' '.join(sys.argv[1:])}` "
        f"({flags.FLAGS.num_events} simulated OCS events per set, random orientation, default "
        "split 70/15/15, test-split figures; 2-core CPU).",
    ]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for title, spread in (
            ("Noise-free events from rest", 0.0),
            (
                f"Zero-point momentum spread {flags.FLAGS.zero_point_momentum_spread:g} a.u.",
                flags.FLAGS.zero_point_momentum_spread,
            ),
        ):
            simulation = simulator.SimulationConfig(
                flags.FLAGS.num_events, seed=11, zero_point_momentum_spread=spread
            )
            positions, momenta = simulator.simulate_events(simulation)
            csv = work / f"events_{spread:g}.csv"
            data.write_events_csv(csv, positions, momenta)
            markdown = table(benchmark(csv, work / f"runs_{spread:g}"))
            sections += ["", f"## {title}", "", markdown]
            print("\n".join(sections[-3:]), flush=True)
    if flags.FLAGS.output:
        Path(flags.FLAGS.output).write_text("\n".join(sections) + "\n")
        print(f"Wrote {flags.FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
