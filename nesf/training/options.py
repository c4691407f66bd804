"""The command line's options, each declared once: `nesf.cli` builds its parsers from these records, and
`nesf.training.run_spec.train_command` writes a `nesf train` command line with the same records.

An option that sets a config field (a "lever") takes its type, its choices and the default its help names from the
config dataclass (`nesf.core.config`), whose defaults are the paper's; its parser default is None, "the recipe's value".
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

from nesf.core.config import (AUGMENTATIONS, CHECKPOINT_PRESET, DECODE_PRESETS, LR_SCHEDULES, OPTIMIZERS, LossWeights,
                              ModelConfig, SamplingConfig, TrainConfig)
from nesf.core.errors import NesfError


def parse_widths(text: str) -> tuple:
    """'256,128' -> (256, 128): an MLP's hidden widths from the command line."""
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return widths


@dataclass(frozen=True)
class Option:
    """One command-line option: its flag and what argparse needs to parse it."""

    flag: str
    help: str | None = None
    type: Callable | None = None
    default: Any = None
    choices: tuple | None = None
    action: Any = None                  # "store_true", "store_false", "append", argparse.BooleanOptionalAction
    dest: str | None = None
    metavar: str | None = None
    required: bool = False

    @property
    def name(self) -> str:
        """The argparse dest: the attribute the parsed value lands in."""
        return self.dest or self.flag.lstrip("-").replace("-", "_")

    def add_to(self, parser, **changes) -> None:
        """Declare it on `parser` (an argparse parser or group); `changes` replace fields (a subcommand's default)."""
        spec = {"help": self.help, "type": self.type, "default": self.default, "choices": self.choices,
                "action": self.action, "dest": self.dest, "metavar": self.metavar, "required": self.required,
                **changes}
        if spec["action"] in ("store_true", "store_false", argparse.BooleanOptionalAction):
            spec.pop("type"), spec.pop("choices"), spec.pop("metavar")
        parser.add_argument(self.flag, **{key: value for key, value in spec.items()
                                          if value is not None or key == "default"})

    def argv(self, value) -> list[str]:
        """The command-line words that give `value` (none for None)."""
        if value is None:
            return []
        if self.action == "append":
            return [word for item in value for word in (self.flag, str(item))]
        if self.action == argparse.BooleanOptionalAction:
            return [self.flag if value else "--no-" + self.flag[2:]]
        if self.action in ("store_true", "store_false"):
            if bool(value) == (self.action == "store_true"):
                return [self.flag]
            if self.action == "store_true" and self.default is None:
                raise NesfError(f"{self.flag}: cannot be turned off on the command line; choose a recipe without it")
            return []
        if isinstance(value, tuple):
            return [self.flag, ",".join(str(v) for v in value)]
        return [self.flag, repr(float(value)) if isinstance(value, float) else str(value)]


# -- options of every command -------------------------------------------------------------------------------------
DEVICE = Option("--device", "auto (CUDA if present, else CPU), cpu or cuda", default="auto")
DATA_DIR = Option("--data-dir", "data directory (default $NESF_DATA_DIR or ./data)", type=Path)
COMMON = (DEVICE, DATA_DIR)

THREADS = Option("--threads", "torch CPU threads (0: torch's default)", type=int, default=0)
DECODE = Option("--decode", "paper: the paper's decoding; fast: particles in the predicted cell + early stop; "
                "checkpoint: its own", default=CHECKPOINT_PRESET, choices=(*DECODE_PRESETS, CHECKPOINT_PRESET))
PROGRESS_FILE = Option("--progress-file", "append JSON-lines progress events here", type=Path)
QUIET = Option("--quiet", action="store_true", default=False)
ENCODER_ONLY = Option("--encoder-only", "use the encoder's latents as they are (the paper's protocol); by default "
                      "each structure's latent is refined at test time (nesf.model.refine)", action="store_true",
                      default=False)
ERRORS = Option("--errors", "which splits get a reconstruction error (decodes them)", default="test",
                choices=("none", "test", "all"))


# -- `nesf train`: the run ----------------------------------------------------------------------------------------
SPEC = Option("--spec", "a run as data (JSON, nesf.training.run_spec: what `nesf train` would be told on the command "
              "line; checkpoints/specs/ holds the shipped models' lineages); options given beside it replace its "
              "values", type=Path)
