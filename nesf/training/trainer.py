"""Training (section 4.3): Adam, step decay, early stopping on validation loss, resumable checkpoints,
progress events for a UI, optional bf16 autocast and torch.compile on CUDA, DistributedDataParallel under torchrun.
Recipe flags beyond the paper (defaults off): AdamW, a warm-up + cosine schedule, an auxiliary composition loss,
BatchNorm recalibration after training. Each validation runs the composition probe (`nesf.evaluation.probe`) on val
too.

Every step is tensor work on one device: batches are index slices of device-resident padded arrays, queries and
nearest-atom targets are drawn on the device.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from nesf.checkpoint import Checkpoint, SourceRecord, TrainingState
from nesf.checkpoint.run_state import DEFAULT_REWARM_STEPS, rewarm_factor
from nesf.core.config import DecodeConfig, ModelConfig, SamplingConfig, TrainConfig
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.evaluation.probe import composition_fractions, composition_probe
from nesf.model.batch import CrystalTensors, batch_bounds
from nesf.model.model_range import ModelRange
from nesf.model.network import FIELDS, NeSF, widen_field_channels, widen_query_encoding
from nesf.model.sampling import QuerySampler
from nesf.model.schedule import learning_rate
from nesf.training.augment import VariantPool, variant_pool
from nesf.training.hard_crystals import HardCrystalOrder, per_crystal_position_loss
from nesf.training.progress import CHECKPOINT, EPOCH, START, STEP, Event

log = logging.getLogger(__name__)

STEP_EVENT_EVERY_S = 2.0  # a STEP event (steps done within the epoch) at most this often: progress between epochs
TRAIN_MIN_BATCH = 2  # BatchNorm in training mode needs two crystals per batch: a lone last one joins the batch before


class ProgressCallback(Protocol):
    def __call__(self, event: dict) -> None: ...


@dataclass
class TrainingData:
    name: str                       # dataset name(s), e.g. "lim_l6"
    train: list[Crystal]
    val: list[Crystal]
    vocab: list[int]                # atomic numbers, index -> Z
    bbox_min: np.ndarray            # (3,) Angstrom, over training atoms
    bbox_max: np.ndarray
    split_sizes: dict = field(default_factory=dict)

    @classmethod
    def from_dataset(cls, dataset, *, limit: int = 0) -> "TrainingData":
        """A `CrystalDataset`'s train and val splits (the first `limit` of each when given) with its vocabulary and
        box."""
        train = dataset.crystals("train")[: limit or None]
        if not train:
            raise NesfError(f"dataset {dataset.name!r} has no training crystals")
        sizes = {split: len(crystals) for split, crystals in dataset.splits.items()}
        return cls(dataset.name, train, dataset.crystals("val")[: limit or None], dataset.species_vocab,
                   dataset.bbox_min, dataset.bbox_max, sizes)


def bounding_box(crystals: list[Crystal]) -> tuple[np.ndarray, np.ndarray]:
    coords = np.concatenate([c.cart_coords for c in crystals if c.num_atoms])
    return coords.min(axis=0), coords.max(axis=0)


PROBE_FIT_CRYSTALS = 2048  # training crystals the validation-time composition probe is fitted on


def compute_loss(outputs, batch, queries, weights) -> tuple[torch.Tensor, dict]:
    lengths, angles, position, species, composition = outputs
    parts = {
        "position": F.mse_loss(position.float(), queries.position_targets) * weights.position,
        "species": F.cross_entropy(species.float(), queries.species_targets) * weights.species,
        "lengths": F.mse_loss(lengths.float(), batch.lengths) * weights.lengths,
        "angles": F.mse_loss(angles.float(), batch.angles_rad) * weights.angles,
    }
    if composition is not None:  # soft-target cross-entropy against the crystal's element fractions
        targets = batch.element_fractions(composition.shape[1])
        parts["composition"] = F.cross_entropy(composition.float(), targets) * weights.composition
    return sum(parts.values()), parts


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=config.learning_rate)


@torch.no_grad()
def recalibrate_batchnorm(model: NeSF, tensors: CrystalTensors, sampler: QuerySampler, batch_size: int,
                          batches: int, generator: torch.Generator) -> None:
    """Re-estimate every BatchNorm's running mean and variance with the model's final weights: reset them, then
    average the batch statistics of `batches` training batches (momentum None: a cumulative mean), dropout off."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or batches <= 0:
        return
    saved_momentum = [m.momentum for m in norms]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    order = torch.randperm(len(tensors), generator=torch.Generator().manual_seed(int(generator.initial_seed())))
    for start, stop in batch_bounds(min(batches * batch_size, len(tensors)), batch_size, TRAIN_MIN_BATCH):
        batch = tensors.batch(order[start:stop])
        model(batch, sampler.sample(batch, generator))
    for norm, momentum in zip(norms, saved_momentum):
        norm.momentum = momentum
    model.eval()


