"""Page tests with streamlit.testing.v1.AppTest: each page's main path and each bad-input message.

They run against the shipped checkpoint (checkpoints/*.pt with its atlas) and skip, saying so, when there is none.
"""

import io
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from app_helpers import NACL_CIF, REPO_ROOT
from streamlit.testing.v1 import AppTest

MAIN = str(REPO_ROOT / "app" / "main.py")


@pytest.fixture
def at(app_env):
    app = AppTest.from_file(MAIN, default_timeout=180)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _texts(app, kind):
    return [e.value for e in getattr(app, kind)]


def _no_traceback(app):
    assert not app.exception, [e.value for e in app.exception]
    for message in _texts(app, "error"):
        assert "Traceback" not in message


def _open(app, page):
    app.switch_page(f"views/page_{page}.py").run()
    _no_traceback(app)
    return app


def _upload(app, name, data, mime="chemical/x-cif", index=0):
    uploader = [u for u in app.file_uploader if u.label == "Structure files"][index]
    uploader.set_value((name, data, mime)).run()
    _no_traceback(app)
    return app


def test_opens_on_the_shipped_checkpoint_and_its_map(at):
    assert _texts(at, "title")[0].endswith("Latent map")
    checkpoint = at.sidebar.selectbox(key="checkpoint")
    assert checkpoint.value.endswith(".pt")
    assert "shipped" in checkpoint.format_func(checkpoint.value)
    assert any("Device: **CPU**" in c or "Device: **CUDA" in c for c in _texts(at.sidebar, "caption"))
    assert any("crystals of" in c for c in _texts(at, "caption"))
    assert not _texts(at, "error")


def test_latent_map_search_and_recolor(at):
    at.selectbox(key="map_color").set_value("space group").run()
    at.text_input(key="map_search").input("a").run()
    _no_traceback(at)
    assert any("match" in c for c in _texts(at, "caption"))


def test_latent_map_selection_opens_structure_and_neighbors(at):
    at.session_state["nesf.map_selection"] = [0, 1, 2]  # app.state.MAP_SELECTION
    at.run()
    _no_traceback(at)
    assert any("3 selected" in s for s in _texts(at, "subheader"))
    assert any("Nearest neighbors" in m for m in _texts(at, "markdown"))
    # the selected crystal's reconstruction can be downloaded as the Reconstruct page's can
    labels = {b.label for b in at.get("download_button")}
    assert {"Download CIF", "Download POSCAR"} <= labels


def test_reconstruct_upload_main_path(at):
    _open(at, "reconstruct")
    _upload(at, "NaCl.cif", NACL_CIF.encode())
    assert any("NaCl" in s for s in _texts(at, "subheader"))
    labels = [m.label for m in at.metric]
    assert "Position error" in labels and "StructureMatcher" in labels
    assert len(at.dataframe) >= 1  # lattice / space group table
    if not any("found no atoms" in w for w in _texts(at, "warning")):
        assert {"Download CIF", "Download POSCAR"} <= {b.label for b in at.get("download_button")}


def test_reconstruction_is_shown_in_the_canonical_frame_and_scored_as_decoded(at, monkeypatch):
    """A decoded NaCl with a periodic duplicate (Na at x = 0 and x = a) and a Cl past the bottom face: the metric
    tile counts the 3 atoms as decoded, the lattice table (what the viewer and the downloads get) the 2 atoms of the
    canonical frame, until "as decoded" is switched on."""
    import sys

    import numpy as np

    from nesf.core.crystal import Crystal

    a = 5.64
    decoded = Crystal(np.eye(3) * a, [[0, 0, 0], [a, 0, 0], [a / 2, a / 2, -0.1]], [11, 11, 17], "NaCl.cif")
    backend = sys.modules["app.backend"]
    from nesf.inference import uploads

    monkeypatch.setattr(backend, "reconstruct_uploads", lambda checkpoint, prepared, *args: uploads.reconstruct(
        backend.model(checkpoint), prepared, decoded=[decoded for _ in prepared]))
    _open(at, "reconstruct")
    _upload(at, "NaCl.cif", NACL_CIF.encode())
    tile = [m for m in at.metric if m.label.startswith("Atoms")][0]
    assert tile.value == "8 → 3"

    def shown_atoms():
        table = [d.value for d in at.dataframe if "space group" in d.value.index][0]
        return int(table.loc["atoms", "reconstruction"])

    assert shown_atoms() == 2
    at.toggle(key="recon_as_decoded").set_value(True).run()
    _no_traceback(at)
    assert shown_atoms() == 3 and [m for m in at.metric if m.label.startswith("Atoms")][0].value == "8 → 3"


