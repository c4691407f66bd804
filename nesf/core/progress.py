"""The one shape of progress a long computation reports: `progress(fraction, message)`, fraction in [0, 1] of the
whole computation and a short message saying what it is doing ("encoded 512/6005 crystals"). Library functions take
it as `progress: Progress | None`; the app moves a progress bar with it, the command line prints it.

Two other streams are not progress and keep their own types: a training run's events
(`nesf.training.progress.Event`: epochs, losses, the checkpoint written) and a measurement's results as each is
taken (`report(label, values)`: the model card's figures).
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def stage(progress: Progress | None, start: float, end: float) -> Progress | None:
    """`progress` for one stage of a computation that runs from `start` to `end` of the whole (None stays None)."""
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (end - start) * min(max(fraction, 0.0), 1.0), message)


def counted(progress: Progress | None, done: int, total: int, what: str) -> None:
    """Report `done` of `total` items ("fingerprints 120/1000")."""
    if progress is not None:
        progress(done / total if total else 1.0, f"{what} {done}/{total}")
