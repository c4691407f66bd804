"""Generate crystals with a trained autoencoder: sample latents from a density over its training latents
(`nesf.inference.generation.density`), decode them, and put each decoded crystal in the canonical frame (atoms wrapped
into the predicted cell, periodic duplicates merged), as the app and the CLI show decoded crystals.

Where: the whole space, near one latent (a chosen crystal's), or within a region (the latents of crystals lassoed
on the map). Reproducible: the same density, seed and settings give the same crystals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from nesf.core.canonical import canonical_crystal
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.inference.generation.density import DEFAULT_SPREAD, LatentDensity, density_from_state, fit_density

log = logging.getLogger(__name__)

MAX_SAMPLES = 10_000
ID_PREFIX = "gen"  # a sample's id: <prefix>-<seed of the round it was drawn in>-<index>


@dataclass(frozen=True)
class Where:
    """Where to sample: "space" (the whole density, at `temperature`), "near" (around `centres[0]`) or "region"
    (around `centres`, each draw `spread` times its component's covariance)."""
    kind: str = "space"
    centres: np.ndarray | None = None
    spread: float = DEFAULT_SPREAD
    label: str = "across the whole latent space"
    temperature: float = 1.0

    @classmethod
    def near(cls, latent: np.ndarray, label: str, spread: float = DEFAULT_SPREAD) -> "Where":
        return cls("near", np.asarray(latent, dtype=np.float32).reshape(1, -1), float(spread), f"near {label}")

    @classmethod
    def region(cls, latents: np.ndarray, label: str, spread: float = DEFAULT_SPREAD) -> "Where":
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim != 2 or not len(latents):
            raise NesfError("a region to sample in needs at least one crystal")
        return cls("region", latents, float(spread), label)


def atlas_density(atlas, method: str = "gmm", seed: int = 0) -> LatentDensity:
    """The density of `method` over the atlas's training latents: the one the atlas stores when it was fitted with
    `seed` (rebuilt in milliseconds), else fitted now (seconds to minutes: `nesf atlas` stores them)."""
    from nesf.inference.atlas import training_latents

    latents = training_latents(atlas)
    stored = atlas.densities.get(method)
    if stored is not None and int(stored.get("seed", -1)) == int(seed):
        try:
            return density_from_state(latents, stored)
        except (NesfError, KeyError, ValueError, RuntimeError) as exc:
            log.info("the atlas's stored %s density is not used (%s): fitting it", method, exc)
    return fit_density(latents, method, seed)


def check_count(count: int) -> int:
    if not 1 <= count <= MAX_SAMPLES:
        raise NesfError(f"number of samples must be 1 to {MAX_SAMPLES}, got {count}")
    return int(count)


def sample_latents(density: LatentDensity, count: int, seed: int = 0, where: Where = Where()) -> np.ndarray:
    check_count(count)
    if where.kind == "space":
        return density.sample(count, seed, where.temperature)
    if where.kind == "near":
        return density.near(where.centres[0], count, seed, where.spread)
    if where.kind == "region":
        return density.within(where.centres, count, seed, where.spread)
    raise NesfError(f"unknown place to sample {where.kind!r}; use space, near or region")


@dataclass(frozen=True)
class AtomCountSupport:
    """The atom counts a model's training crystals have: a sample whose decoded cell holds another count is one the
    model has never seen the like of (Perov-5 trains on 5-atom cells only; off the training latents its decoder
    sometimes finds a sixth atom ~1.4 A from another, or misses one). CDVAE predicts the count with a head trained on
    the same crystals; NeSF's decoder has none, so `generate(..., support=)` draws again in its place."""
    atom_counts: frozenset

    @classmethod
    def of(cls, crystals) -> "AtomCountSupport":
        counts = frozenset(int(c.num_atoms) for c in crystals)
        if not counts:
            raise NesfError("no training crystals to take the atom counts from")
        return cls(counts)

    def holds(self, crystal: Crystal) -> bool:
        return int(crystal.num_atoms) in self.atom_counts


MAX_SUPPORT_ROUNDS = 8  # draws of the shortfall (times 1.25) before a supported run gives up with what it has


def _round_seed(seed: int, round_number: int) -> int:
    """The seed of a supported run's later round: from (seed, round), far from the small seeds users pick."""
    return int(np.random.SeedSequence([int(seed), int(round_number)]).generate_state(1)[0])


def generate(autoencoder, density: LatentDensity, count: int, seed: int = 0, where: Where = Where(),
             decode_config=None, prefix: str = ID_PREFIX, progress=None, support: AtomCountSupport | None = None
             ) -> tuple[np.ndarray, list[Crystal]]:
    """(latents (count, L), decoded crystals in the canonical frame, ids `<prefix>-<seed>-<i>`);
    `progress(fraction, message)` as the decoding goes. With `support`, a sample whose atom count the training
    crystals do not have is replaced by a new draw (each round's seed derived from `seed` and the round, so no other
    run's seed repeats its draws; at most MAX_SUPPORT_ROUNDS rounds, so a density that seldom lands in support
    returns fewer than `count`); each kept sample's id names the round it was drawn in
    (`<prefix>-<seed of its round>-<i>`)."""
    latents = sample_latents(density, count, seed, where)
    ids = [f"{prefix}-{seed}-{i}" for i in range(count)]
    decoded = [canonical_crystal(c) for c in autoencoder.decode(latents, decode_config, ids=ids, progress=progress)]
    if support is None:
        return latents, decoded
    kept = [i for i, crystal in enumerate(decoded) if support.holds(crystal)]
    latents, decoded = latents[kept], [decoded[i] for i in kept]
    for round_number in range(1, MAX_SUPPORT_ROUNDS + 1):
        short = count - len(decoded)
        if short <= 0:
            break
        more_latents, more = generate(autoencoder, density, max(short + short // 4, 1),
                                      _round_seed(seed, round_number), where, decode_config, prefix)
        kept = [i for i, crystal in enumerate(more) if support.holds(crystal)][:short]
        latents = np.concatenate([latents, more_latents[kept]])
        decoded += [more[i] for i in kept]
    return latents[:count], decoded[:count]