TRAIN_RUN = {  # TrainRun field -> its option
    "datasets": Option("--dataset", "dataset name (repeatable)", action="append", default=[], dest="dataset"),
    "structures_dir": Option("--structures-dir", "folder of structure files to train on too", type=Path),
    "recipe": Option("--recipe", "named recipe to start from (nesf.training.recipes; default: paper); the options "
                     "below override its fields", default="paper"),
    "limit": Option("--limit", "train on the first N crystals only (0: all)", type=int, default=0),
    "name": Option("--name", default="model"),
    "out_dir": Option("--out-dir", type=Path, default=Path("checkpoints/user")),
    "resume": Option("--resume", "checkpoint to resume from", type=Path),
    "init_from": Option("--init-from", "start from this checkpoint's weights with a new optimizer and schedule "
                        "(fine-tuning)", type=Path),
    "progress_file": PROGRESS_FILE,
    "threads": THREADS,
    "atlas": Option("--no-atlas", "skip writing the atlas at the end", action="store_false", dest="atlas",
                    default=True),
    "errors": ERRORS,
    "quiet": QUIET,
    "device": DEVICE,
    "data_dir": DATA_DIR,
}


# -- `nesf train`: the levers, one per config field ---------------------------------------------------------------
@dataclass(frozen=True)
class Lever:
    """An option of `nesf train` that sets one field of a config: `config` is "train", "loss_weights", "sampling"
    or "model"."""

    config: str
    field: str
    option: Option


CONFIG_TYPES = {"train": TrainConfig, "loss_weights": LossWeights, "sampling": SamplingConfig, "model": ModelConfig}
CHOICES = {"lr_schedule": LR_SCHEDULES, "optimizer": OPTIMIZERS, "augmentation": AUGMENTATIONS}
NEGATABLE = ("compile",)  # flags with a --no- form: the recipe may turn them on


def config_option(config_type, field: str, flag: str, help: str = "", *, named: str = "default", **option) -> Option:
    """An option that sets `config_type`'s `field`: its type and choices from the field's default, which its help
    names (`named`: "default", or "paper" for the paper's configs); it parses to None where not given, so the
    default lives in the dataclass alone."""
    default = next(f for f in fields(config_type) if f.name == field).default
    shown = ",".join(str(v) for v in default) if isinstance(default, tuple) else default
    text = f"{help} ({named}: {shown})" if help else f"{named}: {shown}"
    if isinstance(default, bool):
        kind = {"action": argparse.BooleanOptionalAction if field in NEGATABLE else "store_true"}
    elif isinstance(default, tuple):
        kind = {"type": parse_widths, "metavar": "W1,W2,..."}
    else:
        kind = {"type": type(default), "choices": CHOICES.get(field)}
    return Option(flag, text, **{**kind, **option})


def _lever(config: str, field: str, flag: str, help: str = "", group: str = "main") -> tuple[str, Lever]:
    """A lever of a paper config's field."""
    return group, Lever(config, field, config_option(CONFIG_TYPES[config], field, flag, help, named="paper"))


