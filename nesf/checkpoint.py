"""Checkpoints: one file of plain types (tensors, numbers, strings, lists, dicts), loadable with
`torch.load(path, weights_only=True)` on any device, written atomically (temporary file, then `os.replace`).

Contents: format version, model config, species vocabulary (atomic numbers), dataset bounding box (Angstrom),
dataset name and split sizes, train/sampling/decode configs, model state, optimizer and scheduler state (for
resuming), epoch, training history, metrics, creation time.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nesf.atomic import atomic_torch_save
from nesf.errors import NesfError

FORMAT = "nesf-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "model_config", "vocab", "bbox_min", "bbox_max", "model_state")


def save_checkpoint(payload: dict, path: Path) -> None:
    """Write `payload` with this version's format marker (a loaded payload's own marker is replaced)."""
    payload = {**payload, "format": FORMAT, "format_version": FORMAT_VERSION}
    atomic_torch_save(payload, path)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu", *, mmap: bool = False) -> dict:
    """Load and validate a checkpoint; any problem raises NesfError naming the file. `mmap=True` maps the file
    instead of reading it: tensors (the weights, the optimizer state) are read only where they are used."""
    path = Path(path)
    if not path.is_file():
        raise NesfError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
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


def lineage(payload: dict) -> dict:
    """Training behind a checkpoint's weights, the checkpoints it was fine-tuned from included: epochs, wall and CPU
    seconds (what `init_from` records of a source, so a chain of fine-tunes adds up)."""
    source = payload.get("init_from") or {}
    chain = {"epochs": trained_epochs(payload),
             "wall_time_s": float(payload.get("wall_time_s") or 0.0) + float(source.get("wall_time_s") or 0.0)}
    if payload.get("cpu_time_s") is not None and (not source or source.get("cpu_time_s") is not None):
        chain["cpu_time_s"] = float(payload["cpu_time_s"]) + float(source.get("cpu_time_s") or 0.0)
    return chain  # without cpu_time_s where some link did not record it (checkpoints before it was kept)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(model_state: dict) -> str:
    """A digest of a model's weights alone (names, dtypes, shapes and values): the same after a checkpoint file is
    rewritten with other metadata (`nesf card` stores metrics in it), different after any retraining."""
    digest = hashlib.sha256()
    for name in sorted(model_state):
        tensor = model_state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself, without its weights: the one metadata record of the CLI, the card and
    the app. `epochs` counts those of the checkpoint it was fine-tuned from too; `epoch` is this run's own."""

    path: Path | None
    name: str
    dataset: str
    created: str
    epochs: int                       # trained epochs behind the weights, fine-tuning source included
    metrics: dict                     # per split: Table 1 metrics, probe readings, count, decode time
    shipped: bool = False             # in the shipped checkpoint folder (not trained from the app)
    atlas_path: Path | None = None    # <stem>.atlas.pt beside it, when there is one
    mtime: float = 0.0                # file modification time (s since the epoch), a cache key
    epoch: int = 0                    # epochs of this run
    split_sizes: dict = field(default_factory=dict)
    wall_time_s: float = 0.0          # this run's training time
    cpu_time_s: float = 0.0           # its training CPU time, all threads (0 in checkpoints from before it was kept)
    hardware: str = ""
    best_val_loss: float | None = None
    history: list = field(default_factory=list)        # per epoch: epoch, train_loss, val_loss
    init_from: dict | None = None     # the checkpoint it was fine-tuned from: name, epochs, wall_time_s, sha256
    lattice_refit: dict | None = None  # its lattice heads' refit (nesf.lattice_refit): config, result, dataset
    model_config: dict = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)
    sampling_config: dict = field(default_factory=dict)
    decode_config: dict = field(default_factory=dict)
    stored_weights: str = "fp32"      # precision of the weights in the file (nesf.ship); the model computes in fp32

    @classmethod
    def from_payload(cls, payload: dict, path: Path | None = None, *, shipped: bool = False) -> "CheckpointInfo":
        """The metadata of a loaded checkpoint (tensors are not touched)."""
        path = Path(path) if path is not None else None
        atlas = atlas_path_for(path) if path is not None else None
        best = payload.get("best_val_loss")
        return cls(
            path=path, name=str(payload.get("name", path.stem if path else "")),
            dataset=str(payload.get("dataset", "") or ""), created=str(payload.get("created", "") or ""),
            epochs=trained_epochs(payload), metrics=dict(payload.get("metrics") or {}), shipped=shipped,
            atlas_path=atlas if atlas is not None and atlas.is_file() else None,
            mtime=path.stat().st_mtime if path is not None and path.exists() else 0.0,
            epoch=int(payload.get("epoch", 0) or 0), split_sizes=dict(payload.get("split_sizes") or {}),
            wall_time_s=float(payload.get("wall_time_s") or 0.0),
            cpu_time_s=float(payload.get("cpu_time_s") or 0.0), hardware=str(payload.get("hardware") or ""),
            best_val_loss=None if best is None else float(best), history=list(payload.get("history") or []),
            init_from=dict(payload["init_from"]) if payload.get("init_from") else None,
            lattice_refit=dict(payload["lattice_refit"]) if payload.get("lattice_refit") else None,
            model_config=dict(payload.get("model_config") or {}), train_config=dict(payload.get("train_config") or {}),
            sampling_config=dict(payload.get("sampling_config") or {}),
            decode_config=dict(payload.get("decode_config") or {}),
            stored_weights=str(payload.get("stored_weights") or "fp32"))

    @property
    def label(self) -> str:
        """One line naming it: name · dataset · creation date · shipped or trained here."""
        date = self.created[:10] if self.created else "?"
        origin = "shipped" if self.shipped else "trained here"
        return f"{self.name} · {self.dataset or '?'} · {date} · {origin}"


def read_checkpoint_info(path: Path, *, shipped: bool = False) -> CheckpointInfo:
    """A checkpoint's metadata, read without loading its weights (the file is memory-mapped and its tensors are
    left alone). NesfError names the file when it is no readable checkpoint."""
    return CheckpointInfo.from_payload(load_checkpoint(path, mmap=True), path, shipped=shipped)


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
        shipped = shipped_directory is not None and directory.resolve() == Path(shipped_directory).resolve()
        for path in sorted(directory.glob("*.pt")):
            if path.name.endswith(".atlas.pt"):
                continue
            try:
                found.append(read_checkpoint_info(path, shipped=shipped))
            except NesfError:
                continue
    return found
