"""The training configuration: a typed dataclass, its absl flags, and its validation."""

import dataclasses
import datetime
import functools
import json
import math
from pathlib import Path

import keras
from absl import flags

from cvae_tf import distribution, frames, model, preprocessing, sampling, streaming
from cvae_tf.cli import UserInputError
from cvae_tf.data import MOMENTUM_COLUMNS, POSITION_COLUMNS

CENTERS = ("none", "com")
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
class TrainConfig:
    """Every hyperparameter of a training run; library code takes this, never absl's FLAGS."""

    data: str = ""  # CSV path, glob of shards or comma-separated list; empty = the default set.
    data_loading: str = "auto"  # memory, stream, or auto (stream files over 512 MiB)
    shuffle_buffer: int = 262_144  # events a streamed training part is shuffled through
    position_columns: tuple[str, ...] = POSITION_COLUMNS
    momentum_columns: tuple[str, ...] = MOMENTUM_COLUMNS
    train_fraction: float = 0.70
    val_fraction: float = 0.15
    seed: int = 0
    hidden_dim: int = 64
    num_layers: int = 3
    latent_dim: int = 4
    activation: str = "gelu"
    learning_rate: float = 1e-3  # Adam
    batch_size: int = 256
    distribution: str = "none"  # none, mirrored (devices of one machine), multi_worker (TF_CONFIG)
    scale_batch_with_replicas: bool = False  # batch_size per replica, learning rate × replicas
    steps_per_execution: int = 32  # batches per compiled call: amortizes keras' per-step overhead
    jit_compile: bool = True  # XLA-compile the train, test and predict steps
    epochs: int = 300  # maximum; early stopping usually ends sooner
    min_epoch_steps: int = 100  # an epoch is at least this many optimizer steps (small data)
    patience: int = 25  # epochs without relative improvement before stopping
    min_delta_factor: float = 1e-3  # improvement means val < best·(1 − factor)
    lr_patience: int = 8  # epochs without improvement before the learning rate is cut
    lr_factor: float = 0.5  # the cut: learning rate × factor
    min_learning_rate: float = 1e-6  # the learning rate is never cut below this
    beta: float = 1.0  # weight of the KL term: 1 = the standard VAE (negative ELBO per event)
    prior_weight: float = 0.5  # share of each step decoding z from the training distribution
    nll_beta: float = 0.5  # β-NLL power of the decoder variance weighting its NLL gradient
    l1: float = 0.0  # weight of Σ|w| over Dense kernels
    l2: float = 0.0  # weight of Σw² over Dense kernels
    position_norm: str = "standard"
    momentum_norm: str = "standard"
    latent_prior: str = "aggregate_posterior"
    frame: str = "momentum"  # train and predict in the frame the momenta define
    center: str = "none"  # com: make the target positions centre-of-mass relative
    align_positions: bool = False  # rotate each event's positions into its momenta's frame
    check_data: bool = True  # check the data's physics on a sample before training
    output_dir: str = "saved_models"
    run_name: str = ""  # empty = a timestamp
    resume: bool = False  # continue the unfinished run of run_name from its last epoch
    overwrite: bool = False  # replace a finished (or unfinished) run of the same name
    num_display_samples: int = 3
    num_samples: int = 32  # latent samples per test event in the evaluation
    recalibrate: bool = True  # scale the decoder's spread to the validation residuals
    select: str = "none"  # point prediction: sample mean, or the energy-selected sample

    def resolved_run_name(self) -> str:
        """The run's folder name: --run_name, or the current time."""
        return self.run_name or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")

    def to_json(self) -> str:
        """Every value, for config.json beside the model."""
        return json.dumps(dataclasses.asdict(self), indent=2)


