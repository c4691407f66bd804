"""Cached access to the `nesf` library for the pages: models, atlases, datasets, uploads, encodings and maps.

Models and atlases are `st.cache_resource` (one copy per server, keyed by path and modification time); results of
computations are `st.cache_data` keyed by the checkpoint's hash and the inputs' content hash, so a slider or a
click never re-encodes a dataset and never re-decodes a structure it has decoded before.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app import settings
from nesf.checkpoint import CheckpointInfo
from nesf.config import MapConfig
from nesf.errors import NesfError

log = logging.getLogger("nesf.app")


# -- keys -------------------------------------------------------------------------------------------------------
def crystal_key(crystal) -> str:
    """Content hash of a crystal (lattice, coordinates, species)."""
    digest = hashlib.sha1()
    digest.update(np.ascontiguousarray(crystal.lattice, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(crystal.cart_coords, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(crystal.species, dtype=np.int64).tobytes())
    return digest.hexdigest()[:20]


def crystals_key(crystals) -> str:
    return hashlib.sha1("|".join(crystal_key(c) for c in crystals).encode()).hexdigest()[:20]


# -- checkpoints ------------------------------------------------------------------------------------------------
def _dir_signature(directories) -> tuple:
    entries = []
    for directory in directories:
        directory = Path(directory)
        if directory.is_dir():
            for path in sorted(directory.glob("*.pt")):
                try:
                    entries.append((str(path), path.stat().st_mtime))
                except OSError:
                    continue
    return tuple(entries)


@st.cache_data(show_spinner=False, max_entries=16)
def _list_checkpoints(signature: tuple, shipped_dir: str, user_dir: str) -> list[CheckpointInfo]:
    from nesf.checkpoint import list_checkpoints

    found = list_checkpoints([shipped_dir, user_dir], shipped_directory=Path(shipped_dir))
    # shipped first, then newest trained
    return sorted(found, key=lambda c: (not c.shipped, c.name if c.shipped else "", -c.mtime))


def checkpoints() -> list[CheckpointInfo]:
    """Every checkpoint under checkpoints/ (shipped) and checkpoints/user/ (trained from the app)."""
    dirs = [settings.CHECKPOINT_DIR, settings.USER_CHECKPOINT_DIR]
    return _list_checkpoints(_dir_signature(dirs), str(settings.CHECKPOINT_DIR), str(settings.USER_CHECKPOINT_DIR))


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _model(path: str, mtime: float, device: str):
    from nesf.api import Autoencoder

    return Autoencoder.from_checkpoint(path, device=device)


def model(checkpoint: CheckpointInfo, device: str = "auto"):
    return _model(str(checkpoint.path), checkpoint.mtime, device)


@st.cache_resource(show_spinner=False, max_entries=16)
def _sha256(path: str, mtime: float) -> str:
    from nesf.checkpoint import file_sha256

    return file_sha256(Path(path))


def checkpoint_hash(checkpoint: CheckpointInfo) -> str:
    return _sha256(str(checkpoint.path), checkpoint.mtime)


@st.cache_resource(show_spinner="Loading the latent atlas…", max_entries=4)
def _atlas(path: str, mtime: float):
    from nesf.atlas import load_atlas

    return load_atlas(Path(path))


def atlas(checkpoint: CheckpointInfo):
    """The checkpoint's atlas (latents, maps and table of its dataset), or None when it has none."""
    if not checkpoint.atlas_path:
        return None
    path = Path(checkpoint.atlas_path)
    return _atlas(str(path), path.stat().st_mtime)


# -- datasets ---------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, ttl=30)
def available_datasets(data_dir: str) -> dict[str, str]:
    """{registry name: the paper's name} of the datasets found in `data_dir` (empty when the folder is missing)."""
    from nesf.datasets import available_datasets as find

    if not Path(data_dir).is_dir():
        return {}
    return {info.name: info.paper_name for info in find(Path(data_dir))}


@st.cache_resource(show_spinner="Reading the dataset…", max_entries=4)
def dataset(name: str, data_dir: str):
    from nesf.datasets import load_dataset

    return load_dataset(name, Path(data_dir))


@dataclass
class Collection:
    """Crystals to browse: a table (one row per crystal), the crystals, and latents and maps when known."""

    name: str
    key: str
    table: pd.DataFrame
    crystals: list
    latents: np.ndarray | None = None
    maps: dict = field(default_factory=dict)   # "tsne" | "pca" -> (N, 2)
    map_settings: dict = field(default_factory=lambda: MapConfig().to_dict())  # of the shipped t-SNE map

    def find(self, query: str, limit: int = 50) -> pd.DataFrame:
        """Rows matching `query` (an id, a formula in any element order, elements), best first: `nesf.search`."""
        from nesf.search import search

        return self.table.iloc[search(self.table["id"], self.table["formula"], query, limit)]


def atlas_collection(checkpoint: CheckpointInfo) -> Collection | None:
    found = atlas(checkpoint)
    if found is None:
        return None
    table = found.table.reset_index(drop=True)
    return Collection(
        name=f"{found.dataset} (atlas)", key=f"atlas:{checkpoint.path}:{checkpoint.mtime}", table=table,
        crystals=list(found.crystals), latents=np.asarray(found.latents),
        maps={"tsne": np.asarray(found.tsne), "pca": np.asarray(found.pca)},
        map_settings=MapConfig.from_dict(found.map_settings).to_dict(),
    )


