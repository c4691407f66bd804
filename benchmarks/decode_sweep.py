"""Decoding settings of a trained checkpoint, compared on one split: Table 1's metrics and the signed atom-count
errors (too few / too many atoms) per setting. The latents are encoded once; each setting decodes them all.

    python benchmarks/decode_sweep.py checkpoints/lcs6a.pt --split val --threads 1 \
        --set nms_min_particles=5 --set nms_min_particles=20 --set cell_margin=0.25 --set wrap_to_cell=true

Each --set is one setting, a change to the checkpoint's own decoding (several changes: comma-separated,
"cell_margin=0.25,wrap_to_cell=true"); the checkpoint's own comes first. Choose on val, then confirm on test once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np


def parse_setting(text: str, base):
    from nesf.core.config import DecodeConfig

    kinds = {f.name: f.type for f in fields(DecodeConfig)}
    changes = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in kinds:
            raise SystemExit(f"--set {text!r}: DecodeConfig has no field {name!r}")
        kind = kinds[name]
        changes[name] = (value.lower() in ("1", "true", "yes")) if kind in (bool, "bool") else (
            int(value) if kind in (int, "int") else float(value))
    return replace(base, **changes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--set", dest="settings", action="append", default=[], help="name=value[,name=value]")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    import torch

    from nesf.api import Autoencoder
    from nesf.data.datasets import load_dataset
    from nesf.evaluation.metrics import table1_metrics

    if args.threads:
        torch.set_num_threads(args.threads)
    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    crystals = load_dataset(autoencoder.info.dataset, args.data_dir).crystals(args.split)[: args.limit or None]
    latents = autoencoder.encode(crystals, check_box=False)
    base = autoencoder.decode_config
    rows = []
    for label, config in [("checkpoint's own", base)] + [(s, parse_setting(s, base)) for s in args.settings]:
        started = time.monotonic()
        preds = autoencoder.decode(latents, config, ids=[c.id for c in crystals])
        seconds = time.monotonic() - started
        metrics = table1_metrics(crystals, preds, match=False)
        signed = np.array([p.num_atoms - t.num_atoms for t, p in zip(crystals, preds)])
        rows.append({"setting": label, **metrics, "too_few": int((signed < 0).sum()), "too_many": int((signed > 0).sum()),
                     "decode_s": seconds})
        r = rows[-1]
        print(f"{label:<40} atoms {r['atom_count_error_percent']:6.2f} % (few {r['too_few']:>3}, many {r['too_many']:>3})"
              f"  species {r['species_error_actual_percent']:6.2f} / {r['species_error_detected_percent']:6.2f} %"
              f"  position {r['position_error_actual_angstrom']:.4f} / {r['position_error_detected_angstrom']:.4f} A"
              f"  {seconds:5.1f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(args.checkpoint), "split": args.split,
                                         "count": len(crystals), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
