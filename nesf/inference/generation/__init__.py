"""Generation: a density over a model's training latents, sampled and decoded (`sample`), and the field's metrics
for generated sets (`validity`, `fingerprints`, `scores`), computed as CDVAE's `compute_metrics.py` computes them."""
