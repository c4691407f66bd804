"""What the sidebar chose, handed to every page."""

from __future__ import annotations

from dataclasses import dataclass

from app import backend


@dataclass
class AppContext:
    checkpoint: backend.Checkpoint | None   # the active checkpoint (None: no checkpoint found)
    device: str                             # "auto" resolves to CUDA when present, else CPU
    device_label: str                       # what the sidebar shows, e.g. "CPU" or "CUDA (NVIDIA H100)"
    decode_mode: str                        # "fast" (interactive preset) or "paper" (paper's settings)
    data_dir: str
    collection: backend.Collection | None   # the active dataset: crystals, table, latents, maps

    def model(self):
        return backend.model(self.checkpoint, self.device)
