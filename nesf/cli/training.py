"""`nesf train` and `nesf crossval`."""

from __future__ import annotations

import argparse
import os
import sys

from nesf.cli.common import data_dir, given, set_threads, stop_requested
from nesf.training.options import (COMMON, CROSSVAL, CROSSVAL_OUT_DIR, LEVER_GROUPS, PROGRESS_FILE, QUIET, SPEC,
                                   TABLE_ONLY, THREADS, TRAIN_RUN)
from nesf.training.progress import EPOCH, FOLD, FOLD_DONE, Event, ProgressLog


def print_epoch(event: Event) -> None:
    if event.kind != EPOCH:
        return
    val, probe = event.val_loss, event.val_probe_element_set_match_percent
    print(f"epoch {event.epoch}/{event.epochs} train {event.train_loss:.4f}"
          + (f" val {val:.4f}" if val is not None else "")
          + (f" val element sets by nearest latent {probe:.1f} %" if probe is not None else "")
          + f" eta {event.eta_s:.0f} s", file=sys.stderr)


def cmd_train(args) -> int:
    from nesf.training.run import CANCELLED_STATUS, run_training
    from nesf.training.run_spec import TrainRun

    run = TrainRun.from_args(args)
    is_writer = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports progress
    emit = ProgressLog(run.progress_file, None if run.quiet else print_epoch, enabled=is_writer)
    return 130 if run_training(run, emit, stop_requested()) == CANCELLED_STATUS else 0


def register_train(sub, common) -> None:
    p = sub.add_parser("train", parents=[common], help="train a model (resumable; under torchrun it trains with DDP)")
    SPEC.add_to(p)
    run_options = {name: option for name, option in TRAIN_RUN.items() if option not in COMMON}
    for name in ("datasets", "structures_dir", "recipe"):
        run_options.pop(name).add_to(p)
    for main_lever in LEVER_GROUPS["main"]:
        main_lever.option.add_to(p)
    for option in run_options.values():
        option.add_to(p)
    levers = p.add_argument_group("recipe levers (defaults: the recipe's; see TrainConfig, LossWeights, "
                                  "SamplingConfig)")
    for recipe_lever in LEVER_GROUPS["levers"]:
        recipe_lever.option.add_to(levers)
    p.set_defaults(func=cmd_train)


def crossval_config(args):
    """The `CrossvalConfig` a parsed `nesf crossval` command line asks for."""
    from nesf.training.crossval import CrossvalConfig, parse_folds

    folds = parse_folds(args.folds) if args.folds is not None else None
    return given(argparse.Namespace(**{**vars(args), "folds": folds}), CrossvalConfig(family=args.family), *CROSSVAL)


def cmd_crossval(args) -> int:
    from nesf.training.crossval import Crossval, format_table, read_results, write_table

    config = crossval_config(args)

    def print_fold(event: Event) -> None:
        if event.kind in (FOLD, FOLD_DONE):
            print(event.message, file=sys.stderr)

    emit = ProgressLog(args.progress_file, None if args.quiet else print_fold)
    should_stop = stop_requested()
    set_threads(args)
    status = "done"
    if not args.table_only:
        status = Crossval(config, args.out_dir, data_dir=data_dir(args), device=args.device, progress=emit,
                          should_stop=should_stop).run()
    path = write_table(args.out_dir, config)
    print(format_table(read_results(args.out_dir), config.family))
    print(f"table: {path}")
    return 130 if status == "cancelled" else 0


def register_crossval(sub, common) -> None:
    p = sub.add_parser("crossval", parents=[common], help="train and score every fold of a dataset (the paper's "
                                                          "YBCO-like protocol), resumable, writing a table")
    p.add_argument("family", help="fold family: YBCO13 (datasets YBCO13_fold0..19)")
    for option in (*CROSSVAL.values(), CROSSVAL_OUT_DIR, TABLE_ONLY):
        option.add_to(p)
    PROGRESS_FILE.add_to(p)
    THREADS.add_to(p)
    QUIET.add_to(p)
    p.set_defaults(func=cmd_crossval)
