"""Progress events of long runs (training, cross-validation, the atlas after training): their names, a writer that
appends them to a JSON-lines file, and a reader.

An event is a dict {"event": NAME, "time": s since the epoch, ...}. The trainer emits START, STEP (epoch, epochs,
step, steps: steps done within the running epoch, at most every few seconds), EPOCH (epoch, epochs,
train_loss, val_loss, val_probe_element_set_match_percent, elapsed_s, eta_s) and CHECKPOINT (epoch, checkpoint);
`nesf train` adds ATLAS and one of the TERMINAL events (message, checkpoint); cross-validation emits FOLD and
FOLD_DONE. Readers skip lines that do not parse (a run killed mid-write leaves a torn last line).
"""

from __future__ import annotations

import json
import os
import time
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

Listener = Callable[[dict], None]


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

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        event = {"time": time.time(), **event}
        if self.stream:
            self.stream.write(json.dumps(event) + "\n")
        if self.listener:
            self.listener(event)


def read_events(progress_file: Path, *, kind: str | None = None, since: float = 0.0) -> list[dict]:
    """The events of a progress file (only those named `kind`, and stamped at or after `since`, when given); a
    half-written last line or junk lines are skipped."""
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
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or (kind is not None and event.get("event") != kind):
            continue
        if since and event.get("time", 0.0) < since:
            continue
        events.append(event)
    return events
