"""Datasets of crystals: the paper's (LCS6Å = lim_l6, ICSG3D, YBCO13 folds), CDVAE's (perov_5, carbon_24) and uploads.

Layout of a data directory (see `nesf.data.download`):

    <data_dir>/nesf_paper/dataset_<NAME>_<split>/{dataset.pkl, dataset_attr.json}
    <data_dir>/perov_5/{train,val,test}.csv, <data_dir>/carbon_24/{train,val,test}.csv
    <data_dir>/.cache/   parsed CSVs and per-crystal attribute tables (never inside the repository)

Where a dataset's train split is missing (the ICSG3D train pickle and the CDVAE train.csv files are too large to be
in this project's copy of the data), its validation split stands in as the training set and there is no validation
split; the dataset's `description` says so.

A dataset's species vocabulary is, for the paper's datasets, exactly the `sidx_to_z` of its dataset_attr.json (index
i = the paper's species index i); for CDVAE data and uploads, the sorted atomic numbers present. The bounding box is
the min / max of all training atoms' Cartesian coordinates in Angstrom, as the official
`compute_bounding_box_for_dataset`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nesf.core.crystal import Crystal
from nesf.core.progress import counted
from nesf.core.errors import NesfError
from nesf.core.files import atomic_write_bytes
from nesf.data.download import CDVAE_DATASETS, DOWNLOADS, PAPER_DATASETS, SPLITS, canonical_name

HEX_PROTOTYPES = "hex_prototypes"  # built-in addition: `load_dataset("lim_l6+hex_prototypes")`

logger = logging.getLogger(__name__)

ATTRIBUTE_COLUMNS = ("id", "split", "formula", "num_atoms", "volume_angstrom3",
                     "spacegroup_number", "spacegroup_symbol", "crystal_system")
ATTRIBUTES_SYMPREC = 0.1  # Angstrom, spglib tolerance for the attribute table's space groups
_ATTRIBUTES_VERSION = 1
HOLDOUT_PERCENT = 4  # of a stand-in training split (the val file, where train is missing) held out for validation


def default_data_dir() -> Path:
    """$NESF_DATA_DIR, else ./data (relative to the working directory)."""
    return Path(os.environ.get("NESF_DATA_DIR") or "data")


def default_cache_dir(data_dir) -> Path:
    """$NESF_CACHE_DIR, else <data_dir>/.cache, else (a read-only data directory) ~/.cache/nesf."""
    if os.environ.get("NESF_CACHE_DIR"):
        return Path(os.environ["NESF_CACHE_DIR"])
    data_dir = Path(data_dir)
    cache = data_dir / ".cache"
    if (cache.is_dir() and os.access(cache, os.W_OK)) or (not cache.exists() and os.access(data_dir, os.W_OK)):
        return cache
    return Path.home() / ".cache" / "nesf"


def paper_name(name: str) -> str:
    """The name the paper uses for registry dataset `name`."""
    if name == "lim_l6":
        return "LCS6Å"
    if name.startswith("YBCO13_fold"):
        return f"YBCO-like (fold {name.removeprefix('YBCO13_fold')})"
    if name in CDVAE_DATASETS:
        return {"perov_5": "Perov-5 (CDVAE)", "carbon_24": "Carbon-24 (CDVAE)"}[name]
    return name


@dataclass(frozen=True)
class DatasetInfo:
    name: str                      # registry name, for load_dataset / download
    paper_name: str                # as the paper (or CDVAE) calls it
    splits: tuple[str, ...]        # splits load_dataset will return (after any val -> train substitution)
    files_present: tuple[str, ...]  # paths relative to the data directory
    files_missing: tuple[str, ...]
    description: str


# ----------------------------------------------------------------------------------------------------- datasets


class CrystalDataset:
    """Named splits of crystals with a species vocabulary and the training set's bounding box.

    name: a label (registry name, or the user's for uploads).
    splits: {"train" | "val" | "test": [Crystal, ...]}; absent splits are simply missing keys.
    species_vocab: atomic numbers, index -> Z (the model's species index).
    bbox_min, bbox_max: (3,) Angstrom, min / max over all training atoms' Cartesian coordinates (over every
        crystal where there is no training split).
    description: provenance and any substitution made while loading.
    cache_dir: folder for the on-disk attribute table cache; None keeps it in memory only.
    """

    def __init__(self, name: str, splits: dict, species_vocab, *, description: str = "", cache_dir=None):
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise NesfError(f"dataset {name!r}: unknown split(s) {sorted(unknown)}; use {list(SPLITS)}")
        self.name = str(name)
        self.splits = {s: list(splits[s]) for s in SPLITS if s in splits}
        self.species_vocab = [int(z) for z in species_vocab]
        self.description = description
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        vocab = set(self.species_vocab)
        for split, crystals in self.splits.items():
            for crystal in crystals:
                outside = set(crystal.species.tolist()) - vocab
                if outside:
                    raise NesfError(f"dataset {name!r}: {split} crystal {crystal.id!r} has elements "
                                    f"Z={sorted(outside)} outside the species vocabulary")
        train = self.splits.get("train") or self.all_crystal_list()
        if train and any(c.num_atoms for c in train):
            coords = np.concatenate([c.cart_coords for c in train])
            self.bbox_min, self.bbox_max = coords.min(axis=0), coords.max(axis=0)
        else:
            self.bbox_min, self.bbox_max = np.zeros(3), np.zeros(3)
        self._attributes = None
        self._formulas = None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(c)}" for s, c in self.splits.items())
        return f"CrystalDataset({self.name!r}, {sizes}, vocab={len(self.species_vocab)})"

    def __len__(self) -> int:
        return sum(len(c) for c in self.splits.values())

    def crystals(self, split: str) -> list[Crystal]:
        """The crystals of `split` ("train", "val" or "test"); [] for a split this dataset lacks."""
        if split not in SPLITS:
            raise NesfError(f"dataset {self.name!r}: unknown split {split!r}; use one of {list(SPLITS)}")
        return self.splits.get(split, [])

    def all_crystal_list(self) -> list[Crystal]:
        return [c for crystals in self.splits.values() for c in crystals]

    def all_crystals(self) -> list[tuple[str, Crystal]]:
        """(split, crystal) pairs of every split, train then val then test."""
        return [(split, c) for split, crystals in self.splits.items() for c in crystals]

    def content_hash(self) -> str:
        """SHA-1 over every crystal's split, id, lattice, coordinates and species (keys the attribute cache)."""
        digest = hashlib.sha1()
        for split, crystal in self.all_crystals():
            digest.update(f"{split}\0{crystal.id}\0{crystal.num_atoms}\0".encode())
            digest.update(np.ascontiguousarray(crystal.lattice).tobytes())
            digest.update(np.ascontiguousarray(crystal.cart_coords).tobytes())
            digest.update(np.ascontiguousarray(crystal.species).tobytes())
        return digest.hexdigest()

    def attributes(self, split: str | None = None, *, progress=None):
        """pandas DataFrame, one row per crystal (all splits, or `split`), columns ATTRIBUTE_COLUMNS.

        Space groups come from spglib (symprec 0.1 A), about 3 ms a crystal (20 s for lim_l6's 6,005 on a shared
        CPU); the table is computed once, then kept in memory and, with a cache_dir, on disk keyed by dataset name
        and content hash. `progress(fraction, message)` while it is computed.
        """
        if self._attributes is None:
            self._attributes = self._load_or_compute_attributes(progress)
        table = self._attributes
        if split is not None:
            if split not in SPLITS:
                raise NesfError(f"dataset {self.name!r}: unknown split {split!r}; use one of {list(SPLITS)}")
            table = table[table["split"] == split].reset_index(drop=True)
        return table.copy()

    def _attribute_cache_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name)[:80]
        return self.cache_dir / f"attributes-{safe}-{self.content_hash()[:20]}-v{_ATTRIBUTES_VERSION}.csv"

    def _load_or_compute_attributes(self, progress):
        import pandas as pd

        path = self._attribute_cache_path()
        if path is not None and path.is_file():
            try:
                table = pd.read_csv(path, dtype={"id": str, "split": str, "formula": str, "spacegroup_symbol": str,
                                                 "crystal_system": str}, keep_default_na=False)
                if tuple(table.columns) == ATTRIBUTE_COLUMNS and len(table) == len(self):
                    return table
            except Exception as exc:  # damaged cache: recompute
                logger.info("ignoring unreadable attribute cache %s (%s)", path, exc)
        table = self._compute_attributes(progress)
        if path is not None:
            _write_atomically(path, table.to_csv(index=False).encode())
        return table

    def _compute_attributes(self, progress=None):
        import pandas as pd

        from nesf.data.structure_io import spacegroup

        rows = []
        formulas = self.formulas()
        total = len(self)
        for done, ((split, crystal), formula) in enumerate(zip(self.all_crystals(), formulas), start=1):
            number, symbol, system = spacegroup(crystal, symprec=ATTRIBUTES_SYMPREC)
            rows.append((crystal.id, split, formula, crystal.num_atoms, crystal.volume_angstrom3,
                         number, symbol, system))
            if progress is not None and (done % 200 == 0 or done == total):
                counted(progress, done, total, f"attributes of {self.name}")
        return pd.DataFrame(rows, columns=list(ATTRIBUTE_COLUMNS))

    def formulas(self) -> list[str]:
        """Reduced formulas in all_crystals() order (cached)."""
        if self._formulas is None:
            if self._attributes is not None:
                self._formulas = self._attributes["formula"].tolist()
            else:
                self._formulas = _reduced_formulas([c for _, c in self.all_crystals()])
        return self._formulas

    def find(self, query: str, limit: int | None = None) -> list[tuple[str, Crystal]]:
        """(split, crystal) pairs matching `query` (an id, a formula in any element order, or elements), best first:
        as `nesf.core.search.search` ranks them."""
        from nesf.core.search import search

        pairs = self.all_crystals()
        return [pairs[i] for i in search([c.id for _, c in pairs], self.formulas(), query, limit)]


