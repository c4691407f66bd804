"""Filters and derived colorings for a latent map's crystals (Chemiscope's model: points that do not match are
greyed, not removed).

A filter keeps a crystal when it passes every part given: its elements (contains all / any / none of a list), each
numeric range (volume, atom count, space group number, number of elements, reconstruction error, ...; bounds
inclusive, None open) and each category (crystal system, split). Derived per-crystal values for coloring: number of
elements, the presence or atomic fraction of one element, and the local latent density (the inverse mean distance to
the k nearest other latents).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nesf.core.errors import NesfError

ELEMENT_MODES = ("all", "any", "none")


@dataclass(frozen=True)
class MapFilter:
    elements: tuple[int, ...] = ()              # atomic numbers
    element_mode: str = "all"                   # "all" | "any" | "none"
    ranges: tuple[tuple[str, float | None, float | None], ...] = ()   # (table column, low, high)
    categories: tuple[tuple[str, tuple[str, ...]], ...] = ()          # (table column, values kept)

    def __post_init__(self):
        if self.element_mode not in ELEMENT_MODES:
            raise NesfError(f"unknown element filter {self.element_mode!r}; use one of {', '.join(ELEMENT_MODES)}")

    @property
    def active(self) -> bool:
        return bool(self.elements or self.ranges or self.categories)


def element_matrix(crystals, vocabulary: list[int] | None = None) -> tuple[np.ndarray, list[int]]:
    """(N, E) atomic fractions of each crystal over the atomic numbers `vocabulary` (default: those present,
    ascending), and that vocabulary."""
    if vocabulary is None:
        vocabulary = sorted({int(z) for c in crystals for z in np.unique(c.species)})
    column = {z: i for i, z in enumerate(vocabulary)}
    fractions = np.zeros((len(crystals), len(vocabulary)), dtype=np.float32)
    for row, crystal in enumerate(crystals):
        values, counts = np.unique(np.asarray(crystal.species, dtype=np.int64), return_counts=True)
        for z, n in zip(values, counts):
            if int(z) in column:
                fractions[row, column[int(z)]] = n / max(crystal.num_atoms, 1)
    return fractions, list(vocabulary)


def matching(table: pd.DataFrame, fractions: np.ndarray, vocabulary: list[int], spec: MapFilter) -> np.ndarray:
    """(N,) bool: the rows of `table` (and of `fractions`, same order) that pass `spec`."""
    keep = np.ones(len(table), dtype=bool)
    if spec.elements:
        column = {z: i for i, z in enumerate(vocabulary)}
        present = np.stack([fractions[:, column[z]] > 0 if z in column else np.zeros(len(table), dtype=bool)
                            for z in spec.elements], axis=1)
        if spec.element_mode == "all":
            keep &= present.all(axis=1)
        elif spec.element_mode == "any":
            keep &= present.any(axis=1)
        else:
            keep &= ~present.any(axis=1)
    for name, low, high in spec.ranges:
        if name not in table.columns:
            raise NesfError(f"no column {name!r} to filter on; the map has {', '.join(map(str, table.columns))}")
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
        inside = np.isfinite(values)
        if low is not None:
            inside &= values >= low
        if high is not None:
            inside &= values <= high
        keep &= inside
    for name, allowed in spec.categories:
        if name not in table.columns:
            raise NesfError(f"no column {name!r} to filter on; the map has {', '.join(map(str, table.columns))}")
        keep &= table[name].astype(str).isin([str(a) for a in allowed]).to_numpy()
    return keep


def number_of_elements(fractions: np.ndarray) -> np.ndarray:
    return (fractions > 0).sum(axis=1)


def local_density(latents: np.ndarray, k: int = 10, chunk: int = 2048) -> np.ndarray:
    """(N,) inverse mean Euclidean distance from each latent to its k nearest other latents."""
    latents = np.asarray(latents, dtype=np.float32)
    n = len(latents)
    k = max(1, min(int(k), n - 1)) if n > 1 else 0
    if k == 0:
        return np.zeros(n, dtype=np.float32)
    norms = (latents ** 2).sum(1)
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, chunk):
        block = latents[start:start + chunk]
        squared = norms[start:start + chunk, None] + norms[None, :] - 2.0 * block @ latents.T
        np.maximum(squared, 0.0, out=squared)
        squared[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # not itself
        nearest = np.partition(squared, k - 1, axis=1)[:, :k]
        out[start:start + chunk] = 1.0 / (np.sqrt(nearest).mean(axis=1) + 1e-12)
    return out
