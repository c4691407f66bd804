"""Load on one `streamlit run` server of the shipped checkpoint: waves of browser sessions at once, each uploading
its own CIF on Reconstruct and decoding its own interpolation path (the sessions of `tests/app/test_load.py`, which
runs 3 of them in the suite). Prints each session's seconds, the server's CPU seconds per wave and its resident
memory: at start, after one warm-up session, peak and after each wave.

    python benchmarks/bench_load.py [--sessions 10] [--waves 2] [--checkpoint-dir checkpoints]

Needs Chromium (/usr/bin/chromium) and Playwright. Timings depend on the machine: compare figures of one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "app"))

from app_helpers import FAKE_TRAINER, start_streamlit  # noqa: E402
from load_sessions import measure_load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10, help="sessions at once in each wave")
    parser.add_argument("--waves", type=int, default=2, help="waves (the second shows whether memory plateaus)")
    parser.add_argument("--checkpoint-dir", default=str(REPO_ROOT / "checkpoints"))
    parser.add_argument("--timeout-s", type=float, default=900, help="a session's limit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nesf-load-") as work:
        work = Path(work)
        env = {"NESF_CHECKPOINT_DIR": str(Path(args.checkpoint_dir).resolve()), "NESF_USER_DIR": str(work / "user"),
               "NESF_TRAIN_COMMAND": f"{sys.executable} {FAKE_TRAINER} --epoch-s 0.3",
               "NESF_DATA_DIR": os.environ.get("NESF_DATA_DIR", str(work / "no-data"))}
        proc, url = start_streamlit(env, work / "streamlit.log")
        try:
            print(f"server {url} (pid {proc.pid}); {args.waves} wave(s) of {args.sessions} sessions, "
                  f"{os.cpu_count()} CPU cores")
            run = measure_load(url, proc.pid, Path(args.checkpoint_dir), work, args.sessions, args.waves,
                               args.timeout_s)
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"\nserver RSS: {run.start_mb:.0f} MB at start, {run.warm_mb:.0f} MB after the warm-up session")
    for i, wave in enumerate(run.waves):
        done = [r for r in wave.results if not isinstance(r, BaseException)]
        slowest = max((r["total_s"] for r in done), default=float("nan"))
        print(f"wave {i + 1}: {len(done)}/{len(wave.results)} sessions finished, slowest {slowest:.1f} s, wall "
              f"{wave.wall_s:.1f} s, server CPU {wave.server_cpu_s:.1f} s; RSS peak +{wave.peak_mb - run.warm_mb:.0f} "
              f"MB, after +{wave.after_mb - run.warm_mb:.0f} MB over the warm-up figure")
    if run.page_errors():
        print("page errors:", run.page_errors()[:5])


if __name__ == "__main__":
    main()
