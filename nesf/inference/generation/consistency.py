"""Whether the decoder drew a crystal it can read: the self-consistency of a generated sample.

A sampled latent z is decoded into a crystal; the fields of the same z, read at that crystal's own atoms, should
point nowhere (each atom is its own nearest atom) and name each atom's element. Their `FrameScore` (Angstrom, lower is
better; the field residual of `nesf.model.frame_select`, here at the sampled latent) is the sample's **self
residual**. Re-encoding the crystal gives a second reading: the residual at the encoder's latent of the decoded
crystal (the upload trust signal's field residual) and how far that latent lies from z (the **latent drift**).
`benchmarks/consistency_filter.py` measures which reading tells valid samples from invalid ones and what keeping the
most consistent samples buys at equal sample counts (BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nesf.core.crystal import Crystal
from nesf.model.batch import CrystalTensors
from nesf.model.frame_select import SCORE_CHUNK, field_scores, latent_scores


@dataclass(frozen=True)
class Consistency:
    """Per generated crystal (NaN where it has no atoms)."""

    self_residual: np.ndarray        # (N,) FrameScore.score of the sampled latent's fields at the crystal's atoms
    reencoded_residual: np.ndarray   # (N,) FrameScore.score at the encoder's latent of the decoded crystal
    latent_drift: np.ndarray         # (N,) |z - encode(decode(z))|


@torch.no_grad()
def consistency(autoencoder, latents: np.ndarray, crystals: list[Crystal]) -> Consistency:
    """The three readings of each (latent, decoded crystal) pair, in chunks of SCORE_CHUNK."""
    latents = np.asarray(latents, dtype=np.float32).reshape(len(crystals), -1)
    readings = np.full((3, len(crystals)), np.nan)
    present = [i for i, crystal in enumerate(crystals) if crystal.num_atoms > 0]
    model, vocab, device = autoencoder.model, autoencoder.vocab, autoencoder.device
    for start in range(0, len(present), SCORE_CHUNK):
        index = present[start:start + SCORE_CHUNK]
        chunk = [crystals[i] for i in index]
        batch = CrystalTensors(chunk, vocab, device).batch()
        sampled = torch.from_numpy(latents[index]).to(device)
        readings[0, index] = [score.score for score in latent_scores(model, batch, sampled)]
        encoded, scores = field_scores(model, chunk, vocab, device)
        readings[1, index] = [score.score for score in scores]
        readings[2, index] = np.linalg.norm(encoded - latents[index], axis=1)
    return Consistency(*readings)
