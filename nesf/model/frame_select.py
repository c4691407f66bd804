"""Choosing an upload's frame by the model's own fields, and the field residual that says how far to trust it.

An upload's canonical cell is one of several equally standard settings of the same crystal (`nesf.data.frames`); a model
trained on one arbitrary setting per crystal reconstructs some settings better than others. Without decoding, the
model can tell which it knows best: encode each setting, then evaluate its fields at the setting's own atoms. There
the position field should be ~0 (each atom is its own nearest atom) and the species field should name the atom's
element. The setting with the lowest `FrameScore.score` is used (`../shared/notes/upload-frames.md`: on LCS6A test
uploads, match rate 69.1 -> 78.4 %).

The same reading on the chosen setting is the reconstruction's field residual, one of the two trust signals
(`nesf.inference.trust`). Lengths in Angstrom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nesf.core.crystal import Crystal
from nesf.data.frames import equivalent_frames
from nesf.model.batch import CrystalTensors

SPECIES_SCORE_WEIGHT = 0.1   # Angstrom per nat: the species cross-entropy's weight in the score
MAX_CANDIDATES = 24          # settings scored per crystal, the given one first (most crystals have 2-8)
SCORE_CHUNK = 256            # candidates encoded and scored together


@dataclass(frozen=True)
class FrameScore:
    position_residual_angstrom: float   # mean length of the position field at the crystal's own atoms
    species_cross_entropy: float        # mean cross-entropy of the species field against the atoms' elements (nats)

    @property
    def score(self) -> float:
        """Lower is better: the position residual plus SPECIES_SCORE_WEIGHT x the species cross-entropy."""
        return self.position_residual_angstrom + SPECIES_SCORE_WEIGHT * self.species_cross_entropy


@dataclass(frozen=True)
class FrameChoice:
    crystal: Crystal        # the chosen setting (`meta["frame"]`: its index among the candidates, 0 = as given)
    latent: np.ndarray      # (L,) its latent vector
    score: FrameScore       # its field residual
    candidates: int         # settings scored
    given_score: FrameScore  # the residual of the first candidate: the setting as given, where it fits
    refinement: "Refinement | None" = None  # what test-time refinement did to the latent (`nesf.model.refine`);
                                            # None: the encoder's latent, not refined

    @property
    def refined(self) -> bool:
        """Its latent went through refinement (at least one step; whether the guard kept it or not)."""
        return self.refinement is not None and self.refinement.steps > 0

    @property
    def changed(self) -> bool:
        return int(self.crystal.meta.get("frame", 0)) != 0


def latent_scores(model, batch, latent: torch.Tensor) -> list[FrameScore]:
    """Each crystal's `FrameScore`: the fields at `latent` (B, L) read at the batch's own atoms."""
    positions, species, crystal_index = batch.flat_atoms()  # (A, 3), (A,), (A,)
    residual = model.position_field(latent, positions, crystal_index).float().norm(dim=1)  # (A,)
    logits = model.species_field(latent, positions, crystal_index).float()  # (A, K)
    entropy = torch.nn.functional.cross_entropy(logits, species, reduction="none")  # (A,)
    count = torch.bincount(crystal_index, minlength=batch.size).clamp(min=1).float()
    mean = lambda values: (torch.zeros(batch.size, device=values.device).index_add_(  # noqa: E731
        0, crystal_index, values) / count).cpu().numpy()
    return [FrameScore(float(r), float(e)) for r, e in zip(mean(residual), mean(entropy))]


@torch.no_grad()
def field_scores(model, crystals: list[Crystal], vocab: list[int], device: torch.device
                 ) -> tuple[np.ndarray, list[FrameScore]]:
    """(B, L) latents and each crystal's `FrameScore`, in chunks of SCORE_CHUNK crystals. `model` in eval mode."""
    latents, scores = [], []
    for start in range(0, len(crystals), SCORE_CHUNK):
        batch = CrystalTensors(crystals[start:start + SCORE_CHUNK], vocab, device).batch()
        latent = model.encode(batch)  # (B, L)
        scores += latent_scores(model, batch, latent)
        latents.append(latent.float().cpu().numpy())
    size = model.config.latent_size
    return (np.concatenate(latents) if latents else np.zeros((0, size), np.float32)), scores


def candidate_frames(crystal: Crystal, fits=None, max_candidates: int = MAX_CANDIDATES) -> list[Crystal]:
    """`crystal` as given, then its other settings (`equivalent_frames`, enantiomorphic ones included), those for
    which `fits(setting)` holds (all when `fits` is None), at most `max_candidates`; empty when none fits."""
    given = Crystal.from_frac(crystal.lattice, crystal.frac_coords, crystal.species, crystal.id)
    given.meta.update({**crystal.meta, "frame": 0})
    settings = [given, *equivalent_frames(crystal, max_frames=max_candidates * 2)[1:]]
    return [s for s in settings if fits is None or fits(s)][:max_candidates]


def select_frames(model, crystals: list[Crystal], vocab: list[int], device: torch.device, *, fits=None,
                  max_candidates: int = MAX_CANDIDATES) -> list[FrameChoice | None]:
    """For each crystal, its setting with the lowest field score (`candidate_frames`, scored together in batches);
    None for a crystal none of whose settings fits."""
    groups = [candidate_frames(c, fits, max_candidates) for c in crystals]
    flat = [candidate for group in groups for candidate in group]
    latents, scores = field_scores(model, flat, vocab, device)
    choices, start = [], 0
    for group in groups:
        if not group:
            choices.append(None)
            continue
        values = [s.score for s in scores[start:start + len(group)]]
        best = start + int(np.argmin(values))
        choices.append(FrameChoice(flat[best], latents[best], scores[best], len(group), scores[start]))
        start += len(group)
    return choices
