"""The atlas: a dataset's latent vectors, attributes and 2-D maps in one file the app opens instantly.

File: a plain dict saved with torch (loads with `weights_only=True`), written atomically. It holds, per crystal:
id, split, formula, atom count, cell volume (A^3), space group number and symbol, crystal system, reconstruction
error (A, NaN where not computed), t-SNE and PCA coordinates, and the structure itself (lattice, coordinates,
species) so the app can show inputs without the data directory.

The latent vectors are not stored (format 2): they are recomputed from the stored crystals when the atlas is loaded
with its model (6,005 LCS6A crystals encode in ~1 s on one CPU core), so a shipped atlas costs the repository ~60 %
fewer bytes per model version. Format-1 atlases, which stored them, still load.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from nesf.checkpoint import describe_load_error
from nesf.core.config import MapConfig
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.core.files import atomic_torch_save
from nesf.core.progress import Progress, stage

log = logging.getLogger(__name__)

ATLAS_FORMAT = "nesf-atlas"
ATLAS_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: latents stored (float32, then float16); 2: recomputed on load
TABLE_COLUMNS = ["id", "split", "formula", "num_atoms", "volume_angstrom3", "spacegroup_number",
                 "spacegroup_symbol", "crystal_system", "reconstruction_error_angstrom"]



@dataclass
class Atlas:
    """Crystals of a dataset under one model: their table, latents and 2-D maps. An atlas file holds all of it; a
    dataset encoded on the fly (the app's) has no maps until they are computed."""

    dataset: str
    checkpoint_sha256: str
    table: pd.DataFrame        # one row per crystal, TABLE_COLUMNS (a dataset's attribute table: less the error)
    latents: np.ndarray | None  # (N, L); None when loaded without its model from a file that stores none
    crystals: list[Crystal]    # in table order
    tsne: np.ndarray | None = None  # (N, 2); None where not computed
    pca: np.ndarray | None = None   # (N, 2)
    map_settings: MapConfig = field(default_factory=MapConfig)  # of the t-SNE map
    weights_sha256: str = ""   # digest of the model's weights (nesf.checkpoint.weights_sha256); "" in older atlases
    name: str = ""             # how it is shown (default: its dataset's name)
    source: str = ""           # where it was read or computed from: a key for caches of what is derived from it
    frames: str = "stored"     # the settings its crystals are in: nesf.data.frames.ATLAS_FRAMES
    densities: dict = field(default_factory=dict)  # method -> LatentDensity.state() over its training latents

    def __len__(self) -> int:
        return len(self.table)

    @property
    def title(self) -> str:
        return self.name or self.dataset

    @property
    def maps(self) -> dict[str, np.ndarray]:
        """The maps it holds: "tsne" and "pca" -> (N, 2)."""
        return {method: coords for method, coords in (("tsne", self.tsne), ("pca", self.pca)) if coords is not None}

    def find(self, query: str, limit: int = 50) -> pd.DataFrame:
        """Rows matching `query` (an id, a formula in any element order, elements), best first: `nesf.core.search`."""
        from nesf.core.search import search

        return self.table.iloc[search(self.table["id"], self.table["formula"], query, limit)]


def map_pca(latents: np.ndarray, seed: int = 0):
    """The 2-component PCA of the PCA map: fitted on the latents less their outliers
    (`nesf.inference.latent_outliers`), so that a handful of far latents (LCS6A's one-atom cells) do not take an axis;
    every latent is then projected, outliers included."""
    from sklearn.decomposition import PCA

    from nesf.inference.latent_outliers import inlier_mask

    latents = np.asarray(latents, dtype=np.float64)
    return PCA(n_components=2, random_state=seed).fit(latents[inlier_mask(latents)])


def compute_map(latents: np.ndarray, method: str = "tsne", maps: MapConfig = MapConfig(), *,
                progress: Progress | None = None) -> np.ndarray:
    """2-D coordinates (N, 2) of latent vectors by t-SNE (openTSNE, FFT-accelerated, on the top 50 principal
    components; `maps.iterations` after 250 early-exaggeration iterations) or PCA. `progress(fraction, message)`."""
    progress = progress or (lambda fraction, message: None)
    seed = maps.seed
    latents = np.asarray(latents, dtype=np.float64)
    if len(latents) < 3:
        return np.zeros((len(latents), 2))
    from sklearn.decomposition import PCA

    if method == "pca":
        result = map_pca(latents, seed).transform(latents)
        progress(1.0, "PCA done")
        return result
    if method != "tsne":
        raise NesfError(f"unknown map method {method!r} (use 'tsne' or 'pca')")
    from openTSNE import TSNE

    progress(0.02, "reducing to 50 principal components")
    reduced = PCA(n_components=min(50, latents.shape[1], len(latents)), random_state=seed).fit_transform(latents)
    perplexity = float(min(maps.perplexity, max(1.0, (len(latents) - 1) / 3)))
    exaggeration_iterations = 250
    total = exaggeration_iterations + max(int(maps.iterations), 50)
    done = {"iterations": 0}
    every = 25

    def report(iteration, error, embedding):
        done["iterations"] += every
        fraction = 0.1 + 0.9 * min(done["iterations"] / total, 1.0)
        progress(fraction, f"t-SNE iteration {min(done['iterations'], total)}/{total}")
        return False

    progress(0.1, f"t-SNE on {len(latents)} points (perplexity {perplexity:g}, {total} iterations)")
    started = time.monotonic()
    embedding = TSNE(n_components=2, perplexity=perplexity, n_iter=total - exaggeration_iterations,
                     early_exaggeration_iter=exaggeration_iterations, initialization="pca", random_state=seed,
                     n_jobs=-1, callbacks=report, callbacks_every_iters=every, verbose=False).fit(reduced)
    progress(1.0, f"t-SNE done in {time.monotonic() - started:.1f} s")
    return np.asarray(embedding, dtype=np.float64)


def build_atlas(autoencoder, crystals: list[Crystal], table: pd.DataFrame, *, dataset: str,
                maps: MapConfig = MapConfig(), reconstruction_errors_for: set[str] | None = None,
                progress: Progress | None = None, latents: np.ndarray | None = None) -> Atlas:
    """Encode `crystals` (table rows in the same order, columns as `TABLE_COLUMNS` less the error), or take their
    `latents` (N, L) where given (refined uploads), and map them."""
    from nesf.core.config import DecodeConfig
    from nesf.evaluation.metrics import structure_metrics

    progress = progress or (lambda fraction, message: None)
    if len(crystals) != len(table):
        raise NesfError(f"atlas: {len(crystals)} crystals but {len(table)} table rows")
    progress(0.0, f"encoding {len(crystals)} crystals")
    latents = (autoencoder.encode(crystals, check_box=False) if latents is None
               else np.asarray(latents, dtype=np.float32))
    table = table.reset_index(drop=True).copy()
    errors = np.full(len(crystals), np.nan)
    if reconstruction_errors_for:
        rows = [i for i, split in enumerate(table["split"]) if split in reconstruction_errors_for]
        progress(0.1, f"decoding {len(rows)} crystals for reconstruction errors")
        decoded = autoencoder.decode(latents[rows], DecodeConfig.fast()) if rows else []
        for row, pred in zip(rows, decoded):
            errors[row] = structure_metrics(crystals[row], pred, match=False)["position_error_actual_angstrom"]
    table["reconstruction_error_angstrom"] = errors
    progress(0.5, "PCA")
    pca = compute_map(latents, "pca", maps)
    tsne = compute_map(latents, "tsne", maps, progress=lambda f, m: progress(0.5 + 0.5 * f, m))
    return Atlas(dataset=dataset, checkpoint_sha256=autoencoder.sha256, table=table[TABLE_COLUMNS],
                 latents=latents.astype(np.float32), tsne=tsne, pca=pca, crystals=list(crystals), map_settings=maps,
                 weights_sha256=autoencoder.weights_sha256)


ERROR_SPLITS = {"none": frozenset(), "test": frozenset({"test"}), "all": frozenset({"train", "val", "test"})}


def write_atlas(autoencoder, dataset, path: Path, *, errors: str = "test", maps: MapConfig = MapConfig(),
                frames: str = "stored", progress: Progress | None = None,
                latents: np.ndarray | None = None) -> Path:
    """The atlas of every crystal of `dataset` (a `CrystalDataset`) under `autoencoder`, written to `path`; the
    splits `errors` names (ERROR_SPLITS) are decoded for their reconstruction errors; the crystals are in the
    settings `frames` names (`nesf.data.frames.ATLAS_FRAMES`). `latents` (one per crystal, in `dataset.all_crystals`
    order: refined uploads) are mapped and stored instead of the encoder's, which loading would recompute.
    `progress(fraction, message)` as the work goes."""
    from nesf.data.frames import ATLAS_FRAMES, consistent_frame

    if frames not in ATLAS_FRAMES:
        raise NesfError(f"atlas frames {frames!r}: choose one of {', '.join(ATLAS_FRAMES)}")
    crystals = [crystal for _, crystal in dataset.all_crystals()]
    if progress is not None:
        progress(0.0, f"encoding and mapping {len(crystals)} crystals")
    if frames == "consistent":
        crystals = [consistent_frame(crystal) for crystal in crystals]
    atlas = build_atlas(autoencoder, crystals, dataset.attributes(), dataset=dataset.name,
                        reconstruction_errors_for=set(ERROR_SPLITS[errors]), maps=maps, latents=latents,
                        progress=stage(progress, 0.0, 0.9))
    atlas.frames = frames
    if progress is not None:
        progress(0.9, "fitting the latent densities generation samples")
    atlas.densities = fit_training_densities(atlas)
    save_atlas(atlas, path, with_latents=latents is not None)
    return Path(path)


def training_latents(atlas: Atlas) -> np.ndarray:
    """(N, L) latents of the atlas's training crystals: what a generation density is fitted on."""
    return _latents_of(atlas)[(atlas.table["split"] == "train").to_numpy()]


def fit_training_densities(atlas: Atlas, seed: int = 0) -> dict:
    """Every generation density (`nesf.inference.generation.density.METHODS`) fitted on the atlas's training
    latents, as `LatentDensity.state()`s to store in it; none where it has fewer than 20 training crystals."""
    from nesf.inference.generation.density import METHODS, MIN_LATENTS, fit_density

    latents = training_latents(atlas)
    if len(latents) < MIN_LATENTS:
        return {}
    return {method: fit_density(latents, method, seed).state(seed) for method in METHODS}


def save_atlas(atlas: Atlas, path: Path, *, with_latents: bool = False) -> None:
    """Write the atlas (format 2: everything but the latents, which `load_atlas` recomputes with the model; with
    `with_latents`, the latents too, fp32: refined ones, which the encoder alone would not give back)."""
    counts = np.array([c.num_atoms for c in atlas.crystals], dtype=np.int64)
    stored = {
        "format": ATLAS_FORMAT, "format_version": ATLAS_VERSION,
        "dataset": atlas.dataset, "checkpoint_sha256": atlas.checkpoint_sha256,
        "weights_sha256": atlas.weights_sha256,
        "columns": {col: atlas.table[col].tolist() for col in TABLE_COLUMNS},
        "tsne": torch.from_numpy(np.asarray(atlas.tsne, dtype=np.float32)),
        "pca": torch.from_numpy(np.asarray(atlas.pca, dtype=np.float32)),
        "lattices": torch.from_numpy(np.stack([c.lattice for c in atlas.crystals]).astype(np.float64)),
        "cart_coords": torch.from_numpy(np.concatenate([c.cart_coords for c in atlas.crystals]).astype(np.float32)),
        "species": torch.from_numpy(np.concatenate([c.species for c in atlas.crystals]).astype(np.int16)),
        "atom_counts": torch.from_numpy(counts),
        "map_settings": atlas.map_settings.to_dict(),
        "frames": atlas.frames,
        "densities": atlas.densities,
    }
    if with_latents:
        stored["latents"] = torch.from_numpy(np.asarray(atlas.latents, dtype=np.float32))
    atomic_torch_save(stored, path)


def load_atlas(path: Path, autoencoder=None) -> Atlas:
    """Read an atlas. `autoencoder` (the `nesf.inference.autoencoder.Autoencoder` it was built with) recomputes the
    latents of a format-2 atlas from its crystals; without it their `latents` is None (table, crystals and maps are all
    there). An atlas built by other model weights than `autoencoder`'s is refused: its maps would not match."""
    path = Path(path)
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise NesfError(f"{path}: not a readable atlas ({describe_load_error(exc)})") from exc
    if not isinstance(stored, dict) or stored.get("format") != ATLAS_FORMAT:
        raise NesfError(f"{path}: not a NeSF atlas")
    if stored.get("format_version") not in READABLE_VERSIONS:
        raise NesfError(f"{path}: atlas format version {stored.get('format_version')!r}; this version of nesf reads "
                        f"{' and '.join(map(str, READABLE_VERSIONS))}")
    built_from, built_weights = str(stored["checkpoint_sha256"]), str(stored.get("weights_sha256", ""))
    if autoencoder is not None and not _built_by(autoencoder, built_from, built_weights):
        raise NesfError(f"{path}: built from other model weights than {autoencoder.path.name}'s, so its maps place "
                        f"crystals by another model's latents; rebuild it: python -m nesf atlas {autoencoder.path}")
    table = pd.DataFrame(stored["columns"])
    counts = stored["atom_counts"].numpy()
    offsets = np.concatenate([[0], np.cumsum(counts)])
    coords = stored["cart_coords"].numpy().astype(np.float64)
    species = stored["species"].numpy().astype(np.int64)
    lattices = stored["lattices"].numpy()
    crystals = [Crystal(lattices[i], coords[offsets[i]:offsets[i + 1]], species[offsets[i]:offsets[i + 1]],
                        str(table["id"][i])) for i in range(len(table))]
    if "latents" in stored:
        latents = stored["latents"].float().numpy()
    elif autoencoder is not None:
        latents = np.asarray(autoencoder.encode(crystals, check_box=False), dtype=np.float32)
    else:
        latents = None
    return Atlas(dataset=stored["dataset"], checkpoint_sha256=built_from, table=table,
                 latents=latents, tsne=stored["tsne"].numpy().astype(np.float64),
                 pca=stored["pca"].numpy().astype(np.float64), crystals=crystals,
                 map_settings=MapConfig.from_dict(stored.get("map_settings", {})), weights_sha256=built_weights,
                 frames=str(stored.get("frames", "stored")), densities=dict(stored.get("densities", {})))


def _built_by(autoencoder, checkpoint_sha256: str, weights_sha256: str) -> bool:
    """Whether an atlas recording these digests was built by `autoencoder`'s model: by its weights' digest, or, in
    an atlas that has none (written before it), by the checkpoint file's."""
    if weights_sha256:
        return weights_sha256 == autoencoder.weights_sha256
    return not autoencoder.path or checkpoint_sha256 == autoencoder.sha256


def _latents_of(atlas: Atlas) -> np.ndarray:
    if atlas.latents is None:
        raise NesfError("this atlas was loaded without its model, so it has no latents: pass the model to load_atlas")
    return np.asarray(atlas.latents, dtype=np.float64)


def nearest_neighbors(atlas: Atlas, latent: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of the `k` crystals of `atlas` nearest to `latent` in the full latent space,
    nearest first."""
    return _nearest(_latents_of(atlas), latent, k)


def _nearest(latents: np.ndarray, latent: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if latents.ndim != 2 or len(latents) == 0:
        raise NesfError("no latent vectors to search for neighbours")
    distances = np.linalg.norm(latents - np.asarray(latent, dtype=np.float64).reshape(1, -1), axis=1)
    order = np.argsort(distances, kind="stable")[:max(int(k), 1)]
    return order, distances[order]


def project_new(atlas: Atlas, latents: np.ndarray, method: str = "tsne", k: int = 5, *,
                coords: np.ndarray | None = None) -> np.ndarray:
    """Place new latents (M, L) on an existing map (N, 2) of `atlas`'s latents: exact for PCA (refit on the atlas's
    latents, signs aligned with the map), and for t-SNE the inverse-distance-weighted mean of the map positions of the
    k nearest crystals in latent space. `coords`: the map (default: the atlas' own map of `method`)."""
    if method not in ("tsne", "pca"):
        raise NesfError(f"unknown map method {method!r} (use 'tsne' or 'pca')")
    latents = np.atleast_2d(np.asarray(latents, dtype=np.float64))
    base = _latents_of(atlas)
    coords = np.asarray(atlas.maps.get(method) if coords is None else coords, dtype=np.float64)
    if method == "pca":
        pca = map_pca(base, atlas.map_settings.seed)
        projected = pca.transform(latents)
        # align signs with the stored map (PCA components are defined up to sign)
        signs = np.sign(np.sum(pca.transform(base) * coords, axis=0))
        return projected * np.where(signs == 0, 1, signs)
    positions = []
    for latent in latents:
        order, distances = _nearest(base, latent, k)
        weights = 1.0 / (distances + 1e-6)
        positions.append((coords[order] * weights[:, None]).sum(0) / weights.sum())
    return np.array(positions).reshape(-1, 2)
