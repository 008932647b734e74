"""cvae_tf: OCS geometries from Coulomb-explosion fragment momenta with a conditional VAE."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) drowns the report; warnings still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
