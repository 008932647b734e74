"""cvae_tf: molecular geometries from Coulomb-explosion fragment momenta with a conditional VAE."""
