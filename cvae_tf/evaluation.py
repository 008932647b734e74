"""The trained model measured on the test part: metrics in original units and the report."""

import numpy as np

from cvae_tf import calibration, data, metrics, model, physics, report, sampling
from cvae_tf.config import TrainConfig

PREDICT_BATCH_SIZE = 65_536  # rows per compiled call: K draws of a chunk, a batch at a time
COORDINATES = [f"{atom}{axis}" for atom in physics.ATOMS for axis in physics.AXES]


def evaluate(
    cvae: model.CVAE, test: data.Events, mean_geometry: np.ndarray, config: TrainConfig
) -> tuple[dict, str]:
    """Test-part metrics in original units and the printed report with sample events.

    Args:
      cvae: the trained model.
      test: the test events, positions (bohr) and momenta (a.u.), (events, 3, 3).
      mean_geometry: the training part's mean positions (3, 3), bohr: the baseline to beat.
      config: the run's configuration (its evaluation part, seed, center and jit_compile).
    """
    evaluation, true_positions = config.evaluation, test.positions
    truth_table = data.to_table(true_positions)
    moments_once = sampling.compiled_moments(
        cvae, PREDICT_BATCH_SIZE, config.optimization.jit_compile
    )
    # K latent draws per event each give the decoder's mean and variance; the predictive
    # distribution is their mixture, sampled a chunk at a time.
    samples = sampling.predictive_summary(
        moments_once,
        data.to_table(test.momenta),
        evaluation.num_samples,
        np.random.default_rng(config.seed),
        truth_table=truth_table,
    )
    predicted = data.to_events_array(samples["energy" if evaluation.select == "energy" else "mean"])
    results = metrics.evaluate_positions(true_positions, predicted, test.momenta)
    results["num_samples"] = evaluation.num_samples
    mean, std = samples["mean"], samples["std"]
    results.update(calibration.interval_coverage(truth_table, mean, std))
    results.update(calibration.coverage_by_spread(truth_table, mean, std))
    crps = samples["crps"].mean(axis=0)
    results["crps_bohr"] = float(crps.mean())
    results.update(
        {f"crps_{name}_bohr": float(value) for name, value in zip(COORDINATES, crps, strict=True)}
    )
    nominal, observed = calibration.calibration_curve(truth_table, mean, std)
    results["calibration_curve"] = {"nominal": nominal.tolist(), "observed": observed.tolist()}
    if evaluation.num_samples > 1:
        results.update(_selection_comparison(samples, test))
    # The bar to clear: always predicting the training part's mean geometry.
    results["baseline_training_mean_per_atom_error_bohr"] = float(
        metrics.per_atom_error(
            true_positions, np.broadcast_to(mean_geometry, true_positions.shape)
        ).mean()
    )
    shown = report.sample_event_indices(len(test), evaluation.num_display_samples, config.seed)
    frame_note = (
        "Positions are centre-of-mass relative (--center=com)."
        if config.data.center == "com"
        else "Positions in the data's own origin (--center=none)."
    )
    text = "\n\n".join(
        [
            report.format_report(results) + "\n" + frame_note,
            report.format_sample_table(true_positions, predicted, shown),
        ]
    )
    return results, text


def _selection_comparison(samples: dict, test: data.Events) -> dict[str, float]:
    """Per-atom error and EnergyDiff₁ median of both point predictions, side by side."""
    comparison = {}
    kinetic = physics.kinetic_energy(test.momenta)
    for key, name in (("mean", "sample_mean"), ("energy", "energy_selected")):
        predicted = data.to_events_array(samples[key])
        comparison[f"{name}_per_atom_error_bohr"] = float(
            metrics.per_atom_error(test.positions, predicted).mean()
        )
        comparison[f"{name}_energy_diff_1_median"] = float(
            np.median(physics.energy_diff_1(kinetic, physics.potential_energy(predicted)))
        )
    return comparison
