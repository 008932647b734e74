"""The training latent distribution: a layer holding the encoder's latent statistics and sampler."""

from typing import Any, NamedTuple

import keras
from keras import ops

from cvae_tf import distribution

LATENT_PRIORS = ("encoder_means", "aggregate_posterior")


class Posterior(NamedTuple):
    """The encoder's q(z | positions, momenta) = N(mean, exp(log_var)), [batch, latent_dim] each."""

    mean: Any
    log_var: Any


@keras.saving.register_keras_serializable(package="cvae_tf")
class LatentDistribution(keras.layers.Layer):
    """N(mean, diag std²) over the latent space, the encoder's posteriors on the training split.

    Without positions (validation, test, prediction) the CVAE draws z from here. Its statistics
    are non-trainable weights, so that a saved model carries them, as keras' `Normalization`
    carries its mean and variance. `latent_prior` chooses the spread: `encoder_means` is the
    spread of the posterior means; `aggregate_posterior` adds the mean posterior variance,
    √(var(μ) + mean(σ²)) (docs/physics.md, "Reading the specification's latent sampling").

    `update_state` adds a batch of posteriors to running sums (Σμ, Σμ², Σσ² and the event
    count) and refreshes `mean` and `std` from them; `reset_state` forgets the sums. Under
    tf.distribute the sums cover the global batch and every replica holds the same values.

    Calling the layer on a posterior (mean, log_var) draws z = μ + σ·ε from it, the
    reparameterization of keras-io's VAE `Sampling` layer. All noise comes from the layer's
    `keras.random.SeedGenerator`, so that one seed reproduces a run.
    """

    def __init__(
        self,
        latent_dim: int,
        latent_prior: str = "aggregate_posterior",
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if latent_prior not in LATENT_PRIORS:
            raise ValueError(f"latent_prior={latent_prior!r}; expected one of {LATENT_PRIORS}")
        self.latent_dim, self.latent_prior, self.seed = latent_dim, latent_prior, seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="latent_sampler")
        shared = distribution.replica_shared_weight
        self.mean = shared(self, (latent_dim,), "zeros", "mean")
        self.std = shared(self, (latent_dim,), "ones", "std")
        self.sums = shared(self, (3, latent_dim), "zeros", "sums")  # Σμ, Σμ², Σσ²
        self.count = shared(self, (), "zeros", "count")  # events since the last reset
        # State made here, not in `build`: it depends on latent_dim only (as keras' Dropout does).
        self._build_at_init()

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "latent_prior": self.latent_prior,
            "seed": self.seed,
        }

    def standard_normal(self, shape, dtype=None, seed=None):
        """Noise N(0, 1) [events, ...] from the layer's seed generator, one row per event.

        Under tf.distribute every replica holds the same generator state (a mirrored variable
        that each replica advances in step), so a replica's own draw would repeat the other
        replicas' noise. Instead every replica draws the noise of the whole global batch and
        keeps its own rows: independent noise for every event, and exactly a single-device
        run's noise when the replicas' shares are consecutive slices of the global batch.

        An integer `seed` draws the same noise at every call of the same shape instead (keras'
        stateless draw), for the validation step; a `SeedGenerator` draws from that one.
        """
        seed = self.seed_generator if seed is None else seed
        replicas, first_row, global_rows = distribution.replica_rows(shape[0])
        if replicas is None:
            return keras.random.normal(shape, dtype=dtype, seed=seed)
        noise = keras.random.normal((global_rows, *shape[1:]), dtype=dtype, seed=seed)
        return noise[first_row : first_row + shape[0]]

    def sample(self, batch_size, seed=None):
        """Latent vectors [batch_size, latent_dim] drawn from N(mean, diag std²)."""
        if not self.latent_dim:
            return ops.zeros((batch_size, 0), dtype=self.compute_dtype)
        noise = self.standard_normal(
            (batch_size, self.latent_dim), dtype=self.compute_dtype, seed=seed
        )
        return self.mean + self.std * noise

    def sample_posterior(self, posterior: Posterior):
        """One draw z = μ + exp(½·log σ²)·ε [batch, latent_dim] from each event's posterior."""
        noise = self.standard_normal(ops.shape(posterior.mean))
        return posterior.mean + ops.exp(0.5 * posterior.log_var) * noise

    def call(self, mean, log_var):
        """sample_posterior, as a layer: keras-io's VAE `Sampling`."""
        return self.sample_posterior(Posterior(mean, log_var))

    def reset_state(self):
        """Forgets the running sums (the LatentStatisticsReset callback: every training epoch)."""
        self.sums.assign(ops.zeros_like(self.sums))
        self.count.assign(0.0)

    def update_state(self, mean, log_var):
        """Adds a batch's posteriors [batch, latent_dim] to the sums; refreshes `mean` and `std`."""
        batch_sums = ops.stack(
            [
                ops.sum(mean, axis=0),
                ops.sum(ops.square(mean), axis=0),
                ops.sum(ops.exp(log_var), axis=0),
            ]
        )
        batch_count = ops.cast(ops.shape(mean)[0], "float32")
        replicas = distribution.multi_replica_context()
        if replicas:  # the sums cover the global batch
            batch_sums, batch_count = replicas.all_reduce("sum", [batch_sums, batch_count])
        self.sums.assign_add(batch_sums)
        self.count.assign_add(batch_count)
        latent_mean = self.sums[0] / self.count
        variance = ops.maximum(self.sums[1] / self.count - ops.square(latent_mean), 0.0)
        if self.latent_prior == "aggregate_posterior":
            variance = variance + self.sums[2] / self.count
        self.mean.assign(latent_mean)
        self.std.assign(ops.sqrt(variance))
