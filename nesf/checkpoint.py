"""Checkpoints: one file of plain types (tensors, numbers, strings, lists, dicts), loadable with
`torch.load(path, weights_only=True)` on any device, written atomically (temporary file, then `os.replace`).

Contents: format version, model config, species vocabulary (atomic numbers), dataset bounding box (Angstrom),
dataset name and split sizes, train/sampling/decode configs, model state, optimizer and scheduler state (for
resuming), epoch, training history, metrics, creation time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from nesf.atomic import atomic_torch_save
from nesf.errors import NesfError

FORMAT = "nesf-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "model_config", "vocab", "bbox_min", "bbox_max", "model_state")


def save_checkpoint(payload: dict, path: Path) -> None:
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    atomic_torch_save(payload, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and validate a checkpoint; any problem raises NesfError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise NesfError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated, not a torch file, or holds non-plain objects
        raise NesfError(f"{path}: not a readable NeSF checkpoint ({describe_load_error(exc)})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise NesfError(f"{path}: not a NeSF checkpoint (no '{FORMAT}' marker)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise NesfError(f"{path}: checkpoint format version {payload.get('format_version')!r}; this version of nesf "
                        f"reads version {FORMAT_VERSION}")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise NesfError(f"{path}: checkpoint is missing {', '.join(missing)}")
    return payload


def describe_load_error(exc: Exception) -> str:
    """What went wrong in a weights-only load, without torch's advice to load with weights_only=False (which would
    run whatever code the file carries)."""
    text = str(exc)
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if refused:
        return f"refused: it holds a Python object ({refused.group(1)}) that only loads by running code"
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n|$)", text)
    if detail:
        return f"corrupt or not a torch file: {detail.group(1)}"
    return f"{type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}"


def trained_epochs(payload: dict) -> int:
    """Epochs behind a checkpoint's weights: its own, plus those of the checkpoint it was fine-tuned from."""
    source = payload.get("init_from") or {}
    return int(payload.get("epoch", 0)) + int(source.get("epochs", 0))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    name: str
    dataset: str
    created: str
    epochs: int
    metrics: dict
    shipped: bool
    atlas_path: Path | None


def atlas_path_for(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".atlas.pt")


def list_checkpoints(directories, shipped_directory: Path | None = None) -> list[CheckpointInfo]:
    """Readable checkpoints in `directories` (non-recursive, skipping atlases); unreadable files are left out."""
    found = []
    for directory in directories:
        directory = Path(directory)
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.pt")):
            if path.name.endswith(".atlas.pt"):
                continue
            try:
                payload = load_checkpoint(path)
            except NesfError:
                continue
            atlas = atlas_path_for(path)
            found.append(CheckpointInfo(
                path=path, name=str(payload.get("name", path.stem)), dataset=str(payload.get("dataset", "")),
                created=str(payload.get("created", "")), epochs=trained_epochs(payload),
                metrics=dict(payload.get("metrics", {})),
                shipped=shipped_directory is not None and directory.resolve() == Path(shipped_directory).resolve(),
                atlas_path=atlas if atlas.is_file() else None))
    return found
