"""Command line: `python -m nesf COMMAND ...` (also `nesf ...`). It parses and prints; what the commands do lives in
the library. Every command takes --device auto|cpu|cuda and --data-dir (default: $NESF_DATA_DIR, else ./data).

One module per group of commands, each with a `register(subparsers, common)` that declares its commands' options
(`nesf.training.options` holds the options several commands share).
"""

from __future__ import annotations

import argparse
import logging
import sys

from nesf.cli import models, structures, training
from nesf.core.errors import NesfError
from nesf.training.options import COMMON


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nesf", description="Neural Structure Fields: train, evaluate, explore.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    for option in COMMON:
        option.add_to(common)
    structures.register_download(sub, common)
    training.register_train(sub, common)
    models.register_evaluate(sub, common)
    structures.register(sub, common)
    training.register_crossval(sub, common)
    models.register(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except NesfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
