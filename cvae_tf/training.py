"""One training run: data, split, fit, evaluation on the test split, and the run folder."""

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cvae_tf import (
    alignment,
    callbacks,
    data,
    diagnostics,
    export,
    metrics,
    model,
    physics,
    report,
    run_folder,
    sampling,
)
from cvae_tf.cli import UserInputError
from cvae_tf.config import TrainConfig

PREDICT_BATCH_SIZE = 8192
CHECK_SAMPLE_SIZE = 1000  # events the pre-training data check explodes (about 0.1 s)
HISTORY_FILE = "history.csv"
BACKUP_DIR = "backup"  # keras BackupAndRestore's folder inside the partial folder


@dataclasses.dataclass
class RunResult:
    """What a finished run leaves: its folder, its test metrics and the printed report."""

    run_dir: Path
    metrics: dict
    report: str


def load_events(config: TrainConfig) -> tuple[Path, data.Events]:
    """The run's data file (the default set if none is given) and its events, repaired as asked."""
    path = Path(config.data) if config.data else data.default_data_path()
    events = data.load_events(path, config.position_columns, config.momentum_columns)
    if config.check_data:
        verdict = diagnostics.check_events(events, CHECK_SAMPLE_SIZE, config.seed)
        print(verdict.format(), flush=True)
    if config.align_positions:
        events, residual = alignment.align_events(events)
        print(
            "Aligned positions to their momenta: residual |Δp|/|p| median "
            f"{np.median(residual):.2g}, max {np.max(residual):.2g}",
            flush=True,
        )
    if config.center == "com":
        events = data.Events(alignment.center_positions(events.positions), events.momenta)
    return path, events


def build_model(config: TrainConfig, train_positions, train_momenta) -> model.CVAE:
    """The configured (uncompiled) CVAE, normalization fitted on training tables [events, 9]."""
    return model.build_cvae(
        train_positions,
        train_momenta,
        config.position_norm,
        config.momentum_norm,
        hidden_dim=config.hidden_dim,
        num_layers=config.num_layers,
        latent_dim=config.latent_dim,
        activation=config.activation,
        beta=config.beta,
        l1=config.l1,
        l2=config.l2,
        latent_prior=config.latent_prior,
        frame=config.frame,
        seed=config.seed,
    )


class DivergenceError(UserInputError):
    """The loss became NaN or infinite: the run is discarded."""


def train(config: TrainConfig, verbose: int | str = "auto") -> RunResult:
    """Trains a CVAE as `config` says, writes `<output_dir>/<run_name>/` and returns the result.

    The run is written into the hidden partial folder `.<run_name>.partial` beside the final one
    and moved into place only when complete, so a crash never leaves a folder that looks like a
    finished run. An interrupted run keeps its partial folder, with a backup of the last
    completed epoch, for `--resume`; a diverged one keeps nothing.
    """
    run_name = config.resolved_run_name()
    output_dir = Path(config.output_dir)
    run_dir = output_dir / run_name
    work_dir = run_folder.partial_path(output_dir, run_name)
    run_folder.check_run_name(config, run_dir, work_dir)
    data_path, events = load_events(config)
    split = data.split_indices(len(events), config.train_fraction, config.val_fraction, config.seed)
    positions = data.to_table(events.positions).astype(np.float32)
    momenta = data.to_table(events.momenta).astype(np.float32)

    keras.utils.set_random_seed(config.seed)
    cvae = build_model(config, positions[split.train], momenta[split.train])
    cvae.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        steps_per_execution=config.steps_per_execution,
        jit_compile=config.jit_compile,
    )

    output_dir.mkdir(parents=True, exist_ok=True)
    with run_folder.locked_partial(work_dir, fresh=not config.resume):
        state = run_folder.start_or_resume(config, work_dir, run_folder.file_digest(data_path))
        try:
            watch = callbacks.EpochWatch(resume=config.resume)
            cvae.fit(
                momenta[split.train],
                positions[split.train],
                batch_size=config.batch_size,
                epochs=config.epochs,
                validation_data=(momenta[split.validation], positions[split.validation]),
                callbacks=_callback_stack(config, work_dir, watch),
                verbose=_progress_verbosity(verbose),
            )
            if watch.diverged:
                raise DivergenceError(_divergence_message(config, *watch.diverged))
            if watch.first_epoch:
                state["resumed_at_epochs"].append(watch.first_epoch + 1)
            # Rewritten once, without the epochs a resume redid.
            history = callbacks.read_history(work_dir / HISTORY_FILE)
            callbacks.write_history(work_dir / HISTORY_FILE, history)
            cvae.fit_latent_statistics(momenta[split.train], positions[split.train])
            test_metrics, text = evaluate(cvae, events, split, config)
            test_metrics["data"] = str(data_path)
            test_metrics["epochs_trained"] = len(history["loss"])
            _save_run(cvae, config, split, history, test_metrics, work_dir)
            shutil.rmtree(work_dir / BACKUP_DIR, ignore_errors=True)
            (work_dir / run_folder.RESUME_FILE).unlink()
            run_folder.write_run_file(
                work_dir,
                resumed_at_epochs=state["resumed_at_epochs"],
                keras_version=keras.__version__,
                tensorflow_version=tf.__version__,
            )
            run_folder.publish(work_dir, run_dir)
        except DivergenceError:
            shutil.rmtree(work_dir, ignore_errors=True)  # nothing worth resuming
            raise
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"training interrupted; its last completed epoch is kept in '{work_dir}': "
                f"continue with --run_name={run_name} --resume, or restart with --overwrite"
            ) from None
    return RunResult(run_dir=run_dir, metrics=test_metrics, report=text)


