"""Cached access to the `nesf` library for the pages: models, atlases, datasets, uploads, encodings and maps.

Models and atlases are `st.cache_resource` (one copy per server, keyed by path and modification time). Results of
computations (uploads read, encodings, reconstructions, interpolations) are kept in a server-wide `Memo` keyed by
the checkpoint's hash and the inputs' content hash, so a slider or a click never re-decodes a structure it has
decoded before; encoded datasets and computed maps in another. Every cache is bounded: a `Memo` by its entry count
and by the approximate bytes of what it holds (settings.RESULT_* and settings.MEMO_*), least recently used first,
and the `st.cache_*` functions by `max_entries` (their entries are small or, for models and atlases, few).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import numpy as np
import streamlit as st

from app import settings
from app.memo import ComputeGate, Memo
from nesf.checkpoint import CheckpointInfo
from nesf.core.config import MapConfig
from nesf.core.errors import NesfError
from nesf.inference.atlas import Atlas

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

    # models only: a run cancelled before its first epoch leaves a resume state of untrained weights
    found = [c for c in list_checkpoints([shipped_dir, user_dir], shipped_directory=Path(shipped_dir)) if c.trained]
    # the shipped default first, the other shipped ones by name, then those trained here, newest first
    return sorted(found, key=lambda c: (not c.shipped, c.path.name != settings.DEFAULT_CHECKPOINT,
                                        c.name.lower() if c.shipped else "", -c.mtime))


def checkpoints() -> list[CheckpointInfo]:
    """Every trained checkpoint under checkpoints/ (shipped) and checkpoints/user/ (trained from the app)."""
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
def _atlas(path: str, mtime: float, model_path: str, model_mtime: float, device: str):
    from nesf.inference.atlas import load_atlas

    return load_atlas(Path(path), _model(model_path, model_mtime, device))  # the model recomputes its latents


def atlas(checkpoint: CheckpointInfo, device: str = "auto"):
    """The checkpoint's atlas (latents, maps and table of its dataset), or None when it has none."""
    if not checkpoint.atlas_path:
        return None
    path = Path(checkpoint.atlas_path)
    return _atlas(str(path), path.stat().st_mtime, str(checkpoint.path), checkpoint.mtime, device)


# -- datasets ---------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, ttl=30, max_entries=16)  # keyed by a folder the user types
def available_datasets(data_dir: str) -> dict[str, str]:
    """{registry name: the paper's name} of the datasets found in `data_dir` (empty when the folder is missing)."""
    from nesf.data.datasets import available_datasets as find

    if not Path(data_dir).is_dir():
        return {}
    return {info.name: info.paper_name for info in find(Path(data_dir))}


@st.cache_resource(show_spinner="Reading the dataset…", max_entries=4)
def dataset(name: str, data_dir: str):
    from nesf.data.datasets import load_dataset

    return load_dataset(name, Path(data_dir))


def checkpoint_atlas(checkpoint: CheckpointInfo, device: str = "auto") -> Atlas | None:
    """The checkpoint's atlas as the map shows it (named "<dataset> (atlas)"), or None when it has none."""
    found = atlas(checkpoint, device)
    if found is None:
        return None
    return dataclasses.replace(found, table=found.table.reset_index(drop=True), name=f"{found.dataset} (atlas)",
                               source=f"atlas:{checkpoint.path}:{checkpoint.mtime}")


