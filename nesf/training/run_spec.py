"""A training run as data, its spec file and `nesf train` command line, and the configs it trains with; the
`nesf crossval` command line of a cross-validation config.

`TrainRun` names what to train on, the recipe, the config fields to change (`overrides`: field -> value, the fields
of `nesf.training.options.LEVERS`) and where the run writes. A run is written as a spec file (`write_spec`, JSON, the
fields left at their defaults left out) that `nesf train --spec FILE` reads back (`read_spec`): the app's retraining
writes one and starts the command `train_command` gives; the shipped models' lineages are such files
(checkpoints/specs/). `nesf train` without a spec parses its options into the same `TrainRun` (`TrainRun.argv` writes
them), and calls `run_configs` for its configs.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from nesf.core.config import ModelConfig, SamplingConfig, TrainConfig
from nesf.core.errors import NesfError
from nesf.training.options import (CROSSVAL, CROSSVAL_OUT_DIR, DATA_DIR, DEVICE, LEVERS, PROGRESS_FILE, QUIET,
                                   SPEC, TABLE_ONLY, THREADS, TRAIN_RUN, lever)

TRAIN_COMMAND_VARIABLE = "NESF_TRAIN_COMMAND"  # replaces `python -m nesf train` where set (tests: a fake trainer)
SPEC_KIND = "nesf train run"                    # a spec file's "kind"
SPEC_VERSION = 1
_PATHS = ("structures_dir", "out_dir", "resume", "init_from", "progress_file", "data_dir")


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
        """The run a parsed `nesf train` command line asks for: its options, or the run its `--spec` file holds with
        the options given beside it (those not at their defaults) replacing the spec's values."""
        values = {name: getattr(args, option.name) for name, option in TRAIN_RUN.items()}
        values["datasets"] = tuple(values["datasets"])
        overrides = {lv.field: getattr(args, lv.option.name) for lv in LEVERS
                     if getattr(args, lv.option.name) is not None}
        if getattr(args, "spec", None) is None:
            return cls(**values, overrides=overrides)
        spec, defaults = read_spec(args.spec), cls()
        given = {name: value for name, value in values.items() if value != getattr(defaults, name)}
        return replace(spec, **given, overrides={**spec.overrides, **overrides})

    def to_dict(self) -> dict:
        """The run as a spec file holds it (JSON values; fields at their defaults left out)."""
        defaults, values = TrainRun(), {"kind": SPEC_KIND, "version": SPEC_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(defaults, f.name):
                continue
            values[f.name] = (str(value) if f.name in _PATHS else list(value) if f.name == "datasets" else
                              {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
                              if f.name == "overrides" else value)
        return values

    @classmethod
    def from_dict(cls, values: dict, source: str = "run spec") -> "TrainRun":
        """The run of a spec file's content (`to_dict`); NesfError naming any key or lever it does not know."""
        values = dict(values)
        kind, version = values.pop("kind", None), values.pop("version", None)
        if kind != SPEC_KIND or version != SPEC_VERSION:
            raise NesfError(f"{source}: not a run spec (kind {kind!r}, version {version!r}; expected {SPEC_KIND!r}, "
                            f"version {SPEC_VERSION})")
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise NesfError(f"{source}: unknown field(s) {', '.join(unknown)}; a run spec holds "
                            f"{', '.join(f.name for f in fields(cls))}")
        for name in _PATHS:
            if values.get(name) is not None:
                values[name] = Path(values[name])
        if "datasets" in values:
            values["datasets"] = tuple(values["datasets"])
        overrides = values.pop("overrides", {})
        try:
            overrides = {name: tuple(value) if isinstance(value, list) else value for name, value in overrides.items()}
            return cls(**values, overrides=overrides)
        except NesfError as exc:
            raise NesfError(f"{source}: {exc}") from None

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


def write_spec(run: TrainRun, path: Path) -> Path:
    """`run` written as a spec file at `path` (JSON), for `nesf train --spec`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run.to_dict(), indent=2) + "\n")
    return path


def read_spec(path: Path) -> TrainRun:
    """The run of the spec file at `path`; NesfError naming what is wrong with it."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except OSError as exc:
        raise NesfError(f"{path}: cannot read the run spec ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise NesfError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(values, dict):
        raise NesfError(f"{path}: not a run spec (a JSON object is expected)")
    return TrainRun.from_dict(values, str(path))


def train_command(run: TrainRun, spec_path: Path | None = None) -> list[str]:
    """The command that runs `run` in a process of its own: `python -m nesf train --spec FILE` with the run written
    to `spec_path`, or (no `spec_path`) its options on the command line ($NESF_TRAIN_COMMAND replaces
    `python -m nesf train` where set)."""
    override = os.environ.get(TRAIN_COMMAND_VARIABLE, "").strip()
    command = shlex.split(override) if override else [sys.executable, "-m", "nesf", "train"]
    if spec_path is None:
        return command + run.argv()
    return command + SPEC.argv(write_spec(run, spec_path))


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

        stored = read_checkpoint_info(Path(source)).model_config  # metadata only
        widths = [f.name for f in fields(ModelConfig) if f.name.endswith("_field_channels")]
        model = replace(model, **{name: getattr(stored, name) for name in widths if name not in run.overrides})
    return RunConfigs(model, train, replace(recipe.sampling, **by_config["sampling"]))

