"""Stored-metrics labels: every label `nesf card` writes parses into what it names and writes back the same."""

import pytest

from nesf.checkpoint.labels import MetricsLabel, figure_labels


@pytest.mark.parametrize("text, base, qualifier, encoder_only, kind", [
    ("test", "test", "", False, "split"),
    ("test[:64]", "test", ":64", False, "ci"),
    ("test[refined]", "test", "refined", False, "refined"),
    ("test[re-uploaded]", "test", "re-uploaded", False, "upload"),
    ("test[re-uploaded, encoder only]", "test", "re-uploaded", True, "upload"),
    ("perov_5 test[novel, re-uploaded]", "perov_5 test", "novel, re-uploaded", False, "upload"),
    ("novel[primitive standard cells, encoder only]", "novel", "primitive standard cells", True, "upload"),
    ("held-out hexagonal[orthohexagonal cells]", "held-out hexagonal", "orthohexagonal cells", False, "upload"),
])
def test_a_label_parses_into_what_it_names_and_writes_back_the_same(text, base, qualifier, encoder_only, kind):
    label = MetricsLabel.parse(text)
    assert (label.base, label.qualifier, label.encoder_only) == (base, qualifier, encoder_only)
    assert str(label) == text
    assert (label.is_split, label.is_ci_subset, label.is_refined, label.is_upload) == (
        kind == "split", kind == "ci", kind == "refined", kind == "upload")


def test_labels_are_built_by_name_and_read_for_tables():
    assert str(MetricsLabel.ci_subset("val", 64)) == "val[:64]"
    assert str(MetricsLabel.refined("test")) == "test[refined]"
    assert str(MetricsLabel.reuploaded("ICSG3D test", novel=True).protocol(encoder_only=True)) == \
        "ICSG3D test[novel, re-uploaded, encoder only]"
    cells = MetricsLabel.in_cells("novel", "Niggli-reduced primitive")
    assert str(cells) == "novel[Niggli-reduced primitive cells]" and cells.cell_kind == "Niggli-reduced primitive"
    assert MetricsLabel.parse("test[re-uploaded]").cell_kind is None
    assert MetricsLabel.parse("test[re-uploaded, encoder only]").row_name == "test, re-uploaded, encoder only"
    with pytest.raises(ValueError, match=r"not a stored-metrics label: 'test\[a\]\[b\]'"):
        MetricsLabel.parse("test[a][b]")


def test_stored_figures_by_label_leave_the_trust_calibrations_out():
    stored = {"test": {"count": 3}, "test[:64]": {"count": 2}, "trust": {"field_residual": {}}}
    assert list(figure_labels(stored)) == [MetricsLabel("test"), MetricsLabel("test", ":64")]
    assert figure_labels({"match_rate_percent": 80.0}) == {MetricsLabel("held out"): {"match_rate_percent": 80.0}}
    assert figure_labels(None) == {}
    assert list(figure_labels({"test": {"count": 3}, "odd[a][b]": {"count": 1}})) == [MetricsLabel("test")]