def _dataset_atlas(name: str, data_dir: str, model_path: str, model_mtime: float, device: str) -> Atlas:
    def compute() -> Atlas:
        data = dataset(name, data_dir)
        crystals = data.all_crystal_list()
        if not crystals:
            raise NesfError(f"dataset {name} has no crystals")
        net = _model(model_path, model_mtime, device)
        kept, note = known_element_rows(crystals, net.range.elements, name)
        crystals = [crystals[i] for i in kept]
        bar = st.progress(0.0, text=f"Encoding {len(crystals)} crystals of {name}…")
        try:
            latents = net.encode(crystals,
                                 progress=lambda fraction, _: bar.progress(fraction, text=f"Encoding {name}…"))
            bar.progress(1.0, text=f"Space groups of {name} (once per dataset)…")
            table = data.attributes().iloc[kept].reset_index(drop=True)
        finally:
            bar.empty()
        return Atlas(dataset=name, checkpoint_sha256=net.sha256, table=table, latents=np.asarray(latents),
                     crystals=crystals, source=f"dataset:{name}:{data_dir}:{model_path}:{model_mtime}",
                     name=f"{name} ({note})" if note else "")

    return _store().get_or_compute(("dataset", name, data_dir, model_path, model_mtime, device), compute)


def known_element_rows(crystals, elements, name: str) -> tuple[list[int], str]:
    """The rows of `crystals` made only of `elements` (a model's vocabulary), and a note on the others ("" where
    none is left out); NesfError where none is left."""
    known = {int(z) for z in elements}
    kept = [i for i, crystal in enumerate(crystals) if {int(z) for z in crystal.species} <= known]
    if not kept:
        raise NesfError(f"none of the {len(crystals)} crystals of {name} is made only of the {len(known)} elements "
                        "this model knows: choose another dataset or checkpoint")
    left_out = len(crystals) - len(kept)
    return kept, (f"{left_out:,} of {len(crystals):,} crystals left out: elements this model does not know"
                  if left_out else "")


def dataset_atlas(name: str, data_dir: str, checkpoint: CheckpointInfo, device: str = "auto") -> Atlas:
    """A dataset of the data directory, encoded with the active model (once per model and dataset)."""
    return _dataset_atlas(name, data_dir, str(checkpoint.path), checkpoint.mtime, device)


# -- uploads ----------------------------------------------------------------------------------------------------
def read_upload(data: bytes, filename: str) -> list:
    """Crystals in one uploaded file (kept by content); NesfError says what is wrong with it."""
    from nesf.data.structure_io import read_structures

    def compute() -> list:
        if len(data) > settings.MAX_UPLOAD_BYTES:
            raise NesfError(
                f"{filename}: {len(data) / 1e6:.1f} MB is over the upload limit of {settings.MAX_UPLOAD_MB:g} MB"
            )
        if not data.strip():
            raise NesfError(f"{filename}: the file is empty")
        return read_structures(data, filename, max_bytes=settings.MAX_UPLOAD_BYTES, max_atoms=settings.MAX_ATOMS)

    return _results().get_or_compute(("upload", hashlib.sha1(data).hexdigest(), filename), compute)


# -- model computations -----------------------------------------------------------------------------------------
COMPUTE_GATE = ComputeGate(settings.MAX_CONCURRENT_COMPUTATIONS)  # every model computation runs in one of its slots


def encode(checkpoint: CheckpointInfo, crystals, device: str = "auto") -> np.ndarray:
    """(B, 192) latents of `crystals` (kept by checkpoint and content)."""
    net = model(checkpoint, device)
    for crystal in crystals:
        net.check(crystal)
    key = ("encode", checkpoint_hash(checkpoint), crystals_key(crystals))
    return _results().get_or_compute(key, COMPUTE_GATE.gated(lambda: np.asarray(net.encode(list(crystals)))))


def cell_offers(checkpoint: CheckpointInfo, crystal, device: str = "auto"):
    """`Autoencoder.cell_offers` (the other cells that fit, offered and declined), kept by checkpoint and content:
    the symmetry analysis runs once per refused crystal, not at every rerun of the page showing its offer."""
    net = model(checkpoint, device)
    key = ("cell_offers", checkpoint_hash(checkpoint), crystal_key(crystal))
    return _results().get_or_compute(key, lambda: net.cell_offers(crystal))


