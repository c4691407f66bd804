"""Refit a trained model's lattice heads on its frozen encoder: the last training stage for the lattice metrics.

Why: training fits the lattice heads to training-mode latents (BatchNorm on batch statistics, a radians-squared
angle loss worth ~1e-4 of the total), so at inference, on eval-mode latents, they read the lattice with a bias
(LCS6A, shipped model: -0.03 A and -0.2 deg on its own training crystals) and blur the right angles that 97 % of its
cells have. This stage encodes the training crystals once in eval mode (the latents decoding will see), then fits
copies of the two heads (192 -> 128 -> 3 each) with a loss that matches Table 1's mean absolute errors:
|error| + `squared_weight` * error^2, in Angstrom and degrees. Every `validate_every` epochs it scores the validation
split; each head keeps its epoch with the lowest validation error, and only where that beats the original head,
which otherwise stays. The encoder and the fields are not touched, so the latents (and the
atlas built from them) stay as they were.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from nesf.checkpoint import Checkpoint, LatticeRefitRecord
from nesf.core.errors import NesfError
from nesf.model.batch import CrystalTensors
from nesf.model.network import NeSF

ENCODE_CHUNK = 512  # crystals per encoder pass


@dataclass(frozen=True)
class LatticeRefitConfig:
    epochs: int = 160
    length_learning_rate: float = 3e-3  # Adam, cosine from this to zero over all steps (LCS6A val: lengths want
    angle_learning_rate: float = 1e-2   # the lower rate, the right angles the higher one)
    batch_size: int = 64
    squared_weight: float = 0.1   # loss = |error| + w * error^2 (Angstrom, degrees): MAE's median pull, tails kept
    validate_every: int = 10      # epochs between validation scores
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.validate_every < 1:
            raise NesfError("lattice refit: epochs, batch size and validate-every must be at least 1")
        if not (self.length_learning_rate > 0 and self.angle_learning_rate > 0) or self.squared_weight < 0:
            raise NesfError("lattice refit: the learning rates must be positive and the squared weight >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LatticeErrors:
    length_angstrom: float  # mean absolute error over a, b, c
    angle_degrees: float    # mean absolute error over alpha, beta, gamma


@dataclass(frozen=True)
class LatticeRefitResult:
    train_before: LatticeErrors
    train_after: LatticeErrors
    val_before: LatticeErrors
    val_after: LatticeErrors
    length_epoch: int          # the epoch whose length head was kept; 0: none beat the original, which stays
    angle_epoch: int           # the same for the angle head
    train_count: int
    val_count: int
    seconds: float

    @property
    def changed(self) -> bool:
        return self.length_epoch > 0 or self.angle_epoch > 0

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def eval_latents(model: NeSF, tensors: CrystalTensors) -> torch.Tensor:
    """(B, L) latents of every crystal in `tensors` with the model in eval mode (the latents decoding sees)."""
    model.eval()
    chunks = []
    for start in range(0, len(tensors), ENCODE_CHUNK):
        index = torch.arange(start, min(start + ENCODE_CHUNK, len(tensors)), device=tensors.device)
        chunks.append(model.encode(tensors.batch(index)).float())
    return torch.cat(chunks)


class _HeadFit:
    """One head's copy, optimizer and schedule, and the best validation error seen with the state that gave it."""

    def __init__(self, head: torch.nn.Module, to_target_units, learning_rate: float, total_steps: int):
        self.head = copy.deepcopy(head).train()
        self.to_target_units = to_target_units  # head output -> Angstrom or degrees
        self.optimizer = torch.optim.Adam(self.head.parameters(), lr=learning_rate)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, total_steps)
        self.best_error, self.best_epoch, self.best_state = float("inf"), 0, None

    def predict(self, latents: torch.Tensor) -> torch.Tensor:
        return self.to_target_units(self.head(latents))

    def step(self, latents, targets, squared_weight: float) -> None:
        error = self.predict(latents) - targets
        loss = (error.abs() + squared_weight * error.square()).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()

    @torch.no_grad()
    def validate(self, epoch: int, latents, targets, original_error: float) -> None:
        error = float((self.predict(latents) - targets).abs().mean())
        if error < min(self.best_error, original_error):
            self.best_error, self.best_epoch = error, epoch
            self.best_state = copy.deepcopy(self.head.state_dict())


