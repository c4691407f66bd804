"""Sampling settings compared at equal sample count under CDVAE's protocol (issue 38): the mixture at several
temperatures, and draws around the training latents themselves (a kernel on each, its mixture component's covariance
times a spread squared), each scored with `score_generated(valid_sample=1000)` against the test split. Results are
appended to the JSON file after every setting, so a stopped run keeps what it measured.

    python benchmarks/generation_sweep.py checkpoints/perov5.pt --count 1000 \\
        --settings gmm@1 gmm@0.7 gmm@0.5 training@0.5 training@0.3 --json benchmarks/results/generation/perov5-sweep.json

A setting ending in "+support" replaces each sample whose atom count no training crystal has by a new draw
(`AtomCountSupport`); its result says how many draws that took.
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
    parser.add_argument("--settings", nargs="+", default=["gmm@1", "gmm@0.7", "training@0.5"],
                        help="gmm@TEMPERATURE (the atlas's mixture) or training@SPREAD (around training latents)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--json", required=True)
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from nesf.api import Autoencoder
    from nesf.checkpoint import atlas_path_for
    from nesf.data.datasets import default_cache_dir, load_dataset
    from nesf.inference.atlas import load_atlas, training_latents
    from nesf.inference.generation.fingerprints import fingerprints
    from nesf.inference.generation.sample import AtomCountSupport, Where, atlas_density, generate
    from nesf.inference.generation.scores import coverage_cutoffs, score_generated

    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, "cpu")
    atlas = load_atlas(atlas_path_for(args.checkpoint), autoencoder)
    density = atlas_density(atlas, "gmm", 0)
    latents = training_latents(atlas)
    dataset = load_dataset(autoencoder.info.dataset, args.data_dir)
    reference = dataset.crystals("test")
    training = dataset.crystals("train") + dataset.crystals("val")
    reference_fp = fingerprints(reference, cache_dir=default_cache_dir(args.data_dir))
    out = Path(args.json)
    results = json.loads(out.read_text()) if out.exists() else {}
    results.update({"checkpoint": str(args.checkpoint), "dataset": dataset.name, "density": density.label,
                    "protocol": "CDVAE: validity and coverage over all samples, property distances over 1,000 valid"})
    results.setdefault("settings", {})
    support = AtomCountSupport.of(training)
    for setting in args.settings:
        kind, value = setting.removesuffix("+support").split("@")
        if kind == "gmm":
            where = Where(temperature=float(value), label=f"mixture at temperature {value}")
        elif kind == "training":
            where = Where.region(latents, "around the training latents", spread=float(value))
        else:
            raise SystemExit(f"unknown setting {setting!r}")
        t0 = time.monotonic()
        sampled, crystals = generate(autoencoder, density, args.count, args.seed, where,
                                     support=support if setting.endswith("+support") else None)
        t1 = time.monotonic()
        scores, _ = score_generated(crystals, reference, training, cutoffs=coverage_cutoffs(dataset.name),
                                    reference_fingerprints=reference_fp, valid_sample=1000, seed=args.seed)
        t2 = time.monotonic()
        norms = np.linalg.norm(sampled - latents.mean(0), axis=1)
        results["settings"][f"{setting} x{args.count}"] = {
            "where": where.label, "count": args.count, "seed": args.seed, "scores": scores.to_dict(),
            "latent_distance_from_mean": float(norms.mean()), "decode_s": t1 - t0, "score_s": t2 - t1,
            "rounds": len({c.id.rsplit("-", 1)[0] for c in crystals})}
        out.write_text(json.dumps(results, indent=1))
        s = scores
        print(f"{setting} x{args.count}: valid {s.valid_percent:.1f} (smact14 {s.valid_smact14_percent:.1f}) "
              f"comp {s.composition_valid_percent:.1f} COV-R {s.cov_recall_percent:.1f} "
              f"COV-P {s.cov_precision_percent:.1f} EMD elements {s.num_elements_wasserstein:.3f} density "
              f"{s.density_wasserstein_g_cm3:.3f} atoms-in-ref {s.reference_atom_count_percent:.1f} unique "
              f"{s.unique_percent:.1f} novel {s.novel_percent:.1f}; decode {t1 - t0:.0f} s, score {t2 - t1:.0f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
