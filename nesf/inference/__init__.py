"""Inference: a trained model at work: the `Autoencoder`, uploads, trust, model cards, atlases and maps, generation."""
