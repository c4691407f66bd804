"""The server-wide memos of the app are bounded: least recently used entries go first, by count and by size, and
concurrent sessions asking for the same result compute it once."""

import threading
import time

import numpy as np
import pandas as pd

from app.memo import Memo, approx_nbytes
from nesf.core.crystal import Crystal
from nesf.inference.atlas import Atlas

MB = 2**20


def test_memo_keeps_at_most_its_size_and_drops_the_least_recently_used():
    memo = Memo(max_entries=2)
    memo["a"], memo["b"] = 1, 2
    assert memo.get("a") == 1          # "a" is now the most recently used
    memo["c"] = 3                      # evicts "b"
    assert len(memo) == 2 and memo.get("b") is None and memo.get("a") == 1 and memo.get("c") == 3
    assert memo.get("missing") is None


def test_memo_keeps_at_most_its_bytes():
    memo = Memo(max_entries=100, max_bytes=3 * MB)
    for i in range(10):
        memo[i] = np.zeros(MB // 8)    # 1 MB each
        assert memo.nbytes <= 3 * MB
    assert len(memo) == 2 and memo.get(9) is not None and memo.get(8) is not None and memo.get(0) is None
    memo[8] = np.zeros(10)             # replacing an entry gives its bytes back
    assert memo.nbytes < 1.1 * MB


def test_memo_returns_but_does_not_keep_a_value_larger_than_its_bound():
    memo = Memo(max_entries=100, max_bytes=1 * MB)
    memo["small"] = np.zeros(10)
    big = np.zeros(2 * MB // 8)
    assert memo.get_or_compute("big", lambda: big) is big
    assert memo.get("big") is None and memo.get("small") is not None and memo.nbytes < MB


def test_memo_many_distinct_results_stay_bounded():
    """What a server sees over a day: thousands of distinct reconstructions and uploads."""
    memo = Memo(max_entries=64, max_bytes=2 * MB)
    rng = np.random.default_rng(0)
    for i in range(2000):
        crystals = [Crystal(np.eye(3) * 5, rng.random((20, 3)) * 5, np.full(20, 11)) for _ in range(5)]
        memo.get_or_compute(("reconstruct", i), lambda: crystals)
    assert len(memo) <= 64 and memo.nbytes <= 2 * MB
    assert not memo._pending           # no lock left behind per key


def test_approx_nbytes_counts_arrays_tables_crystals_and_collections():
    array = np.zeros((1000, 192), np.float32)
    assert approx_nbytes(array) >= array.nbytes
    crystal = Crystal(np.eye(3) * 5, np.zeros((100, 3)), np.full(100, 11))
    assert approx_nbytes(crystal) >= 100 * 3 * 8 + 100 * 8
    crystals = [crystal] * 50                       # one object, counted once
    assert approx_nbytes(crystals) < 2 * approx_nbytes(crystal) + 1000
    table = pd.DataFrame({"id": [f"mp-{i}" for i in range(1000)], "x": np.arange(1000.0)})
    atlas = Atlas(dataset="c", checkpoint_sha256="", table=table, crystals=[crystal], latents=array,
                       pca=np.zeros((1000, 2)))
    assert approx_nbytes(atlas) >= array.nbytes + table.memory_usage(deep=True).sum() + 1000 * 2 * 8


def test_memo_computes_once_for_concurrent_sessions():
    memo = Memo(max_entries=8, max_bytes=MB)
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.2)
        return np.arange(3)

    results = [None] * 8

    def session(i):
        results[i] = memo.get_or_compute("k", compute)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and all(r is results[0] for r in results)
    assert not memo._pending


def test_memo_keeps_nothing_when_the_computation_fails():
    memo = Memo(max_entries=8, max_bytes=MB)

    def fail():
        raise ValueError("bad file")

    for _ in range(2):
        try:
            memo.get_or_compute("k", fail)
        except ValueError:
            pass
    assert memo.get("k") is None and len(memo) == 0 and not memo._pending


class _CountingNet:
    """Stands in for the Autoencoder: each computation sleeps and records how many run at once."""

    def __init__(self):
        self.lock, self.running, self.most = threading.Lock(), 0, 0

    def check(self, crystal):
        pass

    def decode_preset(self, mode):
        return mode

    def _run(self, value):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.1)
        with self.lock:
            self.running -= 1
        return value

    def reconstruct(self, crystals, config=None):
        return self._run(list(crystals))

    def interpolate(self, start, end, steps, method="linear", config=None):
        return self._run((np.zeros((steps, 2)), [start, end]))

    def encode(self, crystals):
        return self._run(np.zeros((len(crystals), 2)))


