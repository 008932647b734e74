"""The training configuration: its parts, their absl flags, and their validation."""

import dataclasses
import datetime
import functools
import json
import math
from pathlib import Path

import keras
from absl import flags

from cvae_tf import csv_files, distribution, flag_fields, frames, model, preprocessing, sampling
from cvae_tf.errors import UserInputError
from cvae_tf.file_flags import (
    momentum_columns_option,
    position_columns_option,
    resolve_columns,
)
from cvae_tf.flag_fields import option
from cvae_tf.molecule import OCS, Molecule, MoleculeConfig

CENTERS = ("none", "com")
DATA_LOADINGS = ("auto", "memory", "stream")
MAX_SEED = 2**32 - 1  # numpy's and keras' global seeds are 32-bit
MAX_LAYER_WIDTH = 2**16  # a 65536×32768 Dense kernel alone is 8 GiB: beyond that is a typo
# Flags in which a --resume may differ from the interrupted run: its length, where files lie, and
# evaluation-only choices (the data is compared by content instead of by path).
RESUMABLE_CHANGES = (
    "epochs",
    "data_loading",
    "resume",
    "overwrite",
    "data",
    "output_dir",
    "check_data",
    "num_display_samples",
    "num_samples",
    "select",
    "recalibrate",
)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the events come from and how they are read, split, repaired and normalized."""

    # The files --data names, resolved once when the configuration is validated (empty: the
    # embedded default set); not a flag.
    files: tuple[Path, ...] = ()

    data: str = option(
        "",
        "CSV file of events, a glob of CSV shards (quoted: 'shards/*.csv', sorted) or a "
        "comma-separated list of either; empty uses the embedded default OCS data set "
        "(simulated once, cached).",
    )
    data_loading: str = option(
        "auto",
        "memory: read the data whole; stream: read it block by block every epoch through "
        "tf.data (bounded memory, for data larger than memory); auto: stream when the files "
        "together exceed 512 MiB.",
        choices=DATA_LOADINGS,
    )
    shuffle_buffer: int = option(
        262_144,
        "Streamed data only: events in the buffer the training part is shuffled through each "
        "epoch (in-memory data are shuffled whole).",
    )
    # The molecule the flags describe, resolved once when the configuration is validated (None
    # before); not a flag.
    molecule: Molecule | None = None

    fragments: MoleculeConfig = MoleculeConfig()
    position_columns: tuple[str, ...] = position_columns_option()
    momentum_columns: tuple[str, ...] = momentum_columns_option()
    train_fraction: float = option(
        0.70,
        "Fraction of events for training, in (0, 1).",
    )
    val_fraction: float = option(
        0.15,
        "Fraction of events for validation, in (0, 1); the rest is the test split.",
    )
    position_norm: str = option(
        "standard",
        "Normalization of positions, fitted on the training split.",
        choices=preprocessing.NORMALIZATIONS,
    )
    momentum_norm: str = option(
        "standard",
        "Normalization of momenta, fitted on the training split.",
        choices=preprocessing.NORMALIZATIONS,
    )
    center: str = option(
        "none",
        "com: subtract each event's centre of mass from its positions, so targets are "
        "centre-of-mass relative (momenta cannot fix a translation); none: positions as given.",
        choices=CENTERS,
    )
    align_positions: bool = option(
        False,
        "Repair data whose positions and momenta live in different frames: rotate each event's "
        "positions onto its momenta (simulated explosion + Kabsch), centre them.",
    )
    check_data: bool = option(
        True,
        "Check energies, momentum balance, frames and translation on a sample before training "
        "and print the verdict with recommended flags; --nocheck_data skips it.",
    )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The CVAE's architecture and objective: every field is a `model.CVAE` argument."""

    hidden_dim: int = option(
        64,
        "Width of the first encoder layer; layer i has hidden_dim·2^i units.",
    )
    num_layers: int = option(
        3,
        "Number of hidden layers in the encoder (the decoder mirrors them).",
    )
    latent_dim: int = option(
        4,
        "Dimension of the latent vector z; 0 switches the latent path off (a deterministic "
        "network of the same size).",
    )
    activation: str = option(
        "gelu",
        "Hidden-layer activation: any name keras.activations.get accepts.",
    )
    beta: float = option(
        1.0,
        "Weight β of the KL divergence in the loss. Both terms are per event: the decoder's "
        "Gaussian negative log-likelihood summed over the coordinates, the KL summed over the "
        "latent dimensions, so β = 1 weighs them as the standard VAE does (the negative "
        "evidence lower bound; with --prior_weight=0 --nll_beta=0 the objective is exactly "
        "that).",
    )
    prior_weight: float = option(
        0.5,
        "Hybrid objective (Sohn et al. 2015): the loss is (1 − w)·(NLL + β·KL) with z from the "
        "encoder + w·NLL with z drawn from the training latent distribution, the way "
        "validation, test and prediction decode; w in [0, 1), 0 = the plain CVAE.",
    )
    nll_beta: float = option(
        0.5,
        "β-NLL (Seitzer et al. 2022): weight each coordinate's NLL gradient by its decoder "
        "variance^nll_beta (stop-gradient), in [0, 1]; 0 = the plain Gaussian likelihood (with "
        "--beta=1 exactly the VAE's gradient), 0.5 keeps the learned variance from slowing the "
        "fit of the mean. The reported reconstruction is the plain NLL either way.",
    )
    l1: float = option(
        0.0,
        "Weight λ₁ of the L1 penalty Σ|w| over the Dense kernels.",
    )
    l2: float = option(
        0.0,
        "Weight λ₂ of the L2 penalty Σw² over the Dense kernels.",
    )
    latent_prior: str = option(
        "aggregate_posterior",
        "Spread of the training latent distribution sampled without positions: encoder_means = "
        "std of the encoder means; aggregate_posterior = also their mean variance.",
        choices=model.LATENT_PRIORS,
    )
    frame: str = option(
        "momentum",
        "momentum: rotate each event into the frame its momenta define, train and predict "
        "there, rotate predictions back (right for randomly oriented molecules); lab: as given.",
        choices=frames.FRAMES,
    )


