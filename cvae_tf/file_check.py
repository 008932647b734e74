"""check_data's work: a file read as given or as a model reads it, then the check that fits it.

A file with position columns gets the full physics check (diagnostics.check_file); one whose
header has none of them (unless --position_columns named them), measured data, gets the
momentum check (diagnostics.check_momenta)
and, with --model_dir, a comparison with the model's training data (training_momenta).
"""

import dataclasses
from pathlib import Path

from cvae_tf import diagnostics


def check_file(
    config: diagnostics.CheckDataConfig,
) -> diagnostics.DataVerdict | diagnostics.MomentumVerdict:
    """The verdict on `config.events`, in the model's molecule and columns if --model_dir."""
    events = config.events
    if config.model_dir:
        # Imported here: they load TensorFlow (4 s), which a check without a model never needs.
        from cvae_tf import run_folder, training_momenta

        events = run_folder.model_event_file(events, config.model_dir)
    # Named --position_columns mean the file should have them: missing ones stay an error.
    if config.events.position_columns or not events.momentum_only:
        return diagnostics.check_file(dataclasses.replace(config, events=events))
    momenta = events.load_momenta()
    verdict = diagnostics.check_momenta(momenta, events.molecule)
    if config.model_dir:
        summary = training_momenta.read(Path(config.model_dir))
        table = momenta.reshape(len(momenta), -1)
        flagged = int(summary.out_of_distribution(table).sum())
        verdict.model_dir = config.model_dir
        verdict.training_events = summary.num_events
        verdict.training_ker_percentiles = {
            percent: summary.ker_percentiles[percent] for percent in diagnostics.KER_REPORTED
        }
        verdict.ker_bounds = summary.ker_bounds
        verdict.out_of_distribution = flagged
        if flagged > len(momenta) / 2:
            verdict.problems.append(
                f"{flagged} of {len(momenta)} events are out of distribution for this model: "
                + likely_cause(verdict.ker_percentiles[50.0], summary)
            )
    return verdict


def likely_cause(median_ker: float, summary) -> str:
    """What most events out of distribution suggest, in words, from their KER median (hartree).

    `summary` is the model's training_momenta.TrainingMomenta.
    """
    low, high = summary.ker_bounds
    median = summary.ker_percentiles[50.0]
    if median_ker < low or median_ker > high:
        direction = "below" if median_ker < low else "above"
        return (
            f"their KER median {median_ker:.4g} hartree lies {direction} the training range "
            f"[{low:.4g}, {high:.4g}] (training median {median:.4g}): another charge channel or "
            "molecule, or momenta in other units"
        )
    return (
        f"their KER median {median_ker:.4g} hartree is within the training range, but their "
        "momentum shapes are not: another molecule or charge channel, fragments in another "
        "column order, or momenta in another frame convention"
    )
