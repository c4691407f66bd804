"""Structure decoding from fields (section 2.1, Fig. 2): particles -> move -> score -> NMS -> species vote.

Works on any field source (`nesf.model.fields.ModelFields` or `ExactFields`), batched over crystals, on the fields'
device. Deterministic: no random numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nesf.core.canonical import canonical_crystal
from nesf.core.config import DecodeConfig
from nesf.core.crystal import Crystal
from nesf.core.grids import box_grid, local_grid
from nesf.core.lattice import DECODED_FRAME_TOLERANCE, frame_holding, inside_predicted_cell_torch
from nesf.model.nms import batched_nms


@dataclass(frozen=True)
class DecodedBatch:
    """Raw decoder output on the CPU: per crystal the detected atoms and the lattice parameters."""

    positions: list[np.ndarray]       # per crystal (n_i, 3) Cartesian Angstrom
    species_index: list[np.ndarray]   # per crystal (n_i,) vocabulary indices
    lengths: np.ndarray               # (B, 3) Angstrom
    angles_deg: np.ndarray            # (B, 3) degrees
    particles_moved: int              # particle-field evaluations spent moving particles (for benchmarks)


class StructureDecoder:
    """Turns fields into atoms. `bbox_min`/`bbox_max` are the dataset bounding box (Angstrom) of the training set."""

    def __init__(self, bbox_min, bbox_max, config: DecodeConfig | None = None):
        self.config = config or DecodeConfig()
        self.bbox_min = np.asarray(bbox_min, dtype=np.float64)
        self.bbox_max = np.asarray(bbox_max, dtype=np.float64)

    @torch.no_grad()
    def decode(self, fields, device: torch.device) -> DecodedBatch:
        cfg = self.config
        size = fields.size
        lengths, angles_rad = fields.lattice()
        angles_deg = torch.rad2deg(angles_rad)
        grid = box_grid(self.bbox_min, self.bbox_max, cfg.particle_interval, device=device)  # (G, 3)
        particles = grid[None].expand(size, -1, -1).clone()  # (B, G, 3)
        valid = torch.ones(particles.shape[:2], dtype=torch.bool, device=device)
        if cfg.particles_in_predicted_cell:
            valid &= inside_predicted_cell_torch(particles, lengths, angles_deg, cfg.cell_margin)

        last_step, moved = self._move(fields, particles, valid)
        score = last_step.square().sum(-1)  # (B, G) squared last step, the official score
        valid &= score <= cfg.score_threshold ** 2
        centres, accepted = batched_nms(particles, score, valid, radius=cfg.nms_radius,
                                        min_particles=cfg.nms_min_particles, max_rounds=cfg.max_nms_rounds)
        species = self._vote_species(fields, centres, accepted, device)
        accepted_cpu, centres_cpu, species_cpu = accepted.cpu().numpy(), centres.cpu().double().numpy(), species.cpu().numpy()
        return DecodedBatch(
            positions=[centres_cpu[i][accepted_cpu[i]] for i in range(size)],
            species_index=[species_cpu[i][accepted_cpu[i]] for i in range(size)],
            lengths=lengths.double().cpu().numpy(),
            angles_deg=angles_deg.double().cpu().numpy(),
            particles_moved=moved,
        )

    def _move(self, fields, particles: torch.Tensor, valid: torch.Tensor):
        """Move valid particles (in place) along the position field; returns the last step (B, G, 3)."""
        cfg = self.config
        size, count = particles.shape[:2]
        crystal_of = torch.arange(size, device=particles.device)[:, None].expand(size, count)
        flat_index = valid.flatten().nonzero().squeeze(1)  # active particles, flat (B*G) indices
        flat_particles = particles.view(-1, 3)
        last_step = torch.zeros_like(flat_particles)
        flat_crystal = crystal_of.flatten()
        moved = 0
        for _ in range(cfg.iterations):
            if flat_index.numel() == 0:
                break
            step = fields.position(flat_particles[flat_index], flat_crystal[flat_index])
            moved += int(flat_index.numel())
            flat_particles[flat_index] += step
            last_step[flat_index] = step
            if cfg.convergence_tolerance > 0:
                flat_index = flat_index[step.square().sum(-1) >= cfg.convergence_tolerance ** 2]
        return last_step.view(size, count, 3), moved

    def _vote_species(self, fields, centres, accepted, device) -> torch.Tensor:
        """Majority vote of the species field over a local grid around each accepted centre -> (B, K) indices."""
        cfg = self.config
        size, rounds = accepted.shape
        species = torch.zeros((size, rounds), dtype=torch.long, device=device)
        where = accepted.nonzero()  # (M, 2): crystal, centre
        if where.shape[0] == 0:
            return species
        offsets = local_grid(cfg.species_interval, cfg.species_range, device=device)  # (S, 3)
        atom_centres = centres[where[:, 0], where[:, 1]]  # (M, 3)
        queries = (atom_centres[:, None] + offsets).reshape(-1, 3)
        crystal_index = where[:, 0].repeat_interleave(offsets.shape[0])
        votes = fields.species_logits(queries, crystal_index).argmax(-1).view(-1, offsets.shape[0])
        species[where[:, 0], where[:, 1]] = torch.mode(votes, dim=1).values
        return species


def to_crystals(decoded: DecodedBatch, vocab: list[int], ids: list[str] | None = None, *,
                wrap_to_cell: bool = False) -> list[Crystal]:
    """Decoder output -> Crystals (atomic numbers from the vocabulary, lattice from the predicted parameters).
    `wrap_to_cell` (`DecodeConfig.wrap_to_cell`) also puts each one in the canonical frame of uploads
    (`nesf.core.canonical.canonical_frame`): atoms wrapped into the cell, periodic duplicates of one element merged."""
    vocab_array = np.asarray(vocab, dtype=np.int64)
    crystals = []
    for i, (positions, species) in enumerate(zip(decoded.positions, decoded.species_index)):
        lattice = _safe_lattice(decoded.lengths[i], decoded.angles_deg[i], positions)
        name = ids[i] if ids else f"decoded-{i}"
        crystal = Crystal(lattice, positions, vocab_array[species], name)
        crystals.append(canonical_crystal(crystal) if wrap_to_cell else crystal)
    return crystals


def _safe_lattice(lengths, angles_deg, positions: np.ndarray) -> np.ndarray:
    """The predicted cell in the frame that holds the decoded atoms: pymatgen's default frame, or VESTA's (a along
    x, the frame of some triclinic cells in the paper's datasets) when that frame holds more of them. If the heads
    predict an impossible cell: a cube of the mean predicted length."""
    lengths = np.maximum(np.asarray(lengths, dtype=np.float64), 0.1)
    lattice = frame_holding(lengths, angles_deg, positions, DECODED_FRAME_TOLERANCE)
    return np.eye(3) * float(np.mean(lengths)) if lattice is None else lattice
