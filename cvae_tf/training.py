"""One training run: the model, its strategy, fit, evaluation on the test part, the run folder."""

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from cvae_tf import (
    callbacks,
    csv_files,
    distribution,
    epoch_history,
    evaluation,
    export,
    figures,
    file_writes,
    flag_fields,
    input_pipeline,
    model,
    plots,
    preprocessing,
    provenance,
    recalibration,
    run_folder,
    run_size,
    signals,
    summaries,
    training_momenta,
)
from cvae_tf.config import TrainConfig, validate
from cvae_tf.errors import UserInputError

CALIBRATION_SAMPLES = 32  # latent draws per validation event when the spread is recalibrated
HISTORY_FILE = "history.csv"
CALIBRATION_FILE = "calibration_curve.png"
PREDICTIONS_FILE = "test_predictions.csv"
REPORT_FILE = "report.txt"
LOG_DIR = "logs"  # TensorBoard's
BACKUP_DIR = "backup"  # keras BackupAndRestore's folder inside the partial folder


@dataclasses.dataclass
class RunResult:
    """What a finished run leaves: its folder, its test metrics and the printed report."""

    run_dir: Path | None  # None on a multi-worker run's non-chief workers
    metrics: dict
    report: str


def build_model(config: TrainConfig, train_positions, train_momenta) -> model.CVAE:
    """The configured (uncompiled) CVAE, normalization fitted on training tables [events, 3n]."""
    fragments = config.data.molecule.frame_fragments
    return model_from_statistics(
        config,
        *preprocessing.frame_statistics(
            config.model.frame, train_positions, train_momenta, fragments
        ),
    )


def model_from_statistics(
    config: TrainConfig,
    position_statistics: preprocessing.ColumnStatistics,
    momentum_statistics: preprocessing.ColumnStatistics,
) -> model.CVAE:
    """The configured (uncompiled) CVAE with normalization from training-part statistics."""
    position_offset, position_variance = position_statistics.normalization(
        config.data.position_norm
    )
    momentum_offset, momentum_variance = momentum_statistics.normalization(
        config.data.momentum_norm
    )
    return model.CVAE(
        position_offset=position_offset,
        position_variance=position_variance,
        momentum_offset=momentum_offset,
        momentum_variance=momentum_variance,
        seed=config.seed,
        frame_fragments=config.data.molecule.frame_fragments,
        **dataclasses.asdict(config.model),
    )


class DivergenceError(UserInputError):
    """The loss became NaN or infinite: the run is discarded."""


