"""The training latent distribution layer: statistics against numpy, reset, config, seeded draws."""

import keras
import numpy as np
import pytest

from cvae_tf import latent


def posterior_batches(sizes=(50, 128, 7), latent_dim=3, seed=0):
    """Encoder-like posteriors (mean, log-variance) [n, latent_dim], float32, one per batch."""
    rng = np.random.default_rng(seed)
    return [
        (
            rng.normal([1.0, -2.0, 0.5], [0.5, 2.0, 1.0], size=(n, latent_dim)).astype(np.float32),
            rng.uniform(-3.0, 0.5, size=(n, latent_dim)).astype(np.float32),
        )
        for n in sizes
    ]


@pytest.mark.parametrize("latent_prior", latent.LATENT_PRIORS)
def test_statistics_over_several_batches_match_numpy(latent_prior):
    distribution = latent.LatentDistribution(3, latent_prior)
    batches = posterior_batches()
    for mean, log_var in batches:
        distribution.update_state(mean, log_var)
    means = np.concatenate([mean for mean, _ in batches]).astype(np.float64)
    variances = np.exp(np.concatenate([log_var for _, log_var in batches]).astype(np.float64))
    expected_variance = means.var(axis=0)
    if latent_prior == "aggregate_posterior":  # √(var(μ) + mean(σ²))
        expected_variance = expected_variance + variances.mean(axis=0)
    assert float(distribution.count.numpy()) == len(means)
    np.testing.assert_allclose(distribution.mean.numpy(), means.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(distribution.std.numpy(), np.sqrt(expected_variance), rtol=1e-4)


def test_reset_forgets_earlier_batches():
    distribution = latent.LatentDistribution(3)
    first, second = posterior_batches(sizes=(200, 60))
    distribution.update_state(*first)
    distribution.reset_state()
    assert float(distribution.count.numpy()) == 0.0
    distribution.update_state(*second)
    alone = latent.LatentDistribution(3)
    alone.update_state(*second)
    assert float(distribution.count.numpy()) == 60
    np.testing.assert_allclose(distribution.mean.numpy(), alone.mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(distribution.std.numpy(), alone.std.numpy(), rtol=1e-6)


def test_a_fresh_distribution_is_the_standard_normal():
    distribution = latent.LatentDistribution(2)
    np.testing.assert_array_equal(distribution.mean.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(distribution.std.numpy(), [1.0, 1.0])


def test_config_round_trip():
    distribution = latent.LatentDistribution(5, "encoder_means", seed=11, name="prior")
    config = distribution.get_config()
    assert {key: config[key] for key in ("latent_dim", "latent_prior", "seed", "name")} == {
        "latent_dim": 5,
        "latent_prior": "encoder_means",
        "seed": 11,
        "name": "prior",
    }
    rebuilt = latent.LatentDistribution.from_config(config)
    assert rebuilt.get_config() == config
    # Same seed, same draws: the configuration is all a sampler needs.
    np.testing.assert_array_equal(rebuilt.sample(4).numpy(), distribution.sample(4).numpy())


def test_unknown_latent_prior_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"latent_prior='uniform'; expected one of"):
        latent.LatentDistribution(2, "uniform")


def test_seeded_sampling_reproduces_and_moves_on():
    first, second = (latent.LatentDistribution(3, seed=4) for _ in range(2))
    draws = [first.sample(6).numpy() for _ in range(2)]
    np.testing.assert_array_equal(draws[0], second.sample(6).numpy())  # same seed, same draw
    assert not np.array_equal(draws[0], draws[1])  # the generator advances between draws
    other = latent.LatentDistribution(3, seed=5).sample(6).numpy()
    assert not np.array_equal(draws[0], other)
    # An integer seed draws the same noise at every call (the validation step's draws).
    np.testing.assert_array_equal(first.sample(6, seed=9).numpy(), first.sample(6, seed=9).numpy())


def test_samples_follow_the_fitted_mean_and_spread():
    distribution = latent.LatentDistribution(2, seed=1)
    distribution.mean.assign([3.0, -1.0])
    distribution.std.assign([0.5, 2.0])
    draws = distribution.sample(40_000).numpy()
    np.testing.assert_allclose(draws.mean(axis=0), [3.0, -1.0], atol=0.03)
    np.testing.assert_allclose(draws.std(axis=0), [0.5, 2.0], rtol=0.02)


def test_calling_the_layer_draws_from_each_events_posterior():
    """z = μ + σ·ε per event (keras-io's VAE Sampling layer), noise from the layer's seed."""
    distribution = latent.LatentDistribution(2, seed=2)
    mean = np.tile(np.array([[1.0, -4.0]], np.float32), (40_000, 1))
    log_var = np.tile(np.log(np.array([[0.25, 9.0]], np.float32)), (40_000, 1))
    draws = distribution(mean, log_var).numpy()
    np.testing.assert_allclose(draws.mean(axis=0), [1.0, -4.0], atol=0.05)
    np.testing.assert_allclose(draws.std(axis=0), [0.5, 3.0], rtol=0.02)


def test_no_latent_dimensions_sample_empty_vectors():
    assert latent.LatentDistribution(0).sample(7).shape == (7, 0)


def test_the_statistics_are_weights_a_saved_layer_carries():
    distribution = latent.LatentDistribution(3)
    distribution.update_state(*posterior_batches(sizes=(30,))[0])
    names = {weight.name for weight in distribution.weights}
    assert names == {"mean", "std", "sums", "count"}
    assert not distribution.trainable_weights
    copy = latent.LatentDistribution(3)
    copy.set_weights(distribution.get_weights())
    np.testing.assert_array_equal(copy.std.numpy(), distribution.std.numpy())
    assert (
        keras.saving.get_registered_object("cvae_tf>LatentDistribution")
        is latent.LatentDistribution
    )