def test_reconstruct_batch_gets_table1_summary(at):
    _open(at, "reconstruct")
    poscar = ("NaCl\n1.0\n5.64 0 0\n0 5.64 0\n0 0 5.64\nNa Cl\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n")
    uploader = [u for u in at.file_uploader if u.label == "Structure files"][0]
    uploader.set_value([("NaCl.cif", NACL_CIF.encode(), "chemical/x-cif"),
                        ("POSCAR", poscar.encode(), "text/plain")]).run()
    _no_traceback(at)
    assert any("Batch of 2" in s for s in _texts(at, "subheader"))
    assert "Table 1 metrics (CSV)" in {b.label for b in at.get("download_button")}


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("empty.cif", b"", "empty"),
        ("junk.cif", b"data_x\nthis is not a crystal\n", "junk.cif"),
        ("binary.cif", bytes(range(256)) * 8, "binary.cif"),
        ("huge.cif", b"#" * (6 * 1024 * 1024), "limit"),
        ("Og.cif", NACL_CIF.replace(" Cl ", " Og ").encode(), "Og"),
        ("disordered.json", None, "disordered"),
        ("big-cell.cif", NACL_CIF.replace("5.64", "80.0").encode(),
         "a = 80.00 A; this model was trained on cells with a <= 6.00 A"),
        ("nan-cell.cif", NACL_CIF.replace("5.64", "nan").encode(), "_cell_length_a is nan, not a finite number"),
    ],
)
def test_reconstruct_bad_uploads_say_what_is_wrong(at, name, data, expected):
    if data is None:
        from pymatgen.core import Lattice, Structure

        data = json.dumps(Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}], [[0, 0, 0]]).as_dict()).encode()
    _open(at, "reconstruct")
    _upload(at, name, data)
    errors = _texts(at, "error")
    assert errors, f"no message for {name}"
    assert any(expected.lower() in e.lower() for e in errors), errors
    # the rest of the page still works: a good file next to the bad one is reconstructed
    _open(at, "model")
    assert _texts(at, "title")[0].endswith("Model")


def test_reconstruct_from_dataset_search(at):
    _open(at, "reconstruct")
    first = None
    at.text_input(key="recon_dataset_query").input("mp-").run()
    _no_traceback(at)
    first = at.multiselect(key="recon_dataset_pick").value
    assert first
    assert "Position error" in [m.label for m in at.metric]


def test_interpolate_main_path(at):
    _open(at, "interpolate")
    at.text_input(key="interp_src_query").input("mp-").run()
    at.text_input(key="interp_dst_query").input("O").run()
    at.slider(key="interp_steps").set_value(4).run()
    _no_traceback(at)
    table = [d for d in at.dataframe if "nearest in dataset" in d.value.columns]
    assert table and len(table[0].value) == 4
    assert {"formula", "atoms", "space group", "volume (Å³)"} <= set(table[0].value.columns)
    at.slider(key="interp_step").set_value(2).run()
    _no_traceback(at)
    assert any(m.startswith("Step **2**") for m in _texts(at, "markdown"))
    labels = {b.label for b in at.get("download_button")}
    assert {"Path as CIFs (zip)", "Path as extxyz trajectory"} <= labels


def test_interpolate_opens_on_the_papers_zincblende_pair(at):
    """Fig. 5 interpolates zincblende ZnS to zincblende CdS; LCS6A also holds rock-salt CdS (found first by formula)."""
    _open(at, "interpolate")
    _no_traceback(at)
    assert at.text_input(key="interp_src_query").value == "mp-10695"
    assert at.text_input(key="interp_dst_query").value == "mp-2469"
    assert "F-43m" in at.selectbox(key="interp_dst_pick").format_func(at.selectbox(key="interp_dst_pick").value)


def test_interpolate_bad_upload_is_reported(at):
    _open(at, "interpolate")
    at.segmented_control(key="interp_src_from").set_value("Upload").run()
    uploader = [u for u in at.file_uploader if u.label.startswith("Source")][0]
    uploader.set_value(("bad.cif", b"not a cif at all", "chemical/x-cif")).run()
    _no_traceback(at)
    assert any("bad.cif" in e for e in _texts(at, "error"))


def test_model_page_shows_checkpoint(at):
    _open(at, "model")
    assert any("Training runs" in s for s in _texts(at, "subheader"))
    from nesf.checkpoint import Checkpoint
    from nesf.inference.card import headline_metrics

    recorded = headline_metrics(Checkpoint.load(at.sidebar.selectbox(key="checkpoint").value).metrics)
    if recorded is not None:  # the shipped checkpoint's card metrics: sidebar headline and the Model page table
        split = recorded[0]
        assert any(f"{split}: " in c for c in _texts(at.sidebar, "caption"))
        table = at.dataframe[0].value
        assert list(table.columns)[-1] in {"paper, test (Table 1)", "paper, val (Table S2)"}
        assert any(column.startswith(split) for column in table.columns)
        if "probe_presence_error" in recorded[1]:  # the composition probe, beside the metrics
            probe = [frame.value for frame in at.dataframe if "reading" in frame.value.columns][0]
            assert "Element presence error (linear probe)" in list(probe["reading"])
    source = Checkpoint.load(at.sidebar.selectbox(key="checkpoint").value).init_from
    if source:
        assert any(m.startswith(f"**Fine-tuned from** `{source.name}` · {source.epochs} epochs")
                   for m in _texts(at, "markdown"))


def test_missing_dataset_and_data_dir_are_messages(at, tmp_path):
    at.sidebar.text_input(key="data_dir").input(str(tmp_path / "nowhere")).run()
    _no_traceback(at)
    assert any("No folder" in c for c in _texts(at.sidebar, "caption"))
    # the atlas still drives the map
    assert any("crystals of" in c for c in _texts(at, "caption"))