def train(
    config: TrainConfig, verbose: int | str = "auto", command_line: str | None = None
) -> RunResult:
    """Trains a CVAE as `config` says, writes `<output_dir>/<run_name>/` and returns the result.

    `command_line` is what run.json records as the run's command (provenance.command_line); None
    records a library call.

    The run is written into the hidden partial folder `.<run_name>.partial` beside the final one
    and moved into place only when complete, so a crash never leaves a folder that looks like a
    finished run. An interrupted run keeps its partial folder, with a backup of the last
    completed epoch, for `--resume`; a diverged one keeps nothing.

    Under --distribution=multi_worker every worker runs this with the same flags; the chief
    writes the run folder, the others train in a hidden folder of their own
    (`.<run_name>.worker-<i>.partial`, for their callbacks and --resume) that they delete when
    training ends, and return a result without a run folder.
    """
    config = validate(config)  # as the flags are: a library caller gets the same checks
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow's runtime starts.
    optimization, output = config.optimization, config.output
    strategy = distribution.make_strategy(optimization.distribution)
    chief = optimization.distribution != "multi_worker" or distribution.is_chief()
    run_name = output.resolved_run_name()
    output_dir = Path(output.output_dir)
    run_dir = output_dir / run_name
    work_dir = run_folder.partial_path(output_dir, run_name if chief else _worker_name(run_name))
    if chief:
        run_folder.check_run_name(config, run_dir, work_dir)
    file_writes.check_writable(run_dir if chief else work_dir)  # before the data and the fit
    batch_size, learning_rate = distribution.scaled_batch_and_learning_rate(
        optimization.batch_size,
        optimization.learning_rate,
        strategy.num_replicas_in_sync,
        optimization.scale_batch_with_replicas,
    )
    steps_per_execution, jit_compile = distribution.compile_options(
        strategy, optimization.steps_per_execution, optimization.jit_compile
    )
    # Before the data: a tf.data shuffle takes TensorFlow's global seed when it is made, so a run
    # seeded after it depended on what the process ran before (a fresh process and one that
    # had trained already shuffled differently).
    keras.utils.set_random_seed(config.seed)
    with input_pipeline.load(config, batch_size) as run_data:  # its temporary files go at the end
        with strategy.scope():
            cvae = model_from_statistics(
                config, run_data.position_statistics, run_data.momentum_statistics
            )
            cvae.compile(
                optimizer=keras.optimizers.Adam(learning_rate),
                steps_per_execution=steps_per_execution,
                jit_compile=jit_compile,
            )

        # Before any file of the run: keras' and TensorFlow's own writes (checkpoint, SavedModel)
        # fail less cleanly than ours, and h5py's may crash the process.
        size = run_size.estimate(
            cvae.count_params(),
            optimization.epochs,
            sum(run_data.part_sizes),
            test_events=run_data.part_sizes[2],
            num_coordinates=config.data.molecule.num_coordinates,
        )
        size.check_room(run_dir if chief else work_dir)
        with file_writes.writing(output_dir):
            output_dir.mkdir(parents=True, exist_ok=True)
        with run_folder.locked_partial(work_dir, fresh=not output.resume):
            data_digests = {str(path): run_folder.file_digest(path) for path in run_data.files}
            data_sha256 = run_folder.combined_digest(list(data_digests.values()))
            state = run_folder.start_or_resume(config, work_dir, data_sha256)
            try:
                watch = callbacks.EpochWatch(resume=output.resume)
                cvae.fit(
                    **run_data.fit_inputs,
                    epochs=optimization.epochs,
                    callbacks=_callback_stack(
                        config, work_dir, watch, run_data, batch_size, size.checkpoint_bytes
                    ),
                    verbose=_progress_verbosity(verbose) if chief else 0,
                )
                if watch.diverged:
                    raise DivergenceError(_divergence_message(config, *watch.diverged))
                if not chief:
                    shutil.rmtree(work_dir)
                    return RunResult(run_dir=None, metrics={}, report="")
                if watch.first_epoch:
                    state["resumed_at_epochs"].append(watch.first_epoch + 1)
                # Rewritten once, without the epochs a resume redid.
                history = epoch_history.read_history(work_dir / HISTORY_FILE)
                epoch_history.write_history(work_dir / HISTORY_FILE, history)
                optimizer_state = {
                    "optimizer_steps": int(cvae.optimizer.iterations.numpy()),
                    "final_learning_rate": float(
                        keras.ops.convert_to_numpy(cvae.optimizer.learning_rate)
                    ),
                }
                if optimization.distribution != "none":
                    # Evaluated and saved as a plain one-device model: no collective ops (the other
                    # workers are gone), and a SavedModel free of distributed variables.
                    cvae = _single_device_copy(cvae, config, run_data)
                cvae.fit_latent_statistics_from(run_data.latent_batches())
                if config.evaluation.recalibrate:
                    recalibration.fit_spread_scale(
                        cvae, run_data.validation_batches(), CALIBRATION_SAMPLES
                    )
                measured = evaluation.evaluate_test_part(
                    cvae, run_data.test, run_data.mean_geometry, config
                )
                test_metrics, text = measured.metrics, measured.report
                test_metrics["data"] = ",".join(str(path) for path in run_data.files)
                test_metrics["data_streamed"] = run_data.streamed
                test_metrics.update(
                    zip(
                        ("train_events", "validation_events", "test_events"),
                        run_data.part_sizes,
                        strict=True,
                    )
                )
                test_metrics["epochs_trained"] = len(history["loss"])
                test_metrics.update(optimizer_state)
                test_metrics["spread_scale"] = cvae.spread_scale.numpy().tolist()
                test_metrics["replicas"] = strategy.num_replicas_in_sync
                test_metrics["global_batch_size"] = batch_size
                _save_run(cvae, config, run_data.split, history, test_metrics, work_dir)
                training_momenta.fit(run_data.train_sample[0], config.data.molecule).write(work_dir)
                _save_test_part(measured, config, run_data, work_dir, run_name)
                file_writes.fsync_tree(work_dir)  # every file on the disk before run.json says so
                run_folder.write_run_file(
                    work_dir,
                    resumed_at_epochs=state["resumed_at_epochs"],
                    keras_version=keras.__version__,
                    tensorflow_version=tf.__version__,
                    **provenance.run_details(command_line, data_digests, data_sha256),
                )
                # Only now: a run.json the disk had no room for still leaves a resumable run.
                shutil.rmtree(work_dir / BACKUP_DIR, ignore_errors=True)
                (work_dir / run_folder.RESUME_FILE).unlink()
                run_folder.publish(work_dir, run_dir)
            except (OSError, RuntimeError, tf.errors.OpError, file_writes.WriteError) as error:
                # A full disk, a size limit or a lost folder mid-run: the last completed epoch's
                # backup stays, as after Ctrl-C, since the fault is usually fixed in minutes.
                # RuntimeError and OpError: h5py's and TensorFlow's own writes (checkpoint,
                # TensorBoard, SavedModel), which name the system's reason only in words.
                failed = error
                if not isinstance(error, file_writes.WriteError):
                    failed = file_writes.write_error_of(error, work_dir)
                if failed is None:
                    raise
                raise file_writes.WriteError(
                    f"{failed}; the run so far is kept in '{work_dir}': once the fault is fixed, "
                    f"continue with --run_name={run_name} --resume, or restart with --overwrite"
                ) from None
            except DivergenceError:
                shutil.rmtree(work_dir, ignore_errors=True)  # nothing worth resuming
                raise
            except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM, SIGHUP: see signals
                raise signals.reworded(
                    interrupt,
                    f"training interrupted; its last completed epoch is kept in '{work_dir}': "
                    f"continue with --run_name={run_name} --resume, or restart with --overwrite",
                ) from None
        return RunResult(run_dir=run_dir, metrics=test_metrics, report=text)


