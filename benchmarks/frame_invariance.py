"""Does a model map one crystal to one point whatever setting it is written in? For each crystal of a split, every
equivalent setting of its cell (`nesf.data.frames.equivalent_frames`: origin shifts, permuted equal axes, inversion) is
encoded; the spread of one crystal's latents is compared with the distance to the nearest *other* crystal.

Figures per model: the median over crystals of (mean distance between a crystal's settings) / (distance from its
stored setting to the nearest other crystal's), and the share of crystals whose settings all lie nearer to each other
than to any other crystal. With --figure, a t-SNE map (openTSNE, one embedding per model) of every setting of every
crystal, each crystal's settings joined by lines: a model that splits one structure by origin draws long lines.

    python benchmarks/frame_invariance.py checkpoints/lcs6a.pt runs/aug/lcs6a-aug.pt [--split val] [--figure F.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def spread(latents: np.ndarray, owner: np.ndarray, first: np.ndarray) -> dict:
    """latents (M, L) of every setting, owner (M,) its crystal, first (C,) the row of each crystal's stored setting."""
    stored = latents[first]
    distances = np.linalg.norm(stored[:, None] - stored[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    nearest_other = distances.min(1)
    ratios, separated = [], []
    for c in range(len(first)):
        rows = latents[owner == c]
        if len(rows) < 2:
            continue
        inner = np.linalg.norm(rows[:, None] - rows[None], axis=2)
        ratios.append(inner[np.triu_indices(len(rows), 1)].mean() / nearest_other[c])
        separated.append(inner.max() < nearest_other[c])
    return {"crystals_with_several_settings": len(ratios), "median_spread_ratio": float(np.median(ratios)),
            "settings_together_percent": 100.0 * float(np.mean(separated))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--dataset", default="lim_l6")
    parser.add_argument("--split", default="val")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--figure", default=None, help="write the t-SNE maps here (PNG)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import torch

    from nesf.api import Autoencoder
    from nesf.data.datasets import load_dataset
    from nesf.data.frames import equivalent_frames

    torch.set_num_threads(args.threads)
    crystals = load_dataset(args.dataset, args.data_dir).crystals(args.split)
    settings, owner, first = [], [], []
    for c, crystal in enumerate(crystals):
        first.append(len(settings))
        frames = [crystal, *equivalent_frames(crystal)[1:]]
        settings += frames
        owner += [c] * len(frames)
    owner, first = np.array(owner), np.array(first)
    results, maps = {}, {}
    for path in args.checkpoints:
        model = Autoencoder.from_checkpoint(path, "cpu")
        latents = model.encode(settings, check_box=False)
        results[path] = spread(latents, owner, first)
        print(f"{path}: {results[path]}")
        if args.figure:
            from openTSNE import TSNE

            maps[path] = np.asarray(TSNE(perplexity=30, random_state=0, n_jobs=args.threads).fit(latents))
    print(f"{args.dataset} {args.split}: {len(crystals)} crystals, {len(settings)} settings")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(maps), figsize=(6 * len(maps), 6), squeeze=False)
        for ax, (path, xy) in zip(axes[0], maps.items()):
            for c in range(len(first)):
                rows = np.flatnonzero(owner == c)
                if len(rows) > 1:
                    ax.plot(xy[rows, 0], xy[rows, 1], "-", color="0.6", lw=0.5, zorder=1)
            ax.scatter(xy[:, 0], xy[:, 1], s=3, c=np.where(np.isin(np.arange(len(owner)), first), "C0", "C3"), zorder=2)
            r = results[path]
            ax.set_title(f"{Path(path).stem}: spread ratio {r['median_spread_ratio']:.2f}, "
                         f"settings together {r['settings_together_percent']:.0f} %", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"{args.dataset} {args.split}: every equivalent setting of each crystal (blue: as stored, red: "
                     "others; grey lines join one crystal's settings)", fontsize=9)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