def test_training_start_refusal_and_cancel(at, app_env):
    assert not [t for t in at.sidebar.text_input if t.key == "train_name"]  # closed: its form is not drawn
    at.session_state["retrain_open"] = True  # app.ui.training_panel.PANEL_OPEN: the user opens it
    at.run()
    sidebar = at.sidebar
    sidebar.text_input(key="train_name").input("bad name!")
    sidebar.multiselect(key="train_datasets").set_value([])
    [b for b in at.get("form_submit_button") if "Start" in b.label][0].click().run()
    _no_traceback(at)
    assert any("at least one dataset" in e or "checkpoint name" in e for e in _texts(at.sidebar, "error"))

    sidebar = at.sidebar  # the tree of the last run
    options = sidebar.multiselect(key="train_datasets").options
    if not options:
        pytest.skip("no dataset in the data directory to train on")
    sidebar.multiselect(key="train_datasets").set_value([options[0]])
    sidebar.text_input(key="train_name").input(f"apptest-{int(time.time())}")
    sidebar.number_input(key="train_epochs").set_value(200)
    [b for b in at.get("form_submit_button") if "Start" in b.label][0].click().run()
    _no_traceback(at)
    time.sleep(1.0)
    at.run()
    runs = list((Path(app_env["NESF_USER_DIR"]) / ".runs").glob("*/log.txt"))
    assert any(m.startswith("**Training apptest-") for m in _texts(at.sidebar, "markdown")), (
        _texts(at.sidebar, "markdown"), _texts(at.sidebar, "error"), [r.read_text()[-500:] for r in runs])
    assert any("One training run at a time" in i for i in _texts(at.sidebar, "info"))
    at.sidebar.button(key="cancel_training").click().run()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        if any("was cancelled" in w for w in _texts(at.sidebar, "warning")):
            break
    assert any("was cancelled" in w for w in _texts(at.sidebar, "warning")), _texts(at.sidebar, "warning")


def test_probe_table_puts_each_split_with_a_probe_in_a_column():
    from app.views.model import probe_table

    metrics = {"test": {"count": 301, "probe_presence_error": 0.01, "probe_presence_baseline": 0.07},
               "test[:64]": {"count": 64, "atom_count_error_percent": 3.0}}
    table = probe_table(metrics)
    assert list(table.columns) == ["reading", "test (301)"]
    row = table[table["reading"] == "Element presence error (linear probe)"]
    assert float(row["test (301)"].iloc[0]) == 0.01
    assert probe_table({"test": {"count": 3, "atom_count_error_percent": 1.0}}) is None


def test_second_shipped_model_is_chosen_in_the_sidebar_with_its_own_atlas_and_card(at):
    """The YBCO-like fold-0 model (when shipped beside LCS6A): every page works on it, the map is its own atlas
    (100 crystals of YBCO13_fold0), the Model page shows its card."""
    checkpoint = at.sidebar.selectbox(key="checkpoint")
    assert Path(checkpoint.value).name == "lcs6a.pt"  # the app opens on the LCS6A model, whatever else is shipped
    ybco = Path(checkpoint.value).with_name("ybco13_fold0.pt")
    if not ybco.is_file():
        pytest.skip("checkpoints/ybco13_fold0.pt is not shipped here")
    lcs6a_atlas = at.sidebar.selectbox(key="dataset_choice").value
    checkpoint.set_value(str(ybco)).run()
    _no_traceback(at)
    assert any("100 crystals of" in c for c in _texts(at, "caption")), _texts(at, "caption")
    # the active dataset is the new model's atlas, under an option of its own (a browser keeps the label of an
    # option whose value stays the same: one value for every atlas showed the previous model's dataset)
    dataset = at.sidebar.selectbox(key="dataset_choice")
    assert dataset.value != lcs6a_atlas and dataset.format_func(dataset.value).startswith("YBCO13_fold0 (atlas")
    _open(at, "interpolate")  # opens on two of its own crystals (ZnS and CdS are not in YBCO13)
    warnings = [w for w in _texts(at, "warning") if not w.startswith("**Trust:")]  # a low trust reading may warn
    assert not warnings, warnings
    assert len(_trust_boxes(at)) == 2
    assert any("Step **0**" in m for m in _texts(at, "markdown"))
    _open(at, "reconstruct")
    _open(at, "model")
    assert any(e.label == "Model card" for e in at.expander)
    assert any("YBCO13_fold0" in m for m in _texts(at, "markdown"))


def test_a_checkpoint_opens_on_its_own_atlas_not_the_previous_models_dataset(at):
    """Switching models resets the active dataset to the new model's atlas (a data-directory dataset chosen under
    LCS6A would be re-encoded by the YBCO model, whose elements it lacks), and returning to LCS6A opens its atlas
    again instead of re-encoding and re-mapping a dataset for minutes."""
    checkpoint = at.sidebar.selectbox(key="checkpoint")
    ybco = Path(checkpoint.value).with_name("ybco13_fold0.pt")
    lcs6a = checkpoint.value
    if not ybco.is_file():
        pytest.skip("checkpoints/ybco13_fold0.pt is not shipped here")
    dataset = at.sidebar.selectbox(key="dataset_choice")
    if "YBCO-like (fold 0)" not in dataset.options:  # (the options as shown)
        pytest.skip("the data directory lacks YBCO13_fold0")
    dataset.set_value("YBCO13_fold0").run()  # 103 crystals, encoded by LCS6A
    _no_traceback(at)
    checkpoint = at.sidebar.selectbox(key="checkpoint")
    checkpoint.set_value(str(ybco)).run()
    _no_traceback(at)
    dataset = at.sidebar.selectbox(key="dataset_choice")
    assert dataset.format_func(dataset.value).startswith("YBCO13_fold0 (atlas")
    at.sidebar.selectbox(key="checkpoint").set_value(lcs6a).run()
    _no_traceback(at)
    dataset = at.sidebar.selectbox(key="dataset_choice")
    assert dataset.format_func(dataset.value).startswith("lim_l6")  # lim_l6+hex_prototypes: what it trained on
    assert dataset.format_func(dataset.value).endswith(" (atlas of the checkpoint)")


