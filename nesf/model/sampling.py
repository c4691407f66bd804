"""Training queries (section 2.2, Supplementary Note 6) and their targets, redrawn every step on the batch's device.

Position field: a jittered global grid over the dataset bounding box plus jittered local grids around every atom.
Species field: jittered local grids around every atom. Targets: the vector to the nearest atom and its species.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nesf.core.config import SamplingConfig
from nesf.core.grids import box_grid, local_grid
from nesf.core.lattice import inside_cell_torch
from nesf.model.batch import CrystalBatch
from nesf.model.fields import nearest_atom


@dataclass(frozen=True)
class TrainingQueries:
    position_queries: torch.Tensor   # (Qp, 3) Angstrom
    position_crystal: torch.Tensor   # (Qp,) crystal index
    position_targets: torch.Tensor   # (Qp, 3) vector to the nearest atom
    species_queries: torch.Tensor    # (Qs, 3)
    species_crystal: torch.Tensor    # (Qs,)
    species_targets: torch.Tensor    # (Qs,) vocabulary index of the nearest atom


class QuerySampler:
    def __init__(self, bbox_min, bbox_max, config: SamplingConfig, device: torch.device):
        self.config = config
        self.global_grid = box_grid(bbox_min, bbox_max, config.global_interval, device=device)  # (G, 3)
        self.local_offsets = local_grid(config.local_interval, config.local_range, device=device)  # (K, 3)
        self.species_offsets = local_grid(config.species_interval, config.species_range, device=device)  # (S, 3)

    def _around_atoms(self, batch: CrystalBatch, offsets: torch.Tensor, sigma: float, generator,
                      fraction: float = 1.0):
        """Jittered local grids around every real atom -> queries (A*k, 3), crystal index (A*k,), where k is all K
        grid points, or with `fraction` < 1 a random subset of round(fraction * K) of them, drawn per atom."""
        positions, _, crystal_index = batch.flat_atoms()  # (A, 3), (A,)
        count = offsets.shape[0]
        if fraction < 1.0:
            keep = max(1, round(fraction * count))
            scores = torch.rand((positions.shape[0], count), device=positions.device, generator=generator)
            chosen = scores.argsort(dim=1)[:, :keep]  # (A, k) distinct grid points per atom
            queries = positions[:, None, :] + offsets[chosen]  # (A, k, 3)
            count = keep
        else:
            queries = positions[:, None, :] + offsets[None]  # (A, K, 3)
        queries = queries + sigma * torch.randn(queries.shape, device=queries.device, generator=generator)
        return queries.reshape(-1, 3), crystal_index.repeat_interleave(count)

    def sample(self, batch: CrystalBatch, generator: torch.Generator | None = None) -> TrainingQueries:
        cfg = self.config
        device = batch.positions.device
        size = batch.size
        global_queries = self.global_grid[None].expand(size, -1, -1)  # (B, G, 3)
        global_queries = global_queries + cfg.global_sigma * torch.randn(global_queries.shape, device=device,
                                                                         generator=generator)
        global_crystal = torch.arange(size, device=device)[:, None].expand(size, self.global_grid.shape[0])
        if cfg.global_in_cell:
            keep = inside_cell_torch(self.global_grid, batch.lattice, cfg.cell_margin)  # (B, G)
            global_queries, global_crystal = global_queries[keep], global_crystal[keep]
        local_queries, local_crystal = self._around_atoms(batch, self.local_offsets, cfg.local_sigma, generator,
                                                          cfg.local_query_fraction)
        position_queries = torch.cat([global_queries.reshape(-1, 3), local_queries])
        position_crystal = torch.cat([global_crystal.reshape(-1), local_crystal])
        species_queries, species_crystal = self._around_atoms(batch, self.species_offsets, cfg.species_sigma,
                                                              generator, cfg.species_query_fraction)
        position_targets, _ = nearest_atom(position_queries, position_crystal, batch, periodic=cfg.periodic_targets)
        _, species_targets = nearest_atom(species_queries, species_crystal, batch, periodic=cfg.periodic_targets)
        return TrainingQueries(position_queries, position_crystal, position_targets,
                               species_queries, species_crystal, species_targets)