def _reduced_formulas(crystals: list[Crystal]) -> list[str]:
    from pymatgen.core import Composition, Element

    symbols = {}
    out = []
    cache = {}
    for crystal in crystals:
        values, counts = np.unique(crystal.species, return_counts=True)
        key = (tuple(values.tolist()), tuple(counts.tolist()))
        if key not in cache:
            parts = {}
            for z, n in zip(*key):
                if z not in symbols:
                    symbols[z] = Element.from_Z(int(z)).symbol
                parts[symbols[z]] = n
            cache[key] = Composition(parts).reduced_formula if parts else ""
        out.append(cache[key])
    return out


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        logger.info("not caching %s (%s)", path, exc)


# ----------------------------------------------------------------------------------------------------- registry


def _present_files(name: str, data_dir: Path) -> tuple[list[str], list[str]]:
    present, missing = [], []
    for remote in DOWNLOADS[name]:
        (present if (data_dir / remote.path).is_file() else missing).append(remote.path)
    return present, missing


def _split_sources(name: str, data_dir: Path) -> dict[str, Path]:
    """Split -> the file (CDVAE csv) or folder (paper) that holds its crystals, for splits present on disk."""
    sources = {}
    for split in SPLITS:
        if name in CDVAE_DATASETS:
            path = data_dir / name / f"{split}.csv"
            if path.is_file():
                sources[split] = path
        else:
            folder = data_dir / "nesf_paper" / f"dataset_{name}_{split}"
            if (folder / "dataset.pkl").is_file() and (folder / "dataset_attr.json").is_file():
                sources[split] = folder
    return sources


