"""Crystals as tensors: padded per-crystal arrays resident on one device, and batches cut from them by index.

A batch never loops over crystals in Python: it is an index into the padded arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError


@dataclass(frozen=True)
class CrystalBatch:
    positions: torch.Tensor       # (B, N, 3) Cartesian Angstrom, zero where padded
    species_index: torch.Tensor   # (B, N) vocabulary index, 0 where padded
    atom_mask: torch.Tensor       # (B, N) bool, True for real atoms
    lengths: torch.Tensor         # (B, 3) Angstrom
    angles_rad: torch.Tensor      # (B, 3) radians (the official training target)
    lattice: torch.Tensor         # (B, 3, 3) row vectors, Angstrom (the frame the coordinates are in)

    @property
    def size(self) -> int:
        return int(self.positions.shape[0])

    def flat_atoms(self):
        """Real atoms as flat tensors: positions (A, 3), species index (A,), crystal index (A,)."""
        crystal_index = torch.arange(self.size, device=self.positions.device)[:, None].expand_as(self.atom_mask)
        return self.positions[self.atom_mask], self.species_index[self.atom_mask], crystal_index[self.atom_mask]

    @property
    def lattice_params(self) -> torch.Tensor:  # (B, 6)
        return torch.cat([self.lengths, self.angles_rad], dim=1)

    def element_fractions(self, num_species: int) -> torch.Tensor:
        """(B, K) share of each vocabulary species among a crystal's atoms (rows of crystals with no atoms are 0)."""
        one_hot = torch.nn.functional.one_hot(self.species_index, num_species).to(self.positions.dtype)  # (B, N, K)
        counts = (one_hot * self.atom_mask[..., None]).sum(1)  # (B, K)
        return counts / counts.sum(1, keepdim=True).clamp(min=1)


class CrystalTensors:
    """All crystals of a split, padded to the largest atom count, on one device; `batch(indices)` slices it."""

    def __init__(self, crystals: list[Crystal], vocab: list[int], device: torch.device | str = "cpu"):
        if not crystals:
            raise NesfError("no crystals to batch")
        z_to_index = {int(z): i for i, z in enumerate(vocab)}
        max_atoms = max(max(c.num_atoms for c in crystals), 1)
        count = len(crystals)
        positions = np.zeros((count, max_atoms, 3), dtype=np.float32)
        species = np.zeros((count, max_atoms), dtype=np.int64)
        mask = np.zeros((count, max_atoms), dtype=bool)
        lengths = np.zeros((count, 3), dtype=np.float32)
        angles = np.zeros((count, 3), dtype=np.float32)
        lattices = np.zeros((count, 3, 3), dtype=np.float32)
        for row, crystal in enumerate(crystals):
            unknown = sorted({int(z) for z in crystal.species} - z_to_index.keys())
            if unknown:
                from pymatgen.core import Element

                names = ", ".join(Element.from_Z(z).symbol for z in unknown)
                raise NesfError(f"{crystal.id or 'crystal'}: element(s) {names} not in the model's vocabulary")
            n = crystal.num_atoms
            positions[row, :n] = crystal.cart_coords
            species[row, :n] = [z_to_index[int(z)] for z in crystal.species]
            mask[row, :n] = True
            lengths[row] = crystal.lengths_angstrom
            angles[row] = np.radians(crystal.angles_degrees)
            lattices[row] = crystal.lattice
        self.ids = [c.id for c in crystals]
        self.device = torch.device(device)
        self.positions = torch.from_numpy(positions).to(self.device)
        self.species_index = torch.from_numpy(species).to(self.device)
        self.atom_mask = torch.from_numpy(mask).to(self.device)
        self.lengths = torch.from_numpy(lengths).to(self.device)
        self.angles_rad = torch.from_numpy(angles).to(self.device)
        self.lattice = torch.from_numpy(lattices).to(self.device)

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def batch(self, indices: torch.Tensor | None = None) -> CrystalBatch:
        if indices is None:
            indices = torch.arange(len(self), device=self.device)
        indices = indices.to(self.device)
        mask = self.atom_mask[indices]
        width = max(int(mask.sum(1).max().item()), 1)  # trim padding to this batch's largest crystal
        return CrystalBatch(
            positions=self.positions[indices, :width],
            species_index=self.species_index[indices, :width],
            atom_mask=mask[:, :width],
            lengths=self.lengths[indices],
            angles_rad=self.angles_rad[indices],
            lattice=self.lattice[indices],
        )

    def batches(self, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None,
                min_batch: int = 1):
        """Batches of `batch_size` crystals; a last batch smaller than `min_batch` joins the one before it."""
        order = torch.randperm(len(self), generator=generator).to(self.device) if shuffle else torch.arange(
            len(self), device=self.device)
        for start, stop in batch_bounds(len(self), batch_size, min_batch):
            yield self.batch(order[start:stop])

    def num_batches(self, batch_size: int, min_batch: int = 1) -> int:
        return len(batch_bounds(len(self), batch_size, min_batch))


def batch_bounds(count: int, batch_size: int, min_batch: int = 1) -> list[tuple[int, int]]:
    """(start, stop) of consecutive batches of `batch_size` over `count` items; a last batch smaller than `min_batch`
    is merged into the one before it, so no item is dropped (training-mode BatchNorm needs two per batch)."""
    bounds = [(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_batch:
        last = bounds.pop()
        bounds[-1] = (bounds[-1][0], last[1])
    return bounds