@dataclasses.dataclass(frozen=True)
class OptimizationConfig:
    """How the model is fitted: optimizer, batches, devices, epochs, schedule."""

    learning_rate: float = option(
        1e-3,
        "Adam learning rate.",
    )
    batch_size: int = option(
        256,
        "Events per training batch.",
    )
    distribution: str = option(
        "none",
        "tf.distribute strategy: none (one device); mirrored (MirroredStrategy over every GPU "
        "of this machine, or every logical CPU device without one); multi_worker "
        "(MultiWorkerMirroredStrategy over the machines TF_CONFIG lists; run the same command "
        "on each, the chief writes the run folder). --batch_size is the global batch, split "
        "over the replicas.",
        choices=distribution.STRATEGIES,
    )
    scale_batch_with_replicas: bool = option(
        False,
        "With several replicas: keep --batch_size events per replica (global batch batch_size × "
        "replicas) and multiply the learning rate by the replicas (linear scaling rule); "
        "otherwise the updates are those of a single-device run.",
    )
    steps_per_execution: int = option(
        32,
        "Batches run per compiled call (keras compile option); larger amortizes keras' per-step "
        "overhead, callbacks see batches in groups of this size.",
    )
    jit_compile: bool = option(
        True,
        "XLA-compile the training, validation and prediction steps.",
    )
    epochs: int = option(
        300,
        "Maximum number of epochs (early stopping usually ends sooner).",
    )
    min_epoch_steps: int = option(
        100,
        "Optimizer steps an epoch has at least: a training part smaller than min_epoch_steps "
        "batches is repeated (reshuffled each pass) to fill the epoch, so patience and the "
        "learning-rate schedule count about as many steps on 1,000 events as on 50,000.",
    )
    patience: int = option(
        25,
        "Epochs without a relative improvement of the validation per-atom error in bohr "
        "(val_atom_error, z from the training latent distribution) before stopping; the best "
        "epoch's weights are restored.",
    )
    min_delta_factor: float = option(
        1e-3,
        "Relative improvement an epoch needs: val_atom_error < best·(1 − factor).",
    )
    lr_patience: int = option(
        8,
        "Epochs without a relative improvement of val_atom_error before the learning rate is "
        "multiplied by --lr_factor (keras ReduceLROnPlateau); 0 turns the schedule off.",
    )
    lr_factor: float = option(
        0.5,
        "Factor in (0, 1) the learning rate is multiplied by on a plateau.",
    )
    min_learning_rate: float = option(
        1e-6,
        "Lower bound of the learning rate on plateaus.",
    )


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """How the trained model is measured on the test part."""

    num_samples: int = option(
        32,
        "Latent samples K per test event: the report gives the predictive mean and spread "
        "(latent draws and the decoder's own variance), how often the truth falls in the "
        "central 50, 68, 90 and 95 % intervals, and the CRPS.",
    )
    num_display_samples: int = option(
        3,
        "Random test events shown as a real-vs-predicted table.",
    )
    recalibrate: bool = option(
        True,
        "After training, scale the decoder's spread so that the validation split's residuals "
        "match the predictive variance (saved in the model; --norecalibrate keeps the learned "
        "spread).",
    )
    select: str = option("none", sampling.SELECT_HELP, choices=sampling.SELECTIONS)


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """Where the run folder goes, and what happens to a run of the same name."""

    output_dir: str = option(
        "saved_models",
        "Folder that receives the run folder <output_dir>/<run_name>.",
    )
    run_name: str = option(
        "",
        "Name of the run folder; empty uses the start time (YYYYmmdd-HHMMSS).",
    )
    resume: bool = option(
        False,
        "Continue the unfinished run --run_name (interrupted or killed) from its last completed "
        "epoch, with the same flags (only --epochs and evaluation flags may change).",
    )
    overwrite: bool = option(
        False,
        "Replace the run folder --run_name, or its unfinished partial folder; the old run stays "
        "in place until the new one is complete.",
    )

    def resolved_run_name(self) -> str:
        """The run's folder name: --run_name, or the current time."""
        return self.run_name or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, in parts; library code takes these, never absl's FLAGS.

    The flags are the parts' fields, flat (`--hidden_dim`, not `--model.hidden_dim`); config.json
    keeps the same flat form (`to_json`).
    """

    seed: int = option(0, "Seed of the split, the initial weights and the latent sampling.")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optimization: OptimizationConfig = OptimizationConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    output: OutputConfig = OutputConfig()

    def to_json(self) -> str:
        """Every flag's value, for config.json beside the model."""
        return json.dumps(flag_fields.to_dict(self), indent=2)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one absl flag per setting of TrainConfig's parts, with its default."""
    flag_fields.define_flags(TrainConfig, flag_values)


