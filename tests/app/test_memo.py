"""The server-wide memo of encoded datasets and maps is bounded: least recently used entries go first."""

from app.backend import _Memo


def test_memo_keeps_at_most_its_size_and_drops_the_least_recently_used():
    memo = _Memo(max_entries=2)
    memo["a"], memo["b"] = 1, 2
    assert memo.get("a") == 1          # "a" is now the most recently used
    memo["c"] = 3                      # evicts "b"
    assert len(memo) == 2 and memo.get("b") is None and memo.get("a") == 1 and memo.get("c") == 3
    assert memo.get("missing") is None
