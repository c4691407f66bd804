"""Learning rate as a pure function of training progress, so a resumed run continues the exact schedule.

Progress is in epochs and may be fractional (epoch + step / steps_per_epoch). "step" is the paper's StepLR (the rate
changes at whole epochs only); "cosine" warms up linearly over `warmup_epochs`, then follows a half cosine from the
peak down to `lr_final_fraction` of it at `epochs`.
"""

from __future__ import annotations

import math

from nesf.core.config import TrainConfig


def learning_rate(config: TrainConfig, progress_epochs: float) -> float:
    """The learning rate after `progress_epochs` epochs of training under `config`."""
    peak = config.learning_rate
    if config.lr_schedule == "step":
        return peak * config.lr_gamma ** (int(progress_epochs) // max(config.lr_halving_epochs, 1))
    warmup = max(config.warmup_epochs, 0.0)
    if progress_epochs < warmup:
        return peak * (progress_epochs + 1e-3) / (warmup + 1e-3)  # never exactly 0: the first step still moves
    span = max(config.epochs - warmup, 1e-9)
    done = min(max((progress_epochs - warmup) / span, 0.0), 1.0)
    final = peak * config.lr_final_fraction
    return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * done))
