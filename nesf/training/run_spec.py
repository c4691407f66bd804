"""A training run as data, its `nesf train` command line, and the configs it trains with; the `nesf crossval`
command line of a cross-validation config.

`TrainRun` names what to train on, the recipe, the config fields to change (`overrides`: field -> value, the fields
of `nesf.training.options.LEVERS`) and where the run writes. `train_command` turns one into the command that runs it in
a process of its own (the app's retraining and the GPU driver start runs so); `nesf train` parses that command back
into the same `TrainRun` and calls `run_configs` for its configs.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from nesf.core.config import ModelConfig, SamplingConfig, TrainConfig
from nesf.training.options import (CROSSVAL, CROSSVAL_OUT_DIR, DATA_DIR, DEVICE, LEVERS, PROGRESS_FILE, QUIET,
                                   TABLE_ONLY, THREADS, TRAIN_RUN, lever)

TRAIN_COMMAND_VARIABLE = "NESF_TRAIN_COMMAND"  # replaces `python -m nesf train` where set (tests: a fake trainer)


@dataclass(frozen=True)
class TrainRun:
    """One `nesf train` run. Fields left at their defaults are the command's defaults; `overrides` maps config
    fields (`nesf.training.options.LEVERS`) to values that replace the recipe's."""

    name: str = "model"
    datasets: tuple[str, ...] = ()
    structures_dir: Path | None = None
    recipe: str = "paper"
    overrides: dict = field(default_factory=dict)
    limit: int = 0
    out_dir: Path = Path("checkpoints/user")
    resume: Path | None = None
    init_from: Path | None = None
    progress_file: Path | None = None
    threads: int = 0
    atlas: bool = True
    errors: str = "test"
    quiet: bool = False
    device: str = "auto"
    data_dir: Path | None = None

    def __post_init__(self):
        for name in self.overrides:
            lever(name)  # NesfError names a field no option sets

    @classmethod
    def from_args(cls, args) -> "TrainRun":
        """The run a parsed `nesf train` command line asks for."""
        values = {name: getattr(args, option.name) for name, option in TRAIN_RUN.items()}
        overrides = {lv.field: getattr(args, lv.option.name) for lv in LEVERS
                     if getattr(args, lv.option.name) is not None}
        return cls(**{**values, "datasets": tuple(values["datasets"])}, overrides=overrides)

    def argv(self) -> list[str]:
        """The arguments of `nesf train` for this run (defaults left out)."""
        words = []
        defaults = TrainRun()
        for name, option in TRAIN_RUN.items():
            value = getattr(self, name)
            if value != getattr(defaults, name):
                words += option.argv(list(value) if name == "datasets" else value)
        for name, value in self.overrides.items():
            words += lever(name).option.argv(value)
        return words


def train_command(run: TrainRun) -> list[str]:
    """The command that runs `run` in a process of its own: `python -m nesf train ...` ($NESF_TRAIN_COMMAND replaces
    `python -m nesf train` where set)."""
    override = os.environ.get(TRAIN_COMMAND_VARIABLE, "").strip()
    return (shlex.split(override) if override else [sys.executable, "-m", "nesf", "train"]) + run.argv()


def crossval_command(config, out_dir: Path, *, progress_file: Path | None = None, threads: int = 0,
                     device: str = "auto", data_dir: Path | None = None, quiet: bool = False,
                     table_only: bool = False) -> list[str]:
    """`python -m nesf crossval` for `config` (a `nesf.training.crossval.CrossvalConfig`; its fields at their
    defaults left out) writing to `out_dir`; `table_only`: rewrite the table from the folds scored, train none."""
    from nesf.training.crossval import CrossvalConfig

    defaults = CrossvalConfig(family=config.family)
    words = [sys.executable, "-m", "nesf", "crossval", config.family]
    for name, option in CROSSVAL.items():
        if getattr(config, name) != getattr(defaults, name):
            words += option.argv(getattr(config, name))
    words += CROSSVAL_OUT_DIR.argv(out_dir) + PROGRESS_FILE.argv(progress_file) + TABLE_ONLY.argv(table_only)
    words += THREADS.argv(threads or None) + DEVICE.argv(None if device == "auto" else device)
    return words + DATA_DIR.argv(data_dir) + QUIET.argv(quiet)


@dataclass(frozen=True)
class RunConfigs:
    model: ModelConfig
    train: TrainConfig
    sampling: SamplingConfig


def run_configs(run: TrainRun) -> RunConfigs:
    """The recipe's configs with the run's overrides; the field widths of the checkpoint a run resumes or starts
    from where the run gives none (a run from a widened model needs no widths repeated)."""
    from nesf.training.recipes import get_recipe

    recipe = get_recipe(run.recipe)
    by_config = {name: {lv.field: run.overrides[lv.field] for lv in LEVERS
                        if lv.config == name and lv.field in run.overrides}
                 for name in ("train", "loss_weights", "sampling", "model")}
    weights = replace(recipe.train.loss_weights, **by_config["loss_weights"])
    train = replace(recipe.train, loss_weights=weights, **by_config["train"])
    model = replace(recipe.model, **by_config["model"])
    source = run.resume or run.init_from
    if source:
        from nesf.checkpoint import read_checkpoint_info

        stored = ModelConfig.from_dict(read_checkpoint_info(Path(source)).model_config)  # metadata only
        widths = [f.name for f in fields(ModelConfig) if f.name.endswith("_field_channels")]
        model = replace(model, **{name: getattr(stored, name) for name in widths if name not in run.overrides})
    return RunConfigs(model, train, replace(recipe.sampling, **by_config["sampling"]))

