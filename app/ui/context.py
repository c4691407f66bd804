"""What the sidebar chose, handed to every page."""

from __future__ import annotations

from dataclasses import dataclass

from app import backend
from nesf.checkpoint import CheckpointInfo
from nesf.inference.atlas import Atlas


@dataclass
class AppContext:
    checkpoint: CheckpointInfo | None       # the active checkpoint (None: no checkpoint found)
    device: str                             # "auto" resolves to CUDA when present, else CPU
    device_label: str                       # what the sidebar shows, e.g. "CPU" or "CUDA (NVIDIA H100)"
    decode_mode: str                        # a decoding preset: "fast", "paper" or "checkpoint" (its own)
    data_dir: str
    atlas: Atlas | None   # the active dataset: crystals, table, latents, maps
    refine: bool = True        # refine each picked crystal's latent at test time (nesf.model.refine); False: the
                               # encoder's latent alone, the paper's protocol

    def model(self):
        return backend.model(self.checkpoint, self.device)
