"""Cost of frame selection (`Autoencoder.select_frames`): ms per structure and candidate settings scored, on a split
re-uploaded as users would (`nesf.inference.reupload.reuploaded`: random rotation and origin, P1 CIF, read back), beside
the cost of encoding the same structures in their given setting only. The reading of the uploads (CIF parse and the
canonical cell) is not timed: every path pays it with or without frame selection.

    python benchmarks/bench_frame_select.py [--checkpoint checkpoints/lcs6a.pt] [--count 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "lcs6a.pt"))
    parser.add_argument("--dataset", default="lim_l6")
    parser.add_argument("--split", default="test")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()

    import torch

    from nesf.api import Autoencoder
    from nesf.data.datasets import load_dataset
    from nesf.inference.reupload import reuploaded

    torch.set_num_threads(args.threads)
    model = Autoencoder.from_checkpoint(args.checkpoint, "cpu")
    crystals = load_dataset(args.dataset, args.data_dir).crystals(args.split)[: args.count]
    uploads = [u for u in reuploaded(crystals) if u is not None and not model.range.problems(u)]
    model.select_frames(uploads[:8])  # warm-up: first calls allocate
    select_ms, given_ms, one_ms = [], [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        choices = model.select_frames(uploads)
        select_ms.append((time.perf_counter() - started) / len(uploads) * 1e3)
        started = time.perf_counter()
        model.given_frames(uploads)
        given_ms.append((time.perf_counter() - started) / len(uploads) * 1e3)
        started = time.perf_counter()
        for upload in uploads[:50]:  # one upload at a time, as the app's pages do
            model.select_frames([upload])
        one_ms.append((time.perf_counter() - started) / min(len(uploads), 50) * 1e3)
    candidates = np.array([c.candidates for c in choices])
    figures = {
        "structures": len(uploads), "threads": args.threads,
        "candidates_mean": float(candidates.mean()), "candidates_max": int(candidates.max()),
        "moved_percent": 100.0 * float(np.mean([c.changed for c in choices])),
        "select_ms_per_structure_batched": float(np.median(select_ms)),
        "select_ms_per_structure_one_at_a_time": float(np.median(one_ms)),
        "given_setting_ms_per_structure": float(np.median(given_ms)),
    }
    print(f"{args.dataset} {args.split}, {len(uploads)} re-uploaded structures, {args.threads} thread(s), median of "
          f"{args.repeats}:")
    print(f"  candidates per structure: mean {figures['candidates_mean']:.2f}, max {figures['candidates_max']}; "
          f"setting moved for {figures['moved_percent']:.1f} %")
    print(f"  frame selection: {figures['select_ms_per_structure_batched']:.1f} ms per structure batched, "
          f"{figures['select_ms_per_structure_one_at_a_time']:.1f} ms one at a time")
    print(f"  the given setting only (encode + residual): {figures['given_setting_ms_per_structure']:.1f} ms per "
          f"structure ({figures['select_ms_per_structure_batched'] / figures['given_setting_ms_per_structure']:.1f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
