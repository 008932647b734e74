"""The trained model measured on the test part: metrics in original units and the report."""

import dataclasses

import numpy as np

from cvae_tf import calibration, data, metrics, model, physics, progress, report, sampling
from cvae_tf.config import TrainConfig
from cvae_tf.molecule import Molecule

PREDICT_BATCH_SIZE = 65_536  # rows per compiled call: K draws of a chunk, a batch at a time


@dataclasses.dataclass(frozen=True)
class PartEvaluation:
    """The test part measured: metrics, the report, and the predictions the figures draw.

    Positions in bohr; tables [events, 3n] in the molecule's column order.
    """

    metrics: dict
    report: str
    predicted: np.ndarray  # the point prediction the report uses (mean or energy-selected)
    mean: np.ndarray  # the predictive mixture's mean
    std: np.ndarray  # its standard deviation: the spread
    shown_events: np.ndarray  # the report's sample events (report.sample_event_indices)
    shown_draws: np.ndarray  # their mixture draws [max(K, 2), len(shown_events), 3n]


def evaluate(
    cvae: model.CVAE, test: data.Events, mean_geometry: np.ndarray, config: TrainConfig
) -> tuple[dict, str]:
    """Test-part metrics in original units and the printed report (see evaluate_test_part)."""
    measured = evaluate_test_part(cvae, test, mean_geometry, config)
    return measured.metrics, measured.report


def evaluate_test_part(
    cvae: model.CVAE, test: data.Events, mean_geometry: np.ndarray, config: TrainConfig
) -> PartEvaluation:
    """Test-part metrics in original units, the printed report with sample events, predictions.

    Args:
      cvae: the trained model.
      test: the test events, positions (bohr) and momenta (a.u.), (events, fragments, 3).
      mean_geometry: the training part's mean positions (fragments, 3), bohr: the baseline.
      config: the run's configuration (its molecule, evaluation part, seed, center and
        jit_compile).
    """
    evaluation, true_positions = config.evaluation, test.positions
    fragments = config.data.molecule
    truth_table = data.to_table(true_positions)
    shown = report.sample_event_indices(len(test), evaluation.num_display_samples, config.seed)
    moments_once = sampling.compiled_moments(
        cvae, PREDICT_BATCH_SIZE, config.optimization.jit_compile
    )
    # K latent draws per event each give the decoder's mean and variance; the predictive
    # distribution is their mixture, sampled a chunk at a time.
    with progress.Bar("evaluating", len(test)) as bar:
        samples = sampling.predictive_summary(
            moments_once,
            data.to_table(test.momenta),
            evaluation.num_samples,
            np.random.default_rng(config.seed),
            truth_table=truth_table,
            fragments=fragments,
            keep_draws_of=shown,
            events_done=bar.update,
        )
    predicted = data.to_events_array(samples["energy" if evaluation.select == "energy" else "mean"])
    results = metrics.evaluate_positions(true_positions, predicted, test.momenta, fragments)
    results["num_samples"] = evaluation.num_samples
    mean, std = samples["mean"], samples["std"]
    results.update(calibration.interval_coverage(truth_table, mean, std))
    results.update(calibration.coverage_by_spread(truth_table, mean, std))
    crps = samples["crps"].mean(axis=0)
    results["crps_bohr"] = float(crps.mean())
    results.update(
        {
            f"crps_{name}_bohr": float(value)
            for name, value in zip(fragments.coordinate_names, crps, strict=True)
        }
    )
    nominal, observed = calibration.calibration_curve(truth_table, mean, std)
    results["calibration_curve"] = {"nominal": nominal.tolist(), "observed": observed.tolist()}
    if evaluation.num_samples > 1:
        results.update(_selection_comparison(samples, test, fragments))
    # The bar to clear: always predicting the training part's mean geometry.
    results["baseline_training_mean_per_atom_error_bohr"] = float(
        metrics.per_atom_error(
            true_positions, np.broadcast_to(mean_geometry, true_positions.shape)
        ).mean()
    )
    frame_note = (
        "Positions are centre-of-mass relative (--center=com)."
        if config.data.center == "com"
        else "Positions in the data's own origin (--center=none)."
    )
    text = "\n\n".join(
        [
            report.format_report(results, fragments) + "\n" + frame_note,
            report.format_sample_table(true_positions, predicted, shown, fragments),
        ]
    )
    return PartEvaluation(
        metrics=results,
        report=text,
        predicted=data.to_table(predicted),
        mean=mean,
        std=std,
        shown_events=shown,
        shown_draws=samples["kept_draws"],
    )


def _selection_comparison(
    samples: dict, test: data.Events, fragments: Molecule
) -> dict[str, float]:
    """Per-atom error and EnergyDiff₁ median of both point predictions, side by side."""
    comparison = {}
    kinetic = physics.kinetic_energy(test.momenta, fragments.mass_array)
    for key, name in (("mean", "sample_mean"), ("energy", "energy_selected")):
        predicted = data.to_events_array(samples[key])
        comparison[f"{name}_per_atom_error_bohr"] = float(
            metrics.per_atom_error(test.positions, predicted).mean()
        )
        comparison[f"{name}_energy_diff_1_median"] = float(
            np.median(
                physics.energy_diff_1(
                    kinetic, physics.potential_energy(predicted, fragments.charge_array)
                )
            )
        )
    return comparison
