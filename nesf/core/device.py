"""Device selection: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import functools

import torch

from nesf.core.errors import NesfError


@functools.lru_cache(maxsize=None)
def _auto_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_device(name: str | torch.device | None = "auto") -> torch.device:
    """`auto` picks the best device present; `cpu`, `cuda`, `cuda:1`, `mps` are taken as asked (checked)."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        return _auto_device()
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise NesfError(f"unknown device {name!r} (use auto, cpu or cuda)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NesfError(f"device {name!r} asked for, but no CUDA device is available here")
    return device