def _progress_bar(text: str):
    """A progress bar and the callback `(fraction, message)` that moves it (the library's progress callbacks)."""
    bar = st.progress(0.0, text=text)
    return bar, lambda fraction, message: bar.progress(float(min(max(fraction, 0.0), 1.0)), text=message)


def _refine_progress(what: str):
    """A progress bar for one refinement and the callback that moves it (`Autoencoder.refine`'s progress)."""
    return _progress_bar(f"Refining the latent of {what}…")


def prepare_upload(checkpoint: CheckpointInfo, crystal, source: str, *, stored: bool = False, refine: bool = True,
                   device: str = "auto"):
    """`nesf.inference.uploads.prepare` of one picked crystal, asking before another cell is used (`cells="ask"`):
    an upload in the setting this model reads best, a dataset crystal (`stored`) as stored, its latent refined
    unless `refine` is False; kept by checkpoint, content, source and protocol; a progress bar while it refines."""
    from nesf.inference.uploads import prepare
    from nesf.model.refine import ENCODER_ONLY

    net = model(checkpoint, device)

    def compute(progress):
        return prepare(net, crystal, source, cells="ask", setting="stored" if stored else "best",
                       refine=None if refine else ENCODER_ONLY, progress=progress)

    key = ("prepare", checkpoint_hash(checkpoint), crystal_key(crystal), source, stored, refine)
    return _results().get_or_compute(key, COMPUTE_GATE.gated(_with_refine_bar(compute, crystal, refine)))


def accept_offer(checkpoint: CheckpointInfo, prepared, *, refine: bool = True, device: str = "auto"):
    """`nesf.inference.uploads.accept_offer`: a refused upload encoded in the cell it was offered, kept by checkpoint,
    content and protocol."""
    from nesf.inference.uploads import accept_offer as accept
    from nesf.model.refine import ENCODER_ONLY

    net = model(checkpoint, device)

    def compute(progress):
        return accept(net, prepared, refine=None if refine else ENCODER_ONLY, progress=progress)

    key = ("accept_offer", checkpoint_hash(checkpoint), crystal_key(prepared.offer.crystal), prepared.source, refine)
    return _results().get_or_compute(key, COMPUTE_GATE.gated(_with_refine_bar(compute, prepared.offer.crystal,
                                                                              refine)))


def _with_refine_bar(compute, crystal, refine: bool):
    """`compute(progress)` as a function of nothing, with a progress bar while it refines `crystal` (`refine`)."""
    def run():
        if not refine:
            return compute(None)
        bar, progress = _refine_progress(crystal.formula or "the structure")
        try:
            return compute(progress)
        finally:
            bar.empty()

    return run


def reconstruct_uploads(checkpoint: CheckpointInfo, prepared, mode: str = "fast", device: str = "auto") -> list:
    """`nesf.inference.uploads.reconstruct` of accepted uploads (`PreparedUpload`s): decoded, measured and read for
    trust, kept by checkpoint, latents, settings and decoding preset."""
    from nesf.inference.uploads import reconstruct

    net = model(checkpoint, device)

    def compute():
        return reconstruct(net, list(prepared), net.decode_preset(mode))

    latents = np.stack([np.asarray(p.choice.latent, dtype=np.float32) for p in prepared])
    key = ("reconstruct-uploads", checkpoint_hash(checkpoint), hashlib.sha1(latents.tobytes()).hexdigest()[:20],
           crystals_key([p.choice.crystal for p in prepared]), mode)
    return _results().get_or_compute(key, COMPUTE_GATE.gated(compute))


