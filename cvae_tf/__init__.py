"""cvae_tf: OCS geometries from Coulomb-explosion fragment momenta with a conditional VAE."""

import os

# TensorFlow's C++ start-up chatter would precede every one-line error message. oneDNN's custom
# CPU kernels are what print it, and for these small dense networks they measured no faster
# (1.16 vs 1.06 s per epoch, default model, 35k events); a user may still set either variable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
