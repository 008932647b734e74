"""cvae_tf: OCS geometries from Coulomb-explosion fragment momenta with a conditional VAE."""

import os

# TensorFlow's C++ start-up chatter would precede every one-line error message. oneDNN's custom
# CPU kernels are what print it, and for these small dense networks they measured no faster
# (1.16 vs 1.06 s per epoch, default model, 35k events); a user may still set either variable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# The Python API (api.py), imported on first use so that `import cvae_tf` stays light.
# `train` is the train command's module, which is callable as api.train (see train.py).
_API = ("Model", "Prediction", "Run", "load")
__all__ = [*_API, "train"]


def __getattr__(name: str):
    if name in _API:
        from cvae_tf import api

        return getattr(api, name)
    if name == "train":
        import importlib

        return importlib.import_module("cvae_tf.train")
    raise AttributeError(f"module 'cvae_tf' has no attribute {name!r}")