def trust(checkpoint: CheckpointInfo, items, device: str = "auto") -> list:
    """The `nesf.inference.trust.TrustSignal` of each item: a `FrameChoice` (an upload, from `select_frame`) or a
    crystal (a dataset pick, read in its stored setting); kept by checkpoint and content."""
    from nesf.model.frame_select import FrameChoice

    net = model(checkpoint, device)
    crystals = [item.crystal if isinstance(item, FrameChoice) else item for item in items]
    latents = [np.asarray(item.latent, np.float32).tobytes() for item in items if isinstance(item, FrameChoice)]
    key = ("trust", checkpoint_hash(checkpoint), crystals_key(crystals),
           hashlib.sha1(b"".join(latents)).hexdigest()[:20])  # refined or the encoder's: different readings

    def compute():
        given = [i for i, item in enumerate(items) if not isinstance(item, FrameChoice)]
        choices = list(items)
        if given:
            for i, choice in zip(given, net.given_frames([items[i] for i in given], check_box=False)):
                choices[i] = choice
        return net.trust(choices)

    return _results().get_or_compute(key, COMPUTE_GATE.gated(compute))


def reconstruct(checkpoint: CheckpointInfo, crystals, mode: str = "fast", device: str = "auto") -> list:
    """Reconstructions of `crystals`, each kept by checkpoint, decoding preset, content and id: a crystal
    reconstructed before, alone or in another selection, is not decoded again (decoding is deterministic and each
    crystal's is independent of the others in its batch); the others are decoded together."""
    net = model(checkpoint, device)
    for crystal in crystals:
        net.check(crystal)
    memo, digest = _results(), checkpoint_hash(checkpoint)
    keys = [("reconstruct", digest, crystal_key(c), str(getattr(c, "id", "")), mode) for c in crystals]
    found = [memo.get(key) for key in keys]
    missing = [i for i, recon in enumerate(found) if recon is None]
    if missing:
        batch = [crystals[i] for i in missing]
        decoded = memo.get_or_compute(  # one computation when several sessions ask for the same batch at once
            ("reconstruct-batch", digest, crystals_key(batch), mode),
            COMPUTE_GATE.gated(lambda: list(net.reconstruct(batch, config=net.decode_preset(mode)))))
        for i, recon in zip(missing, decoded):
            memo[keys[i]] = found[i] = recon
    return found


def interpolate(checkpoint: CheckpointInfo, start, end, steps: int, method: str, mode: str = "fast",
                device: str = "auto"):
    """(latents (steps, 192), decoded crystals) along the path from `start` to `end` (crystals or latents)."""
    net = model(checkpoint, device)

    def key(x):
        if isinstance(x, np.ndarray):
            return hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()[:20]
        net.check(x)
        return crystal_key(x)

    def compute():
        latents, crystals = net.interpolate(start, end, int(steps), method=method, config=net.decode_preset(mode))
        return np.asarray(latents), list(crystals)

    memo_key = ("interpolate", checkpoint_hash(checkpoint), key(start), key(end), int(steps), method, mode)
    return _results().get_or_compute(memo_key, COMPUTE_GATE.gated(compute))


# -- map filters and derived colorings -----------------------------------------------------------------------------
def map_elements(atlas: Atlas) -> tuple[np.ndarray, list[int]]:
    """(N, E) atomic fractions of the atlas's crystals and their atomic numbers (once per atlas)."""
    from nesf.inference.map_filters import element_matrix

    return _store().get_or_compute(("elements", atlas.source), lambda: element_matrix(atlas.crystals))


def map_hover(atlas: Atlas) -> tuple[np.ndarray, list[str]]:
    """The map points' customdata and hover text (`app.ui.latent_plot.map_hover`; once per atlas)."""
    from app.ui.latent_plot import map_hover as compute_hover

    return _store().get_or_compute(("hover", atlas.source), lambda: compute_hover(atlas.table))


def map_density(atlas: Atlas) -> np.ndarray:
    """(N,) local latent density of the atlas's crystals (once per atlas)."""
    from nesf.inference.map_filters import local_density

    if atlas.latents is None:
        raise NesfError(f"{atlas.title}: no latent vectors, so no latent density")
    return _store().get_or_compute(("density", atlas.source), lambda: local_density(atlas.latents))


