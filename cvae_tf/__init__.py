"""cvae_tf: molecular geometries from Coulomb-explosion fragment momenta with a conditional VAE."""

# The Python API (api.py), imported on first use so that `import cvae_tf` stays light and has
# no side effect. `train` is the train command's module, callable as api.train (see train.py).
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
