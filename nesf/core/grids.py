"""Regular grids used for training queries and decoding particles (the official code's arange conventions)."""

from __future__ import annotations

import torch


def box_grid(bbox_min, bbox_max, interval: float, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Grid points (G, 3) at `interval` Angstrom over [min - interval, max + interval), as the official code."""
    bbox_min = torch.as_tensor(bbox_min, dtype=torch.float64)
    bbox_max = torch.as_tensor(bbox_max, dtype=torch.float64)
    axes = [torch.arange(float(lo) - interval, float(hi) + interval, interval, dtype=torch.float64)
            for lo, hi in zip(bbox_min, bbox_max)]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.flatten() for m in mesh], dim=1).to(device=device, dtype=dtype)


def local_grid(interval: float, full_range: float, *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Offsets (K, 3) on arange(-range/2, range/2, interval) per axis (e.g. 0.1 over 0.6 -> 6^3 = 216 offsets)."""
    axis = torch.arange(-full_range / 2, full_range / 2, interval, dtype=torch.float64)
    mesh = torch.meshgrid(axis, axis, axis, indexing="ij")
    return torch.stack([m.flatten() for m in mesh], dim=1).to(device=device, dtype=dtype)
