"""The Generate page's first sampling, on the library path the page runs (issue 38: <= 10 s for 100 crystals on 2
cores with the shipped atlas): the session opened (atlas read, density rebuilt), then `GenerationSession.run` of
`--count` samples, decoded with the app's fast preset and, in the same process, with the fast preset on the paper's
0.5 A particle grid (the preset before stop 42) for the ratio.

    python benchmarks/bench_generate_page.py checkpoints/lcs6a.pt --count 100
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from nesf.api import Autoencoder
    from nesf.core.config import DecodeConfig
    from nesf.inference.generation.workflow import GenerationSession

    started = time.perf_counter()
    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, "cpu")
    session = GenerationSession.open(autoencoder)
    opened = time.perf_counter() - started
    fast = DecodeConfig.fast()
    presets = {"fast": fast, "fast on the 0.5 A grid (before)": replace(fast, particle_interval=0.5,
                                                                         nms_min_particles=10)}
    print(f"session opened in {opened:.1f} s ({session.density.label}); {args.count} samples, seed {args.seed}, "
          f"{args.threads} threads")
    for name, config in presets.items():
        t0 = time.perf_counter()
        generated = session.run(args.count, args.seed, decode_config=config)
        seconds = time.perf_counter() - t0
        valid = generated.scores.valid.mean() * 100
        atoms = sum(c.num_atoms for c in generated.crystals) / len(generated.crystals)
        print(f"{name}: run {seconds:.1f} s ({seconds / args.count:.3f} s a sample); valid {valid:.0f} %, "
              f"{atoms:.2f} atoms a sample")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
