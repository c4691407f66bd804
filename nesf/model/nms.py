"""Batched greedy non-max suppression on the fields' device (section 2.1, step 4; official cluster centres).

Greedy NMS is sequential in clusters, not in particles: each round takes, in every crystal at once, the remaining
particle with the lowest score, gathers the remaining particles within `radius`, accepts the cluster if it holds at
least `min_particles` (its centre is the softmax(-score)-weighted mean of its particles, as the official code) and
removes them. Rounds run until no particle is left; each round is a handful of (B, P) tensor operations.
"""

from __future__ import annotations

import torch

SYNC_EVERY = 8  # rounds between checks for "all particles consumed" (each check syncs with the device)


def batched_nms(positions: torch.Tensor, scores: torch.Tensor, valid: torch.Tensor, *, radius: float,
                min_particles: int, max_rounds: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """positions (B, P, 3), scores (B, P), valid (B, P) bool ->
    centres (B, K, 3) and accepted (B, K) bool, K = rounds run; accepted centres are in ascending-score order.
    `max_rounds` > 0 stops after that many rounds (the particles left are dropped)."""
    batch_size = positions.shape[0]
    alive = valid.clone()
    masked_scores = scores.masked_fill(~valid, float("inf"))
    radius2 = radius * radius
    rows = torch.arange(batch_size, device=positions.device)
    centres, accepted = [], []
    round_index = 0
    while True:
        if round_index % SYNC_EVERY == 0 and not bool(alive.any()):
            break
        if max_rounds and round_index >= max_rounds:
            break
        round_index += 1
        live_scores = masked_scores.masked_fill(~alive, float("inf"))
        seed = live_scores.argmin(dim=1)  # (B,)
        has_seed = alive[rows, seed]
        seed_position = positions[rows, seed]  # (B, 3)
        inner = alive & ((positions - seed_position[:, None]).square().sum(-1) < radius2) & has_seed[:, None]
        count = inner.sum(dim=1)
        weights = torch.softmax((-masked_scores).masked_fill(~inner, float("-inf")), dim=1)
        weights = torch.nan_to_num(weights, nan=0.0)
        centres.append(torch.einsum("bp,bpk->bk", weights, positions))
        accepted.append(has_seed & (count >= min_particles))
        alive &= ~inner
    if not centres:
        return positions.new_zeros((batch_size, 0, 3)), torch.zeros((batch_size, 0), dtype=torch.bool,
                                                                     device=positions.device)
    return torch.stack(centres, dim=1), torch.stack(accepted, dim=1)