def test_a_dataset_keeps_the_crystals_a_model_can_encode_and_says_how_many_it_left_out():
    from app.backend import known_element_rows
    from nesf.core.errors import NesfError
    from tests.helpers import bcc_iron, cscl

    rows, note = known_element_rows([cscl(), bcc_iron(), cscl()], [17, 55], "toy")
    assert rows == [0, 2] and note == "1 of 3 crystals left out: elements this model does not know"
    assert known_element_rows([cscl()], [17, 55], "toy") == ([0], "")
    with pytest.raises(NesfError, match="none of the 1 crystals of toy is made only of the 2 elements"):
        known_element_rows([bcc_iron()], [17, 55], "toy")


def test_metrics_table_puts_each_split_beside_the_papers_figures_for_that_split():
    from app.views.model import metrics_table

    values = {"position_error_actual_angstrom": 0.13, "atom_count_error_percent": 5.0}
    table = metrics_table({"val": {**values, "count": 286}, "test": {**values, "count": 301},
                           "test[:64]": {**values, "count": 64}}, "lim_l6")
    assert list(table.columns) == ["metric", "val (286)", "test (301)", "paper, val (Table S2)",
                                   "paper, test (Table 1)"]  # the card's CI subset is left to the card
    actual = table[table["metric"].str.startswith("Position error (actual)")].iloc[0]
    assert (actual["paper, val (Table S2)"], actual["paper, test (Table 1)"]) == (0.1503, 0.1161)
    # a figure neither measured nor published reads as absent, not "None"
    lattice = table[table["metric"].str.startswith("Lattice")].iloc[0]
    assert lattice["val (286)"] == "–" and "None" not in table.astype(str).to_numpy().ravel().tolist()
    assert list(metrics_table({"test": {**values, "count": 9}}, "perov_5").columns) == ["metric", "test (9)"]


def _trust_boxes(app) -> list[str]:
    return [m for kind in ("success", "info", "warning") for m in _texts(app, kind) if m.startswith("**Trust:")]


def test_reconstruct_shows_the_trust_signal_of_an_upload(at):
    _open(at, "reconstruct")
    _upload(at, "NaCl.cif", NACL_CIF.encode())
    boxes = _trust_boxes(at)
    assert len(boxes) == 1
    assert "field residual" in boxes[0] and "latent distance to the nearest training crystal" in boxes[0]


def test_uploaded_interpolation_endpoint_shows_its_trust_signal(at):
    _open(at, "interpolate")
    at.segmented_control(key="interp_src_from").set_value("Upload").run()
    uploader = [u for u in at.file_uploader if u.label.startswith("Source")][0]
    uploader.set_value(("NaCl.cif", NACL_CIF.encode(), "chemical/x-cif")).run()
    at.text_input(key="interp_dst_query").input("mp-").run()
    _no_traceback(at)
    assert "Source: NaCl.cif" in _texts(at, "caption")
    assert any(c.startswith("Destination: mp-") for c in _texts(at, "caption"))
    boxes = _trust_boxes(at)  # both endpoints, each with what refinement did to its latent
    assert len(boxes) == 2 and all("latent refined in" in b or "did not lower" in b for b in boxes)


def test_reconstruct_offers_examples_in_one_click_each_one_accepted(at):
    """Every example the page offers is one the active model accepts (it offers none it would refuse); each comes
    back with a trust box and the refinement's before/after residual."""
    from app.ui.inputs import EXAMPLES

    _open(at, "reconstruct")
    offered = at.pills(key="recon_examples").options
    assert "GaAs (zincblende)" in offered and set(offered) <= set(EXAMPLES)
    # hcp Mg is offered exactly where the model offers orthohexagonal cells (in that cell, named so)
    from nesf.api import Autoencoder
    from nesf.inference.autoencoder import MIN_OFFER_MATCH_PERCENT

    quality = Autoencoder.from_checkpoint(REPO_ROOT / "checkpoints" / "lcs6a.pt", "cpu").cell_offer_quality(
        "orthohexagonal")
    assert ("Mg (hcp)" in offered) == (quality is not None and quality["match_rate_percent"] >= MIN_OFFER_MATCH_PERCENT)
    for name in offered:
        at.pills(key="recon_examples").set_value([name]).run()
        _no_traceback(at)
        assert not _texts(at, "error") and not [w for w in _texts(at, "warning") if "outside" in w], name
        boxes = _trust_boxes(at)
        assert len(boxes) == 1, name
        assert "field residual" in boxes[0] and ("latent refined in" in boxes[0] or "did not lower" in boxes[0])


def test_hcp_magnesium_uploaded_as_a_file_is_refused_with_the_reason(at):
    """hcp Mg: its 120-degree cell is out of the model's range; its orthohexagonal cell is offered with its measured
    quality, or the refusal says why it is not (the card measures the held-out hexagonal set)."""
    from pymatgen.core import Lattice, Structure

    cif = Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(3.21, 5.21), ["Mg"], [[1 / 3, 2 / 3, .25]]).to(
        fmt="cif")
    _open(at, "reconstruct")
    _upload(at, "Mg.cif", cif.encode())
    messages = _texts(at, "error") + _texts(at, "warning")
    assert any("gamma = 120.0 deg" in m for m in messages), messages
    offers = [t.label for t in at.toggle if t.label.startswith("Use it instead: its orthohexagonal cell")]
    declined = [m for m in _texts(at, "error") if "its orthohexagonal cell fits, but this model reconstructed" in m]
    assert len(offers) + len(declined) == 1, (offers, messages)


