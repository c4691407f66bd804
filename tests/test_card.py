"""Model-card metrics as stored in checkpoints: per split, with a headline split for summaries."""

from nesf.card import _init_from_line, headline_metrics, metrics_by_split


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


def test_init_from_line_names_the_widenings_that_kept_the_source_function():
    source = {"name": "lcs6a", "epochs": 208, "wall_time_s": 7200.0, "cpu_time_s": 3600.0, "sha256": "ab" * 32}
    line, = _init_from_line(source)
    assert line == ("- Started from the weights of `lcs6a` (208 epochs, 2.00 h, 1.00 CPU core-hours, its own sources "
                    "included; sha256 abababababab...), with a new optimizer and learning-rate schedule")
    line, = _init_from_line({**source, "widened_query_encoding": 10,
                             "widened_field_channels": {"position_field_channels": [256, 128, 128]}})
    assert line.endswith("learning-rate schedule; a sin/cos query encoding of 10 frequencies added, its new inputs "
                         "starting at zero weight; position field widened from hidden widths (256, 128, 128), the "
                         "new units starting with zero outgoing weights")
    assert _init_from_line(None) == []
