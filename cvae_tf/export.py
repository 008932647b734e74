"""The SavedModel a run exports: raw momenta in, raw positions out, usable without our code."""

from pathlib import Path

import keras
import tensorflow as tf
from absl import logging

from cvae_tf.model import NUM_FEATURES

SAVED_MODEL_DIR = "saved_model"


def export_saved_model(cvae: keras.Model, path: str | Path) -> None:
    """Writes a TensorFlow SavedModel with three endpoints.

    `serve(momenta)`: float32 [batch, 9] momenta (a.u.) in the model's momentum-column order to
    one posterior sample of positions (bohr) [batch, 9]; normalization, latent sampling from the
    training latent distribution and inverse normalization happen inside.
    `decode(momenta, latent)`: the decoder's mean positions (bohr) for caller-given latent
    vectors [batch, latent_dim], for reproducible predictions and for checking the export
    against the in-memory model.
    `moments(momenta)`: one latent draw per event, the decoder's mean (bohr) and variance
    (bohr², recalibrated) side by side, [batch, 18]; K calls make the predictive mixture.

    This is `model.export(path)` (which makes only `serve`) spelled out with keras'
    `ExportArchive`, the tool `model.export` itself uses, to add the second endpoint.
    """
    momenta_spec = tf.TensorSpec(shape=(None, NUM_FEATURES), dtype=tf.float32, name="momenta")
    latent_spec = tf.TensorSpec(shape=(None, cvae.latent_dim), dtype=tf.float32, name="latent")
    archive = keras.export.ExportArchive()
    archive.track(cvae)
    archive.add_endpoint(name="serve", fn=cvae.call, input_signature=[momenta_spec])
    archive.add_endpoint(
        name="decode", fn=cvae.decode_positions, input_signature=[momenta_spec, latent_spec]
    )
    archive.add_endpoint(name="moments", fn=cvae.sample_moments, input_signature=[momenta_spec])
    # TensorFlow logs each asset and signature renaming at INFO through absl: noise for users.
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.WARNING)
    try:
        archive.write_out(str(path), verbose=False)
    finally:
        logging.set_verbosity(verbosity)


def load_saved_model(path: str | Path):
    """The exported endpoints (`.serve`, `.decode`, `.latent_dim`-free) via tf.saved_model.load."""
    return tf.saved_model.load(str(path))
