"""The conditional VAE: encoder q(z | positions, momenta), decoder p(positions | z, momenta)."""

import keras
import numpy as np
import tensorflow as tf  # for the gradient tape; everything else is keras ops
from keras import ops

from cvae_tf import distribution, frames, latent, losses, preprocessing

LATENT_PRIORS = latent.LATENT_PRIORS  # the --latent_prior choices
# Soft floor of the decoder's log-variance (normalized units): σ ≥ e^(−12.5) ≈ 4·10⁻⁶.
MIN_LOG_VARIANCE = -25.0
VALIDATION_SEED = 2_718_281  # the validation step's fixed latent draws
TRACKED = ("loss", "reconstruction", "kl", "l1", "l2", "unregularized_loss", "mse", "atom_error")
# What a distributed training step sums over the replicas' shares (the kernel norms l1 and l2
# are the same on every replica).
NORMALIZATION_ARGUMENTS = (
    "position_offset",
    "position_variance",
    "momentum_offset",
    "momentum_variance",
)
REPLICA_SUMMED = ("loss", "reconstruction", "kl", "unregularized_loss", "mse", "atom_error")


def hidden_layer_sizes(hidden_dim: int, num_layers: int) -> list[int]:
    """Encoder widths [hidden_dim·2^i for i in range(num_layers)]: 64, 128, 256 for (64, 3)."""
    return [hidden_dim * 2**i for i in range(num_layers)]


def floored_log_variance(log_variance):
    """The decoder's log-variance head (normalized units) softly floored at MIN_LOG_VARIANCE."""
    return MIN_LOG_VARIANCE + ops.softplus(log_variance - MIN_LOG_VARIANCE)


def gaussian_network(name, inputs, sizes, outputs, activation, regularizer) -> keras.Model:
    """A functional MLP [batch, inputs] → Dense `sizes` → a Gaussian's mean and log-variance.

    The two heads, `{name}_mean` and `{name}_log_var` [batch, outputs], are linear. The layers
    are made in order, hidden then heads: keras initializers draw their seeds when constructed.
    """
    features = keras.Input((inputs,), name=f"{name}_input")
    hidden = features
    for index, size in enumerate(sizes):
        dense = keras.layers.Dense(
            size, activation, kernel_regularizer=regularizer, name=f"{name}_{index}"
        )
        hidden = dense(hidden)
    heads = [
        keras.layers.Dense(outputs, kernel_regularizer=regularizer, name=f"{name}_{head}")
        for head in ("mean", "log_var")
    ]
    return keras.Model(features, [head(hidden) for head in heads], name=name)


