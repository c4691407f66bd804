"""Consistency filter for generated crystals (issue 38 item 1): which self-consistency reading tells invalid samples
from valid ones, and what keeping the most consistent samples buys at an equal sample count.

Draws `--draw` latents from the atlas's stored density (the one the app samples; `--draw` >= `--count`), decodes them,
reads each sample's consistency (`nesf.inference.generation.consistency`: self residual, re-encoded residual, latent
drift), its validity and its fingerprints once, then scores subsets of `--count` samples against the test split:

- random: `--count` of the drawn samples, a seeded random choice (the unfiltered generator at this count);
- lowest <reading>: the `--count` samples with the lowest value of that reading (best of `--draw`).

Prints, per reading, the ROC AUC of predicting an invalid sample (0.5: no better than chance), and a table of
validity, COV-R, COV-P and the number-of-elements EMD per subset; writes JSON.

    python benchmarks/consistency_filter.py checkpoints/perov5.pt --count 1000 --draw 2000 \
        --json benchmarks/results/generation/perov5-consistency.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

READINGS = ("self_residual", "reencoded_residual", "latent_drift")


def _subset_scores(index, crystals, valid, generated_fp, reference, reference_fp, cutoffs) -> dict:
    from scipy.stats import wasserstein_distance

    from nesf.inference.generation.fingerprints import Fingerprints
    from nesf.inference.generation.scores import coverage

    index = np.asarray(index)
    subset = Fingerprints(generated_fp.structure[index], generated_fp.composition[index])
    cov = coverage(subset, reference_fp, *cutoffs)
    kept_valid = [crystals[i] for i in index if valid[i]]
    elements = wasserstein_distance([len(set(c.species.tolist())) for c in kept_valid],
                                    [len(set(c.species.tolist())) for c in reference]) if kept_valid else float("nan")
    return {"count": int(len(index)), "valid_percent": 100.0 * float(valid[index].mean()),
            "cov_recall_percent": cov.recall_percent, "cov_precision_percent": cov.precision_percent,
            "num_elements_wasserstein": float(elements)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--draw", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.draw < args.count:
        parser.error("--draw must be at least --count")

    import torch

    torch.set_num_threads(args.threads)
    from sklearn.metrics import roc_auc_score

    from nesf.api import Autoencoder
    from nesf.checkpoint import atlas_path_for
    from nesf.data.datasets import default_cache_dir, load_dataset
    from nesf.inference.atlas import load_atlas
    from nesf.inference.generation.consistency import consistency
    from nesf.inference.generation.fingerprints import fingerprints
    from nesf.inference.generation.sample import atlas_density, generate
    from nesf.inference.generation.scores import coverage_cutoffs
    from nesf.inference.generation.validity import crystal_valid

    def say(message: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    started = time.monotonic()
    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, "cpu")
    density = atlas_density(load_atlas(atlas_path_for(args.checkpoint), autoencoder))
    dataset = load_dataset(autoencoder.info.dataset, args.data_dir)
    reference = dataset.crystals("test")
    reference_fp = fingerprints(reference, cache_dir=default_cache_dir(args.data_dir))
    say(f"{density.label}; {len(reference)} reference crystals")
    latents, crystals = generate(autoencoder, density, args.draw, args.seed)
    say(f"decoded {len(crystals)}")
    readings = consistency(autoencoder, latents, crystals)
    say("consistency read")
    valid = np.array([all(crystal_valid(c)) for c in crystals], dtype=bool)
    generated_fp = fingerprints(crystals)
    say("validity and fingerprints")
    cutoffs = coverage_cutoffs(dataset.name)
    results = {"checkpoint": str(args.checkpoint), "dataset": dataset.name, "density": density.label,
               "draw": args.draw, "count": args.count, "seed": args.seed, "valid_of_drawn_percent":
               100.0 * float(valid.mean()), "auc_invalid": {}, "subsets": {}}
    rng = np.random.default_rng(args.seed)
    results["subsets"]["random"] = _subset_scores(rng.permutation(args.draw)[:args.count], crystals, valid,
                                                  generated_fp, reference, reference_fp, cutoffs)
    for name in READINGS:
        values = np.nan_to_num(getattr(readings, name), nan=np.inf)  # no atoms: least consistent
        finite = np.isfinite(values)
        results["auc_invalid"][name] = float(roc_auc_score(~valid[finite], values[finite]))
        results["subsets"][f"lowest {name.replace('_', ' ')}"] = _subset_scores(
            np.argsort(values, kind="stable")[:args.count], crystals, valid, generated_fp, reference, reference_fp,
            cutoffs)
    say("scored")
    print(f"## Consistency filter: {autoencoder.info.name} on {dataset.name}, {args.count} of {args.draw} drawn "
          f"(seed {args.seed}; {density.label})\n")
    print("ROC AUC of each reading for an invalid sample: " + ", ".join(
        f"{name.replace('_', ' ')} {auc:.3f}" for name, auc in results["auc_invalid"].items()) + "\n")
    print("| subset | valid % | COV-R % | COV-P % | #elements EMD |\n|---|---|---|---|---|")
    for name, s in results["subsets"].items():
        print(f"| {name} | {s['valid_percent']:.1f} | {s['cov_recall_percent']:.1f} | "
              f"{s['cov_precision_percent']:.1f} | {s['num_elements_wasserstein']:.3f} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