_HELP = {
    "data": "CSV file of events, a glob of CSV shards (quoted: 'shards/*.csv', sorted) or a "
    "comma-separated list of either; empty uses the embedded default OCS data set (simulated "
    "once, cached).",
    "data_loading": "memory: read the data whole; stream: read it block by block every epoch "
    "through tf.data (bounded memory, for data larger than memory); auto: stream when the files "
    "together exceed 512 MiB.",
    "shuffle_buffer": "Streamed data only: events in the buffer the training part is shuffled "
    "through each epoch (in-memory data are shuffled whole).",
    "position_columns": "Nine position columns (bohr) in the order C x,y,z, O x,y,z, S x,y,z.",
    "momentum_columns": "Nine momentum columns (a.u.) in the order C x,y,z, O x,y,z, S x,y,z.",
    "train_fraction": "Fraction of events for training, in (0, 1).",
    "val_fraction": "Fraction of events for validation, in (0, 1); the rest is the test split.",
    "seed": "Seed of the split, the initial weights and the latent sampling.",
    "hidden_dim": "Width of the first encoder layer; layer i has hidden_dim·2^i units.",
    "num_layers": "Number of hidden layers in the encoder (the decoder mirrors them).",
    "latent_dim": "Dimension of the latent vector z; 0 switches the latent path off (a "
    "deterministic network of the same size).",
    "activation": "Hidden-layer activation: any name keras.activations.get accepts.",
    "learning_rate": "Adam learning rate.",
    "batch_size": "Events per training batch.",
    "distribution": "tf.distribute strategy: none (one device); mirrored (MirroredStrategy over "
    "every GPU of this machine, or every logical CPU device without one); multi_worker "
    "(MultiWorkerMirroredStrategy over the machines TF_CONFIG lists; run the same command on "
    "each, the chief writes the run folder). --batch_size is the global batch, split over the "
    "replicas.",
    "scale_batch_with_replicas": "With several replicas: keep --batch_size events per replica "
    "(global batch batch_size × replicas) and multiply the learning rate by the replicas "
    "(linear scaling rule); otherwise the updates are those of a single-device run.",
    "steps_per_execution": "Batches run per compiled call (keras compile option); larger "
    "amortizes keras' per-step overhead, callbacks see batches in groups of this size.",
    "jit_compile": "XLA-compile the training, validation and prediction steps.",
    "epochs": "Maximum number of epochs (early stopping usually ends sooner).",
    "min_epoch_steps": "Optimizer steps an epoch has at least: a training part smaller than "
    "min_epoch_steps batches is repeated (reshuffled each pass) to fill the epoch, so patience "
    "and the learning-rate schedule count about as many steps on 1,000 events as on 50,000.",
    "patience": "Epochs without a relative improvement of the validation per-atom error in "
    "bohr (val_atom_error, z from the training latent distribution) before stopping; the best "
    "epoch's weights are restored.",
    "min_delta_factor": "Relative improvement an epoch needs: val_atom_error < best·(1 − factor).",
    "lr_patience": "Epochs without a relative improvement of val_atom_error before the "
    "learning rate is multiplied by --lr_factor (keras ReduceLROnPlateau); 0 turns the "
    "schedule off.",
    "lr_factor": "Factor in (0, 1) the learning rate is multiplied by on a plateau.",
    "min_learning_rate": "Lower bound of the learning rate on plateaus.",
    "beta": "Weight β of the KL divergence in the loss. Both terms are per event: the decoder's "
    "Gaussian negative log-likelihood summed over the 9 coordinates, the KL summed over the "
    "latent dimensions, so β = 1 weighs them as the standard VAE does (the negative evidence "
    "lower bound; with --prior_weight=0 --nll_beta=0 the objective is exactly that).",
    "prior_weight": "Hybrid objective (Sohn et al. 2015): the loss is (1 − w)·(NLL + β·KL) with "
    "z from the encoder + w·NLL with z drawn from the training latent distribution, the way "
    "validation, test and prediction decode; w in [0, 1), 0 = the plain CVAE.",
    "nll_beta": "β-NLL (Seitzer et al. 2022): weight each coordinate's NLL gradient by its "
    "decoder variance^nll_beta (stop-gradient), in [0, 1]; 0 = the plain Gaussian likelihood "
    "(with --beta=1 exactly the VAE's gradient), 0.5 keeps the learned variance from slowing "
    "the fit of the mean. The reported reconstruction is the plain NLL either way.",
    "l1": "Weight λ₁ of the L1 penalty Σ|w| over the Dense kernels.",
    "l2": "Weight λ₂ of the L2 penalty Σw² over the Dense kernels.",
    "position_norm": "Normalization of positions, fitted on the training split.",
    "momentum_norm": "Normalization of momenta, fitted on the training split.",
    "latent_prior": "Spread of the training latent distribution sampled without positions: "
    "encoder_means = std of the encoder means; aggregate_posterior = also their mean variance.",
    "frame": "momentum: rotate each event into the frame its momenta define, train and predict "
    "there, rotate predictions back (right for randomly oriented molecules); lab: as given.",
    "center": "com: subtract each event's centre of mass from its positions, so targets are "
    "centre-of-mass relative (momenta cannot fix a translation); none: positions as given.",
    "align_positions": "Repair data whose positions and momenta live in different frames: "
    "rotate each event's positions onto its momenta (simulated explosion + Kabsch), centre them.",
    "check_data": "Check energies, momentum balance, frames and translation on a sample before "
    "training and print the verdict with recommended flags; --nocheck_data skips it.",
    "output_dir": "Folder that receives the run folder <output_dir>/<run_name>.",
    "run_name": "Name of the run folder; empty uses the start time (YYYYmmdd-HHMMSS).",
    "resume": "Continue the unfinished run --run_name (interrupted or killed) from its last "
    "completed epoch, with the same flags (only --epochs and evaluation flags may change).",
    "overwrite": "Replace the run folder --run_name, or its unfinished partial folder; the old "
    "run stays in place until the new one is complete.",
    "num_display_samples": "Random test events shown as a real-vs-predicted table.",
    "num_samples": "Latent samples K per test event: the report gives the predictive mean and "
    "spread (latent draws and the decoder's own variance), how often the truth falls in the "
    "central 50, 68, 90 and 95 % intervals, and the CRPS.",
    "recalibrate": "After training, scale the decoder's spread so that the validation split's "
    "residuals match the predictive variance (saved in the model; --norecalibrate keeps the "
    "learned spread).",
    "select": "Point prediction from the K samples: none = their mean; energy = the sample whose "
    "potential energy best matches the measured kinetic energy.",
}

