"""Latents far from all the others, which a fit over a dataset's latents leaves out.

A latent is an outlier when its distance to the latents' coordinate-wise median exceeds the median distance by more
than OUTLIER_Z robust standard deviations (1.4826 x the median absolute deviation of the distances).

Why: LCS6A's training latents hold four such (one-atom cells: two of O at distance ~1,570 from the median, one of C
at ~320, one of H at 34, where the typical distance is 12 +- 1.5; Perov-5's and YBCO13's have none). Left in, they
own the largest direction of the latents' covariance (eigenvalue 926 of a trace of 1,070): the PCA map drew 6,002
crystals as a thin line beside two dots 1,500 units away, and a generation density pointed its widest spread at
them. Fits (`nesf.inference.generation.density`, the PCA maps in `nesf.inference.atlas`) use the inliers; every
crystal, outlier or not, is still encoded, mapped (projected) and shown.
"""

from __future__ import annotations

import numpy as np

OUTLIER_Z = 10.0  # robust z-score of a latent's distance to the median beyond which a fit leaves it out


def inlier_mask(latents: np.ndarray) -> np.ndarray:
    """(N,) bool: the latents that are not outliers (see the module docstring)."""
    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or not len(latents):
        return np.ones(len(latents), dtype=bool)
    distances = np.linalg.norm(latents - np.median(latents, axis=0), axis=1)
    centre = np.median(distances)
    spread = 1.4826 * np.median(np.abs(distances - centre))
    if spread <= 0:
        return np.ones(len(latents), dtype=bool)
    return (distances - centre) / spread <= OUTLIER_Z
