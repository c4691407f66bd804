"""Checkpoints: one file of plain types (tensors, numbers, strings, lists, dicts), loadable with
`torch.load(path, weights_only=True)` on any device, written atomically (temporary file, then `os.replace`).

`Checkpoint` is the file in memory, typed; this module alone knows the file's keys. `Checkpoint.load` reads and
validates a file, `Checkpoint.save` writes one; `to_payload` / `from_payload` convert to and from the file's dict.
The trainer produces a `Checkpoint`; shipping (`nesf.checkpoint.ship`), slimming (`nesf.checkpoint.run_state`), the
lattice refit (`nesf.training.lattice_refit`), the model card's metrics (`nesf.inference.card`) and cross-validation's
finished folds are functions from a `Checkpoint` to a `Checkpoint`.

Keys of the file (a `Checkpoint`'s fields):
    format, format_version   the marker "nesf-checkpoint" and this module's FORMAT_VERSION (written by `save`)
    name, dataset, split_sizes, created, hardware
    model_config, train_config, sampling_config, decode_config   the configs as dicts (nesf.core.config); in memory
                             the typed configs (None where a file holds none)
    vocab                    species vocabulary: atomic numbers, index -> Z
    bbox_min, bbox_max       (3,) bounding box of the training atoms, Angstrom
    model_range              the cells the model was trained on (nesf.model.model_range), absent in old files
    model_state              the weights to use (the best by validation loss, where the run kept those)
    epoch, wall_time_s, cpu_time_s, best_val_loss, history     this run's training record
    metrics                  per split label: Table 1 metrics, probe readings, ... (`nesf card`)
    init_from                the checkpoint it was fine-tuned from: name, epochs, wall/CPU seconds, sha256, widenings
    lattice_refit            its lattice heads' refit (`nesf refit-lattice`), when refitted
    stored_weights           the weights' precision in the file (`nesf ship`), when shipped
    training_state           what resuming needs (`TrainingState`), absent in shipped models
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from nesf.core.config import DecodeConfig, ModelConfig, SamplingConfig, TrainConfig
from nesf.core.errors import NesfError
from nesf.core.files import atomic_torch_save

FORMAT = "nesf-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "model_config", "vocab", "bbox_min", "bbox_max", "model_state")


@dataclass(frozen=True)
class TrainingState:
    """What resuming a run needs beyond its checkpoint's record: the training weights (the checkpoint's own may be
    the best by validation), Adam's state (None once slimmed without moments), the step counters."""

    model_state: dict
    optimizer_state: dict | None = None
    step_in_epoch: int = 0
    global_step: int = 0
    epochs_since_best: int = 0
    hard_crystals: dict | None = None  # nesf.training.hard_crystals' per-crystal losses, when hard crystals are drawn
    rewarm_steps: int | None = None    # a slim state without moments: steps over which the rate ramps back up
    slimmed: str | None = None         # how it was slimmed (nesf.checkpoint.run_state), when it was

    @classmethod
    def from_payload(cls, state: dict) -> "TrainingState":
        rewarm = state.get("rewarm_steps")
        return cls(model_state=state["model_state"], optimizer_state=state.get("optimizer_state"),
                   step_in_epoch=int(state.get("step_in_epoch", 0)), global_step=int(state.get("global_step", 0)),
                   epochs_since_best=int(state.get("epochs_since_best", 0)), hard_crystals=state.get("hard_crystals"),
                   rewarm_steps=None if rewarm is None else int(rewarm), slimmed=state.get("slimmed"))

    def to_payload(self) -> dict:
        state = {"model_state": self.model_state}
        if self.optimizer_state is not None:
            state["optimizer_state"] = self.optimizer_state
        state.update(step_in_epoch=self.step_in_epoch, global_step=self.global_step,
                     epochs_since_best=self.epochs_since_best)
        optional = {"hard_crystals": self.hard_crystals, "rewarm_steps": self.rewarm_steps, "slimmed": self.slimmed}
        state.update({key: value for key, value in optional.items() if value is not None})
        return state