@keras.saving.register_keras_serializable(package="cvae_tf")
class CVAE(keras.Model):
    """A conditional VAE that maps raw momenta (a.u.) to raw positions (bohr), both [batch, 3n].

    Tables hold x, y, z of each of the molecule's n fragments in turn; n follows from the
    normalization statistics' length (9 for OCS).

    Normalization lives inside the model (keras `Normalization` layers fitted on the training
    split), so `call` takes momenta in the user's units and returns positions in bohr. The
    encoder and decoder are functional keras models on normalized units.

    Without positions (validation, test, prediction) z is drawn from the training latent
    distribution (latent.LatentDistribution, a layer whose statistics the saved model carries).
    During training it follows the current epoch's running statistics (reset by
    callbacks.LatentStatisticsReset), and `fit_latent_statistics` recomputes it exactly.

    The decoder is a Gaussian N(mean, diag σ²) with a learned per-event variance; the loss is
    per event (compute_losses), so β = 1 is the standard VAE. `prior_weight` adds Sohn et al.'s
    hybrid term (decoding z from the training latent distribution), `nll_beta` β-NLL, and
    `spread_scale` (recalibration.fit_spread_scale) recalibrates σ on a split the model never
    trained on.

    With `frame="momentum"` every event is rotated into the frame its momenta define
    (frames.py, from the fragments `frame_fragments`) before normalization, and predictions are
    rotated back, so callers always work in their own frame. `latent_dim=0` switches the latent
    path off: the same network as a deterministic regressor (the baseline the CVAE is measured
    against).
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
        frame_fragments=frames.OCS_FRAGMENTS,
        seed: int = 0,
        nll_beta: float = 0.0,
        prior_weight: float = 0.0,
        **kwargs,
    ):
        arguments = dict(locals())  # first: the constructor's arguments, for get_config
        super().__init__(**kwargs)
        # Every argument is saved, whatever is added: the statistics as float64 lists (JSON).
        self._config = {
            name: np.asarray(value, np.float64).tolist()
            if name in NORMALIZATION_ARGUMENTS
            else list(value)
            if name == "frame_fragments"
            else value
            for name, value in arguments.items()
            if name not in ("self", "kwargs", "__class__")
        }
        if frame not in frames.FRAMES:
            raise ValueError(f"frame={frame!r}; expected one of {frames.FRAMES}")
        self.latent_distribution = latent.LatentDistribution(
            latent_dim, latent_prior, seed, name="latent_distribution"
        )
        self.latent_dim, self.frame, self.seed = latent_dim, frame, seed
        self.frame_fragments = tuple(int(index) for index in frame_fragments)
        self.num_features = num_features = len(position_offset)  # 3 per fragment
        self.beta, self.nll_beta, self.prior_weight = beta, nll_beta, prior_weight
        self.normalize_positions, self.denormalize_positions = preprocessing.normalization_layers(
            position_offset, position_variance, "positions"
        )
        self.normalize_momenta, _ = preprocessing.normalization_layers(
            momentum_offset, momentum_variance, "momenta"
        )
        # None for l1 = l2 = 0: no zero penalty terms in the loss or its gradient.
        regularizer = keras.regularizers.L1L2(l1, l2) if l1 or l2 else None
        sizes = hidden_layer_sizes(hidden_dim, num_layers)
        layers = dict(activation=activation, regularizer=regularizer)
        # Its input: normalized positions ‖ momenta. No latent path, no encoder: the decoder
        # alone is then a plain regression network.
        self.encoder = (
            gaussian_network("encoder", 2 * num_features, sizes, latent_dim, **layers)
            if latent_dim
            else None
        )
        # p(positions | z, momenta) = N(mean, diag σ²) with a learned, per-event
        # (heteroscedastic) variance, so that the reconstruction term is a true negative
        # log-likelihood and β = 1 is the evidence lower bound (Rybkin et al. 2021).
        # Its input: z ‖ normalized momenta.
        self.decoder = gaussian_network(
            "decoder", latent_dim + num_features, sizes[::-1], num_features, **layers
        )
        # Recalibration (recalibration.fit_spread_scale): per model-frame coordinate, the factor the
        # decoder's standard deviation is multiplied by wherever the model samples or reports a
        # spread.
        self.spread_scale = distribution.replica_shared_weight(
            self, (num_features,), "ones", "spread_scale"
        )
        self.trackers = {name: keras.metrics.Mean(name=name) for name in TRACKED}
        # Every sub-layer is built by now, so the model is (as keras' own Dropout marks itself).
        self._build_at_init()

    @property
    def metrics(self):
        # Listed so that keras resets them at each epoch and `evaluate`.
        return list(self.trackers.values())

    def get_config(self):
        return {**super().get_config(), **self._config}

    def normalized_inputs(self, momenta, positions):
        """Normalized momenta and positions [batch, 3n] in the model's frame."""
        rotations = frames.table_rotations(self.frame, momenta, self.frame_fragments)
        normalized_momenta = self.normalize_momenta(frames.rotate_table(rotations, momenta))
        return normalized_momenta, self.normalize_positions(
            frames.rotate_table(rotations, positions)
        )

    # The two halves, in normalized units.

    def encode(self, normalized_positions, normalized_momenta) -> latent.Posterior:
        """q(z | positions, momenta): the latent mean and log-variance, each [batch, latent_dim]."""
        features = ops.concatenate([normalized_positions, normalized_momenta], axis=-1)
        return latent.Posterior(*self.encoder(features))

    def decode(self, latent_vectors, normalized_momenta):
        """The decoder's mean: normalized positions [batch, 3n] in the model's frame."""
        return self.decode_gaussian(latent_vectors, normalized_momenta)[0]

    def decode_gaussian(self, latent_vectors, normalized_momenta):
        """p(positions | z, momenta): (mean, log-variance) [batch, 3n] each, normalized units.

        The log-variance has a soft floor at MIN_LOG_VARIANCE (σ ≈ 4·10⁻⁶ normalized units, far
        below any error the network reaches) that keeps its gradient, unlike a hard clip.
        """
        features = ops.concatenate([latent_vectors, normalized_momenta], axis=-1)
        mean, log_variance = self.decoder(features)
        return mean, floored_log_variance(log_variance)

    # Raw units in and out: what users and the exported SavedModel see. Each endpoint is three
    # stages, decoder_inputs → decoder → positions_sample or lab_moments, so that the export
    # can compile the stages around the network on their own (serving.py).

    def decode_positions(self, momenta, latent_vectors):
        """The decoder's mean positions (bohr) [batch, 3n] for raw momenta (a.u.) and latents."""
        return self.decode_moments(momenta, latent_vectors)[0]

    def decode_moments(self, momenta, latent_vectors):
        """The decoder's (mean, variance) of positions given raw momenta (a.u.) and latents.

        Both [batch, 3n] in the caller's frame: the mean in bohr, the variance per coordinate in
        bohr² (the diagonal of the model-frame covariance rotated back), with the recalibrated
        spread (`spread_scale`).
        """
        rotations, features = self.decoder_inputs(momenta, latent_vectors)
        return self.lab_moments(rotations, self.decoder(features))

    def decoder_inputs(self, momenta, latent_vectors):
        """(rotations, features) for raw momenta (a.u.) [batch, 3n] and latents [batch, latent_dim].

        `rotations` [batch, 3, 3] into each event's model frame (None in the lab frame);
        `features` the decoder's input, z ‖ normalized momenta [batch, latent_dim + 3n].
        """
        momenta = ops.convert_to_tensor(momenta, dtype=self.compute_dtype)
        rotations = frames.table_rotations(self.frame, momenta, self.frame_fragments)
        normalized_momenta = self.normalize_momenta(frames.rotate_table(rotations, momenta))
        return rotations, ops.concatenate([latent_vectors, normalized_momenta], axis=-1)

    def decoder_spread(self, log_variance):
        """The decoder's recalibrated σ [batch, 3n] (normalized units) from its log-variance."""
        return ops.exp(0.5 * floored_log_variance(log_variance)) * self.spread_scale

    def positions_sample(self, rotations, decoded, noise):
        """One draw of positions (bohr) [batch, 3n] in the caller's frame from the decoder's output.

        `decoded` is the decoder network's (mean, log-variance) for `decoder_inputs`' features,
        `noise` standard normal [batch, 3n]: the draw is mean + σ·noise in the model's frame,
        where the decoder's covariance is diagonal, then rotated back.
        """
        mean, log_variance = decoded
        positions = self.denormalize_positions(mean + self.decoder_spread(log_variance) * noise)
        return frames.rotate_table(rotations, positions, back=True)

    def lab_moments(self, rotations, decoded):
        """The decoder's (mean (bohr), variance (bohr²)) [batch, 3n] in the caller's frame.

        `decoded` as for positions_sample; see decode_moments.
        """
        mean, log_variance = decoded
        variance = ops.square(self.decoder_spread(log_variance)) * self.position_scale()
        mean = frames.rotate_table(rotations, self.denormalize_positions(mean), back=True)
        if rotations is not None:  # diag(Rᵀ·diag(v)·R)_i = Σ_j R_ji²·v_j
            variance = frames.rotate_table(ops.square(rotations), variance, back=True)
        return mean, variance

    def sample_moments(self, momenta):
        """One latent draw per event: decoder mean (bohr) and variance (bohr²), [batch, 6n].

        The two [batch, 3n] tables side by side (one tensor, so that it is one SavedModel output
        and one compiled call); `sampling.posterior_moments` makes K of them a mixture.
        """
        momenta = ops.convert_to_tensor(momenta, dtype=self.compute_dtype)
        latent_vectors = self.latent_distribution.sample(ops.shape(momenta)[0])
        mean, variance = self.decode_moments(momenta, latent_vectors)
        return ops.concatenate([mean, variance], axis=-1)

    def position_scale(self):
        """Bohr² per normalized unit² of each model-frame position coordinate, [3n]."""
        # What keras' Normalization(invert=True) multiplies by: max(√variance, ε).
        scale = ops.maximum(
            ops.sqrt(ops.reshape(self.denormalize_positions.variance, (-1,))),
            keras.backend.epsilon(),
        )
        return ops.square(scale)

    def call(self, momenta, training=False):
        """One posterior sample of positions (bohr) [batch, 3n] given raw momenta (a.u.).

        z from the training latent distribution, then a draw from the decoder's Gaussian (in the
        model's frame, where its covariance is diagonal). Both draws come from the latent
        distribution's seed generator, the model's one source of noise: z's first, then the
        decoder's noise [batch, 3n] (serving.py draws them in the same order).
        """
        momenta = ops.convert_to_tensor(momenta, dtype=self.compute_dtype)
        rows = ops.shape(momenta)[0]
        latent_vectors = self.latent_distribution.sample(rows)
        rotations, features = self.decoder_inputs(momenta, latent_vectors)
        decoded = self.decoder(features)
        noise = self.latent_distribution.standard_normal(
            (rows, self.num_features), self.compute_dtype
        )
        return self.positions_sample(rotations, decoded, noise)

    # Training.

    def kernel_norms(self):
        """(Σ|w|, Σw²) over every Dense kernel (biases and normalization statistics excluded)."""
        networks = [self.encoder, self.decoder] if self.latent_dim else [self.decoder]
        return losses.kernel_norms(
            [
                layer.kernel
                for network in networks
                for layer in network.layers
                if isinstance(layer, keras.layers.Dense)
            ]
        )

    def compute_losses(self, momenta, positions, global_batch_size=None, num_replicas=1):
        """One batch's named loss terms, per event, and the encoder's posterior (None if no z).

        `reconstruction` is the Gaussian decoder's negative log-likelihood of the positions,
        summed over the coordinates (nats, normalized units); `kl` is KL(q(z|x) ‖ N(0, I))
        summed over the latent dimensions; so `reconstruction + kl` (β = 1) is the negative
        evidence lower bound of one event. `l1` and `l2` are the kernel norms (kernel_norms);
        `loss` adds keras' kernel regularizers (`self.losses`). `mse` is the squared error of the
        decoder's mean per coordinate (normalized units), tracked, not optimized. With
        `nll_beta` > 0 the gradient is β-NLL's (losses.reconstruction); the value reported
        stays the plain NLL.

        Under a tf.distribute strategy the batch is one replica's share of a global batch of
        `global_batch_size` events spread over `num_replicas` replicas. The terms are then this
        replica's shares, which add up over the replicas to the global batch's values
        (`tf.nn.compute_average_loss`'s convention; exact even for uneven or empty shares), so
        the gradients that the optimizer sums over replicas are the global batch's.
        """
        batch_mean = distribution.batch_mean(global_batch_size)
        normalized_momenta, normalized_positions = self.normalized_inputs(momenta, positions)
        posterior = None
        if self.latent_dim:
            posterior = self.encode(normalized_positions, normalized_momenta)
            latent_vectors = self.latent_distribution(posterior.mean, posterior.log_var)
            kl = batch_mean(losses.gaussian_kl(posterior.mean, posterior.log_var))
        else:
            latent_vectors = ops.zeros((ops.shape(momenta)[0], 0))
            kl = ops.zeros(())
        mean, log_variance = self.decode_gaussian(latent_vectors, normalized_momenta)
        reconstruction, objective = losses.reconstruction(
            normalized_positions, mean, log_variance, batch_mean, self.nll_beta
        )
        objective = objective + self.beta * kl
        if self.prior_weight and self.latent_dim:
            # Sohn et al. 2015's hybrid objective: part of the step decodes z drawn from the
            # training latent distribution, as validation, test and prediction do, so the
            # decoder is trained for the latents it gets there.
            prior_mean, prior_log_variance = self.decode_gaussian(
                self.latent_distribution.sample(ops.shape(momenta)[0]), normalized_momenta
            )
            _, prior_objective = losses.reconstruction(
                normalized_positions, prior_mean, prior_log_variance, batch_mean, self.nll_beta
            )
            objective = (1.0 - self.prior_weight) * objective + self.prior_weight * prior_objective
        l1, l2 = self.kernel_norms()
        penalties = self.losses
        if penalties:  # the same on every replica: each adds its share
            objective = objective + ops.sum(penalties) / num_replicas
        terms = {
            "loss": objective,
            "reconstruction": reconstruction,
            "kl": kl,
            "l1": l1,
            "l2": l2,
            "unregularized_loss": reconstruction + self.beta * kl,
            **losses.position_errors(normalized_positions, mean, self.position_scale(), batch_mean),
        }
        return terms, posterior

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return super()._maybe_symbolic_build(iterator, data_batch)
        distribution.build_without_a_batch(self)  # keras-team/keras#20585
        return None

    def train_step(self, data):
        momenta, positions = data
        replicas, _, global_batch_size = distribution.replica_rows(ops.shape(momenta)[0])
        num_replicas = replicas.num_replicas_in_sync if replicas else 1
        with tf.GradientTape() as tape:
            terms, posterior = self.compute_losses(
                momenta, positions, global_batch_size, num_replicas
            )
        gradients = tape.gradient(terms["loss"], self.trainable_weights)
        # Under tf.distribute keras' optimizer sums the replicas' gradients before applying them.
        self.optimizer.apply(gradients, self.trainable_weights)
        if posterior is not None:
            self.latent_distribution.update_state(posterior.mean, posterior.log_var)
        if replicas:  # the trackers follow the global batch, as on one device
            for name in REPLICA_SUMMED:
                terms[name] = replicas.all_reduce("sum", terms[name])
        for name, tracker in self.trackers.items():
            tracker.update_state(terms[name])
        return distribution.step_logs({m.name: m.result() for m in self.metrics})

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
        replicas, _, global_batch_size = distribution.replica_rows(ops.shape(momenta)[0])
        normalized_momenta, normalized_positions = self.normalized_inputs(momenta, positions)
        latent_vectors = self.latent_distribution.sample(
            ops.shape(momenta)[0], seed=VALIDATION_SEED
        )
        mean, log_variance = self.decode_gaussian(latent_vectors, normalized_momenta)
        # The recalibrated spread; a scale of 0 (the latent spread alone covers) stays finite.
        log_variance = log_variance + 2.0 * ops.log(ops.maximum(self.spread_scale, 1e-30))
        batch_mean = distribution.batch_mean(global_batch_size)
        nll = losses.gaussian_nll(normalized_positions, mean, log_variance)
        terms = {
            "reconstruction": batch_mean(nll),
            **losses.position_errors(normalized_positions, mean, self.position_scale(), batch_mean),
        }
        if replicas:
            terms = dict(zip(terms, replicas.all_reduce("sum", list(terms.values())), strict=True))
        terms["loss"] = terms["reconstruction"]
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return distribution.step_logs({name: self.trackers[name].result() for name in terms})

    # The training latent distribution, exactly.

    def fit_latent_statistics(self, momenta, positions, batch_size: int = 8192):
        """Sets the latent distribution exactly from the encoder over the whole training split."""
        self.fit_latent_statistics_from(
            (momenta[start : start + batch_size], positions[start : start + batch_size])
            for start in range(0, len(momenta), batch_size)
        )

    def fit_latent_statistics_from(self, batches):
        """fit_latent_statistics over (momenta, positions) batches [n, 3n], e.g. a data stream."""
        if not self.latent_dim:
            return
        self.latent_distribution.reset_state()
        for momenta, positions in batches:
            normalized_momenta, normalized_positions = self.normalized_inputs(momenta, positions)
            posterior = self.encode(normalized_positions, normalized_momenta)
            self.latent_distribution.update_state(posterior.mean, posterior.log_var)