def test_encoder_only_switch_gives_the_encoders_latent(at):
    """The sidebar's "Refine latents" off: the paper's protocol, said in the trust box."""
    _open(at, "reconstruct")
    at.sidebar.toggle(key="refine_latents").set_value(False).run()
    at.pills(key="recon_examples").set_value(["NaCl (rock salt)"]).run()
    _no_traceback(at)
    boxes = _trust_boxes(at)
    assert len(boxes) == 1 and "not refined (the paper's protocol)" in boxes[0]


def test_upload_figures_get_their_own_table_beside_the_dataset_form():
    from app.views.model import metrics_table, upload_table

    values = {"match_rate_percent": 78.7, "atom_count_error_percent": 4.65}
    metrics = {"test": {**values, "count": 301}, "test[:64]": {**values, "count": 64},
               "test[re-uploaded]": {"match_rate_percent": 79.4, "count": 301},
               "test[re-uploaded, encoder only]": {"match_rate_percent": 70.1, "count": 301},
               "held-out hexagonal[orthohexagonal cells]": {"match_rate_percent": 22.2, "count": 18},
               "trust": {"field_residual": {}}}
    # the card's CI subset ("test[:64]") is left to the card: the table fits 1280 px
    assert list(metrics_table(metrics, "lim_l6").columns) == ["metric", "test (301)", "paper, test (Table 1)"]
    table, encoder_only = upload_table(metrics)
    assert table["uploads"].tolist() == ["test, as stored (encoder only)", "test, re-uploaded",
                                         "held-out hexagonal, orthohexagonal cells"]
    assert table["crystals"].tolist() == [301, 301, 18]
    assert table["match %"].tolist() == [78.7, 79.4, 22.2]
    # the encoder-only figures in a table of their own, named without the suffix their table says
    assert encoder_only["uploads"].tolist() == ["test, re-uploaded"] and encoder_only["match %"].tolist() == [70.1]
    assert upload_table({k: v for k, v in metrics.items() if "encoder" not in k})[1] is None
    # a split's refined figures sit beside its encoder-only ones in the metrics table, named so
    refined = {**metrics, "test[refined]": {**values, "count": 301}}
    assert list(metrics_table(refined, "lim_l6").columns) == ["metric", "test (301)", "test, refined (301)",
                                                              "paper, test (Table 1)"]
    assert upload_table({"test": values}) is None


def test_figures_columns_holding_an_absent_mark_stay_right_aligned():
    """A figure column with "–" beside numbers is text to the table (it aligned left: "refused %", "refine s"):
    every figure column is right-aligned, the names pinned, the full names as tooltips."""
    from app.ui.tables import ABSENT
    from app.views.model import upload_column_config, upload_table

    metrics = {"test[re-uploaded]": {"match_rate_percent": 79.4, "refused_percent": 0.0, "count": 301},
               "held-out hexagonal[orthohexagonal cells]": {"match_rate_percent": 22.2, "count": 18}}
    table = upload_table(metrics)[0]
    assert ABSENT in table["refused %"].tolist()
    config = upload_column_config(table)
    assert config["uploads"]["pinned"] is True
    assert {column: config[column]["alignment"] for column in table.columns if column != "uploads"} == {
        column: "right" for column in table.columns if column != "uploads"}
    assert config["refused %"]["help"] == "Uploads refused (outside the model's range) [%]"


def _generate(app):
    app.selectbox(key="gen_density").set_value("gaussian")
    app.number_input(key="gen_count").set_value(6)
    app.button(key="gen_go").click().run()
    _no_traceback(app)
    return app


def test_generate_whole_space_shows_samples_on_the_map_and_exports(at):
    _open(at, "generate")
    assert any("press Generate" in i for i in _texts(at, "info"))
    _generate(at)
    assert any(s.startswith("6 samples across the whole latent space") for s in _texts(at, "subheader"))
    labels = [m.label for m in at.metric]
    assert {"Valid", "Unique", "Novel", "Density"} <= set(labels)
    table = at.dataframe[0].value
    assert list(table["id"]) == [f"gen-0-{i}" for i in range(6)]
    assert {"valid", "novel", "nearest_dataset_crystal"} <= set(table.columns)
    assert any("Samples placed on the" in c for c in _texts(at, "caption"))
    # the same seed again gives the same samples; another seed others
    at.button(key="gen_go").click().run()
    assert list(at.dataframe[0].value["formula"]) == list(table["formula"])
    at.number_input(key="gen_seed").set_value(1)
    at.button(key="gen_go").click().run()
    assert list(at.dataframe[0].value["id"]) == [f"gen-1-{i}" for i in range(6)]


