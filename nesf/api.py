"""The public face of the library: load a checkpoint as an `Autoencoder`, then encode, decode, reconstruct and
interpolate crystals. The implementation is `nesf.inference.autoencoder`; library code imports it from there."""

from nesf.inference.autoencoder import MIN_OFFER_MATCH_PERCENT, Autoencoder, Progress

__all__ = ["Autoencoder", "MIN_OFFER_MATCH_PERCENT", "Progress"]
