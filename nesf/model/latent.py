"""Paths between latent vectors (section 2.4): linear and spherical interpolation, endpoints included."""

from __future__ import annotations

import numpy as np

from nesf.core.errors import NesfError


def lerp(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """(steps, L) points on the segment from `start` to `end` (L,), endpoints included."""
    _check(start, end, steps)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return (1 - t) * start[None] + t * end[None]


def slerp(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """(steps, L) spherical interpolation: the norm is interpolated linearly and the direction along the great
    circle; falls back to `lerp` for (anti)parallel or zero vectors."""
    _check(start, end, steps)
    norm_start, norm_end = np.linalg.norm(start), np.linalg.norm(end)
    if norm_start < 1e-12 or norm_end < 1e-12:
        return lerp(start, end, steps)
    unit_start, unit_end = start / norm_start, end / norm_end
    omega = np.arccos(np.clip(np.dot(unit_start, unit_end), -1.0, 1.0))
    if omega < 1e-6 or np.pi - omega < 1e-6:
        return lerp(start, end, steps)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    direction = (np.sin((1 - t) * omega) * unit_start + np.sin(t * omega) * unit_end) / np.sin(omega)
    return direction * ((1 - t) * norm_start + t * norm_end)


def interpolate(start: np.ndarray, end: np.ndarray, steps: int, method: str = "linear") -> np.ndarray:
    if method == "linear":
        return lerp(start, end, steps)
    if method == "spherical":
        return slerp(start, end, steps)
    raise NesfError(f"unknown interpolation method {method!r} (use 'linear' or 'spherical')")


def _check(start, end, steps):
    if start.shape != end.shape or start.ndim != 1:
        raise NesfError(f"latent endpoints must be vectors of one size, got {start.shape} and {end.shape}")
    if not 2 <= steps <= 1000:
        raise NesfError(f"number of interpolation steps must be in 2..1000, got {steps}")
