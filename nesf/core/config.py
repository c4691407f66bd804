"""Frozen configs. Defaults are the paper's (Supplementary Notes 5-6) and the official code's where the paper is silent.

Lengths are in Angstrom. Every field that changes results away from the paper is a flag whose default keeps the
paper's behaviour.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields, replace

from nesf.core.errors import NesfError

log = logging.getLogger(__name__)


def _from_dict(cls, values: dict):
    """`cls` from a dict of its fields (lists become tuples). Missing fields take their defaults (a checkpoint written
    before the field existed); unknown keys (one written by a newer version) are left out with a warning naming them."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(str(k) for k in values if k not in known)
    if unknown:
        log.warning("%s: ignoring unknown field(s) %s (written by another version of nesf?)", cls.__name__,
                    ", ".join(unknown))
    clean = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known}
    return cls(**clean)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise NesfError(message)


@dataclass(frozen=True)
class ModelConfig:
    num_species: int = 80                      # size of the species vocabulary (one-hot width, species field output)
    latent_size: int = 192                     # width of the latent vector z
    position_channels: tuple = (64, 128, 128)  # encoder position branch: 3 -> 64 -> 128 -> 128
    species_channels: tuple = (128, 128)       # encoder species branch: one-hot -> 128 -> 128
    mix_channels: tuple = (512,)               # per-atom mix: 256 -> 512, then max pool over atoms
    latent_channels: tuple = (256, 256)        # 518 -> 256 -> 256 -> latent_size
    dropout: float = 0.3                       # encoder mix and latent MLP dropout probability
    lattice_hidden: int = 128                  # lattice length and angle heads: latent -> 128 -> 3
    position_field_channels: tuple = (256, 128, 128, 128, 128, 128, 128, 128)  # 8 hidden layers + output 3 = 9 FC
    species_field_channels: tuple = (256, 128)  # 2 hidden layers + output num_species = 3 FC
    positional_encoding_frequencies: int = 0   # L of sin/cos query encoding; 0 = raw xyz (paper), 10 = official default
    composition_head: bool = False             # flag: auxiliary head latent -> element fractions (trained with
                                               # LossWeights.composition; the paper has none)

    def __post_init__(self):
        _require(0.0 <= self.dropout < 1.0, f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        return _from_dict(cls, values)


@dataclass(frozen=True)
class SamplingConfig:
    """Training query sampling (Supplementary Note 6; jitters of the local grids from the official code)."""

    global_interval: float = 1.0    # A, grid over the dataset bounding box (padded by one interval)
    global_sigma: float = 0.5       # A, Gaussian jitter of global grid points
    local_interval: float = 0.3     # A, position-field local grid around each atom
    local_range: float = 1.2        # A, full width of that grid (arange(-0.6, 0.6, 0.3): 4 points per axis)
    local_sigma: float = 0.15       # A
    species_interval: float = 0.1   # A, species-field local grid around each atom
    species_range: float = 0.6      # A (arange(-0.3, 0.3, 0.1): 6 points per axis)
    species_sigma: float = 0.05     # A
    periodic_targets: bool = False  # nearest atom over periodic images (off: the paper's in-cell nearest atom)
    global_in_cell: bool = False    # flag: global queries only within the crystal's own cell (+ cell_margin)
    cell_margin: float = 1.0        # A, margin around the cell for `global_in_cell`
    local_query_fraction: float = 1.0    # share of each atom's local position-grid points drawn per step (1: all 64)
    species_query_fraction: float = 1.0  # share of each atom's species-grid points drawn per step (1: all 216)

    def __post_init__(self):
        for name in ("local_query_fraction", "species_query_fraction"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise NesfError(f"SamplingConfig.{name} must lie in (0, 1], got {value}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "SamplingConfig":
        return _from_dict(cls, values)


@dataclass(frozen=True)
class LossWeights:
    position: float = 10.0
    species: float = 0.1
    lengths: float = 1.0
    angles: float = 1.0
    composition: float = 1.0   # auxiliary element-fraction cross-entropy; only with ModelConfig.composition_head


LR_SCHEDULES = ("step", "cosine")
OPTIMIZERS = ("adam", "adamw")
AUGMENTATIONS = ("none", "frames", "frames+cells")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 3200                 # paper: 3,200 epochs
    batch_size: int = 128              # paper: 128 (official code: 64)
    learning_rate: float = 1e-3        # Adam
    lr_schedule: str = "step"          # "step": x lr_gamma every lr_halving_epochs (paper); "cosine": warm-up, then
                                       # cosine decay to lr_final_fraction x learning_rate at `epochs`
    lr_halving_epochs: int = 640       # StepLR step (epochs); gamma 0.5
    lr_gamma: float = 0.5
    warmup_epochs: float = 0.0         # linear warm-up from 0 (cosine schedule), in epochs (fractions allowed)
    lr_final_fraction: float = 0.0     # cosine schedule: the learning rate at the last epoch, as a share of the peak
    optimizer: str = "adam"            # "adam" (paper) or "adamw" (decoupled weight decay)
    weight_decay: float = 0.0          # AdamW weight decay
    bn_recalibration_batches: int = 0  # after training: re-estimate BatchNorm statistics over this many batches
                                       # with the final weights (0: off, the paper)
    early_stopping_patience: int = 0   # epochs without validation improvement before stopping; 0 = never stop early
    keep_best_by_validation: bool = True  # the checkpoint's weights: those of the best validation loss (paper), or
                                          # the last ones (False: the paper's YBCO-like protocol, 5 val crystals)
    validate_every: int = 10           # epochs between validation passes
    checkpoint_every_s: float = 120.0  # seconds between checkpoint writes
    seed: int = 0
    loss_weights: LossWeights = field(default_factory=LossWeights)
    mixed_precision: bool = False      # bf16 autocast (CUDA only)
    compile: bool = False              # torch.compile the two field MLPs (CPU or CUDA; ~30 s of compiling first)
    hard_crystal_fraction: float = 0.0  # share of each epoch's crystals drawn again in proportion to their latest
                                        # position loss (nesf.training.hard_crystals); 0: a plain shuffle (paper)
    latent_noise: float = 0.0          # training only: Gaussian noise added to each latent before the decoders, its
                                       # std this share of the batch's std of that latent dimension (0: none, paper)
    augmentation: str = "none"         # each epoch, each training crystal is drawn as one of its variants
                                       # (nesf.training.augment): "none" (paper); "frames": its equivalent
                                       # settings (origin shifts, permuted equal axes, inversion); "frames+cells":
                                       # also its primitive, Niggli-reduced and orthohexagonal cells, where they fit
                                       # the model's range

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise NesfError(f"TrainConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise NesfError(f"TrainConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _require(self.epochs >= 1, f"TrainConfig.epochs must be at least 1, got {self.epochs}")
        _require(self.batch_size >= 1, f"TrainConfig.batch_size must be at least 1, got {self.batch_size}")
        _require(self.learning_rate > 0, f"TrainConfig needs learning_rate > 0, got {self.learning_rate}")
        _require(self.lr_halving_epochs >= 1,
                 f"TrainConfig.lr_halving_epochs must be at least 1, got {self.lr_halving_epochs}")
        _require(0 < self.lr_gamma <= 1, f"TrainConfig.lr_gamma must lie in (0, 1], got {self.lr_gamma}")
        _require(self.warmup_epochs >= 0, f"TrainConfig.warmup_epochs must not be negative, got {self.warmup_epochs}")
        _require(0 <= self.lr_final_fraction <= 1,
                 f"TrainConfig.lr_final_fraction must lie in [0, 1], got {self.lr_final_fraction}")
        _require(self.weight_decay >= 0, f"TrainConfig.weight_decay must not be negative, got {self.weight_decay}")
        _require(0 <= self.hard_crystal_fraction < 1,
                 f"TrainConfig.hard_crystal_fraction must lie in [0, 1), got {self.hard_crystal_fraction}")
        if self.augmentation not in AUGMENTATIONS:
            raise NesfError(f"TrainConfig.augmentation must be one of {AUGMENTATIONS}, got {self.augmentation!r}")
        _require(self.latent_noise >= 0, f"TrainConfig.latent_noise must not be negative, got {self.latent_noise}")
        for name in ("bn_recalibration_batches", "early_stopping_patience"):
            _require(getattr(self, name) >= 0, f"TrainConfig.{name} must not be negative, got {getattr(self, name)}")
        _require(self.validate_every >= 1, f"TrainConfig.validate_every must be at least 1, got {self.validate_every}")
        _require(self.checkpoint_every_s >= 0,
                 f"TrainConfig.checkpoint_every_s must not be negative, got {self.checkpoint_every_s}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        values = dict(values)
        weights = values.pop("loss_weights", None)
        config = _from_dict(cls, values)
        if isinstance(weights, dict):
            config = replace(config, loss_weights=_from_dict(LossWeights, weights))
        return config


FAST_PARTICLE_INTERVAL = 0.8  # A, the fast preset's particle grid (the paper's: 0.5)
FAST_MIN_PARTICLES = 3        # particles a cluster needs on that grid (the paper's 10 on 0.5 A)


@dataclass(frozen=True)
class DecodeConfig:
    """Structure decoding (section 2.1; defaults of the official reconstruction)."""

    particle_interval: float = 0.5        # A, particle grid over the dataset bounding box (padded by one interval)
    iterations: int = 64                  # particle moves along the position field
    score_threshold: float = 0.9          # A, particles whose last step is longer than this are dropped
    nms_radius: float = 0.5               # A
    nms_min_particles: int = 10           # clusters with fewer particles are rejected
    species_interval: float = 0.1         # A, local voting grid around each atom
    species_range: float = 0.6            # A (arange(-0.3, 0.3, 0.1))
    particles_in_predicted_cell: bool = False  # flag: particles only inside the predicted cell (+ cell_margin)
    cell_margin: float = 0.5              # A, how far outside the predicted cell particles are kept (with the flag)
    convergence_tolerance: float = 0.0    # A; flag: > 0 stops moving particles whose step is below it
    wrap_to_cell: bool = False            # flag: wrap decoded atoms into the predicted cell and merge periodic
                                          # duplicates (the canonical frame of uploads; off: the paper's raw atoms)
    max_nms_rounds: int = 0               # flag: > 0 stops non-max suppression after this many clusters (accepted
                                          # or not) per crystal; untrained fields leave particles spread out and
                                          # would take thousands of rounds (0: no limit, the paper)

    def __post_init__(self):
        for name in ("particle_interval", "nms_radius", "species_interval", "species_range"):
            _require(getattr(self, name) > 0, f"DecodeConfig.{name} must be positive, got {getattr(self, name)}")
        _require(self.iterations >= 0, f"DecodeConfig.iterations must not be negative, got {self.iterations}")
        _require(self.max_nms_rounds >= 0,
                 f"DecodeConfig.max_nms_rounds must not be negative, got {self.max_nms_rounds}")
        _require(self.nms_min_particles >= 1,
                 f"DecodeConfig.nms_min_particles must be at least 1, got {self.nms_min_particles}")
        for name in ("score_threshold", "cell_margin", "convergence_tolerance"):
            _require(getattr(self, name) >= 0, f"DecodeConfig.{name} must not be negative, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "DecodeConfig":
        return _from_dict(cls, values)

    @classmethod
    def fast(cls) -> "DecodeConfig":
        """The app's interactive preset: particles in the predicted cell on a 0.8 A grid, converged particles stop
        early, at most 1,024 clusters per crystal (a trained model's crystals need tens), a cluster kept from 3
        particles (the 0.5 A grid's 10 scaled by the grid's density). The shipped models decode their val splits to
        the same atom counts and species with it as with the 0.5 A grid, 4-6x faster (BENCHMARKS.md, "Decoding on a
        coarser grid")."""
        return cls(particle_interval=FAST_PARTICLE_INTERVAL, nms_min_particles=FAST_MIN_PARTICLES,
                   particles_in_predicted_cell=True, convergence_tolerance=1e-3, max_nms_rounds=1024)

    @classmethod
    def for_sampling(cls, sampling: SamplingConfig) -> "DecodeConfig":
        """The decoding a model trained with `sampling` wants (stored in its checkpoint): `fast()` where its global
        queries were drawn in each crystal's cell only (its fields are not trained far outside the cell), else the
        paper's."""
        return cls.fast() if sampling.global_in_cell else cls()

    @classmethod
    def preset(cls, name: str) -> "DecodeConfig":
        """A named preset of DECODE_PRESETS: "paper" (the paper's decoding) or "fast" (`fast()`)."""
        if name not in DECODE_PRESETS:
            raise NesfError(f"unknown decoding preset {name!r}; use one of {', '.join(DECODE_PRESETS)}")
        return cls() if name == "paper" else cls.fast()


# named decoding presets, and what each does; CHECKPOINT_PRESET (a checkpoint's own config) is resolved by
# `nesf.inference.autoencoder.Autoencoder.decode_preset`
CHECKPOINT_PRESET = "checkpoint"
DECODE_PRESETS = {"paper": "the paper's decoding: the full particle grid over the dataset box",
                  "fast": "particles only in the predicted cell, converged particles stop early"}


@dataclass(frozen=True)
class MapConfig:
    """A 2-D map of latent vectors (section 2.5): t-SNE settings, scikit-learn's defaults as the paper used them."""

    perplexity: float = 30.0   # t-SNE perplexity (capped at (N - 1) / 3 for small sets)
    seed: int = 0              # random state of PCA and t-SNE
    iterations: int = 1000     # t-SNE iterations after 250 early-exaggeration iterations

    def __post_init__(self):
        _require(self.perplexity > 0, f"MapConfig.perplexity must be positive, got {self.perplexity}")
        _require(self.iterations >= 1, f"MapConfig.iterations must be at least 1, got {self.iterations}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "MapConfig":
        return _from_dict(cls, values)
