"""What several commands share: the data directory, torch's thread count, a stop on SIGTERM or SIGINT, and a
config with the fields given on the command line."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path


def data_dir(args) -> Path:
    from nesf.data.datasets import default_data_dir

    return args.data_dir or default_data_dir()


def set_threads(args) -> None:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def stop_requested():
    """A `should_stop` for long runs: SIGTERM or SIGINT asks the run to stop at its next step (it then writes its
    checkpoint) instead of killing it mid-write."""
    stop = {"requested": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("requested", True))
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("requested", True))
    return lambda: stop["requested"]


def given(args, config, *names: str):
    """`config` with the fields `names` whose options were given (parsed as None where not): their defaults live
    in the config dataclass alone."""
    values = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return replace(config, **values) if values else config
