"""Refit a trained model's lattice heads on its frozen encoder: the last training stage for the lattice metrics.

Why: training fits the lattice heads to training-mode latents (BatchNorm on batch statistics, a radians-squared
angle loss worth ~1e-4 of the total), so at inference, on eval-mode latents, they read the lattice with a bias
(LCS6A, shipped model: -0.03 A and -0.2 deg on its own training crystals) and blur the right angles that 97 % of its
cells have. This stage encodes the training crystals once in eval mode (the latents decoding will see), then fits
copies of the two heads (192 -> 128 -> 3 each) with a loss that matches Table 1's mean absolute errors:
|error| + `squared_weight` * error^2, in Angstrom and degrees. Every `validate_every` epochs it scores the validation
split, and keeps the epoch that is best on it without being worse than the original heads in either length or
angle; when none is, the original heads stay. The encoder and the fields are not touched, so the latents (and the
atlas built from them) stay as they were.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import torch

from nesf.batch import CrystalTensors
from nesf.errors import NesfError
from nesf.model import NeSF

ENCODE_CHUNK = 512  # crystals per encoder pass


@dataclass(frozen=True)
class LatticeRefitConfig:
    epochs: int = 160
    learning_rate: float = 1e-2   # Adam, cosine from this to zero over all steps
    batch_size: int = 64
    squared_weight: float = 0.1   # loss = |error| + w * error^2 (Angstrom, degrees): MAE's median pull, tails kept
    validate_every: int = 10      # epochs between validation scores
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.validate_every < 1:
            raise NesfError("lattice refit: epochs, batch size and validate-every must be at least 1")
        if not self.learning_rate > 0 or self.squared_weight < 0:
            raise NesfError("lattice refit: the learning rate must be positive and the squared weight >= 0")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LatticeErrors:
    length_angstrom: float  # mean absolute error over a, b, c
    angle_degrees: float    # mean absolute error over alpha, beta, gamma

    def no_worse_than(self, other: "LatticeErrors") -> bool:
        return self.length_angstrom <= other.length_angstrom and self.angle_degrees <= other.angle_degrees

    def relative_to(self, other: "LatticeErrors") -> float:
        """Sum of both errors as fractions of `other`'s: the selection score (2.0 = no change)."""
        return (self.length_angstrom / max(other.length_angstrom, 1e-12)
                + self.angle_degrees / max(other.angle_degrees, 1e-12))


@dataclass(frozen=True)
class LatticeRefitResult:
    train_before: LatticeErrors
    train_after: LatticeErrors
    val_before: LatticeErrors
    val_after: LatticeErrors
    best_epoch: int            # 0: no epoch beat the original heads, which are kept
    train_count: int
    val_count: int
    seconds: float

    @property
    def changed(self) -> bool:
        return self.best_epoch > 0

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


def _errors(heads: tuple[torch.nn.Module, torch.nn.Module], latents, lengths, angles_degrees) -> LatticeErrors:
    with torch.no_grad():
        length_error = (heads[0](latents) - lengths).abs().mean()
        angle_error = (torch.rad2deg(heads[1](latents)) - angles_degrees).abs().mean()
    return LatticeErrors(float(length_error), float(angle_error))


def _loss(error: torch.Tensor, squared_weight: float) -> torch.Tensor:
    return (error.abs() + squared_weight * error.square()).mean()


def refit_lattice_heads(model: NeSF, train: CrystalTensors, val: CrystalTensors,
                        config: LatticeRefitConfig = LatticeRefitConfig()) -> LatticeRefitResult:
    """Fit `model`'s length and angle heads on the eval-mode latents of `train`, select on `val` (module docstring),
    and load the selected heads into `model` in place. Runs on the device of `train`'s tensors; the model must be
    there too. Returns the errors before and after on both splits."""
    started = time.monotonic()
    if len(val) == 0:
        raise NesfError("lattice refit needs validation crystals to choose an epoch")
    train_latents, val_latents = eval_latents(model, train), eval_latents(model, val)
    train_lengths, train_angles = train.lengths, torch.rad2deg(train.angles_rad)
    val_lengths, val_angles = val.lengths, torch.rad2deg(val.angles_rad)
    original = (model.length_head, model.angle_head)
    train_before = _errors(original, train_latents, train_lengths, train_angles)
    val_before = _errors(original, val_latents, val_lengths, val_angles)

    heads = (copy.deepcopy(model.length_head).train(), copy.deepcopy(model.angle_head).train())
    parameters = [p for head in heads for p in head.parameters()]
    for parameter in parameters:
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(config.seed)
    best_epoch, best_score, best_state = 0, val_before.relative_to(val_before), None
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(len(train), generator=generator).to(train.device)
        for start in range(0, len(train), config.batch_size):
            index = order[start:start + config.batch_size]
            latents = train_latents[index]
            loss = (_loss(heads[0](latents) - train_lengths[index], config.squared_weight)
                    + _loss(torch.rad2deg(heads[1](latents)) - train_angles[index], config.squared_weight))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if epoch % config.validate_every == 0 or epoch == config.epochs:
            val_errors = _errors(heads, val_latents, val_lengths, val_angles)
            score = val_errors.relative_to(val_before)
            if val_errors.no_worse_than(val_before) and score < best_score:
                best_epoch, best_score = epoch, score
                best_state = [copy.deepcopy(head.state_dict()) for head in heads]
    if best_state is not None:
        model.length_head.load_state_dict(best_state[0])
        model.angle_head.load_state_dict(best_state[1])
    model.eval()
    return LatticeRefitResult(
        train_before=train_before, train_after=_errors(original, train_latents, train_lengths, train_angles),
        val_before=val_before, val_after=_errors(original, val_latents, val_lengths, val_angles),
        best_epoch=best_epoch, train_count=len(train), val_count=len(val), seconds=time.monotonic() - started)
