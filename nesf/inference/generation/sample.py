"""Generate crystals with a trained autoencoder: sample latents from a density over its training latents
(`nesf.inference.generation.density`), decode them, and put each decoded crystal in the canonical frame (atoms wrapped
into the predicted cell, periodic duplicates merged), as the app and the CLI show decoded crystals.

Where: the whole space, near one latent (a chosen crystal's), or within a region (the latents of crystals lassoed
on the map). Reproducible: the same density, seed and settings give the same crystals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nesf.core.canonical import canonical_crystal
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.inference.generation.density import DEFAULT_SPREAD, LatentDensity, fit_density

MAX_SAMPLES = 10_000


@dataclass(frozen=True)
class Where:
    """Where to sample: "space" (the whole density), "near" (around `centres[0]`) or "region" (around `centres`)."""
    kind: str = "space"
    centres: np.ndarray | None = None
    spread: float = DEFAULT_SPREAD
    label: str = "the whole latent space"

    @classmethod
    def near(cls, latent: np.ndarray, label: str, spread: float = DEFAULT_SPREAD) -> "Where":
        return cls("near", np.asarray(latent, dtype=np.float32).reshape(1, -1), float(spread), f"near {label}")

    @classmethod
    def region(cls, latents: np.ndarray, label: str, spread: float = DEFAULT_SPREAD) -> "Where":
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim != 2 or not len(latents):
            raise NesfError("a region to sample in needs at least one crystal")
        return cls("region", latents, float(spread), label)


def training_density(autoencoder, method: str = "gmm", seed: int = 0) -> LatentDensity:
    """A density over the model's training latents (its atlas's train rows), fitted with `method`."""
    reference = autoencoder.training_reference()
    if reference is None:
        raise NesfError(f"{autoencoder.info.name}: no atlas with training latents beside the checkpoint; build one "
                        f"with `nesf atlas`")
    return fit_density(reference[0], method, seed)


def check_count(count: int) -> int:
    if not 1 <= count <= MAX_SAMPLES:
        raise NesfError(f"number of samples must be 1 to {MAX_SAMPLES}, got {count}")
    return int(count)


def sample_latents(density: LatentDensity, count: int, seed: int = 0, where: Where = Where()) -> np.ndarray:
    check_count(count)
    if where.kind == "space":
        return density.sample(count, seed)
    if where.kind == "near":
        return density.near(where.centres[0], count, seed, where.spread)
    if where.kind == "region":
        return density.within(where.centres, count, seed, where.spread)
    raise NesfError(f"unknown place to sample {where.kind!r}; use space, near or region")


def generate(autoencoder, density: LatentDensity, count: int, seed: int = 0, where: Where = Where(),
             decode_config=None, prefix: str = "gen") -> tuple[np.ndarray, list[Crystal]]:
    """(latents (count, L), decoded crystals in the canonical frame, ids `<prefix>-<seed>-<i>`)."""
    latents = sample_latents(density, count, seed, where)
    ids = [f"{prefix}-{seed}-{i}" for i in range(count)]
    decoded = autoencoder.decode(latents, decode_config, ids=ids)
    return latents, [canonical_crystal(c) for c in decoded]