@dataclass(frozen=True)
class SourceRecord:
    """What a fine-tuned checkpoint records of the one it started from (its `init_from`): the source's name, the
    training behind its weights (its own sources included, so a chain of fine-tunes adds up), its file's sha256, and
    how the new run widened the network where it did (the widened parts start as the same function)."""

    name: str | None
    epochs: int
    wall_time_s: float
    sha256: str
    cpu_time_s: float | None = None                      # None where some link of the chain did not record it
    widened_query_encoding: int | None = None            # sin/cos frequencies added to the query encoding
    widened_field_channels: dict | None = None           # {"position_field_channels": [the source's widths]}

    @classmethod
    def from_dict(cls, record: dict) -> "SourceRecord":
        cpu, frequencies = record.get("cpu_time_s"), record.get("widened_query_encoding")
        return cls(name=record.get("name"), epochs=int(record.get("epochs") or 0),
                   wall_time_s=float(record.get("wall_time_s") or 0.0), sha256=str(record.get("sha256") or ""),
                   cpu_time_s=None if cpu is None else float(cpu),
                   widened_query_encoding=None if frequencies is None else int(frequencies),
                   widened_field_channels={name: [int(w) for w in widths] for name, widths in
                                           record["widened_field_channels"].items()}
                   if record.get("widened_field_channels") else None)

    def to_dict(self) -> dict:
        record = {"name": self.name, "epochs": self.epochs, "wall_time_s": self.wall_time_s}
        if self.cpu_time_s is not None:
            record["cpu_time_s"] = self.cpu_time_s
        record["sha256"] = self.sha256
        optional = {"widened_query_encoding": self.widened_query_encoding,
                    "widened_field_channels": self.widened_field_channels}
        record.update({key: value for key, value in optional.items() if value is not None})
        return record


@dataclass(frozen=True)
class LatticeErrors:
    """Mean lattice errors of the lattice heads on a split."""

    length_angstrom: float = 0.0
    angle_degrees: float = 0.0


@dataclass(frozen=True)
class LatticeRefitRecord:
    """A lattice-head refit (`nesf refit-lattice`, `nesf.training.lattice_refit`): its config and result as that
    module writes them (plain dicts), the dataset it was fitted on, the augmentation of its crystals and their
    counts; the readings a model card names are properties."""

    config: dict
    result: dict
    dataset: str = ""
    augmentation: str = "none"
    crystals: dict = field(default_factory=dict)         # {"train": n, "val": n}

    @classmethod
    def from_dict(cls, record: dict) -> "LatticeRefitRecord":
        return cls(config=dict(record.get("config") or {}), result=dict(record.get("result") or {}),
                   dataset=str(record.get("dataset") or ""), augmentation=str(record.get("augmentation") or "none"),
                   crystals=dict(record.get("crystals") or {}))

    def to_dict(self) -> dict:
        return {"config": self.config, "result": self.result, "dataset": self.dataset,
                "augmentation": self.augmentation, "crystals": self.crystals}

    @property
    def epochs(self) -> int | None:
        return self.config.get("epochs")

    @property
    def seconds(self) -> float:
        return float(self.result.get("seconds", 0.0))

    @property
    def length_epoch(self) -> int:
        """The epoch whose length head was kept (0: the trained head was kept)."""
        return int(self.result.get("length_epoch") or 0)

    @property
    def angle_epoch(self) -> int:
        return int(self.result.get("angle_epoch") or 0)

    @property
    def val_before(self) -> LatticeErrors:
        return LatticeErrors(**self.result.get("val_before", {}))

    @property
    def val_after(self) -> LatticeErrors:
        return LatticeErrors(**self.result.get("val_after", {}))


def _typed(config_type, stored):
    """A stored config dict as its dataclass; None where the file holds none (or an empty one)."""
    return config_type.from_dict(dict(stored)) if stored else None


