"""Models side by side on a split as stored and as uploaded: Table 1 metrics and StructureMatcher match rate of the
dataset form, and of the same crystals re-uploaded (`nesf.inference.reupload`: random rotation and origin, P1 CIF, read
back through the upload path) with and without frame selection. How the augmentation arms of issue 24 were compared.

    python benchmarks/compare_uploads.py runs/aug/lcs6a-aug.pt runs/noaug/lcs6a-noaug.pt [--split val] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEYS = ("match_rate_percent", "atom_count_error_percent", "position_error_actual_angstrom",
        "position_error_detected_angstrom", "species_error_actual_percent", "species_error_detected_percent",
        "lattice_length_error_angstrom", "lattice_angle_error_degrees")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--dataset", default="lim_l6")
    parser.add_argument("--split", default="val")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--decode", default="checkpoint")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--cells", action="store_true",
                        help="also the split's crystals converted to primitive and Niggli-reduced cells, and the "
                             "held-out hexagonal set as orthohexagonal cells "
                             "(nesf.inference.reupload.measure_cell_kind)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import torch

    from nesf.api import Autoencoder
    from nesf.data.datasets import load_dataset
    from nesf.data.hexagonal_set import hexagonal_crystals
    from nesf.inference.card_measure import evaluate_split
    from nesf.inference.reupload import evaluate_uploads, measure_cell_kind, reuploaded

    torch.set_num_threads(args.threads)
    crystals = load_dataset(args.dataset, args.data_dir).crystals(args.split)[: args.limit or None]
    uploads = reuploaded(crystals, args.seed)
    results = {}
    for path in args.checkpoints:
        model = Autoencoder.from_checkpoint(path, "cpu")
        config = model.decode_preset(args.decode)
        started = time.monotonic()
        stored, _ = evaluate_split(model, crystals, config)
        given, _ = evaluate_uploads(model, uploads, config, select_frame=False)
        selected, _ = evaluate_uploads(model, uploads, config, select_frame=True)
        results[path] = {"as stored": stored, "uploaded": given, "uploaded + frame selection": selected}
        if args.cells:
            for kind in ("primitive standard", "Niggli-reduced primitive"):
                results[path][kind] = measure_cell_kind(model, crystals, kind, config) or {}
            results[path]["orthohexagonal (held-out hexagonal)"] = measure_cell_kind(
                model, hexagonal_crystals(), "orthohexagonal", config) or {}
        results[path]["seconds"] = time.monotonic() - started
        print(f"{path}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(f"{args.dataset} {args.split}, {len(crystals)} crystals, {args.decode} decoding, upload seed {args.seed}")
    forms = [form for form in next(iter(results.values())) if form != "seconds"]
    header = ["metric"] + [f"{Path(p).stem}: {form}" for p in results for form in forms]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for key in (*KEYS, "count"):
        cells = [f"{results[p][form].get(key, float('nan')):.4f}" for p in results for form in forms]
        print(f"| {key} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
