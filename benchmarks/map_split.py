"""Does the atlas split one structure type by origin choice? The dataset's crystals are mapped twice, as stored and
each in its consistent setting (`nesf.data.frames.consistent_frame`: every crystal of a structure type gets the same
origin), and each map is read by structure type.

Structure type: space group number plus each element's count and site symmetries, elements anonymous (spglib,
0.01 A): rock salt is "225:4 m-3m|4 m-3m" whatever its elements and whichever of them is at the origin. Origin label: the
roles (`nesf.core.canonical.role_ranks`) of the atoms at fractional (0, 0, 0). Figures, per setting, over the
structure types of >= --min-group crystals, in the latent space and in the t-SNE map (`nesf.inference.atlas`'s own):

- types with more than one origin label (a type the map can split by origin);
- within those types, the share of each crystal's 5 nearest same-type neighbours that have its origin label, beside
  the share random mixing would give (higher than random: the type is split by origin in the map);
- type purity: the share of each crystal's 5 nearest neighbours of its own type (how well the map groups types);
- the mean field residual at the atoms (`nesf.model.frame_select`; how well the model reads that setting).

    python benchmarks/map_split.py checkpoints/lcs6a.pt [--dataset lim_l6] [--figure F.png] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

NEIGHBOURS = 5


def structure_type(crystal) -> str:
    """Space group number and the (count, site symmetries) of each element, elements anonymous; "?" where spglib
    fails. Site symmetries, not Wyckoff letters: spglib's letters follow the input's origin (a perovskite with B at the
    origin has its O on 3d, with A there on 3c), the site symmetries do not."""
    import spglib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = spglib.get_symmetry_dataset((crystal.lattice, crystal.frac_coords, crystal.species), symprec=0.01)
    if dataset is None:
        return "?"
    sites: dict[int, list[str]] = {}
    for z, symmetry, _ in sorted(set(zip(crystal.species.tolist(), dataset.site_symmetry_symbols,
                                         dataset.equivalent_atoms))):
        sites.setdefault(z, []).append(symmetry.replace(".", ""))
    parts = sorted((int(np.sum(crystal.species == z)), "+".join(sorted(s))) for z, s in sites.items())
    return f"{dataset.number}:" + "|".join(f"{n} {s}" for n, s in parts)


def origin_label(crystal) -> str:
    from nesf.core.canonical import role_ranks

    frac = np.mod(crystal.frac_coords, 1.0)
    at_origin = np.all(np.minimum(frac, 1.0 - frac) < 1e-3, axis=1)
    return ",".join(map(str, sorted(role_ranks(crystal.species)[at_origin].tolist()))) or "-"


def read_map(points: np.ndarray, types: np.ndarray, origins: np.ndarray, groups: list[str]) -> dict:
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(points)
    purity, weights, same, random_share, split = [], [], [], [], 0
    for group in groups:
        rows = np.flatnonzero(types == group)
        _, near = search.kneighbors(points[rows])
        purity.append(float((types[near[:, 1:]] == group).mean()))
        weights.append(len(rows))
        labels, counts = np.unique(origins[rows], return_counts=True)
        if len(labels) < 2:
            continue
        split += 1
        _, inner = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(points[rows]).kneighbors(points[rows])
        same.append(float((origins[rows][inner[:, 1:]] == origins[rows][:, None]).mean()))
        random_share.append(float(((counts / len(rows)) ** 2).sum()))
    return {"types_with_several_origins": split,
            "same_origin_share": float(np.mean(same)) if same else float("nan"),
            "same_origin_share_if_mixed": float(np.mean(random_share)) if random_share else float("nan"),
            "type_purity": float(np.average(purity, weights=weights))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--dataset", default="lim_l6")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--min-group", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--figure", default=None, help="write the two t-SNE maps, largest types coloured, here (PNG)")
    args = parser.parse_args()

    import torch

    from nesf.api import Autoencoder
    from nesf.data.datasets import load_dataset
    from nesf.data.frames import consistent_frame
    from nesf.inference.atlas import compute_map

    torch.set_num_threads(args.threads)
    stored = [crystal for _, crystal in load_dataset(args.dataset, args.data_dir).all_crystals()]
    started = time.monotonic()
    consistent = [consistent_frame(crystal) for crystal in stored]
    per_crystal_ms = 1000 * (time.monotonic() - started) / len(stored)
    types = np.array([structure_type(c) for c in stored])
    names, sizes = np.unique(types, return_counts=True)
    groups = [n for n, s in zip(names, sizes) if s >= args.min_group and n != "?"]
    moved = sum(not np.allclose(a.frac_coords, np.mod(b.frac_coords, 1.0), atol=1e-6) for a, b in zip(consistent, stored))
    print(f"{args.dataset}: {len(stored)} crystals, {len(groups)} structure types of >= {args.min_group} crystals "
          f"({int(np.isin(types, groups).sum())} crystals); consistent setting differs from the stored one for {moved}; "
          f"{per_crystal_ms:.1f} ms per crystal to find it")
    model = Autoencoder.from_checkpoint(args.checkpoint, "cpu")
    maps, origins_of = {}, {}
    for name, crystals in (("stored", stored), ("consistent", consistent)):
        choices = model.given_frames(crystals, check_box=False)
        latents = np.stack([c.latent for c in choices])
        residual = float(np.mean([c.score.position_residual_angstrom for c in choices]))
        tsne = compute_map(latents, "tsne")
        maps[name] = tsne
        origins = origins_of[name] = np.array([origin_label(c) for c in crystals])
        for space, points in (("latent", latents), ("t-SNE", tsne)):
            r = read_map(points, types, origins, groups)
            print(f"{name:10s} {space:6s}: types with several origins {r['types_with_several_origins']:3d} of "
                  f"{len(groups)}; same-origin share of 5 nearest same-type neighbours {r['same_origin_share']:.3f} "
                  f"(mixed: {r['same_origin_share_if_mixed']:.3f}); type purity {r['type_purity']:.3f}; "
                  f"field residual {residual:.4f} A")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        largest = [n for n in names[np.argsort(-sizes)] if n != "?"][:6]
        fig, axes = plt.subplots(1, 2, figsize=(12, 6))
        for ax, (name, xy) in zip(axes, maps.items()):
            origins = origins_of[name]
            ax.scatter(xy[:, 0], xy[:, 1], s=2, c="0.85")
            for colour, group in enumerate(largest):
                rows = types == group
                for marker, label in zip("o^sv", np.unique(origins[rows])):
                    pick = rows & (origins == label)
                    ax.scatter(xy[pick, 0], xy[pick, 1], s=5, marker=marker, color=f"C{colour}",
                               label=f"{group} origin role {label}")
            ax.set_title(f"{args.dataset}, crystals {name}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0].legend(fontsize=6, markerscale=2, loc="lower left")
        fig.suptitle("t-SNE of the latents; the six largest structure types coloured, marker = role of the element "
                     "at the origin", fontsize=9)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
