"""Reader for the CDVAE benchmark CSVs (perov_5, carbon_24, ...): columns `material_id` and `cif` (P1 CIF text).

Each CIF is parsed by `nesf.data.structure_io` and converted to its conventional standard cell, as the paper's datasets
are. Parsing costs about 2 ms a row (about 8 s for perov_5's 3,787 validation rows on one CPU core), so results can
be cached: `cache_dir/<sha1 of the CSV bytes>.pt` holds plain tensors (no pickled objects) and is read back with
`torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np

from nesf.core.crystal import Crystal
from nesf.core.progress import Progress, counted
from nesf.core.errors import NesfError
from nesf.core.files import atomic_torch_save
from nesf.data.structure_io import read_structures

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("material_id", "cif")
CACHE_VERSION = 2  # bumped when the parsing changes: crystals now in the canonical frame (nesf.core.canonical)


def read_cdvae_csv(
    path,
    *,
    cache_dir=None,
    max_atoms: int = 500,
    progress: Progress | None = None,
) -> list[Crystal]:
    """Crystals (conventional standard cells, ids = `material_id`) of a CDVAE CSV file, in row order.

    cache_dir: folder for the parsed-result cache (created if needed); None reads without caching. A cache that is
        unreadable or stale is ignored and rewritten; an unwritable folder only costs the speed-up.
    progress: `progress(fraction, message)` while parsing.
    """
    import pandas as pd

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NesfError(f"{path}: cannot read the CDVAE CSV ({exc.strerror or exc})") from exc
    digest = hashlib.sha1(data).hexdigest()
    cache_path = Path(cache_dir) / f"{digest}.pt" if cache_dir is not None else None
    if cache_path is not None and cache_path.is_file():
        crystals = _load_cache(cache_path)
        if crystals is not None:
            logger.debug("%s: %d crystals from cache %s", path, len(crystals), cache_path)
            return crystals

    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={"material_id": str}, keep_default_na=False)
    except Exception as exc:  # pandas raises several parser error types
        raise NesfError(f"{path}: not a readable CSV file ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise NesfError(f"{path}: missing column(s) {missing}; a CDVAE CSV needs {list(REQUIRED_COLUMNS)}, "
                        f"found {list(frame.columns)[:10]}")

    crystals = []
    total = len(frame)
    for row, (material_id, cif) in enumerate(zip(frame["material_id"], frame["cif"])):
        material_id = str(material_id).strip() or f"row{row}"
        if not isinstance(cif, str) or not cif.strip():
            raise NesfError(f"{path}: row {row} (material_id {material_id}): empty cif")
        try:
            found = read_structures(cif.encode("utf-8"), f"{material_id}.cif", max_atoms=max_atoms)
        except NesfError as exc:
            raise NesfError(f"{path}: row {row} (material_id {material_id}): {exc}") from exc
        if len(found) != 1:
            raise NesfError(f"{path}: row {row} (material_id {material_id}): {len(found)} structures in one cif")
        crystal = found[0]
        crystals.append(Crystal(crystal.lattice, crystal.cart_coords, crystal.species, material_id))
        if progress is not None and (row % 100 == 99 or row == total - 1):
            counted(progress, row + 1, total, f"{path.name}: rows")

    if cache_path is not None:
        _save_cache(cache_path, crystals)
    return crystals


def _save_cache(cache_path: Path, crystals: list[Crystal]) -> None:
    import torch

    record = {
        "version": CACHE_VERSION,
        "ids": [c.id for c in crystals],
        "num_atoms": torch.tensor([c.num_atoms for c in crystals], dtype=torch.int64),
        "lattices": torch.from_numpy(np.stack([c.lattice for c in crystals]) if crystals else np.zeros((0, 3, 3))),
        "cart_coords": torch.from_numpy(np.concatenate([c.cart_coords for c in crystals]) if crystals
                                        else np.zeros((0, 3))),
        "species": torch.from_numpy(np.concatenate([c.species for c in crystals]) if crystals
                                    else np.zeros(0, dtype=np.int64)),
    }
    try:
        atomic_torch_save(record, cache_path)
    except OSError as exc:
        logger.info("not caching parsed CSV at %s (%s)", cache_path, exc)


def _load_cache(cache_path: Path) -> list[Crystal] | None:
    import torch

    try:
        record = torch.load(cache_path, weights_only=True)
        if record.get("version") != CACHE_VERSION:
            return None
        counts = record["num_atoms"].numpy()
        offsets = np.concatenate([[0], np.cumsum(counts)])
        lattices = record["lattices"].numpy()
        coords = record["cart_coords"].numpy()
        species = record["species"].numpy()
        return [
            Crystal(lattices[i], coords[offsets[i] : offsets[i + 1]], species[offsets[i] : offsets[i + 1]], str(cid))
            for i, cid in enumerate(record["ids"])
        ]
    except Exception as exc:  # a stale or damaged cache is rebuilt
        logger.info("ignoring unreadable cache %s (%s)", cache_path, exc)
        return None