def _split_plan(sources: dict) -> tuple[dict[str, str], str]:
    """Which file split serves which dataset split, and a note on substitutions."""
    plan = {split: split for split in sources}
    note = ""
    if "train" not in sources and "val" in sources:
        plan = {"train": "val", "val": "val", **({"test": "test"} if "test" in sources else {})}
        note = (f"The train split is not in the data directory, so the validation split is used as the training set, "
                f"less the {HOLDOUT_PERCENT} % of its crystals (chosen by a hash of their ids) held out as the "
                f"validation split.")
    return plan, note


def holdout(crystals, percent: int = None) -> tuple[list[Crystal], list[Crystal]]:
    """(kept, held_out): `crystals` split by a hash of each id, so that the same crystal is held out whatever the
    row order or the file it is read from; about `percent` (default HOLDOUT_PERCENT) % are held out."""
    percent = HOLDOUT_PERCENT if percent is None else int(percent)
    kept, held_out = [], []
    for crystal in crystals:
        bucket = int.from_bytes(hashlib.sha1(str(crystal.id).encode("utf-8")).digest()[:4], "big") % 100
        (held_out if bucket < percent else kept).append(crystal)
    return kept, held_out


def _describe(name: str, note: str, missing: list[str]) -> str:
    if name in CDVAE_DATASETS:
        text = f"{paper_name(name)}: CDVAE benchmark (txie-93/cdvae), conventional standard cells of its P1 CIFs."
    else:
        text = f"{paper_name(name)}: dataset of the NeSF paper (Chiba et al. 2023), conventional standard cells."
    if missing:
        text += f" Missing files: {', '.join(missing)}."
    if note:
        text += " " + note
    return text