def map_trust(checkpoint: CheckpointInfo, atlas: Atlas, device: str = "auto") -> tuple[np.ndarray, str]:
    """((N,) values, label): the atlas's crystals colored by the trust signal of their reconstruction
    (`nesf.inference.trust.map_trust`; once per checkpoint and atlas)."""
    from nesf.inference.trust import map_trust as compute_trust

    net = model(checkpoint, device)
    return _store().get_or_compute(("trust", checkpoint_hash(checkpoint), atlas.source),
                                   COMPUTE_GATE.gated(lambda: compute_trust(net, atlas.crystals)))


def data_distance(atlas: Atlas, latent: np.ndarray):
    """How far `latent` lies from the atlas's crystals (`nesf.inference.decode_anywhere.DataDistance`; the
    atlas's spacing computed once)."""
    from nesf.inference.decode_anywhere import distance_from_data, nearest_spacing

    spacing = _store().get_or_compute(("spacing", atlas.source), lambda: nearest_spacing(atlas.latents))
    return distance_from_data(latent, atlas.latents, spacing)


def decode_at(checkpoint: CheckpointInfo, atlas: Atlas, method: str, coords: np.ndarray, xy,
              mode: str = "fast", device: str = "auto"):
    """(`MapPoint` of nesf.inference.decode_anywhere, decoded crystal) at `xy` on the atlas's `method` map."""
    from nesf.inference.decode_anywhere import latent_at

    net = model(checkpoint, device)
    x, y = (round(float(v), 4) for v in xy)

    def compute():
        point = latent_at((x, y), atlas.latents, coords, method, seed=atlas.map_settings.seed)
        return point, net.decode(point.latent[None], net.decode_preset(mode), ids=[f"map-{x:g},{y:g}"])[0]

    key = ("decode_at", checkpoint_hash(checkpoint), atlas.source, method,
           hashlib.sha1(np.ascontiguousarray(coords, dtype=np.float32).tobytes()).hexdigest()[:16], x, y, mode)
    return _results().get_or_compute(key, COMPUTE_GATE.gated(compute))


# -- generation -------------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Reading the latent density (fitting it where the atlas has none stored)…",
                   max_entries=4)
def _generation_session(path: str, mtime: float, device: str, method: str, atlas_path: str, atlas_mtime: float):
    from nesf.inference.generation.sample import atlas_density
    from nesf.inference.generation.workflow import GenerationSession

    loaded = _atlas(atlas_path, atlas_mtime, path, mtime, device)  # the map's atlas: loaded (and encoded) once
    return GenerationSession(_model(path, mtime, device), loaded, atlas_density(loaded, method))


def generation_session(checkpoint: CheckpointInfo, method: str, device: str = "auto"):
    """The model's generation session (its atlas and a density of `method` over its training latents); NesfError
    where the checkpoint has no atlas."""
    if not checkpoint.atlas_path:
        raise NesfError(f"{checkpoint.name}: generation needs the atlas beside the checkpoint; build it with "
                        "`nesf atlas`")
    atlas_path = Path(checkpoint.atlas_path)
    return _generation_session(str(checkpoint.path), checkpoint.mtime, device, method, str(atlas_path),
                               atlas_path.stat().st_mtime)


def generate(checkpoint: CheckpointInfo, method: str, count: int, seed: int, where, mode: str = "fast",
             device: str = "auto", support: bool = True):
    """A `GeneratedSet` (nesf.inference.generation.workflow), kept by checkpoint, density, count, seed, place,
    decoding and whether samples must hold an atom count the training crystals have (`support`)."""
    session = generation_session(checkpoint, method, device)
    centres = "" if where.centres is None else hashlib.sha1(
        np.ascontiguousarray(where.centres, dtype=np.float32).tobytes()).hexdigest()[:20]
    key = ("generate", checkpoint_hash(checkpoint), method, int(count), int(seed), where.kind, centres,
           float(where.spread), mode, bool(support))
    config = model(checkpoint, device).decode_preset(mode)

    def compute():
        bar, progress = _progress_bar(f"Decoding {count} samples…")
        try:
            return session.run(int(count), int(seed), where, config, progress=progress, support=support)
        finally:
            bar.empty()

    return _results().get_or_compute(key, COMPUTE_GATE.gated(compute))