class Trainer:
    """Owns model, optimizer and schedule; `fit()` runs epochs and writes checkpoints to `checkpoint_path`."""

    def __init__(self, data: TrainingData, *, model_config: ModelConfig | None = None,
                 train_config: TrainConfig | None = None, sampling_config: SamplingConfig | None = None,
                 device: torch.device | str = "cpu", checkpoint_path: Path | None = None,
                 progress: ProgressCallback | None = None, should_stop: Callable[[], bool] | None = None,
                 name: str | None = None, decode_config: DecodeConfig | None = None):
        self.data = data
        self.train_config = train_config or TrainConfig()
        self.sampling_config = sampling_config or SamplingConfig()
        self.model_config = model_config or ModelConfig()
        if self.model_config.num_species != len(data.vocab):
            from dataclasses import replace

            self.model_config = replace(self.model_config, num_species=len(data.vocab))
        self.device = torch.device(device)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.progress = progress or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)
        self.name = name or data.name
        self.decode_config = decode_config or DecodeConfig.for_sampling(self.sampling_config)
        self.rank, self.world_size = _distributed_rank()

        torch.manual_seed(self.train_config.seed)
        self.model = NeSF(self.model_config).to(self.device)
        self.optimizer = make_optimizer(self.model, self.train_config)
        self.sampler = QuerySampler(data.bbox_min, data.bbox_max, self.sampling_config, self.device)
        self.model_range = ModelRange.of(data.train, data.vocab, data.bbox_min, data.bbox_max)
        train = data.train[self.rank::self.world_size] if self.world_size > 1 else data.train
        if len(train) < TRAIN_MIN_BATCH:
            raise NesfError(f"{data.name}: {len(train)} training crystal(s)"
                            + (f" on rank {self.rank}" if self.world_size > 1 else "")
                            + f"; training needs at least {TRAIN_MIN_BATCH} (BatchNorm statistics need two per batch)")
        self.train_tensors = CrystalTensors(train, data.vocab, self.device)
        self.variants: VariantPool | None = None  # each crystal's equivalent settings and cells (augmentation)
        self.variant_tensors: CrystalTensors | None = None
        if self.train_config.augmentation != "none":
            self.variants = variant_pool(train, self.train_config.augmentation, self.model_range, self.device)
            self.variant_tensors = CrystalTensors(self.variants.crystals, data.vocab, self.device)
            log.info("augmentation %s: %.2f variants per training crystal", self.train_config.augmentation,
                     self.variants.mean_variants)
        self.hard_crystals: HardCrystalOrder | None = None  # epoch orders that revisit the worst-fitted crystals
        if self.train_config.hard_crystal_fraction > 0:
            if self.world_size > 1:
                raise NesfError("hard-crystal sampling is for one process; train without it under torchrun")
            self.hard_crystals = HardCrystalOrder(len(self.train_tensors), self.train_config.hard_crystal_fraction)
        self.val_tensors = CrystalTensors(data.val, data.vocab, self.device) if data.val else None
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.train_config.seed + self.rank)
        self.epoch = 0                 # completed epochs
        self.step_in_epoch = 0         # steps taken into the next epoch (non-zero after a cancel mid-epoch)
        self.global_step = 0           # optimizer steps over the whole run
        self.history: list[dict] = []
        self.best_val_loss = math.inf
        self.best_state: dict | None = None
        self.epochs_since_best = 0
        self.wall_time_s = 0.0
        self.cpu_time_s = 0.0          # this process's CPU time in training (all threads), summed over resumes
        self._start_epoch = 0          # epoch and wall time this run started from (non-zero after `resume`)
        self._start_wall_time_s = 0.0
        self.init_from: SourceRecord | None = None  # the checkpoint this run's weights started from (initialize_from)
        self._rewarm: tuple[int, int] | None = None  # (global step, steps) of a resume without Adam moments
        self.network = self._wrap_network()

    # -- model plumbing -------------------------------------------------------------------------------------------
    def _wrap_network(self):
        network = self.model
        if self.train_config.compile:
            # The two field MLPs take nearly all the time; compiled in place (state-dict keys unchanged), with
            # dynamic shapes since the query count changes every step. CPU: ~1.6x faster steps (BENCHMARKS.md).
            self.model.position_field.compile(dynamic=True)
            self.model.species_field.compile(dynamic=True)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            network = DistributedDataParallel(network, device_ids=[self.device.index] if self.device.type == "cuda"
                                              else None)
        return network

    def _autocast(self):
        enabled = self.train_config.mixed_precision and self.device.type == "cuda"
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=enabled)

    # -- steps ----------------------------------------------------------------------------------------------------
    def train_step(self, batch, indices: torch.Tensor | None = None) -> dict:
        """One optimizer step on `batch` (the training crystals `indices`, recorded for hard-crystal sampling)."""
        self.network.train()
        queries = self.sampler.sample(batch, self.generator)
        with self._autocast():
            outputs = self.network(batch, queries, latent_noise=self.train_config.latent_noise,
                                   generator=self.generator)
        loss, parts = compute_loss(outputs, batch, queries, self.train_config.loss_weights)
        if self.hard_crystals is not None and indices is not None:
            self.hard_crystals.record(indices, per_crystal_position_loss(
                outputs[2], queries.position_targets, queries.position_crystal, len(indices)))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}}

    def _training_batch(self, indices: torch.Tensor):
        """The batch of training crystals `indices`: as stored, or each drawn as one of its variants."""
        if self.variants is None:
            return self.train_tensors.batch(indices)
        return self.variant_tensors.batch(self.variants.draw(indices, self.generator))

    @torch.no_grad()
    def eval_step(self, batch, generator: torch.Generator) -> dict:
        self.model.eval()
        queries = self.sampler.sample(batch, generator)
        with self._autocast():
            outputs = self.model(batch, queries)
        loss, parts = compute_loss(outputs, batch, queries, self.train_config.loss_weights)
        return {"loss": loss, **parts}

    def validate(self) -> float:
        if self.val_tensors is None:
            return math.nan
        generator = torch.Generator(device=self.device)
        generator.manual_seed(12345)  # the same validation queries every time
        total, count = 0.0, 0
        for batch in self.val_tensors.batches(self.train_config.batch_size):
            total += float(self.eval_step(batch, generator)["loss"]) * batch.size
            count += batch.size
        return total / count

    @torch.no_grad()
    def probe(self) -> dict:
        """The composition probe, fitted on (up to PROBE_FIT_CRYSTALS) training latents, scored on validation."""
        if self.val_tensors is None:
            return {}
        self.model.eval()
        fit_count = min(len(self.train_tensors), PROBE_FIT_CRYSTALS)
        readings = []
        for tensors, count in ((self.train_tensors, fit_count), (self.val_tensors, len(self.val_tensors))):
            latents, species = [], []
            for start in range(0, count, 512):
                batch = tensors.batch(torch.arange(start, min(start + 512, count), device=self.device))
                latents.append(self.model.encode(batch).float().cpu().numpy())
                species += [row[mask].cpu().numpy() for row, mask in zip(batch.species_index, batch.atom_mask)]
            readings.append((np.concatenate(latents), composition_fractions(species, self.model_config.num_species)))
        return composition_probe(*readings[0], *readings[1], seed=self.train_config.seed)

    def _apply_learning_rate(self, progress_epochs: float) -> float:
        rate = learning_rate(self.train_config, progress_epochs)
        if self._rewarm is not None:
            resumed_at, rewarm_steps = self._rewarm
            rate *= rewarm_factor(self.global_step - resumed_at, rewarm_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        return rate

    # -- loop -----------------------------------------------------------------------------------------------------
    def fit(self) -> str:
        """Train until the configured epochs, early stop, or `should_stop()`; returns 'done' or 'cancelled'."""
        cfg = self.train_config
        started = time.monotonic() - self.wall_time_s
        cpu_started = time.process_time() - self.cpu_time_s
        last_save = last_step_event = time.monotonic()
        self._emit(Event(START, epoch=self.epoch, epochs=cfg.epochs))
        status = "done"
        steps_per_epoch = self.train_tensors.num_batches(cfg.batch_size, TRAIN_MIN_BATCH)
        while self.epoch < cfg.epochs:
            sums: dict[str, torch.Tensor] = {}
            steps = 0
            stop_requested = False
            # A run cancelled mid-epoch resumes with the rest of that epoch (a fresh shuffle, the remaining steps)
            remaining = max(steps_per_epoch - self.step_in_epoch, 1)
            order = (self.hard_crystals.epoch_order() if self.hard_crystals is not None
                     else torch.randperm(len(self.train_tensors)))
            bounds = batch_bounds(len(order), cfg.batch_size, TRAIN_MIN_BATCH)
            for start, stop in itertools.islice(bounds, remaining):
                self._apply_learning_rate(self.epoch + (self.step_in_epoch + steps) / steps_per_epoch)
                indices = order[start:stop]
                parts = self.train_step(self._training_batch(indices), indices)
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0) + value
                steps += 1
                self.global_step += 1
                if time.monotonic() - last_step_event >= STEP_EVENT_EVERY_S:
                    last_step_event = time.monotonic()
                    self._emit(Event(STEP, epoch=self.epoch, epochs=cfg.epochs, step=self.step_in_epoch + steps,
                                     steps=steps_per_epoch, elapsed_s=time.monotonic() - started))
                if self.should_stop():
                    stop_requested = True
                    break
            if stop_requested and steps < remaining:  # the checkpoint records exactly the steps taken
                self.step_in_epoch += steps
                status = "cancelled"
                break
            self.step_in_epoch = 0
            self.epoch += 1
            self.wall_time_s = time.monotonic() - started
            self.cpu_time_s = time.process_time() - cpu_started
            record = {"epoch": self.epoch, **{f"train_{k}": float(v) / steps for k, v in sums.items()},
                      "lr": self.optimizer.param_groups[0]["lr"], "elapsed_s": self.wall_time_s,
                      "cpu_s": self.cpu_time_s}
            if self.epoch % cfg.validate_every == 0 or self.epoch == cfg.epochs:
                self._validate_into(record)
            self.history.append(record)
            seconds_per_epoch = (self.wall_time_s - self._start_wall_time_s) / max(self.epoch - self._start_epoch, 1)
            eta = seconds_per_epoch * (cfg.epochs - self.epoch)  # from this run's pace, not the resumed run's
            self._emit(Event(EPOCH, epoch=self.epoch, epochs=cfg.epochs, train_loss=record["train_loss"],
                             val_loss=record.get("val_loss"),
                             val_probe_element_set_match_percent=record.get("val_probe_element_set_match_percent"),
                             elapsed_s=self.wall_time_s, eta_s=eta))
            if self.checkpoint_path and time.monotonic() - last_save >= cfg.checkpoint_every_s:
                self.save()
                last_save = time.monotonic()
            if cfg.early_stopping_patience and self.epochs_since_best >= cfg.early_stopping_patience:
                log.info("early stopping at epoch %d", self.epoch)
                break
            if stop_requested:
                status = "cancelled"
                break
        if status == "done" and cfg.bn_recalibration_batches > 0:
            self.recalibrate()
        self.wall_time_s = time.monotonic() - started
        self.cpu_time_s = time.process_time() - cpu_started
        if self.checkpoint_path:
            self.save()
        return status

    def _validate_into(self, record: dict) -> None:
        """Validation loss and probe into `record`; keeps the best weights by validation loss. Without a validation
        split nothing is kept aside: the checkpoint then holds the latest weights."""
        val_loss = self.validate()
        if math.isnan(val_loss):
            return
        record["val_loss"] = val_loss
        record.update({f"val_{key}": value for key, value in self.probe().items()})
        if val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
            if self.train_config.keep_best_by_validation:
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.epochs_since_best = 0
        else:
            self.epochs_since_best += self.train_config.validate_every

    def recalibrate(self) -> None:
        """BatchNorm recalibration of the final weights (`TrainConfig.bn_recalibration_batches`); these weights are
        then the ones kept (recorded in the history as a 'bn_recalibration' entry with its validation readings)."""
        generator = torch.Generator(device=self.device)
        generator.manual_seed(self.train_config.seed + 1)
        recalibrate_batchnorm(self.model, self.train_tensors, self.sampler, self.train_config.batch_size,
                              self.train_config.bn_recalibration_batches, generator)
        record = {"epoch": self.epoch, "bn_recalibration": self.train_config.bn_recalibration_batches}
        val_loss = self.validate()
        if not math.isnan(val_loss):
            record["val_loss"] = val_loss
            record.update({f"val_{key}": value for key, value in self.probe().items()})
            self.best_val_loss = val_loss
        self.best_state = None  # the checkpoint holds the recalibrated final weights
        self.history.append(record)

    def _emit(self, event: Event) -> None:
        if self.rank == 0:
            self.progress(event)

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def checkpoint(self, *, include_training_state: bool = True) -> Checkpoint:
        inference_state = self.best_state if self.best_state is not None else self.model.state_dict()
        training_state = None
        if include_training_state:
            training_state = TrainingState(
                model_state={k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                optimizer_state=self.optimizer.state_dict(), step_in_epoch=self.step_in_epoch,
                global_step=self.global_step, epochs_since_best=self.epochs_since_best,
                hard_crystals=self.hard_crystals.state_dict() if self.hard_crystals is not None else None)
        return Checkpoint(
            name=self.name, dataset=self.data.name, split_sizes=dict(self.data.split_sizes),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            model_config=self.model_config, train_config=self.train_config, sampling_config=self.sampling_config,
            decode_config=self.decode_config,
            vocab=[int(z) for z in self.data.vocab], bbox_min=[float(x) for x in self.data.bbox_min],
            bbox_max=[float(x) for x in self.data.bbox_max], model_range=self.model_range.to_dict(),
            model_state={k: v.detach().cpu() for k, v in inference_state.items()}, epoch=self.epoch,
            wall_time_s=self.wall_time_s, cpu_time_s=self.cpu_time_s,
            best_val_loss=self.best_val_loss if math.isfinite(self.best_val_loss) else None,
            history=list(self.history), metrics={}, hardware=_hardware(self.device), init_from=self.init_from,
            training_state=training_state)

    def save(self, path: Path | None = None) -> None:
        if self.rank != 0:
            return
        path = Path(path or self.checkpoint_path)
        self.checkpoint().save(path)
        self._emit(Event(CHECKPOINT, epoch=self.epoch, checkpoint=str(path)))

    def initialize_from(self, path: Path) -> None:
        """Start from another checkpoint's weights (fine-tuning) with this run's fresh optimizer and schedule; the
        source is recorded in the checkpoint (`init_from`: its name, sha256, and the epochs and hours behind its weights,
        its own sources' included). Model config and species vocabulary must match, but for two widenings that keep the
        source's function: a raw-xyz source may gain a sin/cos query encoding, and its field MLPs may grow wider."""
        source = Checkpoint.load(path, map_location=self.device)
        if source.vocab != [int(z) for z in self.data.vocab]:
            raise NesfError(f"{path}: species vocabulary differs from the training data's; cannot start from it")
        source_config = replace(source.model_config, dropout=self.model_config.dropout)
        weights, widened = source.model_state, {}
        frequencies = self.model_config.positional_encoding_frequencies
        if source_config.positional_encoding_frequencies != frequencies:  # raw xyz -> sin/cos: widen, same function
            try:
                weights = widen_query_encoding(weights, source_config, frequencies)
            except NesfError as exc:
                raise NesfError(f"{path}: {exc}; cannot start from it") from None
            source_config = replace(source_config, positional_encoding_frequencies=frequencies)
            widened = {"widened_query_encoding": frequencies}
        channels = {f"{field}_channels": getattr(self.model_config, f"{field}_channels") for field in FIELDS}
        changed = {name: list(getattr(source_config, name)) for name, value in channels.items()
                   if getattr(source_config, name) != value}
        if changed:  # wider field MLPs: the same function
            try:
                weights = widen_field_channels(weights, source_config, self.model.state_dict(), self.model_config)
            except NesfError as exc:
                raise NesfError(f"{path}: {exc}; cannot start from it") from None
            widened["widened_field_channels"] = changed
            source_config = replace(source_config, **channels)
        if source_config != self.model_config:  # dropout holds no weights: a fine-tune may change it
            raise NesfError(f"{path}: model config differs from this run's; cannot start from it")
        self.model.load_state_dict(weights)
        self.init_from = replace(source.source_record(path), **widened)

    def resume(self, path: Path) -> None:
        checkpoint = Checkpoint.load(path, map_location=self.device)
        state = checkpoint.training_state
        if state is None:
            raise NesfError(f"{path}: holds no training state to resume from")
        if checkpoint.vocab != [int(z) for z in self.data.vocab]:
            raise NesfError(f"{path}: species vocabulary differs from the training data's; cannot resume")
        self.model.load_state_dict(state.model_state)
        self.epoch = checkpoint.epoch
        self.step_in_epoch = state.step_in_epoch
        self.global_step = state.global_step
        if state.optimizer_state is not None:  # fp32 or bf16 moments (cast to fp32); the rate follows the epoch
            self.optimizer.load_state_dict(state.optimizer_state)
        else:  # a slim state without moments (nesf.checkpoint.run_state): a fresh Adam, its rate ramped back up
            rewarm_steps = DEFAULT_REWARM_STEPS if state.rewarm_steps is None else state.rewarm_steps
            self._rewarm = (self.global_step, rewarm_steps)
        self._start_epoch = self.epoch
        self.history = list(checkpoint.history)
        self.wall_time_s = checkpoint.wall_time_s
        self._start_wall_time_s = self.wall_time_s
        self.cpu_time_s = checkpoint.cpu_time_s or 0.0
        best = checkpoint.best_val_loss
        self.best_val_loss = best if best is not None else math.inf
        # the kept weights differ from the training weights only when a validation pass chose them
        keep_best = self.train_config.keep_best_by_validation
        self.best_state = checkpoint.model_state if best is not None and keep_best else None
        self.epochs_since_best = state.epochs_since_best
        self.init_from = checkpoint.init_from
        if self.hard_crystals is not None and state.hard_crystals is not None:
            self.hard_crystals.load_state_dict(state.hard_crystals)


def _distributed_rank() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_distributed(device_name: str) -> torch.device | None:
    """Under torchrun (WORLD_SIZE > 1): join the process group (NCCL on CUDA, gloo on CPU), return this rank's
    device; otherwise None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"