def _divergence_message(config: TrainConfig, epoch: int, key: str, value: float) -> str:
    which = "training" if key == "loss" else "validation"
    rate = config.learning_rate
    if "none" in (config.position_norm, config.momentum_norm):
        data_cause = (
            f"unnormalized data (--position_norm={config.position_norm} "
            f"--momentum_norm={config.momentum_norm}; try standard)"
        )
    else:
        data_cause = "extreme values in the data"
    return (
        f"training diverged in epoch {epoch}: the {which} loss became {value}; likely a "
        f"--learning_rate too high ({rate:g}; try {rate / 10:g}) or {data_cause}; no model was kept"
    )


def _callback_stack(
    config: TrainConfig, work_dir: Path, watch: callbacks.EpochWatch
) -> list[keras.callbacks.Callback]:
    return [
        model.LatentStatisticsReset(),
        watch,
        callbacks.RelativeEarlyStopping(
            min_delta_factor=config.min_delta_factor, patience=config.patience
        ),
        keras.callbacks.CSVLogger(str(work_dir / HISTORY_FILE), append=True),
        # After CSVLogger: the curves are drawn from the whole run's CSV, resumed epochs included.
        callbacks.LearningCurves(str(work_dir), history_csv=str(work_dir / HISTORY_FILE)),
        keras.callbacks.TensorBoard(log_dir=str(work_dir / "logs"), write_graph=False),
        # Last, so an epoch is backed up only after its CSV line is written; kept after fit
        # (delete_checkpoint=False) so a failure during evaluation can still be resumed.
        keras.callbacks.BackupAndRestore(
            str(work_dir / BACKUP_DIR), double_checkpoint=True, delete_checkpoint=False
        ),
    ]


def _progress_verbosity(verbose: int | str) -> int:
    # Keras' live progress bar in a terminal; one line per epoch in logs and pipes.
    if verbose != "auto":
        return int(verbose)
    return 1 if sys.stdout.isatty() else 2


def evaluate(
    cvae: model.CVAE, events: data.Events, split: data.Split, config: TrainConfig
) -> tuple[dict, str]:
    """Test-split metrics in original units and the printed report with sample events."""
    true_positions = events.positions[split.test]
    test_momenta = events.momenta[split.test]
    momenta_table = data.to_table(test_momenta)
    samples = sampling.posterior_samples(
        lambda momenta: cvae.predict(momenta, batch_size=PREDICT_BATCH_SIZE, verbose=0),
        momenta_table,
        config.num_samples,
    )
    predicted = data.to_events_array(
        sampling.point_prediction(samples, momenta_table, config.select)
    )
    results = metrics.evaluate_positions(true_positions, predicted, test_momenta)
    results["num_samples"] = config.num_samples
    if config.num_samples > 1:
        results.update(
            metrics.interval_coverage(
                true_positions,
                data.to_events_array(samples.mean(axis=0)),
                data.to_events_array(samples.std(axis=0)),
            )
        )
        results.update(_selection_comparison(samples, momenta_table, true_positions))
    # The bar to clear: always predicting the training split's mean geometry.
    mean_geometry = events.positions[split.train].mean(axis=0)
    results["baseline_training_mean_per_atom_error_bohr"] = float(
        metrics.per_atom_error(
            true_positions, np.broadcast_to(mean_geometry, true_positions.shape)
        ).mean()
    )
    shown = report.sample_event_indices(len(split.test), config.num_display_samples, config.seed)
    frame_note = (
        "Positions are centre-of-mass relative (--center=com)."
        if config.center == "com"
        else "Positions in the data's own origin (--center=none)."
    )
    text = "\n\n".join(
        [
            report.format_report(results) + "\n" + frame_note,
            report.format_sample_table(true_positions, predicted, shown),
        ]
    )
    return results, text


def _selection_comparison(samples, momenta_table, true_positions) -> dict[str, float]:
    """Per-atom error and EnergyDiff₁ median of both point predictions, side by side."""
    comparison = {}
    kinetic = physics.kinetic_energy(data.to_events_array(momenta_table))
    for select, name in (("none", "sample_mean"), ("energy", "energy_selected")):
        predicted = data.to_events_array(sampling.point_prediction(samples, momenta_table, select))
        comparison[f"{name}_per_atom_error_bohr"] = float(
            metrics.per_atom_error(true_positions, predicted).mean()
        )
        comparison[f"{name}_energy_diff_1_median"] = float(
            np.median(physics.energy_diff_1(kinetic, physics.potential_energy(predicted)))
        )
    return comparison


def _save_run(cvae, config, split, history, test_metrics, work_dir: Path) -> None:
    cvae.save(work_dir / "model.keras")
    export.export_saved_model(cvae, work_dir / export.SAVED_MODEL_DIR)
    (work_dir / "config.json").write_text(config.to_json() + "\n")
    (work_dir / "metrics.json").write_text(json.dumps(test_metrics, indent=2) + "\n")
    (work_dir / "history.json").write_text(json.dumps(history) + "\n")
    np.savez(
        work_dir / "split.npz", train=split.train, validation=split.validation, test=split.test
    )