def _dataset_collection(name: str, data_dir: str, model_path: str, model_mtime: float, device: str) -> Collection:
    memo = _store()
    memo_key = ("dataset", name, data_dir, model_path, model_mtime, device)
    if (found := memo.get(memo_key)) is not None:
        return found

    data = dataset(name, data_dir)
    crystals = data.all_crystal_list()
    if not crystals:
        raise NesfError(f"dataset {name} has no crystals")
    net = _model(model_path, model_mtime, device)
    bar = st.progress(0.0, text=f"Encoding {len(crystals)} crystals of {name}…")
    try:
        latents = net.encode(crystals, progress=lambda fraction, _: bar.progress(fraction, text=f"Encoding {name}…"))
        bar.progress(1.0, text=f"Space groups of {name} (once per dataset)…")
        table = data.attributes()
    finally:
        bar.empty()
    found = Collection(name=name, key=f"dataset:{name}:{data_dir}:{model_path}:{model_mtime}", table=table,
                       crystals=crystals, latents=np.asarray(latents))
    memo[memo_key] = found
    return found


def dataset_collection(name: str, data_dir: str, checkpoint: CheckpointInfo, device: str = "auto") -> Collection:
    """A dataset of the data directory, encoded with the active model (once per model and dataset)."""
    return _dataset_collection(name, data_dir, str(checkpoint.path), checkpoint.mtime, device)


# -- uploads ----------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=64)
def read_upload(data: bytes, filename: str) -> list:
    """Crystals in one uploaded file (cached by content); NesfError says what is wrong with it."""
    from nesf.structure_io import read_structures

    if len(data) > settings.MAX_UPLOAD_BYTES:
        raise NesfError(
            f"{filename}: {len(data) / 1e6:.1f} MB is over the upload limit of {settings.MAX_UPLOAD_MB:g} MB"
        )
    if not data.strip():
        raise NesfError(f"{filename}: the file is empty")
    return read_structures(data, filename, max_bytes=settings.MAX_UPLOAD_BYTES, max_atoms=settings.MAX_ATOMS)


# -- model computations -----------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=512)
def _encode(model_hash: str, key: str, _crystals, _net) -> np.ndarray:
    return np.asarray(_net.encode(list(_crystals)))


def encode(checkpoint: CheckpointInfo, crystals, device: str = "auto") -> np.ndarray:
    """(B, 192) latents of `crystals` (cached by checkpoint and content)."""
    net = model(checkpoint, device)
    for crystal in crystals:
        net.check(crystal)
    return _encode(checkpoint_hash(checkpoint), crystals_key(crystals), crystals, net)


@st.cache_data(show_spinner=False, max_entries=512)
def _reconstruct(model_hash: str, key: str, mode: str, _crystals, _net) -> list:
    return list(_net.reconstruct(list(_crystals), config=_net.decode_preset(mode)))


def reconstruct(checkpoint: CheckpointInfo, crystals, mode: str = "fast", device: str = "auto") -> list:
    """Reconstructions of `crystals` (cached by checkpoint, decoding preset and content)."""
    net = model(checkpoint, device)
    for crystal in crystals:
        net.check(crystal)
    return _reconstruct(checkpoint_hash(checkpoint), crystals_key(crystals), mode, crystals, net)


@st.cache_data(show_spinner=False, max_entries=64)
def _interpolate(model_hash: str, start_key: str, end_key: str, steps: int, method: str, mode: str,
                 _start, _end, _net):
    latents, crystals = _net.interpolate(_start, _end, steps, method=method, config=_net.decode_preset(mode))
    return np.asarray(latents), list(crystals)


def interpolate(checkpoint: CheckpointInfo, start, end, steps: int, method: str, mode: str = "fast",
                device: str = "auto"):
    """(latents (steps, 192), decoded crystals) along the path from `start` to `end` (crystals or latents)."""
    net = model(checkpoint, device)

    def key(x):
        if isinstance(x, np.ndarray):
            return hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()[:20]
        net.check(x)
        return crystal_key(x)

    return _interpolate(checkpoint_hash(checkpoint), key(start), key(end), int(steps), method, mode, start, end, net)


class _Memo:
    """A bounded, thread-safe memo (least recently used entries go first) for results computed with a progress bar
    (cached functions must not draw elements)."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        """The value kept under `key`, or None."""
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key]

    def __setitem__(self, key, value) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@st.cache_resource(show_spinner=False)
def _store() -> _Memo:
    """The server-wide memo of encoded datasets and computed maps."""
    return _Memo(settings.MEMO_ENTRIES)


def _compute_map(collection_key: str, method: str, perplexity: float, seed: int, iterations: int,
                 latents) -> np.ndarray:
    from nesf.atlas import compute_map

    memo = _store()
    key = ("map", collection_key, method, perplexity, seed, iterations)
    if (found := memo.get(key)) is not None:
        return found
    bar = st.progress(0.0, text=f"Computing the {method.upper()} map of {len(latents)} crystals…")

    def progress(fraction, message=""):
        bar.progress(float(min(max(fraction, 0.0), 1.0)), text=message or f"Computing the {method.upper()} map…")

    try:
        coords = np.asarray(compute_map(np.asarray(latents), method=method, perplexity=perplexity, seed=seed,
                                        iterations=iterations, progress=progress))
    finally:
        bar.empty()
    memo[key] = coords
    return coords


def map_coords(collection: Collection, method: str, perplexity: float, seed: int, iterations: int,
               *, recompute: bool = False) -> np.ndarray:
    """2-D map of the collection: the shipped one when the defaults are asked, else computed (cached)."""
    defaults = collection.map_settings
    shipped = collection.maps.get(method)
    is_default = method == "pca" or (
        float(perplexity) == defaults["perplexity"] and int(seed) == defaults["seed"]
        and int(iterations) == defaults["iterations"]
    )
    if shipped is not None and is_default and not recompute:
        return shipped
    if collection.latents is None:
        raise NesfError(f"{collection.name}: no latent vectors to map")
    return _compute_map(collection.key, method, float(perplexity), int(seed), int(iterations), collection.latents)
