"""Model-card metrics as stored in checkpoints: per split, with a headline split for summaries."""

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from nesf.checkpoint import SourceRecord
from nesf.cli import main
from nesf.inference.card import _init_from_line, headline_metrics, metrics_by_split

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"


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
    source = SourceRecord(name="lcs6a", epochs=208, wall_time_s=7200.0, cpu_time_s=3600.0, sha256="ab" * 32)
    line, = _init_from_line(source)
    assert line == ("- Started from the weights of `lcs6a` (208 epochs, 2.00 h, 1.00 CPU core-hours, its own sources "
                    "included; sha256 abababababab...), with a new optimizer and learning-rate schedule")
    line, = _init_from_line(replace(source, widened_query_encoding=10,
                                    widened_field_channels={"position_field_channels": [256, 128, 128]}))
    assert line.endswith("learning-rate schedule; a sin/cos query encoding of 10 frequencies added, its new inputs "
                         "starting at zero weight; position field widened from hidden widths (256, 128, 128), the "
                         "new units starting with zero outgoing weights")
    assert _init_from_line(None) == []


def test_upload_labels_are_told_apart_from_splits_and_ci_subsets():
    from nesf.inference.card import is_upload_label

    assert is_upload_label("test[re-uploaded]") and is_upload_label("held-out hexagonal[orthohexagonal cells]")
    assert not is_upload_label("test") and not is_upload_label("test[:64]")
    stored = {"test": {"a": 1}, "test[re-uploaded]": {"a": 2}, "trust": {"field_residual": {}}}
    assert metrics_by_split(stored) == {"test": {"a": 1}, "test[re-uploaded]": {"a": 2}}  # trust is no split


def test_upload_section_puts_each_upload_form_beside_its_split_and_lists_the_calibration():
    from nesf.inference.card import _upload_section
    from nesf.inference.trust import calibrate

    splits = {"test": {"match_rate_percent": 78.7, "atom_count_error_percent": 4.65, "count": 301}}
    uploads = {"test[re-uploaded]": {"match_rate_percent": 77.1, "atom_count_error_percent": 5.3, "count": 301,
                                     "refused_percent": 0.0, "seed": 0},
               "test[primitive standard cells]": {"match_rate_percent": 61.0, "count": 46}}
    trust = {"field_residual": calibrate("field_residual", [0.1, 0.2, 0.3, 0.4], [True, True, False, False],
                                         "test, re-uploaded (seed 0), 4 crystals", bins=2).to_dict()}
    lines = _upload_section(splits, uploads, trust)
    header = next(line for line in lines if line.startswith("| uploads |"))
    assert header.startswith("| uploads | crystals | match [%] | atom count error [%] |")
    # one row per set of uploads, the split's dataset form first, numbers at the precision they are measured to
    assert "| test, as stored (encoder only) | 301 | 78.7 | 4.7 | — | — | — | — |" in lines
    assert "| test, re-uploaded | 301 | 77.1 | 5.3 | — | — | 0.0 | — |" in lines
    assert "| test, primitive standard cells | 46 | 61.0 | — | — | — | — | — |" in lines
    assert "| <= 0.25 | 100 % | 2 |" in lines and "| 0.25 to 0.4 | 0 % | 2 |" in lines
    assert "| > 0.4 | beyond calibration: no figure | 0 |" in lines
    assert _upload_section(splits, {}, {}) == []


@pytest.mark.parametrize("name", sorted(p.stem for p in SHIPPED_DIR.glob("*.pt") if not p.name.endswith(".atlas.pt")))
def test_shipped_model_cards_re_render_byte_for_byte_from_their_stored_metrics(name, tmp_path, monkeypatch, capsys):
    """`nesf card --stored` on a copy of a shipped checkpoint writes its shipped card again (with the card's own
    notes): the checkpoint's metadata and metrics read back as they were written."""
    shipped_card = (SHIPPED_DIR / f"{name}.md").read_text()
    body, _, notes = shipped_card.partition("\n## Notes\n\n")
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(SHIPPED_DIR / f"{name}.pt", tmp_path / "checkpoints" / f"{name}.pt")
    (tmp_path / "notes.md").write_text(notes.removesuffix("\n"))
    monkeypatch.chdir(tmp_path)
    args = ["card", f"checkpoints/{name}.pt", "--stored", "--device", "cpu"]
    assert main(args + (["--notes", "notes.md"] if notes else [])) == 0
    assert (tmp_path / "checkpoints" / f"{name}.md").read_text() == shipped_card
    assert f"from the metrics stored in checkpoints/{name}.pt" in capsys.readouterr().out