def test_generate_near_a_crystal_and_within_a_map_selection(at):
    _open(at, "generate")
    at.segmented_control(key="gen_where").set_value("Near a crystal").run()
    at.text_input(key="gen_near_query").input("NaCl").run()
    _no_traceback(at)
    at.slider(key="gen_spread").set_value(0.05)
    _generate(at)
    subheader = next(s for s in _texts(at, "subheader") if "samples near" in s)
    assert "(NaCl)" in subheader
    assert any("Nearest dataset crystals in latent space" in c for c in _texts(at, "caption"))

    at.segmented_control(key="gen_where").set_value("Within the map selection").run()
    assert any("Lasso a region on the Latent map page first" in i for i in _texts(at, "info"))
    at.session_state["nesf.map_selection"] = [0, 1, 2, 3]
    at.run()
    _generate(at)
    assert any("within the 4 crystals selected on the map" in s for s in _texts(at, "subheader"))


def test_latent_map_filters_grey_the_right_points_and_count_them(at):
    import re

    from nesf.api import Autoencoder
    from nesf.inference.atlas import load_atlas

    at.multiselect(key="map_filter_elements").set_value(["O"]).run()
    _no_traceback(at)
    caption = next(c for c in _texts(at, "caption") if c.startswith("Filter:"))
    shown, greyed = (int(x.replace(",", "")) for x in re.findall(r"(\d[\d,]*)", caption)[:2])
    # the counts against the atlas's crystals: those that contain oxygen
    model = Autoencoder.from_checkpoint(REPO_ROOT / "checkpoints" / "lcs6a.pt", "cpu")
    atlas = load_atlas(REPO_ROOT / "checkpoints" / "lcs6a.atlas.pt", model)
    with_oxygen = sum(8 in set(c.species.tolist()) for c in atlas.crystals)
    assert (shown, greyed) == (with_oxygen, len(atlas.crystals) - with_oxygen)
    at.radio(key="map_filter_mode").set_value("none").run()
    caption = next(c for c in _texts(at, "caption") if c.startswith("Filter:"))
    assert caption.startswith(f"Filter: **{len(atlas.crystals) - with_oxygen:,} shown**")


def test_latent_map_derived_colorings(at):
    for color in ("number of elements", "local latent density", "reconstruction trust", "element fraction"):
        at.selectbox(key="map_color").set_value(color).run()
        _no_traceback(at)
    at.selectbox(key="map_color_element").set_value("O").run()
    _no_traceback(at)


def test_latent_map_chemiscope_download_of_the_selection(at):
    import gzip
    import json as _json

    at.session_state["nesf.map_selection"] = [0, 5]
    at.run()
    _no_traceback(at)
    # the button's data is a callable run on click: call the page's builder the same way
    from app import backend
    from app.views.latent_map import _chemiscope

    at_atlas = backend.checkpoint_atlas(backend.checkpoints()[0])
    data = _json.loads(gzip.decompress(_chemiscope(at_atlas, at_atlas.maps["tsne"], "tsne", [0, 5])))
    assert data["properties"]["id"]["values"] == at_atlas.table["id"].iloc[[0, 5]].astype(str).tolist()
    assert {"t-SNE 1", "PCA 2", "volume_angstrom3"} <= set(data["properties"])


def test_latent_map_offers_paper_figures(at):
    labels = [b.label for b in at.get("download_button")]
    assert "Map (SVG)" in labels and "Map (PNG, 300 dpi)" in labels
    assert any(label.startswith("Chemiscope file") for label in labels)


def test_an_upload_is_placed_on_the_map_once_its_expander_is_opened(at):
    assert not [u for u in at.file_uploader if u.label == "Structure files to place"]  # closed: not drawn
    at.session_state["map_place_open"] = True  # app.views.latent_map.PLACE_OPEN: the user opens it
    at.run()
    uploader = next(u for u in at.file_uploader if u.label == "Structure files to place")
    uploader.set_value(("NaCl.cif", NACL_CIF.encode(), "chemical/x-cif")).run()
    _no_traceback(at)
    placed = next(d.value for d in at.dataframe if "nearest in latent space" in d.value.columns)
    assert placed["formula"].tolist() == ["NaCl"] and placed["trust"].iloc[0]


def test_decode_anywhere_on_the_pca_map(at):
    assert not [n for n in at.number_input if n.key == "map_decode_x"]  # closed: drawn only when opened
    at.session_state["map_decode_x"], at.session_state["map_decode_y"] = 1.0, -0.5  # as a new box's centre sets
    at.session_state["map_decode_open"] = True                                       # and opens it
    at.session_state["nesf.map_settings"] = __import__("app.state", fromlist=["MapSettings"]).MapSettings("pca")
    at.run()
    _no_traceback(at)
    assert at.number_input(key="map_decode_x").value == pytest.approx(1.0)
    at.button(key="map_decode_go").click().run()
    _no_traceback(at)
    decoded = next(m for m in _texts(at, "markdown") if m.startswith("**Decoded at (1.000, -0.500)"))
    assert "atoms" in decoded
    assert any("exact inverse of the PCA map" in c for c in _texts(at, "caption"))
    assert any(m == "**Nearest dataset crystals in latent space**" for m in _texts(at, "markdown"))
    # how far the spot is from the data, against the dataset's own spacing
    said = [m for kind in ("success", "info", "warning") for m in _texts(at, kind) if m.startswith("This spot is ")]
    assert said and "the dataset's median spacing" in said[0]