@torch.no_grad()
def _errors(model: NeSF, latents, lengths, angles_degrees) -> LatticeErrors:
    predicted_lengths, predicted_angles = model.lattice(latents)
    return LatticeErrors(float((predicted_lengths - lengths).abs().mean()),
                         float((torch.rad2deg(predicted_angles) - angles_degrees).abs().mean()))


def refit_lattice_heads(model: NeSF, train: CrystalTensors, val: CrystalTensors,
                        config: LatticeRefitConfig = LatticeRefitConfig()) -> LatticeRefitResult:
    """Fit `model`'s length and angle heads on the eval-mode latents of `train`, each head keeping its epoch with the
    lowest `val` error when that beats the original head (module docstring), and load them into `model` in place.
    Runs on the device of `train`'s tensors; the model must be there too. Returns the errors before and after."""
    started = time.monotonic()
    if len(val) == 0:
        raise NesfError("lattice refit needs validation crystals to choose an epoch")
    train_latents, val_latents = eval_latents(model, train), eval_latents(model, val)
    train_targets = (train.lengths, torch.rad2deg(train.angles_rad))
    val_targets = (val.lengths, torch.rad2deg(val.angles_rad))
    train_before, val_before = _errors(model, train_latents, *train_targets), _errors(model, val_latents, *val_targets)

    total_steps = config.epochs * math.ceil(len(train) / config.batch_size)
    fits = (_HeadFit(model.length_head, lambda x: x, config.length_learning_rate, total_steps),
            _HeadFit(model.angle_head, torch.rad2deg, config.angle_learning_rate, total_steps))
    original_errors = (val_before.length_angstrom, val_before.angle_degrees)
    generator = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(train), generator=generator).to(train.device)
        for start in range(0, len(train), config.batch_size):
            index = order[start:start + config.batch_size]
            for fit, targets in zip(fits, train_targets):
                fit.step(train_latents[index], targets[index], config.squared_weight)
        if epoch % config.validate_every == 0 or epoch == config.epochs:
            for fit, targets, original in zip(fits, val_targets, original_errors):
                fit.validate(epoch, val_latents, targets, original)
    for fit, head in zip(fits, (model.length_head, model.angle_head)):
        if fit.best_state is not None:
            head.load_state_dict(fit.best_state)
    model.eval()
    return LatticeRefitResult(
        train_before=train_before, train_after=_errors(model, train_latents, *train_targets),
        val_before=val_before, val_after=_errors(model, val_latents, *val_targets),
        length_epoch=fits[0].best_epoch, angle_epoch=fits[1].best_epoch, train_count=len(train), val_count=len(val),
        seconds=time.monotonic() - started)


def refit_checkpoint(path: Path, dataset, config: LatticeRefitConfig, *, augmentation: str = "none",
                     device: str = "auto") -> tuple[Checkpoint, LatticeRefitResult]:
    """The checkpoint at `path` with its lattice heads refitted on `dataset`'s train split and chosen on its val
    split (`augmentation`: on every variant of them, nesf.training.augment, as a model trained with it sees them), and
    the refit's result."""
    from nesf.inference.autoencoder import Autoencoder

    autoencoder = Autoencoder.from_checkpoint(path, device)
    train, val = dataset.crystals("train"), dataset.crystals("val")
    if not train or not val:
        raise NesfError(f"dataset {dataset.name!r} needs a train and a val split for a lattice refit "
                        f"(has {len(train)} train, {len(val)} val crystals)")
    if augmentation != "none":  # the heads see every variant's latent, as the augmented training did
        from nesf.training.augment import variant_pool

        train = variant_pool(train, augmentation, autoencoder.range).crystals
        val = variant_pool(val, augmentation, autoencoder.range).crystals
    result = refit_lattice_heads(autoencoder.model, CrystalTensors(train, autoencoder.vocab, autoencoder.device),
                                 CrystalTensors(val, autoencoder.vocab, autoencoder.device), config)
    record = LatticeRefitRecord(config=config.to_dict(), result=result.to_dict(), dataset=dataset.name,
                                augmentation=augmentation, crystals={"train": len(train), "val": len(val)})
    refitted = Checkpoint.load(path).with_refitted_lattice(autoencoder.model.state_dict(), record)
    return refitted, result
