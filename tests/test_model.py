"""The CVAE: architecture, loss terms against closed forms, latent statistics, no leakage."""

import keras
import numpy as np
import pytest
import scipy.special
import scipy.stats

from cvae_tf import callbacks, model, recalibration
from tests.models import build_cvae, normalization_statistics


def toy_tables(num_events=400, seed=0):
    """Momenta (a.u.) and positions (bohr) tables [events, 9] with a smooth relation."""
    rng = np.random.default_rng(seed)
    momenta = rng.normal(size=(num_events, 9)) * 150.0
    positions = (
        0.01 * momenta[:, ::-1] + np.tanh(momenta / 100.0) + 0.05 * rng.normal(size=(num_events, 9))
    )
    return momenta.astype(np.float32), positions.astype(np.float32)


def make_cvae(momenta, positions, **overrides):
    settings = dict(hidden_dim=8, num_layers=2, latent_dim=3, beta=0.5, l1=1e-4, l2=1e-3, seed=1)
    settings.update(overrides)
    return build_cvae(positions, momenta, "standard", "standard", **settings)


def dense_layers(network):
    """The Dense layers of a sub-model, input to output, the two heads last."""
    return [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)]


def test_layer_sizes_follow_the_specification():
    assert model.hidden_layer_sizes(64, 3) == [64, 128, 256]
    momenta, positions = toy_tables()
    cvae = make_cvae(momenta, positions, hidden_dim=64, num_layers=3, latent_dim=4)
    # Hidden widths, then the mean and log-variance heads.
    assert [layer.units for layer in dense_layers(cvae.encoder)] == [64, 128, 256, 4, 4]
    assert [layer.units for layer in dense_layers(cvae.decoder)] == [256, 128, 64, 9, 9]
    assert cvae.encoder.input_shape == (None, 18)  # positions ‖ momenta
    assert cvae.decoder.input_shape == (None, 4 + 9)  # z ‖ momenta


@pytest.mark.parametrize("activation", ["relu", "tanh", "silu"])
def test_activation_from_a_name(activation):
    momenta, positions = toy_tables(50)
    cvae = make_cvae(momenta, positions, activation=activation)
    for network in (cvae.encoder, cvae.decoder):
        hidden, heads = dense_layers(network)[:-2], dense_layers(network)[-2:]
        assert all(layer.activation is keras.activations.get(activation) for layer in hidden)
        assert all(layer.activation is keras.activations.linear for layer in heads)


def test_kernel_norms_match_numpy_over_dense_kernels():
    momenta, positions = toy_tables(50)
    cvae = make_cvae(momenta, positions)
    kernels = [w.numpy() for w in cvae.weights if w.path.endswith("kernel")]
    assert len(kernels) == 2 + 2 + 2 + 2  # encoder, latent heads, decoder, mean/log-var heads
    l1, l2 = cvae.kernel_norms()
    assert float(l1) == pytest.approx(sum(np.abs(k).sum() for k in kernels), rel=1e-5)
    assert float(l2) == pytest.approx(sum(np.square(k).sum() for k in kernels), rel=1e-5)


def test_penalties_are_keras_kernel_regularizers_only_when_asked_for():
    """l1 = l2 = 0 attaches no regularizer: no zero terms in the default run's loss."""
    momenta, positions = toy_tables(50)
    assert make_cvae(momenta, positions, l1=0.0, l2=0.0).losses == []
    cvae = make_cvae(momenta, positions, l1=1e-4, l2=0.0)
    kernels = [w.numpy() for w in cvae.weights if w.path.endswith("kernel")]
    penalties = [float(value) for value in cvae.losses]
    assert len(penalties) == len(kernels)  # one per Dense kernel, none on the biases
    assert sum(penalties) == pytest.approx(1e-4 * sum(np.abs(k).sum() for k in kernels), rel=1e-5)


