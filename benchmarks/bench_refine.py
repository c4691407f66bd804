"""Cost and gain of test-time latent refinement (`nesf.model.refine`) beside the encoder-only path, on uploads.

The LCS6A test split re-uploaded (random rotation and origin, CIF, the card's seed) goes through frame selection
(the encoder-only path's cost), then refinement: alone (one structure per call, as the app refines an upload) and in
batches of 32 (as `nesf reconstruct` and the card refine a folder), with the default settings and the levers the
issue names (queries per step, one draw reused or a new draw every step). Each setting's match rate and mean field
residual come from decoding its latents (checkpoint decoding). Targets: <= 1 s per structure alone, <= 0.25 s per
structure in batches of 32, 2 CPU cores.

    python benchmarks/bench_refine.py --checkpoint checkpoints/lcs6a.pt --count 64 --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nesf.api import Autoencoder
from nesf.data.datasets import load_dataset
from nesf.evaluation.metrics import structure_match
from nesf.inference.reupload import reuploaded
from nesf.model.refine import ENCODER_ONLY, RefineConfig

LEVERS = {
    "default": RefineConfig(),
    "training's queries (all local and species points, 1 A global grid)": RefineConfig(
        local_query_fraction=1.0, species_query_fraction=1.0, global_interval_angstrom=1.0),
    "a new draw every step": RefineConfig(redraw_queries=True),
    "no stopping rule (50 steps each)": RefineConfig(patience=10_000),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="checkpoints/lcs6a.pt")
    parser.add_argument("--dataset", default="lim_l6")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--count", type=int, default=64, help="uploads refined in batches (a multiple of 32)")
    parser.add_argument("--alone", type=int, default=16, help="uploads refined one at a time")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-quality", action="store_true", help="skip decoding (timings only)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    crystals = load_dataset(args.dataset, args.data_dir).crystals("test")
    uploads = [u for u in reuploaded(crystals) if u is not None and not model.range.problems(u)][:args.count]
    model.select_frames(uploads[:4], ENCODER_ONLY)  # warm-up
    started = time.perf_counter()
    base = model.select_frames(uploads, ENCODER_ONLY)
    encoder_s = (time.perf_counter() - started) / len(uploads)
    config = model.decode_preset("checkpoint")
    device = model.device if model.device.type != "cpu" else f"CPU, {args.threads} threads"
    print(f"{args.checkpoint}: {len(uploads)} LCS6A test uploads (re-uploaded, seed 0), {device}")
    print(f"encoder only (frame selection + encoder): {encoder_s:.3f} s per structure\n")

    def quality(choices) -> str:
        if args.no_quality:
            return "—"
        preds = model.decode(np.stack([c.latent for c in choices]), config)
        matched = np.mean([structure_match(c.crystal, p)[0] for c, p in zip(choices, preds)])
        return f"{100 * matched:.1f} %"

    rows = [("encoder only", "—", f"{encoder_s:.3f}", "0", f"{np.mean([c.score.score for c in base]):.4f}",
             quality(base))]
    for name, refine in LEVERS.items():
        model.refine(base[:2], refine)  # warm-up
        started = time.perf_counter()
        for choice in base[:args.alone]:
            model.refine([choice], refine)
        alone_s = (time.perf_counter() - started) / min(args.alone, len(base))
        started = time.perf_counter()
        refined = [c for start in range(0, len(base), 32) for c in model.refine(base[start:start + 32], refine)]
        batch_s = (time.perf_counter() - started) / len(base)
        steps = np.mean([c.refinement.steps for c in refined])
        rows.append((name, f"{alone_s:.3f}", f"{batch_s:.3f}", f"{steps:.1f}",
                     f"{np.mean([c.score.score for c in refined]):.4f}", quality(refined)))
        print(f"  measured: {name}", flush=True)
    print("\n| latent | s per structure, alone | s per structure, batches of 32 | steps (mean) | field residual "
          "(mean, A) | match rate |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
