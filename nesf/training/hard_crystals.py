"""Epoch orders that revisit the training crystals the model fits worst.

A trained model's atom-count errors are whole-structure failures of a few complex, low-symmetry crystals, and as
frequent on its training crystals as on held-out ones (`benchmarks/atom_count_failures.py`, BENCHMARKS.md): the fields
underfit them. `HardCrystalOrder` keeps each training crystal's latest position loss (mean squared error of its
position queries, in Angstrom^2, from the last step that saw it) and builds each epoch's order of N crystals from a
shuffle of (1 - fraction) N distinct crystals plus fraction N drawn with replacement in proportion to that loss
(crystals not yet seen count at the mean of those seen). An epoch keeps its N crystals, so its cost is unchanged;
fraction 0 is the plain shuffle of all N (the paper's), and the default: at 0.25 over a 40-epoch cycle of the shipped
LCS6A model it repaired none of the failing crystals and cost the others position accuracy (BENCHMARKS.md).
"""

from __future__ import annotations

import torch

from nesf.core.errors import NesfError


class HardCrystalOrder:
    def __init__(self, count: int, fraction: float):
        if not 0.0 <= fraction < 1.0:
            raise NesfError(f"the hard-crystal fraction must lie in [0, 1), got {fraction}")
        self.fraction = float(fraction)
        self.losses = torch.full((count,), float("nan"))  # per training crystal, latest position loss (A^2)

    def epoch_order(self) -> torch.Tensor:
        """(N,) crystal indices for one epoch (torch's global random state, as the plain shuffle)."""
        count = self.losses.numel()
        hard = int(round(self.fraction * count))
        if hard == 0:
            return torch.randperm(count)
        seen = ~torch.isnan(self.losses)
        fill = self.losses[seen].mean() if bool(seen.any()) else torch.tensor(1.0)
        weights = torch.where(seen, self.losses, fill).clamp_min(1e-12)
        picks = torch.cat([torch.randperm(count)[: count - hard], torch.multinomial(weights, hard, replacement=True)])
        return picks[torch.randperm(count)]

    def record(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        """The position losses (B,) of the crystals `indices` (B,) in the step just taken (a crystal drawn twice in
        one batch keeps one of its values)."""
        self.losses[indices.detach().cpu()] = losses.detach().float().cpu()

    def state_dict(self) -> dict:
        return {"fraction": self.fraction, "losses": self.losses.clone()}

    def load_state_dict(self, state: dict) -> None:
        losses = state["losses"].float()
        if losses.shape != self.losses.shape:
            raise NesfError(f"the run's hard-crystal losses cover {losses.numel()} crystals, the training split "
                            f"has {self.losses.numel()}")
        self.losses = losses.clone()


def per_crystal_position_loss(position: torch.Tensor, targets: torch.Tensor, crystal: torch.Tensor,
                              size: int) -> torch.Tensor:
    """(size,) mean squared position error of each crystal's queries (0 where a crystal has none): the per-crystal
    share of the position loss, detached."""
    squared = (position.detach().float() - targets).square().mean(-1)
    sums = torch.zeros(size, device=squared.device).index_add_(0, crystal, squared)
    counts = torch.bincount(crystal, minlength=size).clamp_min(1)
    return sums / counts
