"""The SavedModel's fused `serve` and `moments` against the model's `call` and `sample_moments`."""

import numpy as np
import pytest
import tensorflow as tf

from cvae_tf import data, export, frames, serving, simulator
from tests.models import build_cvae

BLOCKS_AND_A_BIT = serving.BLOCK_ROWS + 5  # two blocks, the second padded to the first bucket


@pytest.fixture(scope="module")
def events():
    """Simulated OCS positions (bohr) and momenta (a.u.) tables, [events, 9], float32."""
    positions, momenta = simulator.simulate_events(
        simulator.SimulationConfig(BLOCKS_AND_A_BIT, seed=3)
    )
    return data.to_table(positions).astype(np.float32), data.to_table(momenta).astype(np.float32)


def exported(cvae, folder):
    """`cvae` exported as a run exports it, and a function loading that SavedModel afresh."""
    export.export_saved_model(cvae, folder / "saved_model")
    return lambda: tf.saved_model.load(str(folder / "saved_model"))


def well_framed(momenta: np.ndarray) -> np.ndarray:
    """Events whose momentum frame float32 fixes to a few rounding steps: p_C⊥ over 10 % of |p_C|.

    ŷ follows p_C⊥, so float32's rounding of x̂ turns ŷ, and the predicted positions with it, by
    ~10⁻⁷·|p_C|/|p_C⊥| rad in any implementation: up to 10⁻⁴–10⁻³ bohr for the near-linear
    events (p_C⊥ < 1 % of |p_C|: 21 of 8,197 here), 5·10⁻⁶ bohr at most above 10 %.
    """
    vectors = momenta.reshape(-1, 3, 3).astype(np.float64)
    first, second, third = frames.OCS_FRAGMENTS
    x_axis = vectors[:, first] - vectors[:, second]
    x_axis /= np.linalg.norm(x_axis, axis=-1, keepdims=True)
    carbon = vectors[:, third]
    perpendicular = carbon - np.sum(carbon * x_axis, axis=-1, keepdims=True) * x_axis
    return np.linalg.norm(perpendicular, axis=-1) > 0.1 * np.linalg.norm(carbon, axis=-1)


@pytest.mark.parametrize(
    ("frame", "latent_dim"), [("momentum", 4), ("lab", 2), ("momentum", 0)], ids=str
)
def test_serve_and_moments_are_the_models_own_draws(events, tmp_path, frame, latent_dim):
    """Same seed state, same draws: the endpoints equal `call` and `sample_moments` to float32
    rounding (bohr, bohr²), for one event, a few, and more than a block (padded blocks, cut back
    to their rows)."""
    positions, momenta = events
    cvae = build_cvae(positions, momenta, frame=frame, latent_dim=latent_dim, seed=5)
    cvae.spread_scale.assign(np.linspace(0.5, 2.0, 9))
    state = cvae.latent_distribution.seed_generator.state.numpy()
    load = exported(cvae, tmp_path)
    for rows in (1, 37, BLOCKS_AND_A_BIT):
        batch = momenta[:rows]
        kept = well_framed(batch) if frame == "momentum" else np.ones(rows, bool)
        for endpoint, reference in (("serve", cvae), ("moments", cvae.sample_moments)):
            cvae.latent_distribution.seed_generator.state.assign(state)
            expected = np.asarray(reference(batch))
            loaded = load()  # afresh: the saved state (an endpoint needs its object alive)
            served = getattr(loaded, endpoint)(batch).numpy()
            assert served.shape == expected.shape == (rows, 9 if endpoint == "serve" else 18)
            np.testing.assert_allclose(served[kept], expected[kept], rtol=1e-5, atol=1e-5)
            assert np.median(np.abs(served - expected)) < 1e-6


def test_serve_reproduces_from_a_fresh_load_and_draws_anew_at_each_call(events, tmp_path):
    positions, momenta = events
    load = exported(build_cvae(positions, momenta, frame="momentum", latent_dim=4), tmp_path)
    first, again = load(), load()
    draws = [first.serve(momenta[:50]).numpy() for _ in range(2)]
    np.testing.assert_array_equal(again.serve(momenta[:50]).numpy(), draws[0])
    assert not np.allclose(draws[0], draws[1])


def test_an_empty_batch_gives_empty_tables(events, tmp_path):
    positions, momenta = events
    served = exported(build_cvae(positions, momenta, frame="momentum"), tmp_path)()
    assert served.serve(momenta[:0]).shape == (0, 9)
    assert served.moments(momenta[:0]).shape == (0, 18)


def test_every_block_size_rounds_up_to_a_bucket():
    buckets = [int(serving._bucket(tf.constant(rows))) for rows in (1, 1024, 1025, 5000, 8192)]
    assert buckets == [1024, 1024, 2048, 8192, 8192]
