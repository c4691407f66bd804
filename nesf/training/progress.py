"""Progress events of long runs (training, cross-validation, the atlas after training): their names, the typed
`Event`, the one writer (`ProgressLog`, appending JSON lines) and the one reader (`read_events`). No other module
spells an event's keys.

The trainer emits START, STEP (epoch, epochs, step, steps: steps done within the running epoch, at most every few
seconds), EPOCH (epoch, epochs, train_loss, val_loss, val_probe_element_set_match_percent, elapsed_s, eta_s) and
CHECKPOINT (epoch, checkpoint); `nesf train` adds ATLAS and one of the TERMINAL events (message, checkpoint);
cross-validation emits FOLD and FOLD_DONE (fold, seconds, metrics, message). On file an event is one JSON object a
line, {"event": its kind, "time": s since the epoch, and the fields it carries}. Readers skip lines that do not parse
(a run killed mid-write leaves a torn last line) and keys they do not know.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, TextIO

START = "start"
STEP = "step"
EPOCH = "epoch"
CHECKPOINT = "checkpoint"
ATLAS = "atlas"
DONE = "done"
CANCELLED = "cancelled"
FAILED = "failed"
FOLD = "fold"
FOLD_DONE = "fold_done"
TERMINAL = (DONE, CANCELLED, FAILED)


@dataclass(frozen=True)
class Event:
    """One progress event: its kind and the fields that kind carries (None: not carried)."""

    kind: str                                  # START, STEP, EPOCH, ... above
    time: float = 0.0                          # s since the epoch, stamped by the writer
    epoch: int | None = None                   # epochs done
    epochs: int | None = None                  # epochs the run trains
    step: int | None = None                    # STEP: steps done within the running epoch
    steps: int | None = None                   # STEP: steps an epoch takes
    train_loss: float | None = None
    val_loss: float | None = None
    val_probe_element_set_match_percent: float | None = None
    elapsed_s: float | None = None             # wall seconds the run has trained
    eta_s: float | None = None                 # EPOCH: seconds to the last epoch, at this run's pace
    checkpoint: str | None = None              # the checkpoint written (CHECKPOINT, terminal events)
    message: str = ""                          # for people: what happened
    traceback: str = ""                        # FAILED by an unexpected error: its last frames
    fold: int | None = None                    # FOLD, FOLD_DONE: the cross-validation fold
    seconds: float | None = None               # FOLD_DONE: the fold's wall seconds
    metrics: dict | None = None                # FOLD_DONE: the fold's test metrics

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL

    def to_json(self) -> str:
        values = {"event": self.kind, **{k: v for k, v in asdict(self).items() if k != "kind" and v not in (None, "")}}
        return json.dumps(values)

    @classmethod
    def from_dict(cls, values: dict) -> "Event | None":
        """The event of a parsed line, or None where it is not one (no kind, a field of the wrong type)."""
        kind = values.get("event")
        if not isinstance(kind, str):
            return None
        known = {f.name for f in fields(cls)}
        try:
            given = {name: _CASTS.get(name, lambda v: v)(value) for name, value in values.items()
                     if name in known and name != "kind" and value is not None}
        except (TypeError, ValueError):
            return None
        return cls(kind=kind, **given)


_CASTS = {"time": float, "epoch": int, "epochs": int, "step": int, "steps": int, "train_loss": float,
          "val_loss": float, "val_probe_element_set_match_percent": float, "elapsed_s": float, "eta_s": float,
          "checkpoint": str, "message": str, "traceback": str, "fold": int, "seconds": float, "metrics": dict}

Listener = Callable[[Event], None]


def open_progress_file(path: Path) -> TextIO:
    """`path` opened to append JSON lines (line-buffered). A run killed mid-line (SIGKILL, a full disk) leaves a
    torn last line without its newline: one is added first, so the next event starts a line of its own instead of
    being glued to the torn one (and lost to every reader, which skips unparseable lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "a", buffering=1)
    try:
        with open(path, "rb") as existing:
            existing.seek(0, os.SEEK_END)
            if existing.tell():
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":
                    stream.write("\n")
    except OSError:
        pass
    return stream


class ProgressLog:
    """A progress callback: stamps each event with the time, appends it to `path` (when given) and passes it on to
    `listener` (a command line's printer, when given). `enabled=False` drops every event (ranks but the first)."""

    def __init__(self, path: Path | None = None, listener: Listener | None = None, *, enabled: bool = True):
        self.enabled = enabled
        self.listener = listener
        self.stream = open_progress_file(Path(path)) if path and enabled else None

    def __call__(self, event: Event) -> None:
        if not self.enabled:
            return
        event = replace(event, time=time.time())
        if self.stream:
            self.stream.write(event.to_json() + "\n")
        if self.listener:
            self.listener(event)


def read_events(progress_file: Path, *, kind: str | None = None, since: float = 0.0) -> list[Event]:
    """The events of a progress file (only those of `kind`, and stamped at or after `since`, when given); a
    half-written last line, junk lines and lines that are no event are skipped."""
    events = []
    try:
        text = Path(progress_file).read_text(errors="replace")
    except FileNotFoundError:
        return events
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            values = json.loads(line)
        except ValueError:
            continue
        event = Event.from_dict(values) if isinstance(values, dict) else None
        if event is None or (kind is not None and event.kind != kind) or (since and event.time < since):
            continue
        events.append(event)
    return events