def _fix_posterior(cvae, mean, log_var):
    """Makes the encoder output a constant mean and log-variance for every input."""
    heads = dense_layers(cvae.encoder)[-2:]
    for layer, value in zip(heads, (mean, log_var), strict=True):
        layer.kernel.assign(np.zeros(layer.kernel.shape))
        layer.bias.assign(np.full(layer.bias.shape, value))


@pytest.mark.parametrize(
    "mean, variance, expected_per_dim",
    [
        (0.0, 1.0, 0.0),
        (1.0, 1.0, 0.5),  # ½ μ²
        (0.0, 4.0, 0.5 * (4.0 - 1.0 - np.log(4.0))),  # ½ (σ² − 1 − ln σ²)
        (2.0, 0.25, 0.5 * (0.25 + 4.0 - 1.0 - np.log(0.25))),
    ],
)
def test_kl_term_against_the_gaussian_closed_form(mean, variance, expected_per_dim):
    momenta, positions = toy_tables(64)
    cvae = make_cvae(momenta, positions, latent_dim=3)
    _fix_posterior(cvae, mean, np.log(variance))
    terms, _ = cvae.compute_losses(momenta, positions)
    assert float(terms["kl"]) == pytest.approx(3 * expected_per_dim, rel=1e-5, abs=1e-6)
    assert float(terms["loss"]) == pytest.approx(
        float(terms["reconstruction"])
        + 0.5 * float(terms["kl"])
        + 1e-4 * float(terms["l1"])
        + 1e-3 * float(terms["l2"]),
        rel=1e-6,
    )


def test_reconstruction_is_the_decoders_gaussian_nll_per_event_in_normalized_units():
    """The reconstruction term sums the NLL over the 9 coordinates; mse averages squared errors."""
    momenta, positions = toy_tables(64)
    cvae = make_cvae(momenta, positions)
    _fix_posterior(cvae, 0.0, np.log(1e-12))  # z = 0: a deterministic decoder output
    terms, _ = cvae.compute_losses(momenta, positions)
    offset, variance = normalization_statistics("standard", positions)
    normalized_truth = (positions - offset) / np.sqrt(variance)
    mean, log_variance = (
        tensor.numpy().astype(np.float64)
        for tensor in cvae.decode_gaussian(
            np.zeros((64, 3), np.float32), cvae.normalize_momenta(momenta)
        )
    )
    nll = -scipy.stats.norm.logpdf(normalized_truth, mean, np.exp(0.5 * log_variance))
    assert float(terms["reconstruction"]) == pytest.approx(nll.sum(axis=1).mean(), rel=1e-4)
    assert float(terms["mse"]) == pytest.approx(np.mean((normalized_truth - mean) ** 2), rel=1e-4)


def test_beta_one_is_the_negative_elbo_of_a_unit_gaussian_model():
    """β = 1: loss = −E_q[log p(x|z)] + KL, per event, as for a VAE with a Gaussian decoder.

    With q(z|x) = N(μ, σ²) fixed and the decoder mean a known function of z, the expectation is
    taken by Monte Carlo over z independently of the model's own loss code.
    """
    momenta, positions = toy_tables(64)
    cvae = make_cvae(momenta, positions, beta=1.0, l1=0.0, l2=0.0, latent_dim=3)
    _fix_posterior(cvae, 0.3, np.log(0.5))
    terms, _ = cvae.compute_losses(momenta, positions)
    normalized_momenta = cvae.normalize_momenta(momenta)  # the lab frame: no rotation
    normalized_truth = cvae.normalize_positions(positions).numpy().astype(np.float64)
    draws = []
    for latent in np.random.default_rng(5).normal(0.3, np.sqrt(0.5), size=(400, 1, 3)):
        mean, log_variance = cvae.decode_gaussian(
            np.tile(latent, (64, 1)).astype(np.float32), normalized_momenta
        )
        scale = np.exp(0.5 * log_variance.numpy().astype(np.float64))
        draws.append(-scipy.stats.norm.logpdf(normalized_truth, mean.numpy(), scale).sum(axis=1))
    kl = 3 * 0.5 * (0.5 + 0.09 - 1.0 - np.log(0.5))  # closed form, per event
    expected = np.mean(draws) + kl
    # The model's step uses one z draw per event: agree to its Monte Carlo spread.
    assert float(terms["unregularized_loss"]) == pytest.approx(expected, rel=0.05)
    assert float(terms["kl"]) == pytest.approx(kl, rel=1e-5)


