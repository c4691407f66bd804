"""Generation benchmark: sampling methods compared at equal sample count on one model, with CDVAE's metrics.

For each density (`nesf.inference.generation.density`: gmm, kde, gaussian) it samples COUNT latents (seed fixed),
decodes them (the checkpoint's decoding, or the preset `--decode` names), and scores them against the dataset's test split (coverage, property
distributions) and its training crystals (novelty). Prints a markdown table with the published figures beside, the
held-out log-likelihood of each density, and seconds per stage; writes JSON.

    python benchmarks/generation.py checkpoints/perov5.pt --count 1000 --json benchmarks/results/generation/perov5.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=["gmm", "kde", "gaussian"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--json", default=None)
    parser.add_argument("--decode", default="checkpoint", help="decoding preset: checkpoint (its own), fast, paper")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from nesf.api import Autoencoder
    from nesf.data.datasets import default_cache_dir, load_dataset
    from nesf.inference.generation.fingerprints import fingerprints
    from nesf.inference.generation.published import format_generation_table
    from nesf.checkpoint import atlas_path_for
    from nesf.inference.atlas import load_atlas, training_latents
    from nesf.inference.generation.density import fit_density
    from nesf.inference.generation.sample import generate
    from nesf.inference.generation.scores import coverage_cutoffs, score_generated

    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, "cpu")
    latents = training_latents(load_atlas(atlas_path_for(args.checkpoint), autoencoder))
    dataset = load_dataset(autoencoder.info.dataset, args.data_dir)
    reference = dataset.crystals("test")
    training = dataset.crystals("train") + dataset.crystals("val")
    started = time.monotonic()
    reference_fp = fingerprints(reference, cache_dir=default_cache_dir(args.data_dir))
    print(f"reference fingerprints of {len(reference)} test crystals: {time.monotonic() - started:.0f} s",
          file=sys.stderr)
    results = {"checkpoint": str(args.checkpoint), "dataset": dataset.name, "count": args.count, "seed": args.seed,
               "decode": args.decode,
               "reference": len(reference), "training": len(training), "methods": {}}
    for method in args.methods:
        t0 = time.monotonic()
        density = fit_density(latents, method)  # fitted here (not the atlas's stored one): its time is reported
        t1 = time.monotonic()
        _, crystals = generate(autoencoder, density, args.count, args.seed,
                               decode_config=autoencoder.decode_preset(args.decode))
        t2 = time.monotonic()
        scores, _ = score_generated(crystals, reference, training, cutoffs=coverage_cutoffs(dataset.name),
                                    reference_fingerprints=reference_fp)
        t3 = time.monotonic()
        results["methods"][method] = {
            "density": density.label, "selection": [[s.label, s.heldout_log_likelihood] for s in density.selection],
            "scores": scores.to_dict(), "fit_s": t1 - t0, "decode_s": t2 - t1, "score_s": t3 - t2}
        print(f"{method}: {density.label}; fit {t1 - t0:.0f} s, decode {t2 - t1:.0f} s, score {t3 - t2:.0f} s",
              file=sys.stderr)
    print(f"## Generation: {autoencoder.info.name} on {dataset.name}, {args.count} samples per density, seed "
          f"{args.seed}\n")
    for method, result in results["methods"].items():
        print(f"### {method}: {result['density']}\n")
        print(format_generation_table(result["scores"], dataset.name, label=method))
        print()
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