DATA_LOADINGS = ("auto", "memory", "stream")

_ENUMS = {
    "data_loading": DATA_LOADINGS,
    "distribution": distribution.STRATEGIES,
    "position_norm": preprocessing.NORMALIZATIONS,
    "momentum_norm": preprocessing.NORMALIZATIONS,
    "latent_prior": model.LATENT_PRIORS,
    "frame": frames.FRAMES,
    "select": sampling.SELECTIONS,
    "center": CENTERS,
}


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one absl flag per TrainConfig field, with the dataclass default."""
    for field in dataclasses.fields(TrainConfig):
        name, default = field.name, field.default
        help_text = f"{_HELP[name]} Default: {default!r}."
        if name in _ENUMS:
            flags.DEFINE_enum(name, default, _ENUMS[name], help_text, flag_values=flag_values)
        elif field.type == tuple[str, ...]:
            flags.DEFINE_list(name, list(default), help_text, flag_values=flag_values)
        elif field.type is bool:
            flags.DEFINE_boolean(name, default, help_text, flag_values=flag_values)
        elif field.type is int:
            flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
        elif field.type is float:
            flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(name, default, help_text, flag_values=flag_values)


def from_flags(flag_values: flags.FlagValues) -> TrainConfig:
    """The validated TrainConfig of the parsed flags."""
    values = {}
    for field in dataclasses.fields(TrainConfig):
        value = flag_values[field.name].value
        if isinstance(value, list):  # Column lists; "cx, cy" → ("cx", "cy").
            value = tuple(name.strip() for name in value)
        values[field.name] = value
    return validate(TrainConfig(**values))


def validate(config: TrainConfig) -> TrainConfig:
    """Checks every value before any heavy work; raises UserInputError naming the first bad one."""
    for name in (
        "hidden_dim",
        "num_layers",
        "batch_size",
        "steps_per_execution",
        "epochs",
        "num_samples",
        "shuffle_buffer",
        "min_epoch_steps",
    ):
        if getattr(config, name) < 1:
            raise UserInputError(f"--{name}={getattr(config, name)}; expected an integer ≥ 1")
    for name in ("patience", "num_display_samples", "latent_dim", "lr_patience"):
        if getattr(config, name) < 0:
            raise UserInputError(f"--{name}={getattr(config, name)}; expected an integer ≥ 0")
    if not config.learning_rate > 0:
        raise UserInputError(f"--learning_rate={config.learning_rate}; expected a number > 0")
    if not math.isfinite(config.learning_rate):
        raise UserInputError(
            f"--learning_rate={config.learning_rate}; expected a finite number > 0"
        )
    if not 0 <= config.prior_weight < 1:
        raise UserInputError(f"--prior_weight={config.prior_weight}; expected a number in [0, 1)")
    if not 0 < config.lr_factor < 1:
        raise UserInputError(f"--lr_factor={config.lr_factor}; expected a number in (0, 1)")
    if not 0 <= config.min_learning_rate < math.inf:
        raise UserInputError(
            f"--min_learning_rate={config.min_learning_rate}; expected a finite number ≥ 0"
        )
    if not 0 <= config.nll_beta <= 1:
        raise UserInputError(f"--nll_beta={config.nll_beta}; expected a number in [0, 1]")
    for name in ("beta", "l1", "l2"):
        if not getattr(config, name) >= 0:
            raise UserInputError(f"--{name}={getattr(config, name)}; expected a number ≥ 0")
        if not math.isfinite(getattr(config, name)):
            raise UserInputError(f"--{name}={getattr(config, name)}; expected a finite number ≥ 0")
    if not 0 <= config.seed <= MAX_SEED:
        raise UserInputError(f"--seed={config.seed}; expected an integer in [0, {MAX_SEED}]")
    widest = config.hidden_dim * 2 ** (config.num_layers - 1)
    if widest > MAX_LAYER_WIDTH:
        raise UserInputError(
            f"--hidden_dim={config.hidden_dim} and --num_layers={config.num_layers} make a layer "
            f"{widest} units wide; expected hidden_dim·2^(num_layers−1) ≤ {MAX_LAYER_WIDTH}"
        )
    if not 0 <= config.min_delta_factor < 1:
        raise UserInputError(
            f"--min_delta_factor={config.min_delta_factor}; expected a number in [0, 1)"
        )
    for name in ("train_fraction", "val_fraction"):
        if not 0 < getattr(config, name) < 1:
            raise UserInputError(f"--{name}={getattr(config, name)}; expected a number in (0, 1)")
    if config.train_fraction + config.val_fraction >= 1:
        raise UserInputError(
            f"--train_fraction + --val_fraction = {config.train_fraction + config.val_fraction:g}"
            " leaves no test events; expected a sum below 1"
        )
    for name in ("position_columns", "momentum_columns"):
        columns = getattr(config, name)
        if len(columns) != 9 or len(set(columns)) != 9 or not all(columns):
            raise UserInputError(
                f"--{name} has {len(columns)} names {list(columns)}; expected 9 distinct names "
                "in the order C x,y,z, O x,y,z, S x,y,z"
            )
    if set(config.position_columns) & set(config.momentum_columns):
        raise UserInputError(
            "--position_columns and --momentum_columns share "
            f"{sorted(set(config.position_columns) & set(config.momentum_columns))}"
        )
    if not _is_usable_activation(config.activation):
        raise UserInputError(
            f"--activation={config.activation!r} is not a keras activation usable here; "
            f"expected one of {', '.join(usable_activations())}"
        )
    if config.data:
        streaming.data_files(config.data)
    if Path(config.output_dir).exists() and not Path(config.output_dir).is_dir():
        raise UserInputError(
            f"--output_dir='{config.output_dir}' is a file; expected a folder for run folders"
        )
    if "/" in config.run_name or config.run_name.startswith(".") or "\0" in config.run_name:
        raise UserInputError(
            f"--run_name={config.run_name!r}; expected a plain folder name, not starting with '.'"
        )
    if config.distribution == "multi_worker" and distribution.cluster_task() is None:
        raise UserInputError(
            "--distribution=multi_worker needs the TF_CONFIG environment variable, e.g. "
            f"TF_CONFIG='{distribution.TF_CONFIG_SHAPE}'"
        )
    if config.resume and config.overwrite:
        raise UserInputError(
            "--resume and --overwrite contradict each other: --resume continues the unfinished "
            "run, --overwrite starts it afresh; pass one"
        )
    if config.resume and not config.run_name:
        raise UserInputError("--resume needs the --run_name of the run to continue")
    return config


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
