"""The conditional VAE: encoder q(z | positions, momenta), decoder p(positions | z, momenta)."""

import math

import keras
import numpy as np
from keras import ops

from cvae_tf import calibration, frames, preprocessing

NUM_FEATURES = 9  # 3 atoms × 3 axes, atom-major.
LATENT_PRIORS = ("encoder_means", "aggregate_posterior")
# Soft floor of the decoder's log-variance (normalized units): σ ≥ e^(−12.5) ≈ 4·10⁻⁶.
MIN_LOG_VARIANCE = -25.0
LOG_2PI = math.log(2.0 * math.pi)
VALIDATION_SEED = 2_718_281  # the validation step's fixed latent draws


def hidden_layer_sizes(hidden_dim: int, num_layers: int) -> list[int]:
    """Encoder widths [hidden_dim·2^i for i in range(num_layers)]: 64, 128, 256 for (64, 3)."""
    return [hidden_dim * 2**i for i in range(num_layers)]


def _mlp(sizes: list[int], activation: str, name: str) -> list[keras.layers.Dense]:
    return [
        keras.layers.Dense(size, activation=activation, name=f"{name}_{index}")
        for index, size in enumerate(sizes)
    ]


@keras.saving.register_keras_serializable(package="cvae_tf")
class CVAE(keras.Model):
    """A conditional VAE that maps raw momenta (a.u.) to raw positions (bohr), both [batch, 9].

    Normalization lives inside the model (keras `Normalization` layers fitted on the training
    split), so `call` takes momenta in the user's units and returns positions in bohr.

    Without positions (validation, test, prediction) the latent vector is drawn from the
    *training* latent distribution N(latent_mean, latent_std²), kept as non-trainable weights so
    that a saved model carries it. `latent_prior` chooses the spread: `encoder_means` is the
    spread of the encoder means over the training set; `aggregate_posterior` adds the mean
    posterior variance, √(var(μ) + mean(σ²)) (PHYSICS.md, "Reading the specification's latent
    sampling"). During training they follow the current epoch's running statistics (reset by the
    `LatentStatisticsReset` callback), and `fit_latent_statistics` recomputes them exactly.

    The decoder is a Gaussian N(mean, diag σ²) with a learned per-event variance; the loss is
    per event (compute_losses), so β = 1 is the standard VAE. `prior_weight` adds Sohn et al.'s
    hybrid term (decoding z from the training latent distribution), `nll_beta` β-NLL, and
    `spread_scale` (fit_spread_scale_from) recalibrates σ on a split the model never trained on.

    With `frame="momentum"` every event is rotated into the frame its momenta define
    (frames.py) before normalization, and predictions are rotated back, so callers always work
    in their own frame. `latent_dim=0` switches the latent path off: the same network as a
    deterministic regressor (the baseline the CVAE is measured against).
    """

    def __init__(
        self,
        position_offset,
        position_variance,
        momentum_offset,
        momentum_variance,
        hidden_dim: int = 64,
        num_layers: int = 3,
        latent_dim: int = 4,
        activation: str = "gelu",
        beta: float = 1.0,
        l1: float = 0.0,
        l2: float = 0.0,
        latent_prior: str = "aggregate_posterior",
        frame: str = "lab",
        seed: int = 0,
        nll_beta: float = 0.0,
        prior_weight: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if latent_prior not in LATENT_PRIORS:
            raise ValueError(f"latent_prior={latent_prior!r}; expected one of {LATENT_PRIORS}")
        if frame not in frames.FRAMES:
            raise ValueError(f"frame={frame!r}; expected one of {frames.FRAMES}")
        self.frame = frame
        self.hidden_dim, self.num_layers, self.latent_dim = (
            hidden_dim,
            num_layers,
            latent_dim,
        )
        self.activation_name = activation
        self.beta, self.l1, self.l2, self.nll_beta = beta, l1, l2, nll_beta
        self.prior_weight = prior_weight
        self.latent_prior, self.seed = latent_prior, seed
        self._statistics = {
            "position_offset": np.asarray(position_offset, dtype=np.float64).tolist(),
            "position_variance": np.asarray(position_variance, dtype=np.float64).tolist(),
            "momentum_offset": np.asarray(momentum_offset, dtype=np.float64).tolist(),
            "momentum_variance": np.asarray(momentum_variance, dtype=np.float64).tolist(),
        }
        self.normalize_positions, self.denormalize_positions = preprocessing.normalization_layers(
            position_offset, position_variance, "positions"
        )
        self.normalize_momenta, _ = preprocessing.normalization_layers(
            momentum_offset, momentum_variance, "momenta"
        )
        sizes = hidden_layer_sizes(hidden_dim, num_layers)
        # No latent path, no encoder: the decoder alone is then a plain regression network.
        self.encoder_layers = _mlp(sizes, activation, "encoder") if latent_dim else []
        self.latent_heads = (
            [
                keras.layers.Dense(latent_dim, name="encoder_latent_mean"),
                keras.layers.Dense(latent_dim, name="encoder_latent_log_var"),
            ]
            if latent_dim
            else []
        )
        self.decoder_layers = _mlp(sizes[::-1], activation, "decoder")
        self.position_layer = keras.layers.Dense(NUM_FEATURES, name="decoder_positions")
        # The decoder is a Gaussian p(positions | z, momenta) = N(mean, diag σ²) with a learned,
        # per-event (heteroscedastic) variance, so that the reconstruction term is a true
        # negative log-likelihood and β = 1 is the evidence lower bound (Rybkin et al. 2021).
        self.log_variance_layer = keras.layers.Dense(NUM_FEATURES, name="decoder_position_log_var")
        self.seed_generator = keras.random.SeedGenerator(seed, name="latent_sampler")

        # Under tf.distribute these are mirrored variables that every replica's step updates
        # with the same values (accumulate_latent_statistics adds up the replicas' batches
        # first), kept from the first replica. Without an aggregation TensorFlow would silently
        # update each replica's own copy only; "sum" would add up keras' assign_add, which is
        # assign(variable + value), into variable × replicas + Σ values.
        self.latent_mean = self._state_weight((latent_dim,), "zeros", "latent_mean")
        self.latent_std = self._state_weight((latent_dim,), "ones", "latent_std")
        # Running sums over the current epoch's training batches: Σμ, Σμ², Σσ², count.
        self._latent_sums = self._state_weight((3, latent_dim), "zeros", "latent_sums")
        self._latent_count = self._state_weight((), "zeros", "latent_count")
        # Recalibration (fit_spread_scale_from): per model-frame coordinate, the factor the
        # decoder's standard deviation is multiplied by wherever the model samples or reports a
        # spread.
        self.spread_scale = self._state_weight((NUM_FEATURES,), "ones", "spread_scale")

        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "loss",
                "reconstruction",
                "kl",
                "l1",
                "l2",
                "unregularized_loss",
                "mse",
                "atom_error",
            )
        }
        self.build((None, NUM_FEATURES))

    def _state_weight(self, shape, initializer: str, name: str):
        """A non-trainable weight that every replica updates alike, kept from the first."""
        return self.add_weight(
            shape=shape,
            initializer=initializer,
            trainable=False,
            aggregation="only_first_replica",
            name=name,
        )

    def build(self, input_shape):
        latent_input = (None, self.latent_dim + NUM_FEATURES)
        for layer_input, layers in (
            ((None, 2 * NUM_FEATURES), self.encoder_layers),
            (latent_input, self.decoder_layers),
        ):
            shape = layer_input
            for layer in layers:
                layer.build(shape)
                shape = (None, layer.units)
        for head in self.latent_heads:
            head.build((None, self.encoder_layers[-1].units))
        self.position_layer.build((None, self.decoder_layers[-1].units))
        self.log_variance_layer.build((None, self.decoder_layers[-1].units))
        for layer in (self.normalize_positions, self.denormalize_positions):
            layer.build((None, NUM_FEATURES))
        self.normalize_momenta.build((None, NUM_FEATURES))
        self.built = True

    @property
    def metrics(self):
        # Listed so that keras resets them at each epoch and `evaluate`.
        return list(self.trackers.values())

    def get_config(self):
        return {
            **super().get_config(),
            **self._statistics,
            "hidden_dim": self.hidden_dim,
            "num_layers": self.num_layers,
            "latent_dim": self.latent_dim,
            "activation": self.activation_name,
            "beta": self.beta,
            "l1": self.l1,
            "l2": self.l2,
            "latent_prior": self.latent_prior,
            "frame": self.frame,
            "seed": self.seed,
            "nll_beta": self.nll_beta,
            "prior_weight": self.prior_weight,
        }

    # Frames: tables [batch, 9] in the caller's frame to the model's, and back.

    def frame_rotations(self, momenta):
        """Rotations [batch, 3, 3] into the model's frame (None in the lab frame)."""
        if self.frame == "lab":
            return None
        return frames.momentum_frame(ops.reshape(momenta, (-1, 3, 3)))

    @staticmethod
    def to_model_frame(rotations, table, back: bool = False):
        """A table [batch, 9] of per-atom vectors rotated into the model's frame (or `back`)."""
        if rotations is None:
            return table
        rotate = frames.from_frame if back else frames.to_frame
        return ops.reshape(rotate(rotations, ops.reshape(table, (-1, 3, 3))), (-1, NUM_FEATURES))

    def _normalized_inputs(self, momenta, positions=None):
        """Normalized momenta (and positions) in the model's frame."""
        rotations = self.frame_rotations(momenta)
        normalized_momenta = self.normalize_momenta(self.to_model_frame(rotations, momenta))
        if positions is None:
            return normalized_momenta
        return normalized_momenta, self.normalize_positions(
            self.to_model_frame(rotations, positions)
        )

    # The two halves, in normalized units.

    def encode(self, normalized_positions, normalized_momenta):
        """q(z | positions, momenta): the latent mean and log-variance, each [batch, latent_dim]."""
        hidden = ops.concatenate([normalized_positions, normalized_momenta], axis=-1)
        for layer in self.encoder_layers:
            hidden = layer(hidden)
        latent_mean_layer, latent_log_var_layer = self.latent_heads
        return latent_mean_layer(hidden), latent_log_var_layer(hidden)

    def decode(self, latent, normalized_momenta):
        """The decoder's mean: normalized positions [batch, 9] in the model's frame."""
        return self.decode_gaussian(latent, normalized_momenta)[0]

    def decode_gaussian(self, latent, normalized_momenta):
        """p(positions | z, momenta): (mean, log-variance) [batch, 9] each, normalized units.

        The log-variance has a soft floor at MIN_LOG_VARIANCE (σ ≈ 4·10⁻⁶ normalized units, far
        below any error the network reaches) that keeps its gradient, unlike a hard clip.
        """
        hidden = ops.concatenate([latent, normalized_momenta], axis=-1)
        for layer in self.decoder_layers:
            hidden = layer(hidden)
        log_variance = MIN_LOG_VARIANCE + ops.softplus(
            self.log_variance_layer(hidden) - MIN_LOG_VARIANCE
        )
        return self.position_layer(hidden), log_variance

    # Raw units in and out: what users and the exported SavedModel see.

    def standard_normal(self, shape, dtype=None, seed=None):
        """Noise N(0, 1) [events, ...] from the model's seed generator, one row per event.

        Under tf.distribute every replica holds the same generator state (a mirrored variable
        that each replica advances in step), so a replica's own draw would repeat the other
        replicas' noise. Instead every replica draws the noise of the whole global batch and
        keeps its own rows: independent noise for every event, and exactly a single-device
        run's noise when the replicas' shares are consecutive slices of the global batch.

        An integer `seed` draws the same noise at every call of the same shape instead (keras'
        stateless draw), for the validation step.
        """
        seed = self.seed_generator if seed is None else seed
        replicas, first_row, global_rows = _replica_rows(shape[0])
        if replicas is None:
            return keras.random.normal(shape, dtype=dtype, seed=seed)
        noise = keras.random.normal((global_rows, *shape[1:]), dtype=dtype, seed=seed)
        return noise[first_row : first_row + shape[0]]

    def sample_latent(self, batch_size, seed=None):
        """Latent vectors [batch, latent_dim] from the training latent distribution."""
        if not self.latent_dim:
            return ops.zeros((batch_size, 0), dtype=self.compute_dtype)
        noise = self.standard_normal(
            (batch_size, self.latent_dim), dtype=self.compute_dtype, seed=seed
        )
        return self.latent_mean + self.latent_std * noise

    def decode_positions(self, momenta, latent):
        """The decoder's mean positions (bohr) [batch, 9] for raw momenta (a.u.) and latents."""
        return self.decode_moments(momenta, latent)[0]

    def decode_moments(self, momenta, latent):
        """The decoder's (mean, variance) of positions given raw momenta (a.u.) and latents.

        Both [batch, 9] in the caller's frame: the mean in bohr, the variance per coordinate in
        bohr² (the diagonal of the model-frame covariance rotated back), with the recalibrated
        spread (`spread_scale`).
        """
        rotations, mean, std = self._decoder_output(momenta, latent)
        variance = ops.square(std) * self.position_scale()
        mean = self.to_model_frame(rotations, self.denormalize_positions(mean), back=True)
        if rotations is not None:  # diag(Rᵀ·diag(v)·R)_i = Σ_j R_ji²·v_j
            variance = self.to_model_frame(ops.square(rotations), variance, back=True)
        return mean, variance

    def _decoder_output(self, momenta, latent):
        """(rotations, mean, std): the decoder's Gaussian in the model frame, normalized units."""
        momenta = ops.convert_to_tensor(momenta, dtype=self.compute_dtype)
        rotations = self.frame_rotations(momenta)
        normalized_momenta = self.normalize_momenta(self.to_model_frame(rotations, momenta))
        mean, log_variance = self.decode_gaussian(latent, normalized_momenta)
        return rotations, mean, ops.exp(0.5 * log_variance) * self.spread_scale

    def sample_moments(self, momenta):
        """One latent draw per event: decoder mean (bohr) and variance (bohr²), [batch, 18].

        The two [batch, 9] tables side by side (one tensor, so that it is one SavedModel output
        and one compiled call); `sampling.posterior_moments` makes K of them a mixture.
        """
        momenta = ops.convert_to_tensor(momenta, dtype=self.compute_dtype)
        mean, variance = self.decode_moments(momenta, self.sample_latent(ops.shape(momenta)[0]))
        return ops.concatenate([mean, variance], axis=-1)

    def position_scale(self):
        """Bohr² per normalized unit² of each model-frame position coordinate, [9]."""
        # What keras' Normalization(invert=True) multiplies by: max(√variance, ε).
        scale = ops.maximum(
            ops.sqrt(ops.reshape(self.denormalize_positions.variance, (-1,))),
            keras.backend.epsilon(),
        )
        return ops.square(scale)

    def call(self, momenta, training=False):
        """One posterior sample of positions (bohr) [batch, 9] given raw momenta (a.u.) [batch, 9].

        z from the training latent distribution, then a draw from the decoder's Gaussian (in the
        model's frame, where its covariance is diagonal).
        """
        momenta = ops.convert_to_tensor(momenta, dtype=self.compute_dtype)
        latent = self.sample_latent(ops.shape(momenta)[0])
        rotations, mean, std = self._decoder_output(momenta, latent)
        noise = self.standard_normal(ops.shape(mean), dtype=self.compute_dtype)
        positions = self.denormalize_positions(mean + std * noise)
        return self.to_model_frame(rotations, positions, back=True)

    # Training.

    def kernel_norms(self):
        """(Σ|w|, Σw²) over every Dense kernel (biases and normalization statistics excluded)."""
        kernels = [layer.kernel for layer in self._dense_layers()]
        l1 = ops.sum(ops.stack([ops.sum(ops.abs(kernel)) for kernel in kernels]))
        l2 = ops.sum(ops.stack([ops.sum(ops.square(kernel)) for kernel in kernels]))
        return l1, l2

    def _dense_layers(self):
        return [
            *self.encoder_layers,
            *self.latent_heads,
            *self.decoder_layers,
            self.position_layer,
            self.log_variance_layer,
        ]

    def compute_losses(self, momenta, positions, global_batch_size=None, num_replicas=1):
        """One batch's named loss terms, per event, and the posterior (latent mean, log-var).

        `reconstruction` is the Gaussian decoder's negative log-likelihood of the positions,
        summed over the 9 coordinates (nats, normalized units); `kl` is KL(q(z|x) ‖ N(0, I))
        summed over the latent dimensions; so `reconstruction + kl` (β = 1) is the negative
        evidence lower bound of one event. `mse` is the squared error of the decoder's mean per
        coordinate (normalized units), tracked, not optimized. With `nll_beta` > 0 the gradient
        of each coordinate's log-likelihood is weighted by its stop-gradient variance^nll_beta
        (β-NLL, Seitzer et al. 2022); the value reported stays the plain NLL.

        Under a tf.distribute strategy the batch is one replica's share of a global batch of
        `global_batch_size` events spread over `num_replicas` replicas. The terms are then this
        replica's shares, which add up over the replicas to the global batch's values
        (`tf.nn.compute_average_loss`'s convention; exact even for uneven or empty shares), so
        the gradients that the optimizer sums over replicas are the global batch's.
        """
        batch_mean = _batch_mean(global_batch_size)
        normalized_momenta, normalized_positions = self._normalized_inputs(momenta, positions)
        if self.latent_dim:
            latent_mean, latent_log_var = self.encode(normalized_positions, normalized_momenta)
            noise = self.standard_normal(ops.shape(latent_mean))
            latent = latent_mean + ops.exp(0.5 * latent_log_var) * noise
            kl = batch_mean(gaussian_kl(latent_mean, latent_log_var))
        else:
            latent = latent_mean = latent_log_var = ops.zeros((ops.shape(momenta)[0], 0))
            kl = ops.zeros(())
        mean, log_variance = self.decode_gaussian(latent, normalized_momenta)
        reconstruction, objective = self._reconstruction(
            normalized_positions, mean, log_variance, batch_mean
        )
        objective = objective + self.beta * kl
        if self.prior_weight and self.latent_dim:
            # Sohn et al. 2015's hybrid objective: part of the step decodes z drawn from the
            # training latent distribution, as validation, test and prediction do, so the
            # decoder is trained for the latents it gets there.
            prior_mean, prior_log_variance = self.decode_gaussian(
                self.sample_latent(ops.shape(momenta)[0]), normalized_momenta
            )
            _, prior_objective = self._reconstruction(
                normalized_positions, prior_mean, prior_log_variance, batch_mean
            )
            objective = (1.0 - self.prior_weight) * objective + self.prior_weight * prior_objective
        l1, l2 = self.kernel_norms()
        # The regularization is the same on every replica: each adds its share.
        terms = {
            "loss": objective + (self.l1 / num_replicas) * l1 + (self.l2 / num_replicas) * l2,
            "reconstruction": reconstruction,
            "kl": kl,
            "l1": l1,
            "l2": l2,
            "unregularized_loss": reconstruction + self.beta * kl,
            **self._position_errors(normalized_positions, mean, batch_mean),
        }
        return terms, (latent_mean, latent_log_var)

    def _position_errors(self, normalized_positions, mean, batch_mean):
        """`mse` (normalized units) and `atom_error` (bohr) of the decoder's mean.

        `atom_error` is the mean distance between true and predicted atom, the report's
        per-atom error (distances do not depend on the frame): early stopping watches what the
        report measures. The normalized MSE weighs an out-of-plane coordinate of 10⁻³ bohr like
        a bond of 2 bohr, and a squared error lets a handful of hard events (near-linear
        molecules) decide the figure.
        """
        squared = ops.square(normalized_positions - mean)
        squared_bohr = ops.reshape(squared * self.position_scale(), (-1, 3, 3))
        return {
            "mse": batch_mean(squared),
            "atom_error": batch_mean(ops.sqrt(ops.sum(squared_bohr, axis=-1))),
        }

    def _reconstruction(self, normalized_positions, mean, log_variance, batch_mean):
        """(NLL per event, the term optimized: the NLL, or β-NLL's weighted one)."""
        per_coordinate = gaussian_nll(normalized_positions, mean, log_variance, summed=False)
        reconstruction = batch_mean(ops.sum(per_coordinate, axis=-1))
        if not self.nll_beta:
            return reconstruction, reconstruction
        weight = ops.stop_gradient(ops.exp(self.nll_beta * log_variance))
        return reconstruction, batch_mean(ops.sum(weight * per_coordinate, axis=-1))

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a strategy, keras 3.15's TensorFlow trainer reduces a whole input batch across
        # replicas here only to trace shapes, and MultiWorkerMirroredStrategy cannot reduce a
        # (momenta, positions) pair ("Attempt to convert a value (PerReplica...)",
        # keras-team/keras#20585). The CVAE is built in __init__ and compiled without keras
        # losses or metrics, so no batch is needed: what is left is the optimizer's variables,
        # made in the strategy's scope.
        if self._distribute_strategy is None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        with self.distribute_strategy.scope():
            self._symbolic_build()
        return None

    def train_step(self, data):
        import tensorflow as tf  # The gradient tape is TensorFlow's; the rest is backend-neutral.

        momenta, positions = data
        replicas, _, global_batch_size = _replica_rows(ops.shape(momenta)[0])
        num_replicas = replicas.num_replicas_in_sync if replicas else 1
        with tf.GradientTape() as tape:
            terms, posterior = self.compute_losses(
                momenta, positions, global_batch_size, num_replicas
            )
        gradients = tape.gradient(terms["loss"], self.trainable_weights)
        # Under tf.distribute keras' optimizer sums the replicas' gradients before applying them.
        self.optimizer.apply(gradients, self.trainable_weights)
        if self.latent_dim:
            self.accumulate_latent_statistics(*posterior)
        if replicas:  # the trackers follow the global batch, as on one device
            for name in (
                "loss",
                "reconstruction",
                "kl",
                "unregularized_loss",
                "mse",
                "atom_error",
            ):
                terms[name] = replicas.all_reduce("sum", terms[name])
        return _step_logs(self._update_trackers(terms))

    def test_step(self, data):
        """Validation as at test time: positions are only the target, z from the training prior.

        The latent draws are the same at every epoch (VALIDATION_SEED: common random numbers),
        so that epochs are compared on their weights, not on their luck: with fresh draws the
        validation per-atom error moved by 0.4 % (noise-free) to 0.9 % (zero-point motion)
        between draws of one model, above the 0.1 % improvement early stopping asks for.

        `loss` and `reconstruction` are the decoder's negative log-likelihood per event at one
        latent draw, `mse` the squared error of its mean per coordinate (normalized units) and
        `atom_error` its mean distance from the true atom (bohr).
        """
        momenta, positions = data
        replicas, _, global_batch_size = _replica_rows(ops.shape(momenta)[0])
        normalized_momenta, normalized_positions = self._normalized_inputs(momenta, positions)
        latent = self.sample_latent(ops.shape(momenta)[0], seed=VALIDATION_SEED)
        mean, log_variance = self.decode_gaussian(latent, normalized_momenta)
        # The recalibrated spread; a scale of 0 (the latent spread alone covers) stays finite.
        log_variance = log_variance + 2.0 * ops.log(ops.maximum(self.spread_scale, 1e-30))
        batch_mean = _batch_mean(global_batch_size)
        terms = {
            "reconstruction": batch_mean(gaussian_nll(normalized_positions, mean, log_variance)),
            **self._position_errors(normalized_positions, mean, batch_mean),
        }
        if replicas:
            terms = dict(zip(terms, replicas.all_reduce("sum", list(terms.values())), strict=True))
        terms["loss"] = terms["reconstruction"]
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return _step_logs({name: self.trackers[name].result() for name in terms})

    def _update_trackers(self, terms):
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name])
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    # The training latent distribution.

    def reset_latent_statistics(self):
        """Forgets the running sums (called at the start of every training epoch)."""
        self._latent_sums.assign(ops.zeros_like(self._latent_sums))
        self._latent_count.assign(0.0)

    def accumulate_latent_statistics(self, latent_mean, latent_log_var):
        """Adds a batch's encoder means and variances to the running sums; refreshes the prior."""
        batch_sums = ops.stack(
            [
                ops.sum(latent_mean, axis=0),
                ops.sum(ops.square(latent_mean), axis=0),
                ops.sum(ops.exp(latent_log_var), axis=0),
            ]
        )
        batch_count = ops.cast(ops.shape(latent_mean)[0], "float32")
        replicas = _multi_replica_context()
        if replicas:  # the sums cover the global batch
            batch_sums, batch_count = replicas.all_reduce("sum", [batch_sums, batch_count])
        self._latent_sums.assign_add(batch_sums)
        self._latent_count.assign_add(batch_count)
        mean = self._latent_sums[0] / self._latent_count
        variance = ops.maximum(self._latent_sums[1] / self._latent_count - ops.square(mean), 0.0)
        if self.latent_prior == "aggregate_posterior":
            variance = variance + self._latent_sums[2] / self._latent_count
        self.latent_mean.assign(mean)
        self.latent_std.assign(ops.sqrt(variance))

    def fit_latent_statistics(self, momenta, positions, batch_size: int = 8192):
        """Sets the latent distribution exactly from the encoder over the whole training split."""
        self.fit_latent_statistics_from(
            (momenta[start : start + batch_size], positions[start : start + batch_size])
            for start in range(0, len(momenta), batch_size)
        )

    def fit_latent_statistics_from(self, batches):
        """fit_latent_statistics over (momenta, positions) batches [n, 9], e.g. a data stream."""
        if not self.latent_dim:
            return
        self.reset_latent_statistics()
        for momenta, positions in batches:
            normalized_momenta, normalized_positions = self._normalized_inputs(momenta, positions)
            latent_mean, latent_log_var = self.encode(normalized_positions, normalized_momenta)
            self.accumulate_latent_statistics(latent_mean, latent_log_var)

    # Recalibration of the decoder's spread.

    def fit_spread_scale_from(self, batches, num_samples: int = 32) -> np.ndarray:
        """Sets `spread_scale` so the predictive spread matches the residuals of `batches`.

        For (momenta, positions) batches [n, 9] of a split the model never trained on (the
        validation split), K latent draws per event give, per model-frame coordinate in
        normalized units, the predictive mean m (mean of the decoder means), the latent part
        of the variance a (their variance) and the decoder's b (its mean variance); the scale
        s solves mean((x − m)²/(a + s²·b)) = 1, the maximum-likelihood "σ scaling" of a
        Gaussian predictive (calibration.spread_scale). Returns s [9].
        """
        residual_squared, latent_variance, decoder_variance = [], [], []
        # Its own generator, seeded afresh: the factor depends on the weights and the data only,
        # not on how many draws training (or a distributed run's copy) made before.
        generator = keras.random.SeedGenerator(self.seed)
        for momenta, positions in batches:
            normalized_momenta, normalized_positions = self._normalized_inputs(
                ops.convert_to_tensor(momenta, dtype=self.compute_dtype),
                ops.convert_to_tensor(positions, dtype=self.compute_dtype),
            )
            means, variances = [], []
            for _ in range(num_samples):
                noise = keras.random.normal(
                    (ops.shape(normalized_momenta)[0], self.latent_dim), seed=generator
                )
                latent = self.latent_mean + self.latent_std * noise
                mean, log_variance = self.decode_gaussian(latent, normalized_momenta)
                means.append(ops.convert_to_numpy(mean).astype(np.float64))
                variances.append(np.exp(ops.convert_to_numpy(log_variance).astype(np.float64)))
            means = np.stack(means)
            target = ops.convert_to_numpy(normalized_positions).astype(np.float64)
            residual_squared.append(np.square(target - means.mean(axis=0)))
            latent_variance.append(means.var(axis=0))
            decoder_variance.append(np.mean(variances, axis=0))
        scale = calibration.spread_scale(
            np.concatenate(residual_squared),
            np.concatenate(latent_variance),
            np.concatenate(decoder_variance),
        )
        self.spread_scale.assign(scale.astype(np.float32))
        return scale


