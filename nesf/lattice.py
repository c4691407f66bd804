"""Batched lattice construction on tensors (pymatgen's `Lattice.from_parameters` frame: c along z)."""

from __future__ import annotations

import torch


def lattice_from_parameters_torch(lengths: torch.Tensor, angles_deg: torch.Tensor, *, vesta: bool = False
                                  ) -> torch.Tensor:
    """lengths (B, 3) Angstrom, angles (B, 3) degrees -> (B, 3, 3) row-vector lattices.

    `vesta=False`: pymatgen's default frame (c along z); `vesta=True`: a along x, b in the xy plane.
    Angles that do not form a cell give NaN rows; callers check with `torch.isfinite`.
    """
    a, b, c = lengths.unbind(-1)
    alpha, beta, gamma = torch.deg2rad(angles_deg).unbind(-1)
    cos_a, cos_b, cos_g = alpha.cos(), beta.cos(), gamma.cos()
    sin_a, sin_b = alpha.sin(), beta.sin()
    if vesta:
        sin_g = gamma.sin()
        c2 = (cos_a - cos_b * cos_g) / sin_g
        c3 = torch.sqrt(1 - cos_b ** 2 - c2 ** 2)
        zeros = torch.zeros_like(a)
        return torch.stack([
            torch.stack([a, zeros, zeros], dim=-1),
            torch.stack([b * cos_g, b * sin_g, zeros], dim=-1),
            torch.stack([c * cos_b, c * c2, c * c3], dim=-1),
        ], dim=-2)
    val = ((cos_a * cos_b - cos_g) / (sin_a * sin_b)).clamp(-1.0, 1.0)
    gamma_star = torch.arccos(val)
    zeros = torch.zeros_like(a)
    vector_a = torch.stack([a * sin_b, zeros, a * cos_b], dim=-1)
    vector_b = torch.stack([-b * sin_a * gamma_star.cos(), b * sin_a * gamma_star.sin(), b * cos_a], dim=-1)
    vector_c = torch.stack([zeros, zeros, c], dim=-1)
    return torch.stack([vector_a, vector_b, vector_c], dim=-2)
