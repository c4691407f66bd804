"""Model-card metrics as stored in checkpoints: per split, with a headline split for summaries."""

from nesf.card import headline_metrics, metrics_by_split


def test_metrics_by_split_keeps_nested_splits_and_wraps_flat_ones():
    nested = {"test": {"atom_count_error_percent": 5.0, "count": 301}, "test[:64]": {"atom_count_error_percent": 4.0}}
    assert metrics_by_split(nested) == nested
    assert metrics_by_split({"atom_count_error_percent": 5.0, "note": "x"}) == {
        "held out": {"atom_count_error_percent": 5.0}}
    assert metrics_by_split({}) == {} and metrics_by_split(None) == {}


def test_headline_prefers_test_then_val():
    assert headline_metrics({"val": {"a": 1}, "test": {"a": 2}}) == ("test", {"a": 2})
    assert headline_metrics({"test[:64]": {"a": 3}, "val": {"a": 1}}) == ("val", {"a": 1})
    assert headline_metrics({"test[:64]": {"a": 3}}) == ("test[:64]", {"a": 3})
    assert headline_metrics({}) is None
