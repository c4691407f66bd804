"""Training-time augmentation: each training crystal drawn, epoch by epoch, as one of the ways it can be written.

The paper's datasets hold one arbitrary setting per crystal, and a model trained on them only knows that one: an
upload in another equally standard setting (another origin, permuted equal axes) or another cell reconstructs worse
(`../shared/notes/upload-frames.md`). `variant_pool` lists, per training crystal, the crystal as stored and its
variants (`nesf.data.frames`): its equivalent settings ("frames"), and with "frames+cells" also its orthohexagonal,
primitive and Niggli-reduced cells and their settings; only variants inside the model's range (`ModelRange`, the box
included) are kept, so decoding needs no larger grid. `VariantPool.draw` picks one variant per crystal: the crystal
as stored with probability ORIGINAL_SHARE (the dataset form keeps its share of the budget), else one of its other
variants uniformly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nesf.core.crystal import Crystal
from nesf.core.progress import Progress, counted
from nesf.data.frames import cell_variants, equivalent_frames
from nesf.model.model_range import ModelRange

ORIGINAL_SHARE = 0.5        # probability of drawing a crystal as stored
FRAMES_PER_CELL = 4         # settings kept per alternative cell (frames+cells), the cell as built first


@dataclass(frozen=True)
class VariantPool:
    crystals: list            # every variant, crystal by crystal, each crystal as stored first
    offsets: torch.Tensor     # (n,) int64, index in `crystals` of training crystal i as stored
    counts: torch.Tensor      # (n,) int64, how many variants crystal i has (>= 1)

    @property
    def mean_variants(self) -> float:
        return float(self.counts.float().mean())

    def draw(self, indices: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Variant indices (into `crystals`) for training crystals `indices`: each the crystal as stored with
        probability ORIGINAL_SHARE, else one of its other variants uniformly (always as stored where it has none)."""
        device = self.offsets.device
        indices = indices.to(device)
        counts, offsets = self.counts[indices], self.offsets[indices]
        keep = torch.rand(len(indices), generator=generator, device=device) < ORIGINAL_SHARE
        other = (torch.rand(len(indices), generator=generator, device=device) * (counts - 1)).long()
        return torch.where(keep | (counts == 1), offsets, offsets + 1 + other.clamp(max=(counts - 2).clamp(min=0)))


def crystal_variants(crystal: Crystal, augmentation: str, model_range: ModelRange) -> list[Crystal]:
    """`crystal` as given, then its variants of kind `augmentation` ("frames" or "frames+cells") that fit
    `model_range`."""
    variants = [crystal] + equivalent_frames(crystal)[1:]
    if augmentation == "frames+cells":
        for cell in cell_variants(crystal):
            variants += equivalent_frames(cell, max_frames=FRAMES_PER_CELL)
    return [crystal] + [v for v in variants[1:] if not model_range.problems(v)]


def variant_pool(crystals: list[Crystal], augmentation: str, model_range: ModelRange,
                 device: torch.device | str = "cpu",
                 progress: Progress | None = None) -> VariantPool:
    """The variants of every training crystal (`crystal_variants`); `progress` every 500 crystals."""
    pool, offsets, counts = [], [], []
    for done, crystal in enumerate(crystals, start=1):
        variants = crystal_variants(crystal, augmentation, model_range)
        offsets.append(len(pool))
        counts.append(len(variants))
        pool += variants
        if progress is not None and (done % 500 == 0 or done == len(crystals)):
            counted(progress, done, len(crystals), "variants of training crystals")
    as_tensor = lambda values: torch.tensor(np.asarray(values, dtype=np.int64), device=device)  # noqa: E731
    return VariantPool(pool, as_tensor(offsets), as_tensor(counts))
