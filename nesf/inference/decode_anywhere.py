"""Decode anywhere on a latent map: the latent vector behind a 2-D map position.

PCA: the exact inverse on the training latents' mean plane: mean + x * PC1 + y * PC2 (the components fitted as the
map was, signs aligned with it; `nesf.inference.atlas.project_new` maps the result back to the same point). t-SNE has no
inverse: the latent is the inverse-distance-weighted mean of the latents of the k map points nearest to the position
(`k` = 5), and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nesf.core.errors import NesfError

NEIGHBORS = 5


@dataclass(frozen=True)
class MapPoint:
    latent: np.ndarray      # (L,)
    how: str                # how the latent was obtained, for the page
    neighbors: np.ndarray   # t-SNE: the map rows it interpolates; PCA: empty


def _pca(latents: np.ndarray, coords: np.ndarray, seed: int):
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(latents)
    signs = np.sign(np.sum(pca.transform(latents) * coords, axis=0))
    return pca, np.where(signs == 0, 1.0, signs)


def latent_at(xy, latents: np.ndarray, coords: np.ndarray, method: str, *, seed: int = 0,
              k: int = NEIGHBORS) -> MapPoint:
    """The latent vector at map position `xy` of a map `coords` (N, 2) of `latents` (N, L) drawn with `method`."""
    xy = np.asarray(xy, dtype=np.float64).reshape(2)
    latents = np.asarray(latents, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    if not np.isfinite(xy).all():
        raise NesfError(f"map position {xy.tolist()} is not a pair of finite numbers")
    if latents.ndim != 2 or len(latents) < 2 or len(coords) != len(latents):
        raise NesfError("decoding a map position needs a map of at least two crystals with their latents")
    if method == "pca":
        pca, signs = _pca(latents, coords, seed)
        latent = pca.mean_ + (xy * signs) @ pca.components_
        return MapPoint(latent.astype(np.float32), "the exact inverse of the PCA map, on the training latents' mean "
                                                   "plane", np.zeros(0, dtype=int))
    if method == "tsne":
        distances = np.linalg.norm(coords - xy[None], axis=1)
        order = np.argsort(distances, kind="stable")[:max(1, min(int(k), len(coords)))]
        weights = 1.0 / (distances[order] + 1e-6)
        latent = (latents[order] * weights[:, None]).sum(0) / weights.sum()
        return MapPoint(latent.astype(np.float32), f"t-SNE has no inverse: the inverse-distance-weighted mean of the "
                                                   f"latents of the {len(order)} nearest map points", order)
    raise NesfError(f"unknown map method {method!r} (use 'tsne' or 'pca')")