def _worker_name(run_name: str) -> str:
    """The name of a non-chief worker's own hidden folder beside the run's."""
    _, task_type, index = distribution.cluster_task()
    return f"{run_name}.{task_type}-{index}"


def _single_device_copy(
    cvae: model.CVAE, config: TrainConfig, run_data: input_pipeline.TrainingData
) -> model.CVAE:
    """The trained model's weights in a CVAE built outside any tf.distribute strategy."""
    copy = model_from_statistics(config, run_data.position_statistics, run_data.momentum_statistics)
    copy.set_weights(cvae.get_weights())
    return copy


def _divergence_message(config: TrainConfig, epoch: int, key: str, value: float) -> str:
    which = "training" if key == "loss" else "validation"
    rate, data_config = config.optimization.learning_rate, config.data
    if "none" in (data_config.position_norm, data_config.momentum_norm):
        data_cause = (
            f"unnormalized data (--position_norm={data_config.position_norm} "
            f"--momentum_norm={data_config.momentum_norm}; try standard)"
        )
    else:
        data_cause = "extreme values in the data"
    return (
        f"training diverged in epoch {epoch}: the {which} loss became {value}; likely a "
        f"--learning_rate too high ({rate:g}; try {rate / 10:g}) or {data_cause}; no model was kept"
    )