_LEVERS = (
    _lever("train", "epochs", "--epochs"),
    _lever("train", "batch_size", "--batch-size"),
    _lever("train", "learning_rate", "--lr", "peak learning rate"),
    _lever("train", "lr_halving_epochs", "--lr-halving-epochs", "step schedule"),
    _lever("train", "validate_every", "--validate-every", "epochs between validations"),
    _lever("train", "early_stopping_patience", "--patience", "early-stopping patience in epochs (0: off)"),
    _lever("train", "seed", "--seed"),
    _lever("train", "checkpoint_every_s", "--checkpoint-every-s", "seconds between checkpoints"),
    _lever("train", "mixed_precision", "--mixed-precision", "bf16 autocast (CUDA)"),
    _lever("train", "compile", "--compile", "torch.compile the field MLPs (CPU or CUDA); --no-compile: do not, "
                                            "whatever the recipe says"),
    _lever("model", "positional_encoding_frequencies", "--positional-encoding",
           "sin/cos query encoding frequencies (0: off)"),
    _lever("sampling", "periodic_targets", "--periodic-targets", "nearest atom over periodic images"),
    _lever("sampling", "global_in_cell", "--global-in-cell", "global queries only in each crystal's cell"),
    _lever("loss_weights", "position", "--position-weight", "position-field loss weight", "levers"),
    _lever("loss_weights", "species", "--species-weight", "species-field loss weight", "levers"),
    _lever("loss_weights", "lengths", "--lengths-weight", "lattice-length loss weight (MSE in Angstrom^2)", "levers"),
    _lever("loss_weights", "angles", "--angles-weight",
           "lattice-angle loss weight (MSE in radians^2, so ~1e-4 of the loss at 0.5 deg)", "levers"),
    _lever("model", "composition_head", "--composition-head",
           "auxiliary head: element fractions from the latent (not used in decoding)", "levers"),
    _lever("loss_weights", "composition", "--composition-weight", "its loss weight", "levers"),
    _lever("model", "dropout", "--dropout", "encoder dropout probability; it holds no weights: --init-from may "
                                           "change it", "levers"),
    _lever("model", "position_field_channels", "--position-field-channels",
           "hidden widths of the position field; --init-from a narrower model of the same depth widens it, keeping "
           "its function", "levers"),
    _lever("model", "species_field_channels", "--species-field-channels",
           "hidden widths of the species field; widened the same way", "levers"),
    _lever("sampling", "local_query_fraction", "--local-query-fraction",
           "share of each atom's 64 local position queries drawn per step", "levers"),
    _lever("sampling", "species_query_fraction", "--species-query-fraction",
           "share of each atom's 216 species queries drawn per step", "levers"),
    _lever("train", "lr_schedule", "--lr-schedule", "step: halve every --lr-halving-epochs; cosine: warm-up then "
                                                    "cosine to the end", "levers"),
    _lever("train", "warmup_epochs", "--warmup-epochs", "cosine schedule's linear warm-up", "levers"),
    _lever("train", "lr_final_fraction", "--lr-final-fraction", "cosine schedule's final lr / peak", "levers"),
    _lever("train", "optimizer", "--optimizer", "", "levers"),
    _lever("train", "weight_decay", "--weight-decay", "AdamW weight decay", "levers"),
    _lever("train", "bn_recalibration_batches", "--bn-recalibration-batches",
           "re-estimate BatchNorm statistics over N batches after the last epoch", "levers"),
    _lever("train", "hard_crystal_fraction", "--hard-crystal-fraction",
           "share of each epoch's crystals drawn again in proportion to their latest position loss "
           "(nesf.training.hard_crystals)", "levers"),
    _lever("train", "latent_noise", "--latent-noise", "training only: Gaussian noise on each latent before the "
                                                      "decoders, as a share of that latent dimension's std over the "
                                                      "batch", "levers"),
    _lever("train", "augmentation", "--augment", "each epoch, draw each training crystal as one of its equivalent "
                                                 "settings (frames) and also its primitive, Niggli and "
                                                 "orthohexagonal cells (frames+cells) where they fit "
                                                 "(nesf.training.augment)",
           "levers"),
)
LEVERS = tuple(lever for _, lever in _LEVERS)
LEVER_GROUPS = {group: tuple(lever for g, lever in _LEVERS if g == group) for group in ("main", "levers")}


def lever(field: str, config: str | None = None) -> Lever:
    """The lever of a config field (`config` where two configs share a field name); NesfError names an unknown one."""
    for candidate in LEVERS:
        if candidate.field == field and config in (None, candidate.config):
            return candidate
    raise NesfError(f"no `nesf train` option sets {field!r}; known: {', '.join(lv.field for lv in LEVERS)}")


# -- `nesf crossval` --------------------------------------------------------------------------------------------------
def _crossval_options() -> dict[str, Option]:
    from nesf.training.crossval import CrossvalConfig

    folds = CrossvalConfig.folds
    return {  # CrossvalConfig field -> its option
        "folds": Option("--folds", f"fold numbers, e.g. 0-19 or 0,5,10 (default {min(folds)}-{max(folds)})"),
        "recipe": config_option(CrossvalConfig, "recipe", "--recipe", "named recipe (nesf.training.recipes)"),
        "epochs": config_option(CrossvalConfig, "epochs", "--epochs", "per fold"),
        "bn_recalibration_batches": config_option(CrossvalConfig, "bn_recalibration_batches",
                                                  "--bn-recalibration-batches"),
        "limit": config_option(CrossvalConfig, "limit", "--limit", "first N crystals of each split only (tiny runs)"),
        "compile": replace(lever("compile").option,  # the trainer's --compile, worded for folds
                           help="torch.compile the field MLPs; --no-compile: do not, whatever the recipe says"),
        "decode": DECODE,
        "train_only": Option("--train-only", "train the folds, score none", action="store_true", default=False),
    }


CROSSVAL = _crossval_options()
CROSSVAL_OUT_DIR = Option("--out-dir", "folder of the folds' checkpoints, results and table", type=Path,
                          default=Path("runs/crossval"))
TABLE_ONLY = Option("--table-only", "rewrite the table from the folds scored, train none", action="store_true",
                    default=False)
