"""The server-wide memos of the app are bounded: least recently used entries go first, by count and by size, and
concurrent sessions asking for the same result compute it once."""

import threading
import time

import numpy as np
import pandas as pd

from app.backend import Collection, _Memo, approx_nbytes
from nesf.crystal import Crystal

MB = 2**20


def test_memo_keeps_at_most_its_size_and_drops_the_least_recently_used():
    memo = _Memo(max_entries=2)
    memo["a"], memo["b"] = 1, 2
    assert memo.get("a") == 1          # "a" is now the most recently used
    memo["c"] = 3                      # evicts "b"
    assert len(memo) == 2 and memo.get("b") is None and memo.get("a") == 1 and memo.get("c") == 3
    assert memo.get("missing") is None


def test_memo_keeps_at_most_its_bytes():
    memo = _Memo(max_entries=100, max_bytes=3 * MB)
    for i in range(10):
        memo[i] = np.zeros(MB // 8)    # 1 MB each
        assert memo.nbytes <= 3 * MB
    assert len(memo) == 2 and memo.get(9) is not None and memo.get(8) is not None and memo.get(0) is None
    memo[8] = np.zeros(10)             # replacing an entry gives its bytes back
    assert memo.nbytes < 1.1 * MB


def test_memo_returns_but_does_not_keep_a_value_larger_than_its_bound():
    memo = _Memo(max_entries=100, max_bytes=1 * MB)
    memo["small"] = np.zeros(10)
    big = np.zeros(2 * MB // 8)
    assert memo.get_or_compute("big", lambda: big) is big
    assert memo.get("big") is None and memo.get("small") is not None and memo.nbytes < MB


def test_memo_many_distinct_results_stay_bounded():
    """What a server sees over a day: thousands of distinct reconstructions and uploads."""
    memo = _Memo(max_entries=64, max_bytes=2 * MB)
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
    collection = Collection(name="c", key="k", table=table, crystals=[crystal], latents=array,
                            maps={"pca": np.zeros((1000, 2))})
    assert approx_nbytes(collection) >= array.nbytes + table.memory_usage(deep=True).sum() + 1000 * 2 * 8


def test_memo_computes_once_for_concurrent_sessions():
    memo = _Memo(max_entries=8, max_bytes=MB)
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
    memo = _Memo(max_entries=8, max_bytes=MB)

    def fail():
        raise ValueError("bad file")

    for _ in range(2):
        try:
            memo.get_or_compute("k", fail)
        except ValueError:
            pass
    assert memo.get("k") is None and len(memo) == 0 and not memo._pending