def _callback_stack(
    config: TrainConfig,
    work_dir: Path,
    watch: callbacks.EpochWatch,
    run_data: input_pipeline.TrainingData,
    batch_size: int,
    checkpoint_bytes: int,
) -> list[keras.callbacks.Callback]:
    optimization = config.optimization
    schedule = (
        [
            callbacks.RelativeReduceLROnPlateau(
                min_delta_factor=optimization.min_delta_factor,
                patience=optimization.lr_patience,
                factor=optimization.lr_factor,
                min_lr=optimization.min_learning_rate,
            )
        ]
        if optimization.lr_patience
        else []
    )
    return [
        callbacks.LatentStatisticsReset(),
        # First of those that read an epoch's logs: it adds the like-for-like training figures.
        callbacks.TrainingSampleMetrics(*run_data.train_sample, batch_size=batch_size),
        watch,
        *schedule,
        callbacks.RelativeEarlyStopping(
            min_delta_factor=optimization.min_delta_factor, patience=optimization.patience
        ),
        keras.callbacks.CSVLogger(str(work_dir / HISTORY_FILE), append=True),
        # After CSVLogger: the curves are drawn from the whole run's CSV, resumed epochs included.
        callbacks.LearningCurves(str(work_dir), history_csv=str(work_dir / HISTORY_FILE)),
        keras.callbacks.TensorBoard(log_dir=str(work_dir / LOG_DIR), write_graph=False),
        # Last, so an epoch is backed up only after its CSV line is written; kept after fit
        # (delete_checkpoint=False) so a failure during evaluation can still be resumed.
        callbacks.RoomCheckedBackup(
            str(work_dir / BACKUP_DIR),
            checkpoint_bytes,
            double_checkpoint=True,
            delete_checkpoint=False,
        ),
    ]


def _progress_verbosity(verbose: int | str) -> int:
    # Keras' live progress bar in a terminal; one line per epoch in logs and pipes.
    if verbose != "auto":
        return int(verbose)
    return 1 if sys.stdout.isatty() else 2


def _save_run(cvae, config, split, history, test_metrics, work_dir: Path) -> None:
    curve = test_metrics["calibration_curve"]
    plots.plot_calibration_curve(
        np.asarray(curve["nominal"]), np.asarray(curve["observed"]), work_dir / CALIBRATION_FILE
    )
    cvae.save(work_dir / "model.keras")
    export.export_saved_model(cvae, work_dir / export.SAVED_MODEL_DIR, config.data.molecule)
    (work_dir / "config.json").write_text(config.to_json() + "\n")
    file_writes.write_text(work_dir / provenance.FLAGFILE, provenance.flagfile_text(config))
    run_folder.write_molecule(work_dir, config.data.molecule)
    (work_dir / "metrics.json").write_text(json.dumps(test_metrics, indent=2) + "\n")
    (work_dir / "history.json").write_text(json.dumps(history) + "\n")
    if split is not None:  # streamed runs: the rule and seed give each row's part
        np.savez(
            work_dir / "split.npz", train=split.train, validation=split.validation, test=split.test
        )


def _save_test_part(
    measured: evaluation.PartEvaluation,
    config: TrainConfig,
    run_data: input_pipeline.TrainingData,
    work_dir: Path,
    run_name: str,
) -> None:
    """The test part's predictions table, report.txt, figures, and their TensorBoard summaries."""
    fragments, columns = config.data.molecule, config.data.position_columns
    truth = run_data.test.positions.reshape(len(run_data.test), -1)
    table = {f"true_{name}": truth[:, index] for index, name in enumerate(columns)}
    table.update(zip(columns, measured.predicted.T, strict=True))
    table.update(zip([f"{name}_std" for name in columns], measured.std.T, strict=True))
    csv_files.write_csv_atomically(work_dir / PREDICTIONS_FILE, pd.DataFrame(table))
    report = "\n\n".join(filter(None, [run_data.data_check, measured.report]))
    file_writes.write_text(work_dir / REPORT_FILE, report + "\n")
    pictures = figures.save(
        figures.evaluation_figures(
            truth,
            measured.predicted,
            measured.shown_events,
            measured.shown_draws,
            fragments,
            config.seed,
        ),
        work_dir,
    )
    summaries.write_evaluation_summaries(
        work_dir / LOG_DIR,
        [work_dir / CALIBRATION_FILE, *pictures],
        measured.metrics,
        flag_fields.to_dict(config),
        run_name,
    )
