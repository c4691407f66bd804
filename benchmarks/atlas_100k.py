"""Build a 100,000-crystal atlas for the scale benchmark of the latent map (issue 25) and time each stage.

There is no 100k-crystal dataset among the ones nesf reads offline, so one is made from LCS6A (all three splits,
6,005 crystals): each crystal as stored, then its other ways of being written that fit the model's range
(`nesf.training.augment.crystal_variants` with "frames+cells": equivalent origins and axis settings, primitive and
Niggli-reduced cells), then perturbed copies of those (every atom displaced by a Gaussian of `--jitter` Angstrom
per axis, the cell strained by a symmetric Gaussian of `--strain`), round-robin until `--count` crystals. Every
copy keeps its parent's split and gets the id `<parent id>~v<k>` (a variant) or `~p<k>` (a perturbed copy).

The atlas is then built by the library, as `nesf atlas` builds one: attributes (formula, spglib space group at
0.1 A) through `CrystalDataset.attributes`, encoding, PCA and openTSNE through `nesf.inference.atlas.build_atlas` (no
reconstruction errors), written with `save_atlas`. Stage times are read off the build's progress messages. The
checkpoint is copied beside the atlas, so `NESF_CHECKPOINT_DIR=<out dir>` opens the app on it
(`benchmarks/bench_map_scale.py`).

    python benchmarks/atlas_100k.py --out-dir /tmp/atlas100k            # ~30 min on 2 cores
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from nesf.api import Autoencoder
from nesf.core.crystal import Crystal
from nesf.data.datasets import CrystalDataset, load_dataset
from nesf.inference.atlas import build_atlas, save_atlas
from nesf.training.augment import crystal_variants


def perturbed(crystal: Crystal, rng: np.random.Generator, jitter_angstrom: float, strain: float, new_id: str) -> Crystal:
    """`crystal` with its cell strained by I + e (e symmetric, entries ~ N(0, strain)) and each atom displaced by
    N(0, jitter_angstrom) per Cartesian axis."""
    e = rng.normal(0.0, strain, (3, 3))
    deformation = np.eye(3) + (e + e.T) / 2
    lattice = crystal.lattice @ deformation
    cart = crystal.cart_coords @ deformation + rng.normal(0.0, jitter_angstrom, crystal.cart_coords.shape)
    return Crystal(lattice, cart, crystal.species.copy(), new_id)


def scaled_crystals(dataset, model_range, count: int, jitter_angstrom: float, strain: float, seed: int):
    """(split, crystal) pairs: the dataset, its variants, then perturbed copies, `count` in all."""
    rng = np.random.default_rng(seed)
    base = []
    for split, crystal in dataset.all_crystals():
        for k, variant in enumerate(crystal_variants(crystal, "frames+cells", model_range)):
            if k:
                variant = Crystal(variant.lattice, variant.cart_coords, variant.species, f"{crystal.id}~v{k}")
            base.append((split, variant))
    pairs = base[:count]
    copies = 0
    while len(pairs) < count:
        split, parent = base[copies % len(base)]
        copies += 1
        pairs.append((split, perturbed(parent, rng, jitter_angstrom, strain, f"{parent.id}~p{copies}")))
    return pairs, len(dataset), len(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/lcs6a.pt"))
    parser.add_argument("--dataset", default="lim_l6")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--jitter", type=float, default=0.03, help="Angstrom per axis")
    parser.add_argument("--strain", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    started = time.monotonic()
    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, "cpu")
    dataset = load_dataset(args.dataset, args.data_dir)
    pairs, stored, with_variants = scaled_crystals(dataset, autoencoder.range, args.count, args.jitter, args.strain,
                                                   args.seed)
    made = time.monotonic()
    print(f"crystals: {stored} stored, {with_variants} with their variants, {len(pairs)} with perturbed copies "
          f"({made - started:.0f} s)", flush=True)

    splits: dict[str, list[Crystal]] = {}
    for split, crystal in pairs:
        splits.setdefault(split, []).append(crystal)
    scaled = CrystalDataset(f"{dataset.name} x{len(pairs) / stored:.1f}", splits, autoencoder.vocab,
                            description=f"{args.dataset} with variants and perturbed copies (benchmarks/atlas_100k.py)")
    table = scaled.attributes()
    crystals = [c for _, c in scaled.all_crystals()]
    attributed = time.monotonic()
    print(f"attributes (spglib): {attributed - made:.0f} s", flush=True)

    marks = {}

    def progress(fraction: float, message: str) -> None:
        for stage in ("encoding", "PCA", "t-SNE on", "t-SNE done"):
            if message.startswith(stage) and stage not in marks:
                marks[stage] = time.monotonic()

    atlas = build_atlas(autoencoder, crystals, table, dataset=scaled.name, progress=progress)
    built = time.monotonic()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / args.checkpoint.with_suffix(".atlas.pt").name
    save_atlas(atlas, path)
    shutil.copy2(args.checkpoint, args.out_dir / args.checkpoint.name)
    saved = time.monotonic()
    print(f"encode: {marks['PCA'] - marks['encoding']:.0f} s; PCA + t-SNE: {built - marks['PCA']:.0f} s "
          f"(t-SNE {marks.get('t-SNE done', built) - marks.get('t-SNE on', built):.0f} s); save {saved - built:.0f} s")
    print(f"total {saved - started:.0f} s ({(saved - started) / 60:.1f} min) on {args.threads} threads; "
          f"atlas {path.stat().st_size / 1e6:.1f} MB; peak memory "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB -> {path}")


if __name__ == "__main__":
    main()