def test_a_map_selection_is_seen_together_and_two_start_an_interpolation(at):
    at.session_state["nesf.map_selection"] = list(range(12))
    at.run()
    _no_traceback(at)
    # closed at first (nine reconstructions and eighteen 3D viewers would cost every selection seconds): not drawn
    assert not [d for d in at.dataframe if "atoms (input → recon.)" in d.value.columns]
    assert any(e.label.startswith("See 9 of them together") for e in at.expander)
    at.session_state["map_grid_open"] = True  # the user opens it (app.views.latent_map.GRID_OPEN)
    at.run()
    _no_traceback(at)
    grid = next(d for d in at.dataframe if "atoms (input → recon.)" in d.value.columns).value
    assert len(grid) == 9  # at most nine seen together
    assert grid["id"].tolist() == at.dataframe[0].value["id"].tolist()[:9]
    at.multiselect(key="map_grid_pair").set_value([2, 7]).run()
    at.button(key="map_grid_interpolate").click().run()
    _no_traceback(at)
    assert _texts(at, "title")[0].endswith("Interpolate")
    assert at.session_state["interp_src_mapsel"] == 2 and at.session_state["interp_dst_mapsel"] == 7


def _linked(app_env, query: dict):
    app = AppTest.from_file(MAIN, default_timeout=180)
    for key, value in query.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_a_link_restores_the_map_view(app_env):
    app = _linked(app_env, {"ckpt": "lcs6a", "data": "atlas", "decode": "fast", "method": "pca",
                            "color": "crystal system", "q": "NaCl", "el": "Na,Cl", "elmode": "all",
                            "sel": "mp-22862,mp-1265"})
    _no_traceback(app)
    assert app.selectbox(key="map_color").value == "crystal system"
    assert app.text_input(key="map_search").value == "NaCl"
    assert app.multiselect(key="map_filter_elements").value == ["Na", "Cl"]
    assert any("PCA" in c for c in _texts(app, "caption"))
    assert any(s.endswith("2 selected") for s in _texts(app, "subheader"))
    assert not [w for w in _texts(app, "warning") if w.startswith("Link:")]
    # the link of this view ("Copy link") holds the same parameters
    from urllib.parse import parse_qsl, urlsplit

    link = next(c.value for c in app.sidebar.code if "?" in c.value)
    query = dict(parse_qsl(urlsplit(link).query))
    assert {k: query[k] for k in ("ckpt", "method", "color", "q", "el")} == {
        "ckpt": "lcs6a", "method": "pca", "color": "crystal system", "q": "NaCl", "el": "Na,Cl"}
    assert query["sel"].split(",") == ["mp-22862", "mp-1265"]


def test_the_copy_link_holds_what_this_run_did(at):
    """The link is written after the page runs: a new map method is in it at once, not one action later."""
    from urllib.parse import parse_qsl, urlsplit

    def link():
        return dict(parse_qsl(urlsplit(next(c.value for c in at.sidebar.code if "?" in c.value)).query))

    assert link()["method"] == "tsne"
    next(r for r in at.radio if r.label == "Method").set_value("pca")
    next(b for b in at.button if b.label == "Compute map").click().run()
    _no_traceback(at)
    assert link()["method"] == "pca"


def test_bad_link_parameters_give_messages_and_a_default_view(app_env):
    app = _linked(app_env, {"ckpt": "gone", "method": "umap", "color": "smell", "el": "Xx,O", "sel": "mp-0,mp-1265",
                            "steps": "many"})
    _no_traceback(app)
    warnings = " ".join(_texts(app, "warning"))
    for part in ("checkpoint 'gone' is not here", "map method 'umap' is not one of tsne, pca",
                 "coloring 'smell' is not one of", "element(s) Xx not in", "crystal id(s) mp-0 not in",
                 "steps 'many' is not a whole number"):
        assert part in warnings, (part, warnings)
    assert _texts(app, "title")[0].endswith("Latent map")
    assert app.multiselect(key="map_filter_elements").value == ["O"]


def test_latent_map_csv_holds_the_table_and_the_map_coordinates(app_env):
    from app import backend
    from app.views.latent_map import _map_csv

    atlas = backend.checkpoint_atlas(backend.checkpoints()[0])
    coords = atlas.maps["tsne"]
    table = pd.read_csv(io.StringIO(_map_csv(atlas.table, coords)), dtype={"id": str})
    assert table["id"].tolist() == atlas.table["id"].astype(str).tolist()
    np.testing.assert_allclose(table[["x", "y"]].to_numpy(), coords, rtol=1e-6)


def test_a_link_restores_range_and_category_filters_and_the_element_coloring(app_env):
    app = _linked(app_env, {"ckpt": "lcs6a", "data": "atlas", "atoms": "2~8", "vol": "40.5~120", "sys": "cubic",
                            "color": "element fraction", "colorel": "O"})
    _no_traceback(app)
    name = "lim_l6 (atlas)"
    assert app.slider(key=f"map_filter_num_atoms_{name}").value == (2, 8)
    assert app.slider(key=f"map_filter_volume_angstrom3_{name}").value == (40.5, 120.0)
    assert app.multiselect(key=f"map_filter_crystal_system_{name}").value == ["cubic"]
    assert app.selectbox(key="map_color_element").value == "O"
    caption = next(c for c in _texts(app, "caption") if c.startswith("Filter:"))
    table = app.session_state["nesf.map_filter_bounds"]
    assert table["num_atoms"][0] <= 2 and "shown" in caption
    from urllib.parse import parse_qsl, urlsplit

    link = next(c.value for c in app.sidebar.code if "?" in c.value)
    query = dict(parse_qsl(urlsplit(link).query))
    assert {k: query[k] for k in ("atoms", "vol", "sys", "colorel")} == {
        "atoms": "2~8", "vol": "40.5~120", "sys": "cubic", "colorel": "O"}