def gaussian_nll(targets, mean, log_variance, summed: bool = True):
    """−log N(targets; mean, exp(log_variance)) per event, summed over the last axis (nats).

    With `summed=False`, per coordinate: ½·[(x − μ)²/σ² + log σ² + log 2π].
    """
    per_coordinate = 0.5 * (
        ops.square(targets - mean) * ops.exp(-log_variance) + log_variance + LOG_2PI
    )
    return ops.sum(per_coordinate, axis=-1) if summed else per_coordinate


def gaussian_kl(latent_mean, latent_log_var):
    """KL(N(μ, σ²) ‖ N(0, 1)) per event, summed over the latent dimensions (nats)."""
    return -0.5 * ops.sum(
        1.0 + latent_log_var - ops.square(latent_mean) - ops.exp(latent_log_var), axis=-1
    )


def _multi_replica_context():
    """The replica context of a step run by a tf.distribute strategy with several replicas."""
    import tensorflow as tf  # tf.distribute is TensorFlow's

    replicas = tf.distribute.get_replica_context()
    if replicas is None or replicas.num_replicas_in_sync == 1:
        return None  # one device, or cross-replica code (callbacks, after fit)
    return replicas


def _replica_rows(rows):
    """(replica context, the replica's first row in the global batch, the global batch's rows).

    For `rows` events on this replica under a multi-replica strategy; (None, None, None) else.
    The replicas' shares are taken to follow each other in replica order.
    """
    import tensorflow as tf

    replicas = _multi_replica_context()
    if replicas is None:
        return None, None, None
    counts = replicas.all_gather(tf.reshape(tf.cast(rows, tf.int32), (1,)), axis=0)
    earlier = tf.range(replicas.num_replicas_in_sync) < replicas.replica_id_in_sync_group
    return replicas, tf.reduce_sum(tf.where(earlier, counts, 0)), tf.reduce_sum(counts)


