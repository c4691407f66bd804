"""Generic server-side caching for the app, nothing NeSF-specific: a bounded, thread-safe memo (`Memo`) with its
size estimate (`approx_nbytes`), a gate on concurrent computations (`ComputeGate`), and `release_memory`."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import logging
import sys
import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

log = logging.getLogger("nesf.app")


class ComputeGate:
    """At most `slots` computations at once over all sessions; a session waits in `slot()` while all are taken.
    Every session's script runs in its own thread, and a decode holds ~100 MB of particle and activation tensors
    while it runs: without the gate, 10 sessions decoding at once hold 10 of them, on cores that run two at a time
    anyway. Re-entrant within a thread (a computation inside another takes no second slot)."""

    def __init__(self, slots: int):
        self.slots = threading.BoundedSemaphore(slots)
        self._held = threading.local()

    @contextlib.contextmanager
    def slot(self):
        depth = getattr(self._held, "depth", 0)
        with self.slots if depth == 0 else contextlib.nullcontext():
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth

    def gated(self, compute):
        """`compute` run in a slot (for a memo's get_or_compute: a memo hit takes no slot)."""
        def run():
            with self.slot():
                return compute()
        return run


def _find_malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows): nothing to trim
        return None


_MALLOC_TRIM = _find_malloc_trim()


def release_memory() -> None:
    """Hand the memory freed by this script run back to the system (app/main.py calls it after every run). glibc
    keeps what a thread frees in that thread's arena, and every session's script runs in its own thread: without
    this, each thread that ever decoded or drew a map keeps its high-water mark (~150 MB more for 10 sessions
    decoding at once, measured). A no-op where the C library is not glibc."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


_ARRAY_HEADER = sys.getsizeof(np.empty(0))   # bytes of a numpy array object without its data


def approx_nbytes(value, _seen: set | None = None) -> int:
    """Approximate bytes held by `value`: numpy arrays, data frames, containers, dataclasses (a Crystal, an
    Atlas) and objects' attributes, each object counted once."""
    seen = set() if _seen is None else _seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + _ARRAY_HEADER
    if isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
        usage = value.memory_usage(deep=True)
        return int(usage.sum() if hasattr(usage, "sum") else usage)
    if isinstance(value, (str, bytes, bytearray, int, float, bool, type(None))):
        return sys.getsizeof(value)
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        return size + sum(approx_nbytes(k, seen) + approx_nbytes(v, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return size + sum(approx_nbytes(item, seen) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return size + sum(approx_nbytes(getattr(value, f.name), seen) for f in dataclasses.fields(value))
    if hasattr(value, "__dict__"):
        return size + approx_nbytes(vars(value), seen)
    return size


class Memo:
    """A bounded, thread-safe memo: at most `max_entries` entries and (when given) `max_bytes` bytes as estimated by
    `sizeof`; least recently used entries go first, and a value larger than `max_bytes` alone is returned but not
    kept. `get_or_compute` runs a computation once when several sessions ask for the same key at the same time.
    Cached functions must not draw elements, so results computed with a progress bar are kept here."""

    def __init__(self, max_entries: int, max_bytes: int | None = None, sizeof=approx_nbytes):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._sizeof = sizeof
        self._entries: OrderedDict = OrderedDict()   # key -> (value, bytes)
        self._nbytes = 0
        self._lock = threading.Lock()
        self._pending: dict = {}                      # key -> [lock of its computation, sessions waiting on it]

    def get(self, key):
        """The value kept under `key`, or None."""
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key][0]

    def __setitem__(self, key, value) -> None:
        size = self._sizeof(value) if self.max_bytes is not None else 0
        with self._lock:
            if key in self._entries:
                self._nbytes -= self._entries.pop(key)[1]
            if self.max_bytes is not None and size > self.max_bytes:
                log.info("not keeping %s: ~%.1f MB is over the memo's %.1f MB", key[0] if isinstance(key, tuple)
                         else key, size / 2**20, self.max_bytes / 2**20)
                return
            self._entries[key] = (value, size)
            self._nbytes += size
            while len(self._entries) > self.max_entries or (
                    self.max_bytes is not None and self._nbytes > self.max_bytes):
                self._nbytes -= self._entries.popitem(last=False)[1][1]

    def get_or_compute(self, key, compute):
        """The value kept under `key`, else `compute()` kept under it (exceptions propagate, nothing is kept)."""
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            pending = self._pending.setdefault(key, [threading.Lock(), 0])
            pending[1] += 1
        try:
            with pending[0]:                          # another session computing the same key: wait for it
                found = self.get(key)
                if found is None:
                    found = compute()
                    self[key] = found
                return found
        finally:
            with self._lock:
                pending[1] -= 1
                if pending[1] == 0:
                    del self._pending[key]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Approximate bytes of the values kept (0 when the memo has no size bound)."""
        return self._nbytes