def test_model_computations_of_many_sessions_run_at_most_the_setting_at_once(monkeypatch):
    from app import backend, settings

    net = _CountingNet()
    monkeypatch.setattr(backend, "model", lambda checkpoint, device="auto": net)
    monkeypatch.setattr(backend, "checkpoint_hash", lambda checkpoint: "h")
    monkeypatch.setattr(backend, "_results", lambda memo=Memo(max_entries=64, max_bytes=MB): memo)
    crystals = [Crystal(np.eye(3) * (3.0 + 0.01 * i), np.zeros((1, 3)), np.array([11])) for i in range(12)]
    calls = [lambda c=c: backend.reconstruct(None, [c]) for c in crystals[:4]]
    calls += [lambda c=c: backend.encode(None, [c]) for c in crystals[4:8]]
    calls += [lambda c=c: backend.interpolate(None, c, crystals[0], 3, "linear") for c in crystals[8:]]
    errors = []

    def session(call):
        try:
            call()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=session, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert net.most == settings.MAX_CONCURRENT_COMPUTATIONS == 2
    # a memo hit takes no slot: with every slot held, a result computed before still comes back at once
    for _ in range(2):
        assert backend.COMPUTE_GATE.slots.acquire(timeout=5)
    try:
        assert backend.reconstruct(None, [crystals[0]])[0] is crystals[0]
    finally:
        for _ in range(2):
            backend.COMPUTE_GATE.slots.release()


def test_a_crystal_reconstructed_before_is_not_decoded_again_in_another_selection(monkeypatch):
    """The map's selection panel reconstructs its grid of nine and then the crystal opened: the opened one, and any
    crystal of an earlier selection, comes from the memo; only the others are decoded, together."""
    from app import backend

    class Net(_CountingNet):
        def __init__(self):
            super().__init__()
            self.decoded = []

        def reconstruct(self, crystals, config=None):
            self.decoded.append(len(crystals))
            return [Crystal(c.lattice, c.cart_coords, c.species, id=f"recon-{c.id}") for c in crystals]

    net = Net()
    monkeypatch.setattr(backend, "model", lambda checkpoint, device="auto": net)
    monkeypatch.setattr(backend, "checkpoint_hash", lambda checkpoint: "h")
    monkeypatch.setattr(backend, "_results", lambda memo=Memo(max_entries=64, max_bytes=MB): memo)
    crystals = [Crystal(np.eye(3) * (3.0 + 0.01 * i), np.zeros((1, 3)), np.array([11]), id=f"c{i}") for i in range(6)]
    first = backend.reconstruct(None, crystals[:4])
    assert [r.id for r in first] == ["recon-c0", "recon-c1", "recon-c2", "recon-c3"]
    assert backend.reconstruct(None, [crystals[0]])[0] is first[0]           # the opened one: no decode
    again = backend.reconstruct(None, crystals[2:6])                         # two seen, two new
    assert [r.id for r in again] == ["recon-c2", "recon-c3", "recon-c4", "recon-c5"]
    assert again[0] is first[2] and net.decoded == [4, 2]
    twin = Crystal(crystals[0].lattice, crystals[0].cart_coords, crystals[0].species, id="same-content-other-id")
    assert backend.reconstruct(None, [twin])[0].id == "recon-same-content-other-id"   # kept by id too


def test_compute_slot_is_reentrant_and_released_by_a_failure():
    from app import backend

    with backend.COMPUTE_GATE.slot(), backend.COMPUTE_GATE.slot():  # nested in one thread: no second slot, no deadlock
        pass
    for _ in range(3):  # more failures than slots: each gives its slot back
        try:
            with backend.COMPUTE_GATE.slot():
                raise ValueError("bad crystal")
        except ValueError:
            pass
    acquired = [backend.COMPUTE_GATE.slots.acquire(blocking=False) for _ in range(2)]
    assert acquired == [True, True]
    for _ in acquired:
        backend.COMPUTE_GATE.slots.release()
