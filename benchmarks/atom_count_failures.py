"""Where a model's atom-count errors come from: underfitting or overfitting, whole-structure failures or single
atoms, and whether any decoding setting recovers them.

    python benchmarks/atom_count_failures.py checkpoints/lcs6a.pt --train-count 600

Prints, for the first `--train-count` training crystals and the whole val split (`fast` decoding): the atom-count
error, the position errors over all crystals and over the crystals decoded with the right atom count only; then the
val crystals with a wrong count (formula, atoms true -> decoded, true atoms more than 0.5 A from any decoded atom);
then the atom counts of those crystals under decoding variants (one `DecodeConfig` field changed from `fast`).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import torch

from nesf.api import Autoencoder
from nesf.core.config import DecodeConfig
from nesf.data.datasets import load_dataset
from nesf.evaluation.metrics import table1_metrics

OFF_ANGSTROM = 0.5  # a true atom farther than this from every decoded atom counts as missed
VARIANTS = {"nms_radius": 0.3, "nms_min_particles": 3, "score_threshold": 2.0, "particle_interval": 0.25,
            "cell_margin": 1.5, "iterations": 200}


def _position_summary(crystals, preds) -> str:
    right = [i for i, (t, p) in enumerate(zip(crystals, preds)) if t.num_atoms == p.num_atoms]
    everything = table1_metrics(crystals, preds, match=False)
    only_right = table1_metrics([crystals[i] for i in right], [preds[i] for i in right], match=False)
    return (f"atom-count error {everything['atom_count_error_percent']:5.2f} % | positions act / det: all "
            f"{everything['position_error_actual_angstrom']:.4f} / {everything['position_error_detected_angstrom']:.4f}"
            f" A, right-count crystals only {only_right['position_error_actual_angstrom']:.4f} / "
            f"{only_right['position_error_detected_angstrom']:.4f} A")


def _missed(true, pred) -> int:
    if not pred.num_atoms:
        return true.num_atoms
    distances = np.linalg.norm(true.cart_coords[:, None] - pred.cart_coords[None], axis=-1)
    return int((distances.min(axis=1) > OFF_ANGSTROM).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--dataset", default=None, help="default: the checkpoint's")
    parser.add_argument("--train-count", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = Autoencoder.from_checkpoint(args.checkpoint, "cpu")
    dataset = load_dataset(args.dataset or model.info.dataset)
    fast = DecodeConfig.fast()
    train = dataset.crystals("train")[: args.train_count]
    val = dataset.crystals("val")
    print(f"{args.checkpoint}, {dataset.name}, fast decoding")
    print(f"train (first {len(train)}): {_position_summary(train, model.reconstruct(train, fast, check_box=False))}")
    val_latents = model.encode(val, check_box=False)
    val_preds = model.decode(val_latents, fast)
    print(f"val ({len(val)}):           {_position_summary(val, val_preds)}")

    wrong = [i for i, (t, p) in enumerate(zip(val, val_preds)) if t.num_atoms != p.num_atoms]
    whole = sum(_missed(val[i], val_preds[i]) * 2 >= val[i].num_atoms for i in wrong)
    print(f"\nval crystals with a wrong atom count: {len(wrong)} ({whole} with half or more of their atoms "
          f"> {OFF_ANGSTROM} A from any decoded atom)")
    for i in wrong:
        true, pred = val[i], val_preds[i]
        print(f"  {i:4d} {true.formula:12s} atoms {true.num_atoms:2d} -> {pred.num_atoms:2d}, "
              f"{_missed(true, pred):2d} missed")
    if not wrong:
        return
    print("\ndecoding variants (fast with one setting changed), atom counts of those crystals:")
    print(f"  {'true':24s} {[val[i].num_atoms for i in wrong]}")
    print(f"  {'fast':24s} {[val_preds[i].num_atoms for i in wrong]}")
    for name, value in VARIANTS.items():
        preds = model.decode(val_latents[wrong], replace(fast, **{name: value}))
        fixed = sum(val[i].num_atoms == p.num_atoms for i, p in zip(wrong, preds))
        print(f"  {f'{name}={value}':24s} {[p.num_atoms for p in preds]} ({fixed} now right)")


if __name__ == "__main__":
    main()