def from_flags(flag_values: flags.FlagValues) -> TrainConfig:
    """The validated TrainConfig of the parsed flags."""
    return from_dict(flag_fields.values_from_flags(TrainConfig, flag_values))


def from_dict(values: dict) -> TrainConfig:
    """The validated TrainConfig of flat {flag name: value}; settings not named keep defaults."""
    return validate(flag_fields.from_dict(TrainConfig, values))


def replace(config: TrainConfig, **changes) -> TrainConfig:
    """The validated `config` with flat settings changed: replace(config, epochs=3, l1=0.1)."""
    return from_dict({**flag_fields.to_dict(config), **changes})


def validate(config: TrainConfig) -> TrainConfig:
    """Checks every value before any heavy work; raises UserInputError naming the first bad one.

    Returns the configuration with the data files resolved (DataConfig.files).
    """
    _check_seed(config.seed)
    _check_model(config.model)
    _check_optimization(config.optimization)
    _check_evaluation(config.evaluation)
    _check_output(config.output)
    return dataclasses.replace(config, data=_checked_data(config.data))


def _check_at_least(part, names, minimum: int) -> None:
    for name in names:
        if getattr(part, name) < minimum:
            raise UserInputError(f"--{name}={getattr(part, name)}; expected an integer ≥ {minimum}")


def _check_positive_finite(part, name: str, strict: bool = False) -> None:
    value, bound = getattr(part, name), "> 0" if strict else "≥ 0"
    if not (value > 0 if strict else value >= 0):
        raise UserInputError(f"--{name}={value}; expected a number {bound}")
    if not math.isfinite(value):
        raise UserInputError(f"--{name}={value}; expected a finite number {bound}")


def _check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise UserInputError(f"--seed={seed}; expected an integer in [0, {MAX_SEED}]")


def _check_model(part: ModelConfig) -> None:
    _check_at_least(part, ("hidden_dim", "num_layers"), 1)
    _check_at_least(part, ("latent_dim",), 0)
    # Beyond 18 layers the widest exceeds MAX_LAYER_WIDTH for any hidden_dim ≥ 1: no need to list
    # the widths of a typo like --num_layers=10**9.
    widest = model.hidden_layer_sizes(part.hidden_dim, min(part.num_layers, 18))[-1]
    if widest > MAX_LAYER_WIDTH:
        raise UserInputError(
            f"--hidden_dim={part.hidden_dim} and --num_layers={part.num_layers} make a layer "
            f"{widest} units wide; expected hidden_dim·2^(num_layers−1) ≤ {MAX_LAYER_WIDTH}"
        )
    if not 0 <= part.prior_weight < 1:
        raise UserInputError(f"--prior_weight={part.prior_weight}; expected a number in [0, 1)")
    if not 0 <= part.nll_beta <= 1:
        raise UserInputError(f"--nll_beta={part.nll_beta}; expected a number in [0, 1]")
    for name in ("beta", "l1", "l2"):
        _check_positive_finite(part, name)
    if not _is_usable_activation(part.activation):
        raise UserInputError(
            f"--activation={part.activation!r} is not a keras activation usable here; "
            f"expected one of {', '.join(usable_activations())}"
        )