def _plain(config) -> dict:
    return config.to_dict() if config is not None else {}


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint in memory (see the module for its fields). The configs are typed (`nesf.core.config`): a file's
    dicts are read with the configs' `from_dict` (fields a file lacks take their defaults), written with `to_dict`."""

    model_config: ModelConfig
    vocab: list
    bbox_min: list
    bbox_max: list
    model_state: dict
    name: str = ""
    dataset: str = ""
    split_sizes: dict = field(default_factory=dict)
    created: str = ""
    train_config: TrainConfig | None = None
    sampling_config: SamplingConfig | None = None
    decode_config: DecodeConfig | None = None
    model_range: dict | None = None
    epoch: int = 0
    wall_time_s: float = 0.0
    cpu_time_s: float | None = None   # None in checkpoints from before it was kept
    best_val_loss: float | None = None
    history: list = field(default_factory=list)
    metrics: dict | None = None       # None: no key in the file (a shipped or refitted model before `nesf card`)
    hardware: str = ""
    init_from: SourceRecord | None = None
    lattice_refit: LatticeRefitRecord | None = None
    stored_weights: str | None = None
    training_state: TrainingState | None = None

    # -- files ----------------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path, map_location: str | torch.device = "cpu", *, mmap: bool = False) -> "Checkpoint":
        """Load and validate a checkpoint file; any problem raises NesfError naming the file. `mmap=True` maps the
        file instead of reading it: tensors are read only where they are used."""
        payload = read_payload(path, map_location, mmap=mmap)
        try:
            return cls.from_payload(payload)
        except NesfError as exc:
            raise NesfError(f"{path}: {exc}") from None
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise NesfError(f"{path}: a stored config or record is malformed (tampered, or written by another "
                            f"version): {type(exc).__name__}: {str(exc)[:200]}") from None

    def save(self, path: Path) -> None:
        """Write atomically, with this version's format marker."""
        write_payload(self.to_payload(), path)

    @classmethod
    def from_payload(cls, payload: dict) -> "Checkpoint":
        """The checkpoint of a file's dict (validated by `read_payload`); keys absent in older files take defaults."""
        best, cpu = payload.get("best_val_loss"), payload.get("cpu_time_s")
        state = payload.get("training_state")
        return cls(
            model_config=ModelConfig.from_dict(dict(payload["model_config"])),
            vocab=[int(z) for z in payload["vocab"]],
            bbox_min=[float(x) for x in payload["bbox_min"]], bbox_max=[float(x) for x in payload["bbox_max"]],
            model_state=payload["model_state"], name=str(payload.get("name") or ""),
            dataset=str(payload.get("dataset") or ""), split_sizes=dict(payload.get("split_sizes") or {}),
            created=str(payload.get("created") or ""), train_config=_typed(TrainConfig, payload.get("train_config")),
            sampling_config=_typed(SamplingConfig, payload.get("sampling_config")),
            decode_config=_typed(DecodeConfig, payload.get("decode_config")),
            model_range=dict(payload["model_range"]) if payload.get("model_range") else None,
            epoch=int(payload.get("epoch") or 0), wall_time_s=float(payload.get("wall_time_s") or 0.0),
            cpu_time_s=None if cpu is None else float(cpu), best_val_loss=None if best is None else float(best),
            history=list(payload.get("history") or []),
            metrics=dict(payload["metrics"]) if payload.get("metrics") is not None else None,
            hardware=str(payload.get("hardware") or ""),
            init_from=SourceRecord.from_dict(payload["init_from"]) if payload.get("init_from") else None,
            lattice_refit=(LatticeRefitRecord.from_dict(payload["lattice_refit"]) if payload.get("lattice_refit")
                           else None),
            stored_weights=payload.get("stored_weights"),
            training_state=TrainingState.from_payload(state) if state is not None else None)

    def to_payload(self) -> dict:
        """The file's dict: plain types only (what `torch.load(weights_only=True)` reads back)."""
        payload = {"name": self.name, "dataset": self.dataset, "split_sizes": dict(self.split_sizes),
                   "created": self.created, "model_config": self.model_config.to_dict(),
                   "train_config": _plain(self.train_config), "sampling_config": _plain(self.sampling_config),
                   "decode_config": _plain(self.decode_config),
                   "vocab": [int(z) for z in self.vocab], "bbox_min": [float(x) for x in self.bbox_min],
                   "bbox_max": [float(x) for x in self.bbox_max]}
        if self.model_range is not None:
            payload["model_range"] = self.model_range
        payload.update(model_state=self.model_state, epoch=self.epoch, wall_time_s=self.wall_time_s)
        if self.cpu_time_s is not None:
            payload["cpu_time_s"] = self.cpu_time_s
        payload.update(best_val_loss=self.best_val_loss, history=list(self.history))
        if self.metrics is not None:
            payload["metrics"] = dict(self.metrics)
        payload.update(hardware=self.hardware, init_from=self.init_from.to_dict() if self.init_from else None)
        optional = {"lattice_refit": self.lattice_refit.to_dict() if self.lattice_refit else None,
                    "stored_weights": self.stored_weights,
                    "training_state": self.training_state.to_payload() if self.training_state else None}
        payload.update({key: value for key, value in optional.items() if value is not None})
        return payload

    # -- checkpoint to checkpoint ---------------------------------------------------------------------------------
    def without_training_state(self) -> "Checkpoint":
        """The trained model alone: no optimizer or resume state (a finished cross-validation fold, a shipped file)."""
        return replace(self, training_state=None)

    def with_metrics(self, metrics: dict) -> "Checkpoint":
        """`metrics` ({"test": {...}, ...}) stored beside those it holds (`nesf card`)."""
        return replace(self, metrics={**(self.metrics or {}), **metrics})

    def with_refitted_lattice(self, model_state: dict, record: LatticeRefitRecord) -> "Checkpoint":
        """New weights after a lattice-head refit, described by `record` (nesf.training.lattice_refit); the metrics,
        measured with the old heads, are dropped (`nesf card` measures the new ones)."""
        return replace(self, model_state={key: value.detach().cpu() for key, value in model_state.items()},
                       lattice_refit=record, metrics=None)

    # -- derived --------------------------------------------------------------------------------------------------
    @property
    def trained_epochs(self) -> int:
        """Epochs behind the weights: this run's, plus those of the checkpoint it was fine-tuned from."""
        return self.epoch + (self.init_from.epochs if self.init_from else 0)

    def lineage(self) -> dict:
        """Training behind the weights, the checkpoints it was fine-tuned from included: epochs, wall and CPU
        seconds (what `init_from` records of a source, so a chain of fine-tunes adds up)."""
        source = self.init_from
        chain = {"epochs": self.trained_epochs,
                 "wall_time_s": self.wall_time_s + (source.wall_time_s if source else 0.0)}
        if self.cpu_time_s is not None and (source is None or source.cpu_time_s is not None):
            chain["cpu_time_s"] = self.cpu_time_s + (source.cpu_time_s if source else 0.0)
        return chain  # without cpu_time_s where some link did not record it (checkpoints before it was kept)

    def source_record(self, path: Path) -> SourceRecord:
        """What a run fine-tuned from this checkpoint (the file at `path`) records of it in its `init_from`."""
        lineage = self.lineage()
        return SourceRecord(name=self.name or None, epochs=lineage["epochs"], wall_time_s=lineage["wall_time_s"],
                            sha256=file_sha256(path), cpu_time_s=lineage.get("cpu_time_s"))