def fit(cvae, momenta, positions, val, epochs=3, optimizer=None):
    cvae.compile(optimizer=optimizer or keras.optimizers.Adam(1e-3))
    return cvae.fit(
        momenta,
        positions,
        batch_size=64,
        epochs=epochs,
        validation_data=val,
        shuffle=False,
        verbose=0,
        callbacks=[callbacks.LatentStatisticsReset()],
    )


def test_train_step_tracks_every_term():
    momenta, positions = toy_tables()
    history = fit(make_cvae(momenta, positions), momenta, positions, (momenta[:50], positions[:50]))
    expected = {"loss", "reconstruction", "kl", "l1", "l2", "unregularized_loss", "mse"}
    assert expected | {"val_loss", "val_reconstruction", "val_mse"} <= set(history.history)
    for epoch in range(3):
        h = {key: values[epoch] for key, values in history.history.items()}
        assert h["l1"] > 0 and h["l2"] > 0 and h["kl"] >= 0
        assert h["unregularized_loss"] == pytest.approx(
            h["reconstruction"] + 0.5 * h["kl"], rel=1e-4
        )


def test_validation_and_test_never_see_positions():
    """Garbage positions for validation/test rows change neither training nor predictions.

    The validation loss is an error *against* the validation positions, so it must read them as
    the target; what must not happen is that they reach the model's input. Proof: with garbage
    validation targets the training trajectory, the weights, the latent statistics and the
    validation/test predictions are identical, and the validation loss computed by keras equals
    the loss of those position-free predictions against whichever targets are given.
    """
    momenta, positions = toy_tables(500)
    train, val, test = slice(0, 350), slice(350, 425), slice(425, 500)
    garbage = np.random.default_rng(9).normal(size=positions.shape).astype(np.float32) * 1e3
    runs = []
    for val_positions in (positions[val], garbage[val]):
        keras.utils.set_random_seed(0)
        cvae = make_cvae(momenta[train], positions[train])
        history = fit(cvae, momenta[train], positions[train], (momenta[val], val_positions))
        latent = np.random.default_rng(1).normal(size=(75, 3)).astype(np.float32)
        runs.append(
            dict(
                history=history.history,
                weights=cvae.get_weights(),
                predictions=cvae.decode_positions(momenta[test], latent).numpy(),
                val_predictions=cvae.decode_positions(momenta[val], latent).numpy(),
            )
        )
    clean, dirty = runs
    for key in ("loss", "reconstruction", "kl"):
        np.testing.assert_array_equal(clean["history"][key], dirty["history"][key])
    for a, b in zip(clean["weights"], dirty["weights"], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(clean["predictions"], dirty["predictions"])
    np.testing.assert_array_equal(clean["val_predictions"], dirty["val_predictions"])
    assert clean["history"]["val_loss"] != dirty["history"]["val_loss"]  # targets differ


def test_validation_draws_the_same_latents_every_epoch():
    """Common random numbers: two validation passes of one model agree exactly, yet use z."""
    momenta, positions = toy_tables(300)
    cvae = make_cvae(momenta, positions)
    fit(cvae, momenta, positions, (momenta[:50], positions[:50]), epochs=1)
    first, second = (
        cvae.evaluate(momenta[:100], positions[:100], batch_size=50, verbose=0, return_dict=True)
        for _ in range(2)
    )
    assert first == second
    cvae.latent_distribution.std.assign(np.zeros(3))  # z at the distribution's mean
    at_mean = cvae.evaluate(
        momenta[:100], positions[:100], batch_size=50, verbose=0, return_dict=True
    )
    assert at_mean["reconstruction"] != first["reconstruction"]


def test_latent_statistics_are_exact_over_the_training_split():
    momenta, positions = toy_tables(300)
    for prior in model.LATENT_PRIORS:
        cvae = make_cvae(momenta, positions, latent_prior=prior)
        fit(cvae, momenta, positions, (momenta[:20], positions[:20]), epochs=1)
        cvae.fit_latent_statistics(momenta, positions, batch_size=128)  # uneven batches
        mean, log_var = cvae.encode(
            cvae.normalize_positions(positions), cvae.normalize_momenta(momenta)
        )
        mean, variance = mean.numpy().astype(np.float64), np.exp(log_var.numpy())
        expected_var = mean.var(axis=0)
        if prior == "aggregate_posterior":
            expected_var = expected_var + variance.mean(axis=0)
        np.testing.assert_allclose(
            cvae.latent_distribution.mean.numpy(), mean.mean(axis=0), rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(
            cvae.latent_distribution.std.numpy(), np.sqrt(expected_var), rtol=1e-3
        )


def test_predictions_sample_the_training_latent_distribution():
    momenta, positions = toy_tables(50)
    cvae = make_cvae(momenta, positions)
    cvae.latent_distribution.mean.assign([1.0, -2.0, 0.5])
    cvae.latent_distribution.std.assign([0.0, 0.0, 0.0])
    cvae.spread_scale.assign(np.zeros(9))  # no decoder noise: a sample is the decoder's mean
    expected = cvae.decode_positions(
        momenta, np.tile([[1.0, -2.0, 0.5]], (50, 1)).astype(np.float32)
    )
    np.testing.assert_allclose(cvae(momenta).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_samples_spread_as_the_rotated_decoder_variance_says():
    """Draws of `call` (noise in the model frame) against decode_moments' lab-frame variance."""
    momenta, positions = toy_tables(4)
    cvae = make_cvae(momenta, positions, frame="momentum")
    cvae.latent_distribution.std.assign([0.0, 0.0, 0.0])
    cvae.spread_scale.assign(np.linspace(0.5, 2.0, 9))
    repeated = np.repeat(momenta, 20_000, axis=0)
    draws = cvae(repeated).numpy().astype(np.float64).reshape(4, 20_000, 9)
    mean, variance = cvae.decode_moments(momenta, np.zeros((4, 3), np.float32))
    np.testing.assert_allclose(draws.mean(axis=1), mean.numpy(), atol=0.05 * draws.std())
    np.testing.assert_allclose(draws.var(axis=1), variance.numpy(), rtol=0.05)


def test_spread_scale_recovers_a_known_miscalibration():
    """Validation targets twice as spread as the decoder says: the fitted scale is 2."""
    momenta, positions = toy_tables(4000)
    cvae = make_cvae(momenta, positions, latent_dim=0)
    normalized_momenta = cvae.normalize_momenta(momenta)
    mean, log_variance = cvae.decode_gaussian(np.zeros((4000, 0), np.float32), normalized_momenta)
    noise = np.random.default_rng(2).normal(size=mean.shape)
    targets = mean.numpy() + 2.0 * np.exp(0.5 * log_variance.numpy()) * noise
    positions_with_known_spread = cvae.denormalize_positions(targets.astype(np.float32)).numpy()
    scale = recalibration.fit_spread_scale(
        cvae, [(momenta, positions_with_known_spread)], num_samples=4
    )
    np.testing.assert_allclose(scale, 2.0, rtol=0.05)
    np.testing.assert_allclose(cvae.spread_scale.numpy(), scale, rtol=1e-6)


def test_keras_file_round_trip_keeps_normalization_and_latent_statistics(tmp_path):
    momenta, positions = toy_tables(200)
    cvae = make_cvae(momenta, positions)
    fit(cvae, momenta, positions, (momenta[:20], positions[:20]), epochs=1)
    cvae.fit_latent_statistics(momenta, positions)
    cvae.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert isinstance(loaded, model.CVAE)
    for name in ("mean", "std"):
        np.testing.assert_array_equal(
            getattr(loaded.latent_distribution, name).numpy(),
            getattr(cvae.latent_distribution, name).numpy(),
        )
    latent = np.ones((200, 3), np.float32)
    np.testing.assert_allclose(
        loaded.decode_positions(momenta, latent).numpy(),
        cvae.decode_positions(momenta, latent).numpy(),
        rtol=1e-6,
    )


def test_latent_dim_zero_is_a_deterministic_network_of_the_same_code():
    """No encoder; the prediction is the decoder's mean, a plain MLP of the momenta (numpy)."""
    momenta, positions = toy_tables(300)
    cvae = make_cvae(momenta, positions, latent_dim=0)
    kernels = [w for w in cvae.weights if w.path.endswith("kernel")]
    assert len(kernels) == 2 + 2  # decoder and its mean/log-variance heads only: no encoder
    assert cvae.encoder is None
    history = fit(cvae, momenta, positions, (momenta[:50], positions[:50]), epochs=2)
    assert history.history["kl"] == [0.0, 0.0]
    assert np.isfinite(history.history["val_loss"]).all()
    cvae.fit_latent_statistics(momenta, positions)
    predicted = cvae.decode_positions(momenta[:20], np.zeros((20, 0), np.float32)).numpy()
    # The same network by hand: normalize, GELU hidden layers, the mean head, denormalize.
    offset, variance = normalization_statistics("standard", momenta)
    hidden = (momenta[:20].astype(np.float64) - offset) / np.sqrt(variance)
    *layers, mean_head, _ = dense_layers(cvae.decoder)
    for layer in layers:
        hidden = hidden @ layer.kernel.numpy() + layer.bias.numpy()
        hidden = 0.5 * hidden * (1.0 + scipy.special.erf(hidden / np.sqrt(2.0)))
    normalized = hidden @ mean_head.kernel.numpy() + mean_head.bias.numpy()
    offset, variance = normalization_statistics("standard", positions)
    expected = normalized * np.sqrt(variance) + offset
    np.testing.assert_allclose(predicted, expected, rtol=1e-4, atol=1e-5)
    # Without a latent draw and with the decoder's noise off, a sample is that mean.
    cvae.spread_scale.assign(np.zeros(9))
    np.testing.assert_allclose(cvae(momenta[:20]).numpy(), predicted, rtol=1e-6, atol=1e-6)


def test_running_latent_statistics_restart_every_epoch():
    """During fit the prior follows the current epoch only: validation sees this epoch's spread.

    With a learning rate of 0 every epoch sees the same posteriors, so the running statistics
    of the last epoch are those of the encoder over the training split (numpy) and cover its
    350 events once, not three times.
    """
    momenta, positions = toy_tables(350)
    cvae = make_cvae(momenta, positions)
    frozen = keras.optimizers.SGD(learning_rate=0.0)
    fit(cvae, momenta, positions, (momenta[:50], positions[:50]), epochs=3, optimizer=frozen)
    statistics = cvae.latent_distribution
    assert float(statistics.count.numpy()) == 350  # one epoch's events, not three
    mean, log_var = cvae.encode(
        cvae.normalize_positions(positions), cvae.normalize_momenta(momenta)
    )
    mean = mean.numpy().astype(np.float64)
    np.testing.assert_allclose(statistics.mean.numpy(), mean.mean(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        statistics.std.numpy(),
        np.sqrt(mean.var(axis=0) + np.exp(log_var.numpy()).mean(axis=0)),  # aggregate posterior
        rtol=1e-3,
    )