def _check_optimization(part: OptimizationConfig) -> None:
    _check_at_least(part, ("batch_size", "steps_per_execution", "epochs", "min_epoch_steps"), 1)
    _check_at_least(part, ("patience", "lr_patience"), 0)
    _check_positive_finite(part, "learning_rate", strict=True)
    if not 0 < part.lr_factor < 1:
        raise UserInputError(f"--lr_factor={part.lr_factor}; expected a number in (0, 1)")
    if not 0 <= part.min_learning_rate < math.inf:
        raise UserInputError(
            f"--min_learning_rate={part.min_learning_rate}; expected a finite number ≥ 0"
        )
    if not 0 <= part.min_delta_factor < 1:
        raise UserInputError(
            f"--min_delta_factor={part.min_delta_factor}; expected a number in [0, 1)"
        )
    if part.distribution == "multi_worker" and distribution.cluster_task() is None:
        raise UserInputError(
            "--distribution=multi_worker needs the TF_CONFIG environment variable, e.g. "
            f"TF_CONFIG='{distribution.TF_CONFIG_SHAPE}'"
        )


def _check_evaluation(part: EvaluationConfig) -> None:
    _check_at_least(part, ("num_samples",), 1)
    _check_at_least(part, ("num_display_samples",), 0)


def _check_output(part: OutputConfig) -> None:
    if Path(part.output_dir).exists() and not Path(part.output_dir).is_dir():
        raise UserInputError(
            f"--output_dir='{part.output_dir}' is a file; expected a folder for run folders"
        )
    if "/" in part.run_name or part.run_name.startswith(".") or "\0" in part.run_name:
        raise UserInputError(
            f"--run_name={part.run_name!r}; expected a plain folder name, not starting with '.'"
        )
    if part.resume and part.overwrite:
        raise UserInputError(
            "--resume and --overwrite contradict each other: --resume continues the unfinished "
            "run, --overwrite starts it afresh; pass one"
        )
    if part.resume and not part.run_name:
        raise UserInputError("--resume needs the --run_name of the run to continue")


def _checked_data(part: DataConfig) -> DataConfig:
    _check_at_least(part, ("shuffle_buffer",), 1)
    for name in ("train_fraction", "val_fraction"):
        if not 0 < getattr(part, name) < 1:
            raise UserInputError(f"--{name}={getattr(part, name)}; expected a number in (0, 1)")
    if part.train_fraction + part.val_fraction >= 1:
        raise UserInputError(
            f"--train_fraction + --val_fraction = {part.train_fraction + part.val_fraction:g}"
            " leaves no test events; expected a sum below 1"
        )
    molecule = part.fragments.resolve()
    position_columns, momentum_columns = resolve_columns(
        part.position_columns, part.momentum_columns, molecule
    )
    if not part.data and not molecule.same_fragments(OCS):
        raise UserInputError(
            f"--data is empty, so the embedded OCS data would be used, but the molecule is "
            f"{molecule.describe()}; give --data (python -m cvae_tf.simulate writes such a file)"
        )
    files = csv_files.data_files(part.data) if part.data else ()
    return dataclasses.replace(
        part,
        files=files,
        molecule=molecule,
        position_columns=position_columns,
        momentum_columns=momentum_columns,
    )


def _is_usable_activation(name: str) -> bool:
    """Whether keras knows `name` as a one-argument activation that keeps the layer's shape."""
    try:
        # Traced symbolically, like a layer in a functional model: no TensorFlow op runs, so a
        # multi-worker strategy can still be created after validation.
        layer = keras.layers.Lambda(keras.activations.get(name))
        return tuple(layer(keras.KerasTensor((2, 4))).shape) == (2, 4)
    except Exception:  # unknown (ValueError), or needing more arguments (threshold: TypeError)
        return False


@functools.cache
def usable_activations() -> tuple[str, ...]:
    """Every keras activation name that --activation accepts, sorted."""
    names = [
        name
        for name in dir(keras.activations)
        if not name.startswith("_") and name not in ("get", "serialize", "deserialize")
    ]
    return tuple(sorted(name for name in names if _is_usable_activation(name)))