def _step_logs(logs):
    """A step's logs {name: scalar} in the shape keras can reduce under the current strategy.

    Across several workers keras 3.15 reduces each log with `strategy.reduce("MEAN", log,
    axis=0)`, which fails on a scalar ("Invalid reduction dimension 0 for input with 0
    dimensions", keras-team/keras#20585): there every log gets a leading axis of length 1, which
    that reduction removes again.
    """
    replicas = _multi_replica_context()
    if replicas is None:
        return logs
    extended = replicas.strategy.extended
    if replicas.num_replicas_in_sync == len(extended.worker_devices):
        return logs  # one worker: keras stacks the replicas' scalars and averages them
    return {name: ops.reshape(value, (1,)) for name, value in logs.items()}


def _batch_mean(global_batch_size):
    """The mean over a batch's elements, or a replica's share of it over the global batch."""
    if global_batch_size is None:
        return ops.mean

    def share(values):
        elements = global_batch_size * math.prod(values.shape[1:])
        return ops.sum(values) / ops.cast(elements, values.dtype)

    return share


class LatentStatisticsReset(keras.callbacks.Callback):
    """Starts each epoch's running latent statistics afresh, so validation sees this epoch's."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_latent_statistics()


def model_frame_tables(
    frame: str, positions: np.ndarray, momenta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Position and momentum tables [events, 9] in the frame the model normalizes in (numpy)."""
    if frame == "lab" or not len(momenta):
        return np.asarray(positions), np.asarray(momenta)
    rotations = frames.momentum_frame(np.reshape(momenta, (-1, 3, 3)))
    return tuple(
        np.asarray(CVAE.to_model_frame(rotations, table)) for table in (positions, momenta)
    )


def build_cvae(
    train_positions: np.ndarray,
    train_momenta: np.ndarray,
    position_norm: str,
    momentum_norm: str,
    **architecture,
) -> CVAE:
    """A CVAE whose normalization is fitted on the training split, tables shaped (events, 9)."""
    model_positions, model_momenta = model_frame_tables(
        architecture.get("frame", "lab"), train_positions, train_momenta
    )
    position_offset, position_variance = preprocessing.normalization_statistics(
        position_norm, model_positions
    )
    momentum_offset, momentum_variance = preprocessing.normalization_statistics(
        momentum_norm, model_momenta
    )
    return CVAE(
        position_offset=position_offset,
        position_variance=position_variance,
        momentum_offset=momentum_offset,
        momentum_variance=momentum_variance,
        **architecture,
    )
