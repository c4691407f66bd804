"""App settings: paths, limits and presets. Environment variables override the defaults (tests use them).

NESF_CHECKPOINT_DIR   shipped checkpoints (read only for the app), default <repo>/checkpoints
NESF_USER_DIR         checkpoints trained from the app, default <checkpoints>/user
NESF_DEFAULT_CHECKPOINT  file name of the shipped checkpoint the app opens on, default lcs6a.pt
NESF_MAX_UPLOAD_MB    size limit of one uploaded file in MB (also server.maxUploadSize in .streamlit/config.toml)
NESF_MEMO_MB          MB of encoded datasets and maps the server keeps (default 512)
NESF_RESULT_MB        MB of uploads read, encodings, reconstructions and interpolations it keeps (default 256)
NESF_MAX_COMPUTATIONS model computations (encodings, reconstructions, interpolations) the server runs at once
                      (default 2; more wait their turn)
NESF_TRAIN_COMMAND    command line that replaces `python -m nesf train` for runs started from the app (tests)
"""

from __future__ import annotations

import os
from pathlib import Path

from nesf.data import limits

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


CHECKPOINT_DIR = _env_path("NESF_CHECKPOINT_DIR", REPO_ROOT / "checkpoints")
USER_CHECKPOINT_DIR = _env_path("NESF_USER_DIR", CHECKPOINT_DIR / "user")
DEFAULT_CHECKPOINT = os.environ.get("NESF_DEFAULT_CHECKPOINT", "lcs6a.pt")  # first in the sidebar's list
RUNS_DIR = USER_CHECKPOINT_DIR / ".runs"          # one folder per training run: pid, progress JSONL, log
UPLOADS_DIR = USER_CHECKPOINT_DIR / ".uploads"    # structure files kept for "train on my uploads"

# the library's limits on one structure file (nesf.data.limits, the CLI's too); a server may lower the size
MAX_UPLOAD_MB = float(os.environ.get("NESF_MAX_UPLOAD_MB", str(limits.MAX_FILE_BYTES / 2**20)))
MAX_UPLOAD_BYTES = int(MAX_UPLOAD_MB * 1024 * 1024)
MAX_ATOMS = limits.MAX_ATOMS   # atoms per uploaded structure
MAX_FILES = 50             # files in one batch upload
MAX_INTERPOLATION_STEPS = 30

# Model computations the server runs at once, over all sessions (app.backend.COMPUTE_GATE, an app.memo.ComputeGate).
# Each decode holds ~100 MB while it runs; two keep both cores of a small server busy, and a GPU serves them one after
# the other anyway.
MAX_CONCURRENT_COMPUTATIONS = max(1, int(os.environ.get("NESF_MAX_COMPUTATIONS", "2")))

# 3Dmol.js served by the app itself (server.enableStaticServing; folder app/static next to main.py).
THREEDMOL_JS_URL = "/app/static/3Dmol-min.js"

# What the server keeps between runs (least recently used go first), at most so many entries and about so many MB:
MEMO_ENTRIES = 16          # encoded datasets and computed maps (a dataset of 45,000 crystals is ~100 MB)
MEMO_MB = float(os.environ.get("NESF_MEMO_MB", "512"))
RESULT_ENTRIES = 512       # uploads read, encodings, reconstructions and interpolations
RESULT_MB = float(os.environ.get("NESF_RESULT_MB", "256"))

# The Retrain form's epochs: a run the app can finish in minutes to hours (the paper's 3,200 take days on a CPU).
# Its other fields start at the training config's defaults (nesf.core.config.TrainConfig).
RETRAIN_EPOCHS = 50