def generation_coverage(checkpoint: CheckpointInfo, method: str, generated, device: str = "auto"):
    """CDVAE's generation metrics of a `GeneratedSet` against the atlas's test crystals
    (`nesf.inference.generation.workflow.session_coverage`), kept by the run; the test crystals' fingerprints are
    cached in the user folder (the first time costs about a minute)."""
    from nesf.inference.generation.workflow import session_coverage

    session = generation_session(checkpoint, method, device)
    digest = hashlib.sha1(np.ascontiguousarray(generated.latents, dtype=np.float32).tobytes()).hexdigest()[:20]
    key = ("generation_coverage", checkpoint_hash(checkpoint), method, digest)

    def compute():
        bar, progress = _progress_bar("Scoring the samples…")
        try:
            return session_coverage(session, generated, cache_dir=settings.USER_CHECKPOINT_DIR / ".cache",
                                    progress=progress)
        finally:
            bar.empty()

    return _results().get_or_compute(key, COMPUTE_GATE.gated(compute))


def real_coverage(checkpoint: CheckpointInfo, method: str, count: int, device: str = "auto"):
    """The generation metrics of `count` real training crystals (`workflow.real_coverage`): the figures of a generator
    as good as the data at the same sample count; kept by checkpoint and count, their fingerprints cached."""
    from nesf.inference.generation.workflow import real_coverage as measure

    session = generation_session(checkpoint, method, device)
    key = ("real_coverage", checkpoint_hash(checkpoint), int(count))

    def compute():
        bar, progress = _progress_bar(f"Scoring {count} real crystals for comparison…")
        try:
            return measure(session, int(count), cache_dir=settings.USER_CHECKPOINT_DIR / ".cache", progress=progress)
        finally:
            bar.empty()

    return _results().get_or_compute(key, COMPUTE_GATE.gated(compute))


# -- server-wide memos --------------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _store() -> Memo:
    """The server-wide memo of encoded datasets and computed maps."""
    return Memo(settings.MEMO_ENTRIES, int(settings.MEMO_MB * 2**20))


@st.cache_resource(show_spinner=False)
def _results() -> Memo:
    """The server-wide memo of uploads read, encodings, reconstructions and interpolations."""
    return Memo(settings.RESULT_ENTRIES, int(settings.RESULT_MB * 2**20))


def _compute_map(source: str, method: str, maps: MapConfig, latents) -> np.ndarray:
    from nesf.inference.atlas import compute_map

    def compute() -> np.ndarray:
        bar = st.progress(0.0, text=f"Computing the {method.upper()} map of {len(latents)} crystals…")

        def progress(fraction, message=""):
            bar.progress(float(min(max(fraction, 0.0), 1.0)),
                         text=message or f"Computing the {method.upper()} map…")

        try:
            return np.asarray(compute_map(np.asarray(latents), method, maps, progress=progress))
        finally:
            bar.empty()

    return _store().get_or_compute(("map", source, method, maps), compute)


def map_coords(atlas: Atlas, method: str, maps: MapConfig, *, recompute: bool = False) -> np.ndarray:
    """2-D map of the atlas: the one it holds when its own settings are asked (PCA has none), else computed
    (cached)."""
    held = atlas.maps.get(method)
    if held is not None and (method == "pca" or maps == atlas.map_settings) and not recompute:
        return held
    if atlas.latents is None:
        raise NesfError(f"{atlas.title}: no latent vectors to map")
    return _compute_map(atlas.source, method, maps, atlas.latents)
