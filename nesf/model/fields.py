"""Field sources for the structure decoder: the model's learned fields, or exact fields of known crystals.

Both answer the same three questions for flat queries tagged with their crystal index:
position(queries, crystal_index) -> (Q, 3) vector to the nearest atom; species_logits(...) -> (Q, K);
lattice() -> lengths (B, 3) Angstrom, angles (B, 3) radians.
"""

from __future__ import annotations

import torch

from nesf.model.batch import CrystalBatch

QUERY_CHUNK = 262_144  # queries per chunk in nearest-atom search, bounding memory at ~chunk x atoms x 12 bytes


def nearest_atom(queries: torch.Tensor, crystal_index: torch.Tensor, batch: CrystalBatch,
                 *, periodic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query (Q, 3) of crystal `crystal_index` (Q,): vector to its nearest atom (Q, 3) and that atom's
    species index (Q,). Non-periodic (atoms of the cell only) unless `periodic`, which also considers the 26
    neighbouring images of every atom."""
    positions, species = batch.positions, batch.species_index  # (B, N, 3), (B, N)
    mask = batch.atom_mask
    if periodic:
        lattice = batch.lattice  # (B, 3, 3)
        shifts = torch.cartesian_prod(*[torch.arange(-1, 2, device=positions.device, dtype=positions.dtype)] * 3)
        image_offsets = torch.einsum("sk,bkj->bsj", shifts, lattice)  # (B, 27, 3)
        positions = (positions[:, None] + image_offsets[:, :, None]).flatten(1, 2)  # (B, 27N, 3)
        species = species.repeat(1, 27)
        mask = mask.repeat(1, 27)
    # Lay the queries out per crystal (B, Qmax, 3) so distances are one batched matrix product per crystal.
    order = torch.argsort(crystal_index, stable=True)
    sorted_crystal = crystal_index[order]
    counts = torch.bincount(sorted_crystal, minlength=positions.shape[0])
    offsets = torch.cumsum(counts, 0) - counts
    slot = torch.arange(order.numel(), device=queries.device) - offsets[sorted_crystal]
    width = int(counts.max()) if counts.numel() else 0
    vectors = queries.new_zeros(queries.shape)
    labels = crystal_index.new_zeros(crystal_index.shape)
    if width == 0:
        return vectors, labels
    chunk = max(1, QUERY_CHUNK // max(width, 1))  # crystals per chunk
    for first in range(0, positions.shape[0], chunk):
        rows = slice(first, first + chunk)
        selected = (sorted_crystal >= first) & (sorted_crystal < first + chunk)
        padded = queries.new_zeros((min(chunk, positions.shape[0] - first), width, 3))
        padded[sorted_crystal[selected] - first, slot[selected]] = queries[order[selected]]
        dist2 = torch.cdist(padded, positions[rows].to(queries.dtype)).masked_fill(~mask[rows, None, :], float("inf"))
        nearest = dist2.argmin(dim=2)  # (b, Qmax)
        target = positions[rows].to(queries.dtype).gather(1, nearest[..., None].expand(-1, -1, 3))  # (b, Qmax, 3)
        picked = (sorted_crystal[selected] - first, slot[selected])
        vectors[order[selected]] = target[picked] - queries[order[selected]]
        labels[order[selected]] = species[rows].gather(1, nearest)[picked]
    return vectors, labels


class ExactFields:
    """The analytic fields of known crystals (the official `ground_truth` reconstruction mode)."""

    def __init__(self, batch: CrystalBatch, num_species: int):
        self.batch = batch
        self.num_species = num_species

    @property
    def size(self) -> int:
        return self.batch.size

    def position(self, queries, crystal_index):
        return nearest_atom(queries, crystal_index, self.batch)[0]

    def species_logits(self, queries, crystal_index):
        labels = nearest_atom(queries, crystal_index, self.batch)[1]
        return torch.nn.functional.one_hot(labels, self.num_species).to(queries.dtype)

    def lattice(self):
        return self.batch.lengths, self.batch.angles_rad


class ModelFields:
    """The learned fields of a NeSF model at given latents (the model must be in eval mode)."""

    def __init__(self, model, latent: torch.Tensor):
        self.model = model
        self.latent = latent

    @property
    def size(self) -> int:
        return int(self.latent.shape[0])

    def position(self, queries, crystal_index):
        return self.model.position_field(self.latent, queries, crystal_index).float()

    def species_logits(self, queries, crystal_index):
        return self.model.species_field(self.latent, queries, crystal_index).float()

    def lattice(self):
        lengths, angles = self.model.lattice(self.latent)
        return lengths.float(), angles.float()