def test_bad_filter_links_are_named_and_left_out(app_env):
    app = _linked(app_env, {"ckpt": "lcs6a", "data": "atlas", "vol": "big", "atoms": "500~900",
                            "sys": "cubic,decagonal", "color": "element fraction", "colorel": "Zz"})
    _no_traceback(app)
    warnings = " ".join(_texts(app, "warning"))
    for part in ("filter vol='big' is not a range low\\~high", "the Atoms in the cell filter's range 500 to 900 lies "
                 "outside this dataset's 1 to 28", "crystal system decagonal not in this dataset"):
        assert part in warnings, (part, warnings)
    assert "color element 'Zz' is not among this dataset's 80 elements; colored by H" in warnings
    assert "num_atoms" not in warnings and "crystal_system" not in warnings  # the page's words, not column names
    # at the top of the page (the filters sit in a popover a user has not opened), in Markdown that shows no
    # strikethrough: every "~" escaped
    assert warnings.count("~") == warnings.count("\\~")
    assert app.multiselect(key="map_filter_crystal_system_lim_l6 (atlas)").value == ["cubic"]


def test_generate_scores_a_run_against_the_test_split_on_request(at, monkeypatch):
    """The coverage section scores a run only when asked (fingerprints take ~0.2 s a sample), shows CDVAE's metrics
    at measured precision and keeps the result for that run; the computation itself is
    `test_generation.py::test_session_coverage_scores_a_run_against_the_atlas_test_crystals`."""
    from nesf.inference.generation import workflow
    from nesf.inference.generation.scores import GenerationScores

    calls = []

    def scored(session, generated, *, cache_dir=None, progress=None, cache_generated=False):
        calls.append((len(generated.crystals), generated.density))
        if progress is not None:
            progress(0.5, "fingerprints of the generated crystals")
        return GenerationScores(generated=len(generated.crystals), structure_valid_percent=100.0,
                                composition_valid_percent=83.33333, valid_percent=83.33333,
                                cov_recall_percent=12.6245, cov_precision_percent=80.0, amsd_recall=0.512345,
                                amsd_precision=0.4, amcd_recall=3.21, amcd_precision=2.5, unique_percent=100.0,
                                novel_percent=80.0, density_wasserstein_g_cm3=0.612345, num_elements_wasserstein=0.5,
                                structure_cutoff=0.4, composition_cutoff=10.0, reference_size=301, training_size=5418,
                                composition_valid_smact14_percent=83.33333, valid_smact14_percent=83.33333,
                                reference_atom_count_percent=100.0)

    monkeypatch.setattr(workflow, "session_coverage", scored)
    _open(at, "generate")
    _generate(at)
    assert calls == [] and not [d for d in at.dataframe if "metric" in d.value.columns]

    def section_open() -> bool:
        return next(e for e in at.expander if e.label.startswith("Coverage and distributions")).proto.expanded

    assert not section_open()
    at.button(key="gen_cov_go").click().run()
    _no_traceback(at)
    assert section_open()  # the click's rerun keeps the result in view (it had folded the section away)
    table = next(d.value for d in at.dataframe if "metric" in d.value.columns)
    row = table.set_index("metric")["these samples (6)"]
    assert row["COV-R [%]"] == 12.6 and row["Validity, compositional [%]"] == 83.3
    assert row["AMSD-R (structure fingerprint)"] == 0.512
    assert any("Against the 301 test crystals of the atlas (cutoffs 0.4 / 10)" in c for c in _texts(at, "caption"))
    # beside them, as many real training crystals scored the same way (what a generator as good as the data scores)
    assert "real crystals (6)" in table.columns
    assert [count for count, _ in calls] == [6, 6] and calls[1][1] == "real crystals"
    at.run()  # a rerun shows the scored run again without scoring it again
    assert len(calls) == 2 and any("metric" in d.value.columns for d in at.dataframe)


def test_no_capped_picker_offers_select_all():
    """Streamlit's multiselect offers "Select all" by default; a picker capped at `max_selections` (the selection
    panel's interpolation pair) must not (the tour saw it on a pick of two)."""
    import ast
    from pathlib import Path

    app_dir = Path(__file__).resolve().parents[2] / "app"
    capped = []
    for path in app_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "multiselect":
                keywords = {k.arg: k.value for k in node.keywords}
                if "max_selections" in keywords:
                    select_all = keywords.get("select_all")
                    capped.append((path.name, node.lineno,
                                   isinstance(select_all, ast.Constant) and select_all.value is False))
    assert capped and all(ok for _, _, ok in capped), capped


def test_the_selection_table_names_its_columns_and_marks_errors_not_measured(at):
    from app.views.latent_map import SELECTION_COLUMNS, selection_table

    at.session_state["nesf.map_selection"] = [0, 1, 2]
    at.run()
    _no_traceback(at)
    at_table = at.dataframe[0].value
    errors = at_table["reconstruction_error_angstrom"].tolist()
    assert "None" not in errors and "nan" not in errors
    assert all(e == "–" or float(e) >= 0 for e in errors)
    table = pd.DataFrame({"reconstruction_error_angstrom": [0.01234, None, float("nan")]})
    assert selection_table(table)["reconstruction_error_angstrom"].tolist() == ["0.012", "–", "–"]
    assert SELECTION_COLUMNS["volume_angstrom3"]["label"] == "volume (Å³)"
