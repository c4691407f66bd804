"""A cell's geometry in one place, numpy and torch side by side: lattices from parameters (pymatgen's default frame,
c along z, or VESTA's, a along x) and back, "inside the cell" with a margin, and the choice of the frame that holds a
set of atoms.

Conventions: a lattice is a (3, 3) matrix of row vectors a, b, c in Angstrom ((B, 3, 3) in torch); lengths in
Angstrom, angles in degrees; fractional coordinates are Cartesian ones times the inverse lattice.
"""

from __future__ import annotations

import numpy as np
import torch

FRAMES = (False, True)  # vesta: pymatgen's default frame first (it wins a tie), then VESTA's
# fractional margins within which an atom counts as inside a candidate frame: tight for the datasets' exact positions,
# looser for decoded positions (which land up to a few hundredths of the cell off a face)
DATA_FRAME_TOLERANCE = 0.02
DECODED_FRAME_TOLERANCE = 0.05


# -- numpy --------------------------------------------------------------------------------------------------------
def lattice_from_parameters(lengths_angstrom, angles_degrees, *, vesta: bool = False) -> np.ndarray:
    """(3, 3) lattice matrix of row vectors in Angstrom from (a, b, c) and (alpha, beta, gamma) in degrees.

    `vesta=False` follows pymatgen's default frame (c along z); `vesta=True` puts a along x (the VESTA frame),
    which is the frame of some triclinic cells in the paper's datasets.
    """
    from pymatgen.core import Lattice

    a, b, c = (float(x) for x in lengths_angstrom)
    alpha, beta, gamma = (float(x) for x in angles_degrees)
    return np.array(Lattice.from_parameters(a, b, c, alpha, beta, gamma, vesta=vesta).matrix, dtype=np.float64)


def parameters_from_lattice(lattice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths (a, b, c) in Angstrom and angles (alpha, beta, gamma) in degrees of a (3, 3) row-vector lattice."""
    lattice = np.asarray(lattice, dtype=np.float64)
    lengths = np.linalg.norm(lattice, axis=1)
    a, b, c = lattice

    def angle(u, v):
        cos = np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v))
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    angles = np.array([angle(b, c), angle(a, c), angle(a, b)])
    return lengths, angles


def count_inside_cell(lattice: np.ndarray, cart_coords: np.ndarray, tolerance: float) -> int:
    """How many Cartesian coordinates (n, 3) have fractional coordinates within [-tolerance, 1 + tolerance] of the
    (3, 3) row-vector `lattice`: how well a lattice frame holds a set of atoms."""
    if len(cart_coords) == 0:
        return 0
    frac = np.asarray(cart_coords, dtype=np.float64) @ np.linalg.inv(lattice)
    return int(np.sum(np.all((frac >= -tolerance) & (frac <= 1 + tolerance), axis=1)))


def frame_candidates(lengths_angstrom, angles_degrees) -> list[np.ndarray]:
    """The lattices of the parameters in the default and the VESTA frame that form a cell (finite, volume > 1e-3
    A^3), in that order."""
    candidates = []
    for vesta in FRAMES:
        try:
            lattice = lattice_from_parameters(lengths_angstrom, angles_degrees, vesta=vesta)
        except (ValueError, ArithmeticError):
            continue
        if np.all(np.isfinite(lattice)) and abs(np.linalg.det(lattice)) > 1e-3:
            candidates.append(lattice)
    return candidates


def frame_holding(lengths_angstrom, angles_degrees, cart_coords: np.ndarray, tolerance: float) -> np.ndarray | None:
    """The cell of these parameters in the frame (default or VESTA) that holds the most of `cart_coords` within the
    fractional `tolerance`; the default frame wins a tie. None when the parameters form no cell in either frame."""
    candidates = frame_candidates(lengths_angstrom, angles_degrees)
    if not candidates:
        return None
    return max(candidates, key=lambda lattice: count_inside_cell(lattice, cart_coords, tolerance))


# -- torch --------------------------------------------------------------------------------------------------------
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


def inside_cell_torch(points: torch.Tensor, lattice: torch.Tensor, margin: float) -> torch.Tensor:
    """points (G, 3) shared by all cells, or (B, G, 3) per cell; lattice (B, 3, 3) -> (B, G) True where a point lies
    in the cell widened by `margin` Angstrom along each axis (fractional margin = margin / axis length). In float64,
    on the inputs' device."""
    lattice = lattice.double()
    points = points.double() if points.dim() == 3 else points[None].double()
    frac = points @ torch.linalg.inv(lattice)  # (B, G, 3)
    pad = margin / torch.linalg.norm(lattice, dim=2)  # (B, 3)
    return ((frac >= -pad[:, None]) & (frac <= 1 + pad[:, None])).all(-1)


def inside_predicted_cell_torch(points: torch.Tensor, lengths: torch.Tensor, angles_deg: torch.Tensor,
                                margin: float) -> torch.Tensor:
    """points (B, G, 3), predicted lengths (B, 3) and angles (B, 3) -> (B, G) True where a point lies within `margin`
    Angstrom of the cell in either frame (default or VESTA). Parameters that form no cell keep every point."""
    inside = torch.zeros(points.shape[:2], dtype=torch.bool, device=points.device)
    for vesta in FRAMES:
        lattice = lattice_from_parameters_torch(lengths.double(), angles_deg.double(), vesta=vesta)  # (B, 3, 3)
        finite = torch.isfinite(lattice).all(-1).all(-1) & (torch.linalg.det(lattice).abs() > 1e-3)
        safe = torch.where(finite[:, None, None], lattice, torch.eye(3, dtype=lattice.dtype, device=lattice.device))
        inside |= inside_cell_torch(points, safe, margin) | ~finite[:, None]
    return inside
