"""Fingerprints for coverage, as CDVAE computes them: a structure's CrystalNN "ops" site fingerprints (matminer)
averaged over its sites, and its composition's 132 Magpie element-property statistics, standardised with the
means and standard deviations CDVAE ships (`cdvae_comp_scaler.json`, MIT licence, copied as data).

Featurising costs about 30 ms per site on one CPU core, so fingerprints of a dataset split are cached on disk
(`cache_dir/fingerprints-<sha1 of the crystals>.pt`, plain tensors, `weights_only=True`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from nesf.core.crystal import Crystal
from nesf.core.files import atomic_torch_save
from nesf.core.progress import Progress, counted

SCALER_FILE = Path(__file__).with_name("cdvae_comp_scaler.json")
STRUCTURE_FINGERPRINT_SIZE = 61
COMPOSITION_FINGERPRINT_SIZE = 132
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Fingerprints:
    """structure: (N, 61) mean CrystalNN fingerprints, NaN rows where featurising failed; composition: (N, 132)
    standardised Magpie fingerprints."""
    structure: np.ndarray
    composition: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """(N,) bool: both fingerprints exist (CDVAE drops the others from coverage)."""
        return np.isfinite(self.structure).all(axis=1) & np.isfinite(self.composition).all(axis=1)

    def __len__(self) -> int:
        return len(self.structure)


@lru_cache(maxsize=1)
def _featurizers():
    from matminer.featurizers.composition.composite import ElementProperty
    from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

    return CrystalNNFingerprint.from_preset("ops"), ElementProperty.from_preset("magpie")


@lru_cache(maxsize=1)
def _scaler() -> tuple[np.ndarray, np.ndarray]:
    data = json.loads(SCALER_FILE.read_text())
    return np.asarray(data["means"], dtype=np.float64), np.asarray(data["stds"], dtype=np.float64)


def standardise_composition(raw: np.ndarray) -> np.ndarray:
    means, stds = _scaler()
    scaled = (np.asarray(raw, dtype=np.float64) - means) / stds
    return np.where(np.isnan(scaled), 0.0, scaled)


def structure_fingerprint(crystal: Crystal) -> np.ndarray:
    """(61,) mean CrystalNN site fingerprint; NaN where it cannot be computed (no atoms, a degenerate cell)."""
    site_featurizer, _ = _featurizers()
    if crystal.num_atoms == 0:
        return np.full(STRUCTURE_FINGERPRINT_SIZE, np.nan)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = crystal.to_structure()
            sites = [site_featurizer.featurize(structure, i) for i in range(len(structure))]
    except Exception:  # CDVAE counts a structure whose fingerprint fails as invalid; matminer raises many types
        return np.full(STRUCTURE_FINGERPRINT_SIZE, np.nan)
    return np.asarray(sites, dtype=np.float64).mean(axis=0)


def composition_fingerprint(species) -> np.ndarray:
    """(132,) standardised Magpie fingerprint of the composition of `species` (atomic numbers)."""
    from pymatgen.core import Composition
    from pymatgen.core.periodic_table import Element

    elements, counts = np.unique(np.asarray(species, dtype=np.int64), return_counts=True)
    if not len(elements):
        return np.full(COMPOSITION_FINGERPRINT_SIZE, np.nan)
    _, composition_featurizer = _featurizers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = composition_featurizer.featurize(Composition({Element.from_Z(int(z)): int(n)
                                                            for z, n in zip(elements, counts)}))
    return standardise_composition(np.asarray(raw, dtype=np.float64))


def fingerprints(crystals: list[Crystal], *, cache_dir=None,
                 progress: Progress | None = None) -> Fingerprints:
    """Fingerprints of `crystals`; with `cache_dir`, read from / written to a cache keyed by the crystals."""
    cache_path = Path(cache_dir) / f"fingerprints-{_digest(crystals)}.pt" if cache_dir is not None else None
    if cache_path is not None and cache_path.is_file():
        try:
            data = torch.load(cache_path, weights_only=True)
            if data.get("version") == _CACHE_VERSION:
                return Fingerprints(data["structure"].numpy(), data["composition"].numpy())
        except Exception:  # a stale or broken cache is recomputed
            pass
    structure, composition = [], []
    for i, crystal in enumerate(crystals):
        structure.append(structure_fingerprint(crystal))
        composition.append(composition_fingerprint(crystal.species))
        if progress is not None:
            counted(progress, i + 1, len(crystals), "fingerprints")
    result = Fingerprints(np.asarray(structure).reshape(-1, STRUCTURE_FINGERPRINT_SIZE),
                          np.asarray(composition).reshape(-1, COMPOSITION_FINGERPRINT_SIZE))
    if cache_path is not None:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_torch_save({"version": _CACHE_VERSION, "structure": torch.from_numpy(result.structure),
                               "composition": torch.from_numpy(result.composition)}, cache_path)
        except OSError:  # an unwritable cache only costs the speed-up
            pass
    return result


def _digest(crystals: list[Crystal]) -> str:
    digest = hashlib.sha1()
    for crystal in crystals:
        digest.update(np.ascontiguousarray(crystal.lattice, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(crystal.cart_coords, dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(crystal.species, dtype=np.int64).tobytes())
    return digest.hexdigest()
