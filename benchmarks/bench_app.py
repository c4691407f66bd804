"""App benchmarks on CPU: time to first paint of each page (AppTest, cold and warm caches) and time to decode a
10-step interpolation path; optionally the t-SNE of the whole atlas (--tsne).

    python benchmarks/bench_app.py [--checkpoint-dir checkpoints] [--tsne]

"First paint" is the time for a full script run of the page to finish in AppTest (the server-side work a browser
waits for before the page is drawn); the first page also pays for loading the model and the atlas.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint-dir", default=str(ROOT / "checkpoints"))
    parser.add_argument("--tsne", action="store_true", help="also time a full t-SNE of the atlas latents")
    args = parser.parse_args()
    os.environ["NESF_CHECKPOINT_DIR"] = str(Path(args.checkpoint_dir).resolve())
    os.environ.setdefault("NESF_USER_DIR", "/tmp/nesf-bench-user")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # CPU numbers

    from streamlit.testing.v1 import AppTest

    main_script = str(ROOT / "app" / "main.py")
    print(f"checkpoints: {args.checkpoint_dir}  (CPU, torch threads: {__import__('torch').get_num_threads()})")
    app = AppTest.from_file(main_script, default_timeout=600)
    started = time.perf_counter()
    app.run()
    print(f"first paint, Latent map (cold: loads model + atlas): {time.perf_counter() - started:7.2f} s")
    if app.exception:
        print("  exception:", app.exception[0].value)
    for page in ("map", "reconstruct", "interpolate", "model"):
        started = time.perf_counter()
        app.switch_page(f"views/page_{page}.py").run()
        print(f"first paint, {page:<12} (warm caches):                 {time.perf_counter() - started:7.2f} s")

    from app import backend  # noqa: F401  (same modules as the app)
    from nesf.api import Autoencoder
    from nesf.checkpoint import list_checkpoints
    from nesf.core.config import DecodeConfig
    from nesf.inference.atlas import load_atlas

    infos = [i for i in list_checkpoints([args.checkpoint_dir]) if i.atlas_path]
    if not infos:
        print("no checkpoint with an atlas: stopping")
        return
    info = infos[0]
    model = Autoencoder.from_checkpoint(info.path, device="cpu")
    atlas = load_atlas(info.atlas_path, model)
    start, end = atlas.crystals[0], atlas.crystals[len(atlas.crystals) // 2]
    for name, config in (("fast", DecodeConfig.fast()), ("paper", DecodeConfig())):
        started = time.perf_counter()
        _, crystals = model.interpolate(start, end, 10, "linear", config)
        print(f"decode a 10-step interpolation path ({name} decoding):   {time.perf_counter() - started:7.2f} s  "
              f"({start.formula} -> {end.formula}; atoms per step {[c.num_atoms for c in crystals]})")
    if args.tsne:
        from nesf.inference.atlas import compute_map

        started = time.perf_counter()
        compute_map(atlas.latents, "tsne")
        print(f"t-SNE of {len(atlas.latents)} latents (1000 iterations):       {time.perf_counter() - started:7.2f} s")


if __name__ == "__main__":
    main()