def write_payload(payload: dict, path: Path) -> None:
    """Write a file's dict with this version's format marker (a loaded payload's own marker is replaced)."""
    payload = {**payload, "format": FORMAT, "format_version": FORMAT_VERSION}
    atomic_torch_save(payload, path)


def read_payload(path: Path, map_location: str | torch.device = "cpu", *, mmap: bool = False) -> dict:
    """A checkpoint file's dict, validated; any problem raises NesfError naming the file."""
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
    init_from: SourceRecord | None = None           # the checkpoint it was fine-tuned from
    lattice_refit: LatticeRefitRecord | None = None  # its lattice heads' refit (nesf.training.lattice_refit)
    model_config: ModelConfig = field(default_factory=ModelConfig)
    train_config: TrainConfig | None = None
    sampling_config: SamplingConfig | None = None
    decode_config: DecodeConfig | None = None
    stored_weights: str = "fp32"      # weights' precision in the file (nesf.checkpoint.ship); computed in fp32

    @classmethod
    def of(cls, checkpoint: Checkpoint, path: Path | None = None, *, shipped: bool = False) -> "CheckpointInfo":
        """The metadata of a loaded checkpoint (tensors are not touched)."""
        path = Path(path) if path is not None else None
        atlas = atlas_path_for(path) if path is not None else None
        return cls(
            path=path, name=checkpoint.name or (path.stem if path else ""), dataset=checkpoint.dataset,
            created=checkpoint.created, epochs=checkpoint.trained_epochs, metrics=dict(checkpoint.metrics or {}),
            shipped=shipped, atlas_path=atlas if atlas is not None and atlas.is_file() else None,
            mtime=path.stat().st_mtime if path is not None and path.exists() else 0.0,
            epoch=checkpoint.epoch, split_sizes=dict(checkpoint.split_sizes), wall_time_s=checkpoint.wall_time_s,
            cpu_time_s=checkpoint.cpu_time_s or 0.0, hardware=checkpoint.hardware,
            best_val_loss=checkpoint.best_val_loss, history=list(checkpoint.history),
            init_from=checkpoint.init_from, lattice_refit=checkpoint.lattice_refit,
            model_config=checkpoint.model_config, train_config=checkpoint.train_config,
            sampling_config=checkpoint.sampling_config, decode_config=checkpoint.decode_config,
            stored_weights=checkpoint.stored_weights or "fp32")

    @property
    def trained(self) -> bool:
        """Whether its weights have finished at least one epoch (its own or its fine-tuning source's): a run
        cancelled before its first epoch leaves a checkpoint of near-random weights, a state to resume, not a model."""
        return self.epochs > 0

    @property
    def label(self) -> str:
        """One line naming it: name · dataset · creation date · shipped or trained here."""
        date = self.created[:10] if self.created else "?"
        origin = "shipped" if self.shipped else "trained here"
        return f"{self.name} · {self.dataset or '?'} · {date} · {origin}"


def read_checkpoint_info(path: Path, *, shipped: bool = False) -> CheckpointInfo:
    """A checkpoint's metadata, read without loading its weights (the file is memory-mapped and its tensors are
    left alone). NesfError names the file when it is no readable checkpoint."""
    return CheckpointInfo.of(Checkpoint.load(path, mmap=True), path, shipped=shipped)


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
