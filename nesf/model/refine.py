"""Test-time refinement of an encoded crystal's latent: the decoders' own loss, minimised over the latent alone.

The encoder gives one latent per crystal in one pass (the paper's protocol). For a crystal unlike the training set that
latent is a guess, and the decoders can check it: their fields are differentiable in the latent. Refinement starts
from the encoder's latent and runs Adam on the latent alone (every weight frozen, eval mode) against the training
loss at queries drawn around the crystal's own atoms and inside its own cell, plus the lattice heads' loss against its
own cell (auto-decoding, as DeepSDF). Nothing but the crystal itself is read.

- Batched: every crystal has its own latent and its own loss (a sum of per-crystal means), and Adam works per entry,
  so crystals refined together follow the same path as alone.
- Deterministic: each crystal's queries are drawn once, from a generator seeded by `RefineConfig.seed` and the
  crystal's content, and reused every step, so the same crystal gives the same latent alone or in any batch (to the
  last digits that the order of CPU threads' floating-point sums moves: ~1e-6 in the latent, never a step count).
- Stopping rule: a crystal stops once its loss has not fallen by `min_relative_improvement` for `patience` steps,
  or after `max_steps`; the latent of its lowest loss is kept.
- Guard: the refined latent is used only where it lowers the field score (`FrameScore.score`: the fields read at the
  crystal's own atoms); otherwise the encoder's latent stays.

`RefineConfig(max_steps=0)` (`ENCODER_ONLY`) is the paper's protocol. Lengths in Angstrom, angles in radians inside.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from nesf.core.config import LossWeights, SamplingConfig
from nesf.core.progress import Progress
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.model.batch import CrystalBatch, CrystalTensors
from nesf.model.frame_select import FrameScore, latent_scores
from nesf.model.sampling import QuerySampler, TrainingQueries


ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class RefineConfig:
    """How an encoded latent is refined (`refine_latents`); the defaults are the product's (benchmarks/bench_refine.py)."""

    max_steps: int = 50                      # Adam steps at most per crystal; 0: the encoder's latent (paper protocol)
    learning_rate: float = 0.01              # Adam step size, in latent units
    local_query_fraction: float = 0.25       # share of each atom's local position grid drawn (of 64 points)
    species_query_fraction: float = 0.125    # share of each atom's species grid drawn (of 216 points)
    global_interval_angstrom: float = 1.5    # spacing of the jittered grid of position queries over the crystal's cell
    patience: int = 10                       # steps without `min_relative_improvement` of the loss before a stop
    min_relative_improvement: float = 0.005  # what counts as an improvement: the best loss falls by this share
    seed: int = 0                            # seeds each crystal's query draw (with the crystal's content)
    redraw_queries: bool = False             # a new draw every step (as training does) instead of one draw reused

    def __post_init__(self):
        if self.max_steps < 0:
            raise NesfError(f"RefineConfig.max_steps must be >= 0, got {self.max_steps}")
        if self.learning_rate <= 0:
            raise NesfError(f"RefineConfig.learning_rate must be > 0, got {self.learning_rate}")
        for name in ("local_query_fraction", "species_query_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise NesfError(f"RefineConfig.{name} must lie in (0, 1], got {value}")

    @property
    def encoder_only(self) -> bool:
        return self.max_steps == 0

    def label(self) -> str:
        return "encoder only" if self.encoder_only else f"refined (at most {self.max_steps} steps)"


ENCODER_ONLY = RefineConfig(max_steps=0)


@dataclass(frozen=True)
class Refinement:
    """What refinement did to one crystal's latent."""

    encoder_score: FrameScore   # the field score at the encoder's latent
    refined_score: FrameScore   # at the refined latent (equal to encoder_score where no step was taken)
    steps: int                  # Adam steps taken before the stopping rule (0: encoder only)
    used_refined: bool          # False where the guard kept the encoder's latent (the score did not fall)

    @property
    def score(self) -> FrameScore:
        """The score of the latent used."""
        return self.refined_score if self.used_refined else self.encoder_score


def refinement_sentence(refinement: Refinement | None, *, arrow: str = "->", angstrom: str = "A") -> str:
    """What refinement did to a latent, before and after, in words (the app and the CLI say it so; the app passes
    its own arrow and Angstrom sign)."""
    if refinement is None or refinement.steps == 0:
        return "the encoder's latent, not refined (the paper's protocol)"
    before, after = refinement.encoder_score.score, refinement.refined_score.score
    change = f"{before:.3f} {arrow} {after:.3f} {angstrom}"
    if refinement.used_refined:
        return (f"latent refined in {refinement.steps} steps: field residual {change} "
                f"({100 * (before - after) / max(before, 1e-12):.0f} % lower)")
    return (f"refinement ({refinement.steps} steps) did not lower the field residual ({change}): the encoder's "
            "latent is used")


def crystal_seed(crystal: Crystal, seed: int) -> int:
    """A generator seed from `seed` and the crystal's content (lattice, species, coordinates at 1e-4 A), so its draw
    does not depend on which other crystals it is refined with."""
    content = np.concatenate([np.round(crystal.lattice, 4).ravel(), np.asarray(crystal.species, np.float64),
                              np.round(crystal.cart_coords, 4).ravel()])
    return (zlib.crc32(content.astype(np.float64).tobytes()) + 1_000_003 * seed) % (2 ** 63)


def _draw_queries(sampler: QuerySampler, tensors: CrystalTensors, generators: list[torch.Generator],
                  rows: list[int] | None = None) -> TrainingQueries:
    """The queries of crystals `rows` (default all), each drawn from its own generator, gathered into one flat set
    numbered by their place in `rows`."""
    rows = list(range(len(tensors))) if rows is None else rows
    parts = [sampler.sample(tensors.batch(torch.tensor([row])), generators[row]) for row in rows]
    index = lambda name: torch.cat([torch.full_like(getattr(q, name), k) for k, q in enumerate(parts)])  # noqa: E731
    cat = lambda name: torch.cat([getattr(q, name) for q in parts])  # noqa: E731
    return TrainingQueries(cat("position_queries"), index("position_crystal"), cat("position_targets"),
                           cat("species_queries"), index("species_crystal"), cat("species_targets"))


def _per_crystal_mean(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """(size,) mean of `values` (Q,) over the entries of each crystal `index` (Q,)."""
    total = values.new_zeros(size).index_add(0, index, values)
    count = torch.bincount(index, minlength=size).clamp(min=1).to(values.dtype)
    return total / count


def _subset(batch: CrystalBatch, queries: TrainingQueries, rows: torch.Tensor
            ) -> tuple[CrystalBatch, TrainingQueries]:
    """The crystals `rows` (R,) of `batch` and their queries, renumbered 0..R-1."""
    if len(rows) == batch.size:
        return batch, queries
    renumber = torch.full((batch.size,), -1, dtype=torch.long, device=rows.device)
    renumber[rows] = torch.arange(len(rows), device=rows.device)
    keep_p = renumber[queries.position_crystal] >= 0
    keep_s = renumber[queries.species_crystal] >= 0
    part = CrystalBatch(batch.positions[rows], batch.species_index[rows], batch.atom_mask[rows], batch.lengths[rows],
                        batch.angles_rad[rows], batch.lattice[rows])
    return part, TrainingQueries(
        queries.position_queries[keep_p], renumber[queries.position_crystal[keep_p]], queries.position_targets[keep_p],
        queries.species_queries[keep_s], renumber[queries.species_crystal[keep_s]], queries.species_targets[keep_s])


def crystal_losses(model, latent: torch.Tensor, batch: CrystalBatch, queries: TrainingQueries,
                   weights: LossWeights) -> torch.Tensor:
    """(B,) the training loss of each crystal at `latent` (B, L): the terms of `nesf.training.trainer.compute_loss`,
    each a mean over that crystal's own queries (position MSE per component, species cross-entropy, lattice MSE in
    Angstrom and radians, the composition head's cross-entropy where the model has one)."""
    size = latent.shape[0]
    position = model.position_field(latent, queries.position_queries, queries.position_crystal).float()  # (Qp, 3)
    species = model.species_field(latent, queries.species_queries, queries.species_crystal).float()  # (Qs, K)
    lengths, angles = model.lattice(latent)  # (B, 3), (B, 3)
    squared = ((position - queries.position_targets) ** 2).mean(1)  # (Qp,)
    entropy = F.cross_entropy(species, queries.species_targets, reduction="none")  # (Qs,)
    loss = (weights.position * _per_crystal_mean(squared, queries.position_crystal, size)
            + weights.species * _per_crystal_mean(entropy, queries.species_crystal, size)
            + weights.lengths * ((lengths.float() - batch.lengths) ** 2).mean(1)
            + weights.angles * ((angles.float() - batch.angles_rad) ** 2).mean(1))
    if model.composition_head is not None:
        logits = model.composition_head(latent).float()  # (B, K)
        targets = batch.element_fractions(logits.shape[1])
        loss = loss + weights.composition * -(targets * logits.log_softmax(1)).sum(1)
    return loss


def refine_latents(model, crystals: list[Crystal], latents: np.ndarray, vocab: list[int], device: torch.device, *,
                   bbox_min, bbox_max, sampling: SamplingConfig, weights: LossWeights,
                   config: RefineConfig = RefineConfig(), progress: Progress | None = None
                   ) -> tuple[np.ndarray, list[Refinement]]:
    """Refine `latents` (B, L), the encoder's latents of `crystals` (each in the setting it was encoded in), together.
    Returns the latents to use (B, L; the encoder's where the guard keeps it) and each crystal's `Refinement`.
    `model` in eval mode; its weights are not touched. `progress(fraction, message)` after every step."""
    latents = np.asarray(latents, dtype=np.float32)
    if len(crystals) != len(latents):
        raise NesfError(f"{len(crystals)} crystals but {len(latents)} latents to refine")
    if not crystals:
        return latents, []
    tensors = CrystalTensors(crystals, vocab, device)
    batch = tensors.batch()
    start = torch.from_numpy(latents).to(device)
    with torch.no_grad():
        encoder_scores = latent_scores(model, batch, start)
    if config.encoder_only:
        return latents, [Refinement(s, s, 0, False) for s in encoder_scores]

    sampler = QuerySampler(bbox_min, bbox_max, replace(
        sampling, global_in_cell=True, global_interval=config.global_interval_angstrom,
        local_query_fraction=config.local_query_fraction, species_query_fraction=config.species_query_fraction),
        device)
    generators = [torch.Generator(device=tensors.device).manual_seed(crystal_seed(c, config.seed)) for c in crystals]
    queries = _draw_queries(sampler, tensors, generators)

    size = len(crystals)
    latent = start.clone()
    best_latent, best_loss = start.clone(), torch.full((size,), float("inf"), device=device)
    since_best = torch.zeros(size, dtype=torch.long, device=device)
    steps = torch.zeros(size, dtype=torch.long, device=device)
    active = torch.ones(size, dtype=torch.bool, device=device)
    moment1, moment2 = torch.zeros_like(latent), torch.zeros_like(latent)
    beta1, beta2 = ADAM_BETAS
    rows, part = None, None  # the active crystals' rows, and their batch and queries (rebuilt when one stops)
    trainable = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    for parameter, _ in trainable:
        parameter.requires_grad_(False)
    try:
        for step in range(config.max_steps + 1):
            if config.redraw_queries and step:  # a new draw for the crystals still improving, each its own
                rows = active.nonzero().flatten()
                part = (_subset(batch, queries, rows)[0], _draw_queries(sampler, tensors, generators, rows.tolist()))
            elif rows is None or len(rows) != int(active.sum()):
                rows = active.nonzero().flatten()
                part = _subset(batch, queries, rows)
            current = latent[rows].requires_grad_(True)
            losses = crystal_losses(model, current, *part, weights)  # (R,)
            (gradient,) = torch.autograd.grad(losses.sum(), current)
            with torch.no_grad():
                losses = losses.detach()
                previous = best_loss[rows]
                lower = losses < previous
                best_latent[rows[lower]] = current.detach()[lower]
                best_loss[rows] = torch.where(lower, losses, previous)
                improved = losses < previous * (1 - config.min_relative_improvement)
                since_best[rows] = torch.where(improved, torch.zeros_like(rows), since_best[rows] + 1)
                still = since_best[rows] < config.patience
                active[rows] = still
                if step == config.max_steps or not bool(still.any()):
                    break
                moving = rows[still]  # Adam on the crystals still improving, each with its own step count
                steps[moving] += 1
                g = gradient[still]
                moment1[moving] = beta1 * moment1[moving] + (1 - beta1) * g
                moment2[moving] = beta2 * moment2[moving] + (1 - beta2) * g ** 2
                t = steps[moving].to(latent.dtype)[:, None]
                update = (moment1[moving] / (1 - beta1 ** t)) / ((moment2[moving] / (1 - beta2 ** t)).sqrt() + ADAM_EPS)
                latent[moving] = current.detach()[still] - config.learning_rate * update
            if progress is not None:
                progress((step + 1) / config.max_steps,
                         f"refining {size} latent{'s' if size > 1 else ''}: step {step + 1} of at most "
                         f"{config.max_steps}, {int(active.sum())} still improving")
    finally:
        for parameter, flag in trainable:
            parameter.requires_grad_(flag)
    with torch.no_grad():
        refined_scores = latent_scores(model, batch, best_latent)
    refinements, chosen = [], latents.copy()
    refined = best_latent.float().cpu().numpy()
    for row, (before, after) in enumerate(zip(encoder_scores, refined_scores)):
        use = after.score < before.score
        if use:
            chosen[row] = refined[row]
        refinements.append(Refinement(before, after, int(steps[row]), use))
    return chosen, refinements
