"""The autoencoder as one object: load a checkpoint, then encode, decode, reconstruct and interpolate crystals.

This is the surface the app and the CLI use (users and the app through the facade `nesf.api`); it follows the
checkpoint onto the chosen device.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from nesf.checkpoint import Checkpoint, CheckpointInfo, file_sha256, weights_sha256
from nesf.checkpoint.labels import TRUST, MetricsLabel
from nesf.core.config import CHECKPOINT_PRESET, DECODE_PRESETS, DecodeConfig, SamplingConfig, TrainConfig
from nesf.core.progress import Progress
from nesf.core.crystal import Crystal
from nesf.core.device import get_device
from nesf.core.errors import NesfError
from nesf.model.batch import CrystalTensors
from nesf.model.decode import StructureDecoder, to_crystals
from nesf.model.fields import ModelFields
from nesf.model.frame_select import FrameChoice, field_scores, select_frames
from nesf.model.latent import interpolate as interpolate_latents
from nesf.model.model_range import ModelRange
from nesf.model.network import NeSF
from nesf.model.refine import RefineConfig, refine_latents

log = logging.getLogger(__name__)

MIN_OFFER_MATCH_PERCENT = 60.0  # a kind of cell is offered only where crystals in it matched at least this often
MIN_OFFER_COUNT = 10            # crystals a kind of cell must have been measured on for its rate to be quoted
ENCODE_CHUNK = 512   # crystals per encoder pass
DECODE_CHUNK = 64    # latents decoded together
REFINE_CHUNK = 64    # latents refined together (one optimiser; the batch's queries and activations held at once)



class Autoencoder:
    def __init__(self, model: NeSF, checkpoint: Checkpoint, device: torch.device, path: Path | None = None):
        self.model = model.eval()
        self.device = device
        self.path = path
        self.vocab: list[int] = list(checkpoint.vocab)
        self.bbox_min = np.asarray(checkpoint.bbox_min, dtype=np.float64)
        self.bbox_max = np.asarray(checkpoint.bbox_max, dtype=np.float64)
        self.decode_config = checkpoint.decode_config or DecodeConfig()
        self.range = (ModelRange.from_dict(checkpoint.model_range) if checkpoint.model_range
                      else ModelRange.from_box(self.vocab, self.bbox_min, self.bbox_max))
        self.info = CheckpointInfo.of(checkpoint, path)  # name, dataset, epochs, metrics, history, configs
        self.refine_config = RefineConfig()  # how uploads' latents are refined (`refine`); ENCODER_ONLY: the paper's
        self._training_reference: tuple | None = None  # (latents, ids) of the atlas's training crystals, once read

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: str | torch.device = "auto") -> "Autoencoder":
        path = Path(path)
        device = get_device(device)
        checkpoint = Checkpoint.load(path, map_location="cpu")
        try:
            model = NeSF(checkpoint.model_config)
            model.load_state_dict(checkpoint.model_state)
        except (RuntimeError, TypeError, KeyError, ValueError) as exc:
            raise NesfError(f"{path}: model weights do not fit the model config (tampered or from another "
                            f"version): {str(exc)[:200]}") from exc
        config = checkpoint.model_config
        if len(checkpoint.vocab) != config.num_species:
            raise NesfError(f"{path}: vocabulary of {len(checkpoint.vocab)} species, model expects "
                            f"{config.num_species}")
        return cls(model.to(device), checkpoint, device, path)

    @property
    def sha256(self) -> str:
        return file_sha256(self.path) if self.path else ""

    @property
    def weights_sha256(self) -> str:
        return weights_sha256(self.model.state_dict())

    def check(self, crystal: Crystal, *, check_box: bool = True) -> None:
        """Raise NesfError naming every way `crystal` lies outside what this model can represent: no atoms, elements
        it does not know, and (unless `check_box=False`) a cell outside its training range (`ModelRange`)."""
        name = crystal.id or crystal.formula or "structure"
        if crystal.num_atoms == 0:
            raise NesfError(f"{name}: has no atoms")
        problems = self.range.problems(crystal)
        if not check_box:  # the elements still: a species the model has no output for cannot be encoded at all
            problems = [p for p in problems if p.kind == "element"]
        if problems:
            raise NesfError(f"{name}: outside this model's range: {'; '.join(p.message for p in problems)}")

    def fitting_cell(self, crystal: Crystal) -> Crystal | None:
        """Where `crystal`'s cell lies outside this model's range but another valid cell of the same crystal fits
        (orthohexagonal for a hexagonal cell, then primitive, then Niggli-reduced: `nesf.data.frames.cell_variants`) and
        that kind of cell is not known to reconstruct badly (`cell_offer_quality`): that cell, its
        `meta["cell"]` naming it; else None."""
        offers, _ = self.cell_offers(crystal)
        return offers[0] if offers else None

    def cell_offers(self, crystal: Crystal) -> tuple[list[Crystal], list[Crystal]]:
        """(offered, declined): the other cells of `crystal` that fit this model when its own cell does not; declined
        are those of a kind this checkpoint measured below MIN_OFFER_MATCH_PERCENT (`cell_offer_quality`)."""
        if not self.range.problems(crystal):
            return [], []
        from nesf.data.frames import cell_variants

        offered, declined = [], []
        for alternative in cell_variants(crystal):
            if self.range.problems(alternative):
                continue
            quality = self.cell_offer_quality(alternative.meta.get("cell", ""))
            if quality is not None and quality["match_rate_percent"] < MIN_OFFER_MATCH_PERCENT:
                declined.append(alternative)
            else:
                offered.append(alternative)
        return offered, declined

    def cell_offer_quality(self, kind: str) -> dict | None:
        """What this checkpoint measured for crystals converted to cells of `kind` ("orthohexagonal", "primitive
        standard", "Niggli-reduced primitive"): {"match_rate_percent", "count", ...} with "measured_on" naming the
        crystals, or None where it was not measured (`nesf card` stores it). Crystals unlike the training set (the
        card's novel sources, then the held-out hexagonal set) are preferred to the test split: they are what a
        user's own out-of-range file is like."""
        from nesf.inference.reupload import HEXAGONAL_SET, NOVEL

        labels = {MetricsLabel.parse(label): values for label, values in (self.info.metrics or {}).items()
                  if isinstance(values, dict) and label != TRUST}
        found = {label.base: values for label, values in labels.items()
                 if label.cell_kind == kind and not label.encoder_only and "match_rate_percent" in values}
        for base, description in ((NOVEL, "crystals unlike the training set"),
                                  (HEXAGONAL_SET, "held-out hexagonal crystals"), *((b, f"{b} crystals") for b in found)):
            if base in found and found[base].get("count", 0) >= MIN_OFFER_COUNT:
                return {**found[base], "measured_on": description}
        return None

    def trust_calibration(self, signal: str, *, refined: bool = True):
        """The checkpoint's `TrustCalibration` of `signal` ("field_residual" or "latent_distance") for refined latents
        or (`refined=False`) for the encoder's (`nesf.inference.reupload.measure_uploads` fits both), or None."""
        from nesf.inference.reupload import ENCODER_ONLY_TAG
        from nesf.inference.trust import TrustCalibration

        key = signal if refined else f"{signal}, {ENCODER_ONLY_TAG}"
        stored = ((self.info.metrics or {}).get("trust") or {}).get(key)
        return TrustCalibration.from_dict(stored) if stored else None

    def select_frames(self, crystals: list[Crystal], refine: RefineConfig | None = None,
                      progress: Progress | None = None) -> list[FrameChoice]:
        """Each crystal in the equivalent setting (origin, axes) whose fields this model reads best, with its latent
        and field residual (`nesf.model.frame_select`), the latent then refined (`refine`; `refine` None: this
        model's `refine_config`, `nesf.model.refine.ENCODER_ONLY`: the encoder's latent, the paper's protocol). Only
        settings inside the model's range are considered, so a crystal whose given setting reaches past the model's
        box may still fit in another. For uploads: every path that encodes one goes through here. Raises NesfError
        as `check` where no setting fits."""
        for crystal in crystals:  # every excess but the box is one of the cell, the same in every setting
            problems = [p for p in self.range.problems(crystal) if p.kind != "box"]
            if problems or crystal.num_atoms == 0:
                self.check(crystal)
        choices = select_frames(self.model, crystals, self.vocab, self.device,
                                fits=lambda frame: not self.range.problems(frame))
        for crystal, choice in zip(crystals, choices):
            if choice is None:
                self.check(crystal)  # raises, naming every excess of the setting as given
        return self.refine(choices, refine, progress)

    def refine(self, choices: list[FrameChoice], config: RefineConfig | None = None,
               progress: Progress | None = None) -> list[FrameChoice]:
        """`choices` with their latents refined together (`nesf.model.refine.refine_latents`: Adam on the latent
        alone against this checkpoint's own training loss at the crystal's own atoms and cell; the encoder's latent
        kept where refinement does not lower the field score). Each returned choice's `latent` and `score` are those
        of the latent used, its `refinement` records both scores and the steps taken."""
        from dataclasses import replace

        config = config or self.refine_config
        if not choices:
            return []
        train = self.info.train_config or TrainConfig()
        sampling = self.info.sampling_config or SamplingConfig()
        refined = []
        for start in range(0, len(choices), REFINE_CHUNK):
            chunk = choices[start:start + REFINE_CHUNK]
            done = start / len(choices)
            share = len(chunk) / len(choices)
            latents, refinements = refine_latents(
                self.model, [c.crystal for c in chunk], np.stack([c.latent for c in chunk]), self.vocab, self.device,
                bbox_min=self.bbox_min, bbox_max=self.bbox_max, sampling=sampling, weights=train.loss_weights,
                config=config, progress=None if progress is None else (
                    lambda fraction, message: progress(done + share * fraction, message)))
            refined += [replace(choice, latent=latent, score=refinement.score, refinement=refinement)
                        for choice, latent, refinement in zip(chunk, latents, refinements)]
        return refined

    def training_reference(self) -> tuple[np.ndarray, list[str]] | None:
        """(latents (N, L), ids) of the training crystals in the atlas beside this checkpoint (`NAME.atlas.pt`),
        for the latent-distance trust signal; None where there is no such atlas, it belongs to other weights, or it maps
        its crystals in other settings than the stored ones (`nesf atlas --frames consistent`), against which the signal
        was not calibrated."""
        if self._training_reference is None:
            from nesf.checkpoint import atlas_path_for
            from nesf.inference.atlas import load_atlas

            path = atlas_path_for(self.path) if self.path else None
            reference = ()
            if path is not None and path.is_file():
                try:
                    atlas = load_atlas(path, self)
                    train = (atlas.table["split"] == "train").to_numpy()
                    if atlas.frames == "stored":
                        reference = (atlas.latents[train], atlas.table["id"][train].astype(str).tolist())
                    else:  # the signal is calibrated on the training crystals as their dataset stores them
                        log.info("no training reference for the trust signal: %s maps its crystals in %s settings",
                                 path, atlas.frames)
                except NesfError as exc:
                    log.info("no training reference for the trust signal: %s", exc)
            self._training_reference = reference
        return self._training_reference or None

    def trust(self, choices: list[FrameChoice], reference: tuple[np.ndarray, list[str]] | None = None) -> list:
        """The `nesf.inference.trust.TrustSignal` of each encoded crystal: field residual and latent distance to the
        nearest training crystal (`reference`, default `training_reference()`), each with its calibrated reading."""
        from nesf.inference.trust import trust_signals

        reference = reference or self.training_reference()
        latents, ids = reference if reference else (None, None)
        return trust_signals(self, choices, latents, ids)

    def given_frames(self, crystals: list[Crystal], *, check_box: bool = True) -> list[FrameChoice]:
        """As `select_frames`, but each crystal kept in the setting it is given in (dataset crystals)."""
        for crystal in crystals:
            self.check(crystal, check_box=check_box)
        latents, scores = field_scores(self.model, crystals, self.vocab, self.device)
        return [FrameChoice(c, latent, score, 1, score) for c, latent, score in zip(crystals, latents, scores)]

    def decode_preset(self, name: str) -> DecodeConfig:
        """The decode config named `name`: a preset of `DecodeConfig.preset`, or "checkpoint" for this checkpoint's
        own. NesfError for any other name."""
        if name == CHECKPOINT_PRESET:
            return self.decode_config
        if name not in DECODE_PRESETS:
            raise NesfError(f"unknown decoding preset {name!r}; use one of "
                            f"{', '.join([*DECODE_PRESETS, CHECKPOINT_PRESET])}")
        return DecodeConfig.preset(name)

    @torch.no_grad()
    def encode(self, crystals: list[Crystal], *, check_box: bool = True, progress: Progress | None = None
               ) -> np.ndarray:
        """(B, latent_size) latent vectors. `check_box=False` encodes crystals outside the model's box too (their
        reconstructions will miss the atoms outside it). `progress(fraction, message)` after every chunk."""
        for crystal in crystals:
            self.check(crystal, check_box=check_box)
        latents = []
        for start in range(0, len(crystals), ENCODE_CHUNK):
            tensors = CrystalTensors(crystals[start:start + ENCODE_CHUNK], self.vocab, self.device)
            latents.append(self.model.encode(tensors.batch()).float().cpu().numpy())
            if progress is not None:
                done = min(start + ENCODE_CHUNK, len(crystals))
                progress(done / len(crystals), f"encoded {done}/{len(crystals)} crystals")
        return np.concatenate(latents) if latents else np.zeros((0, self.model.config.latent_size), np.float32)

    @torch.no_grad()
    def decode(self, latents: np.ndarray, config: DecodeConfig | None = None, ids: list[str] | None = None,
               progress: Progress | None = None) -> list[Crystal]:
        """Crystals of `latents` (L,) or (N, L), decoded in chunks of DECODE_CHUNK; `progress(fraction, message)`
        after each chunk."""
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim == 1:
            latents = latents[None]
        if latents.shape[1] != self.model.config.latent_size:
            raise NesfError(f"latent vectors have {latents.shape[1]} entries, this model uses "
                            f"{self.model.config.latent_size}")
        config = config or self.decode_config
        decoder = StructureDecoder(self.bbox_min, self.bbox_max, config)
        crystals = []
        for start in range(0, len(latents), DECODE_CHUNK):
            chunk = torch.from_numpy(latents[start:start + DECODE_CHUNK]).to(self.device)
            decoded = decoder.decode(ModelFields(self.model, chunk), self.device)
            names = ids[start:start + DECODE_CHUNK] if ids else [f"decoded-{start + i}" for i in range(len(chunk))]
            crystals.extend(to_crystals(decoded, self.vocab, names, wrap_to_cell=config.wrap_to_cell))
            if progress is not None:
                progress(len(crystals) / len(latents), f"decoded {len(crystals)} of {len(latents)}")
        return crystals

    def reconstruct(self, crystals: list[Crystal], config: DecodeConfig | None = None, *, check_box: bool = True
                    ) -> list[Crystal]:
        """Encode and decode. `check_box=False` scores a dataset split whole, as the paper does: a test crystal
        reaching past the training atoms' box is reconstructed (and missed where it does), not refused."""
        return self.decode(self.encode(crystals, check_box=check_box), config, ids=[c.id for c in crystals])

    def interpolate(self, start, end, steps: int, method: str = "linear", config: DecodeConfig | None = None
                    ) -> tuple[np.ndarray, list[Crystal]]:
        """Decode `steps` points between two crystals (or latent vectors), endpoints included."""
        endpoints = [self.encode([x])[0] if isinstance(x, Crystal) else np.asarray(x, dtype=np.float32)
                     for x in (start, end)]
        path = interpolate_latents(endpoints[0], endpoints[1], steps, method).astype(np.float32)
        return path, self.decode(path, config, ids=[f"step-{i}" for i in range(steps)])
