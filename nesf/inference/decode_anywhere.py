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
    from nesf.inference.atlas import map_pca

    pca = map_pca(latents, seed)
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


@dataclass(frozen=True)
class DataDistance:
    """How far a latent lies from a dataset's latents, against the dataset's own spacing (each crystal's distance to
    its nearest other crystal): `nearest` the distance to the nearest crystal, `median_spacing` and `far_spacing` the
    median and the FAR_QUANTILE of the spacing, all in latent units."""
    nearest: float
    median_spacing: float
    far_spacing: float

    @property
    def level(self) -> str:
        """"within the data" (no farther than the median spacing), "at the data's edge" (up to the FAR_QUANTILE
        spacing) or "far from any data"."""
        if self.nearest <= self.median_spacing:
            return "within the data"
        return "at the data's edge" if self.nearest <= self.far_spacing else "far from any data"

    def sentence(self) -> str:
        ratio = self.nearest / max(self.median_spacing, 1e-12)
        text = (f"{self.level}: the nearest dataset crystal is {self.nearest:.3g} away in latent space, {ratio:.1f}x "
                f"the dataset's median spacing ({self.median_spacing:.3g}; {100 * FAR_QUANTILE:.0f} % of its crystals "
                f"have a neighbour within {self.far_spacing:.3g})")
        if self.level == "far from any data":
            return text + ". The decoder was never trained near here: read the structure as a guess, not a prediction"
        if self.level == "at the data's edge":
            return text + ". Between or beside the training crystals: the structure may be less reliable than theirs"
        return text + ". As close to a training crystal as training crystals are to each other"


FAR_QUANTILE = 0.95


def nearest_spacing(latents: np.ndarray) -> np.ndarray:
    """(N,) each latent's distance to its nearest other latent (N >= 2)."""
    from sklearn.neighbors import NearestNeighbors

    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or len(latents) < 2:
        raise NesfError("the spacing of a dataset's latents needs at least two of them")
    distances, _ = NearestNeighbors(n_neighbors=2).fit(latents).kneighbors(latents)
    return distances[:, 1]


def distance_from_data(latent: np.ndarray, latents: np.ndarray, spacing: np.ndarray | None = None) -> DataDistance:
    """How far `latent` (L,) lies from `latents` (N, L); `spacing` the precomputed `nearest_spacing(latents)`."""
    latents = np.asarray(latents, dtype=np.float64)
    spacing = nearest_spacing(latents) if spacing is None else np.asarray(spacing, dtype=np.float64)
    nearest = float(np.linalg.norm(latents - np.asarray(latent, dtype=np.float64).reshape(1, -1), axis=1).min())
    return DataDistance(nearest, float(np.median(spacing)), float(np.quantile(spacing, FAR_QUANTILE)))