def available_datasets(data_dir=None) -> list[DatasetInfo]:
    """The registry datasets with at least one split in `data_dir` (default: default_data_dir())."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    infos = []
    for name in (*PAPER_DATASETS, *CDVAE_DATASETS):
        sources = _split_sources(name, data_dir)
        if not sources:
            continue
        plan, note = _split_plan(sources)
        present, missing = _present_files(name, data_dir)
        infos.append(DatasetInfo(name, paper_name(name), tuple(plan), tuple(present), tuple(missing),
                                 _describe(name, note, missing)))
    return infos


def load_dataset(name: str, data_dir=None, *, cache_dir=None, progress=None) -> CrystalDataset:
    """The registry dataset `name` ("lim_l6" or "LCS6A", "ICSG3D", "YBCO13_fold0".."YBCO13_fold19", "perov_5",
    "carbon_24") from `data_dir` (default: default_data_dir()).

    cache_dir: where parsed CSVs and attribute tables are cached (default: default_cache_dir(data_dir); an
        unwritable folder only loses the cache).
    progress: `progress(fraction, message)` while CDVAE CSVs are parsed.
    """
    from nesf.data.cdvae_csv import read_cdvae_csv
    from nesf.data.paper_data import read_paper_split

    if "+" in str(name):
        return _load_merged(str(name), data_dir, cache_dir=cache_dir, progress=progress)
    if str(name).strip().lower() == HEX_PROTOTYPES:
        raise NesfError(f"{HEX_PROTOTYPES!r} is built to fit another dataset's training range: name it added to one, "
                        f"e.g. 'lim_l6+{HEX_PROTOTYPES}'")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    name = canonical_name(name)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir(data_dir)
    sources = _split_sources(name, data_dir)
    if not sources:
        where = data_dir / name if name in CDVAE_DATASETS else data_dir / "nesf_paper" / f"dataset_{name}_<split>"
        raise NesfError(f"dataset {name!r} is not in the data directory {data_dir} (looked for {where}); "
                        f"download it with `python -m nesf download {name}`")
    plan, note = _split_plan(sources)
    _, missing = _present_files(name, data_dir)

    splits, vocab = {}, None
    read = {}
    for source_split in dict.fromkeys(plan.values()):
        if name in CDVAE_DATASETS:
            read[source_split] = read_cdvae_csv(sources[source_split], cache_dir=cache_dir, progress=progress)
        else:
            crystals, split_vocab = read_paper_split(sources[source_split])
            if vocab is None:
                vocab = split_vocab
            elif split_vocab != vocab:
                raise NesfError(f"{sources[source_split]}: sidx_to_z differs from the other splits of {name}")
            read[source_split] = crystals
    for split, source_split in plan.items():
        splits[split] = read[source_split]
    if plan.get("train") == "val":  # the val file stands in for train: hold a few percent of it out as val
        splits["train"], splits["val"] = holdout(read["val"])
    if name in CDVAE_DATASETS:
        vocab = sorted({int(z) for crystals in splits.values() for c in crystals for z in c.species})
    else:
        # The missing train pickle's json still names the paper's vocabulary; use it where present.
        train_attr = data_dir / "nesf_paper" / f"dataset_{name}_train" / "dataset_attr.json"
        if "train" not in sources and train_attr.is_file():
            try:
                train_vocab = [int(z) for z in json.loads(train_attr.read_text())["sidx_to_z"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise NesfError(f"{train_attr}: not a valid dataset_attr.json ({exc})") from exc
            if train_vocab != vocab:
                raise NesfError(f"{train_attr}: sidx_to_z differs from the other splits of {name}")
    return CrystalDataset(name, splits, vocab, description=_describe(name, note, missing), cache_dir=cache_dir)


def evaluated_dataset(name: str) -> str:
    """The dataset whose val and test splits a dataset `name` has: itself, less the additions to its train split
    alone ("lim_l6+hex_prototypes" is evaluated as lim_l6, so the paper's figures for lim_l6 apply)."""
    parts = [part for part in str(name or "").split("+") if part.strip().lower() != HEX_PROTOTYPES]
    return "+".join(parts)


def _load_merged(name: str, data_dir, *, cache_dir=None, progress=None) -> CrystalDataset:
    """"a+b+...": the registry datasets merged (`merge_datasets`); "hex_prototypes" adds, to the train split only,
    the hexagonal prototypes that fit the datasets before it (`nesf.data.hexagonal_prototypes`)."""
    parts = [part.strip() for part in name.split("+")]
    if not parts[0] or parts[0].lower() == HEX_PROTOTYPES:
        raise NesfError(f"dataset {name!r}: {HEX_PROTOTYPES!r} is added to a dataset named before it")
    datasets = []
    for part in parts:
        if part.lower() != HEX_PROTOTYPES:
            datasets.append(load_dataset(part, data_dir, cache_dir=cache_dir, progress=progress))
            continue
        from nesf.data.hexagonal_prototypes import CellBounds, hexagonal_prototype_crystals

        reference = datasets[0] if len(datasets) == 1 else merge_datasets(datasets, "reference")
        bounds = CellBounds.of(reference.splits["train"], reference.species_vocab, reference.bbox_min,
                               reference.bbox_max)
        crystals = hexagonal_prototype_crystals(bounds)
        datasets.append(CrystalDataset(HEX_PROTOTYPES, {"train": crystals}, reference.species_vocab,
                                       description=f"{len(crystals)} hexagonal prototype crystals in orthohexagonal "
                                                   "cells (nesf.data.hexagonal_prototypes), train split only"))
    return merge_datasets(datasets, "+".join(d.name for d in datasets), cache_dir=cache_dir)


def dataset_from_crystals(name: str, crystals, val_fraction: float = 0.05, test_fraction: float = 0.05,
                          seed: int = 0, *, cache_dir=None) -> CrystalDataset:
    """A dataset of user crystals split at random (numpy seed `seed`); the training split keeps at least one."""
    crystals = list(crystals)
    if not crystals:
        raise NesfError(f"dataset {name!r}: no crystals given")
    for fraction, label in ((val_fraction, "val_fraction"), (test_fraction, "test_fraction")):
        if not 0.0 <= fraction < 1.0:
            raise NesfError(f"{label} must lie in [0, 1), got {fraction}")
    n = len(crystals)
    n_val, n_test = int(round(n * val_fraction)), int(round(n * test_fraction))
    while n_val + n_test > n - 1 and (n_val or n_test):
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    order = np.random.default_rng(seed).permutation(n)
    parts = {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}
    splits = {s: [crystals[i] for i in sorted(parts[s])] for s in SPLITS if len(parts[s])}
    vocab = sorted({int(z) for c in crystals for z in c.species})
    description = (f"{n} uploaded crystals split at random (seed {seed}): "
                   f"{len(parts['train'])} train, {n_val} val, {n_test} test.")
    return CrystalDataset(name, splits, vocab, description=description, cache_dir=cache_dir)


def merge_datasets(datasets, name: str, *, cache_dir=None) -> CrystalDataset:
    """One dataset holding every split of `datasets` (concatenated per split, ids kept as they are).

    The vocabulary is the first dataset's, in its order (its species indices keep their meaning), followed by the
    other datasets' new atomic numbers in ascending order. The bounding box is recomputed from the merged train split.
    """
    datasets = list(datasets)
    if not datasets:
        raise NesfError(f"dataset {name!r}: nothing to merge")
    vocab = list(datasets[0].species_vocab)
    vocab += sorted({z for d in datasets[1:] for z in d.species_vocab} - set(vocab))
    splits = {s: [c for d in datasets for c in d.splits.get(s, [])] for s in SPLITS}
    splits = {s: c for s, c in splits.items() if c}
    description = "Merged from " + "; ".join(f"{d.name} ({d.description})" if d.description else d.name
                                             for d in datasets)
    if cache_dir is None:
        cache_dir = datasets[0].cache_dir
    return CrystalDataset(name, splits, vocab, description=description, cache_dir=cache_dir)


def training_dataset(names, structures_dir: Path | None = None, data_dir=None) -> CrystalDataset:
    """What `nesf train` trains on: the named datasets and the structure files in `structures_dir` (as one dataset
    "uploaded", split by `dataset_from_crystals`), merged into one where there are several."""
    from nesf.data.structure_io import read_structure_file

    datasets = [load_dataset(name, data_dir) for name in names]
    if structures_dir:
        crystals = []
        for path in sorted(Path(structures_dir).iterdir()):
            if path.is_file() and not path.name.startswith("."):
                crystals.extend(read_structure_file(path))
        datasets.append(dataset_from_crystals("uploaded", crystals))
    if not datasets:
        raise NesfError("nothing to train on: give --dataset NAME and/or --structures-dir DIR")
    return datasets[0] if len(datasets) == 1 else merge_datasets(datasets, "+".join(d.name for d in datasets))
