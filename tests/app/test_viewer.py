"""The 3D scene's HTML (app.viewer): CIF round trip, stable HTML across reruns, the PNG button, refused options."""

import re

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from app import viewer
from nesf.core.crystal import Crystal


def _nacl() -> Crystal:
    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return Crystal(structure.lattice.matrix, structure.cart_coords, np.array(structure.atomic_numbers), "mp-22862")


def test_cif_round_trips_through_pymatgen():
    crystal = _nacl()
    parsed = Structure.from_str(viewer.crystal_to_cif(crystal, "NaCl"), fmt="cif")
    assert parsed.composition.reduced_formula == "NaCl" and len(parsed) == 8
    assert np.allclose(parsed.lattice.abc, (5.64,) * 3)


def test_scene_is_the_same_html_on_every_rerun_and_names_its_png():
    panels = [viewer.Panel(_nacl(), "input"), viewer.Panel(_nacl(), "reconstruction")]
    first = viewer.scene_html(panels, png_name="NaCl mp/22862")
    assert first == viewer.scene_html(panels, png_name="NaCl mp/22862")
    button = re.search(r'<button[^>]*data-testid="viewer-png"[^>]*>', first).group(0)
    assert "a.download='NaCl_mp_22862.png'" in button   # spaces and slashes cannot reach the file name
    scene_id = re.search(r"viewergrid_(s[0-9a-f]{16})", first).group(1)
    assert f"window['viewer_{scene_id}']" in button and "pngURI()" in button


@pytest.mark.parametrize(("options", "message"), [
    ({"style": "wireframe"}, "style must be one of"),
    ({"supercell": (5, 1, 1)}, "supercell repeats must be three integers in 1..4"),
])
def test_bad_options_are_refused_with_their_value(options, message):
    with pytest.raises(ValueError, match=message):
        viewer.scene_html([viewer.Panel(_nacl())], **options)
    with pytest.raises(ValueError, match="at least one panel"):
        viewer.scene_html([])


def test_an_overlay_draws_both_structures_in_one_panel():
    """The input under its reconstruction: two models in one viewer, the second translucent, both replicated."""
    recon = _nacl()
    scene = viewer.scene_html([viewer.Panel(recon, "overlaid", overlay=_nacl())], supercell=(2, 1, 1))
    assert scene.count(".addModel(") == 2 and "viewergrid" in scene
    assert f'"opacity": {viewer.OVERLAY_OPACITY}' in scene
    assert scene.count(".replicateUnitCell(") == 2
    single = viewer.scene_html([viewer.Panel(recon, "alone")])
    assert single.count(".addModel(") == 1 and '"opacity"' not in single


def test_panels_share_the_view_of_the_largest_cell():
    """Input and reconstruction at one origin and one scale: every panel takes the largest cell's view."""
    small, large = _nacl(), _nacl()
    large = type(large).from_frac(np.asarray(large.lattice) * 1.1, large.frac_coords, large.species, "large")
    scene = viewer.scene_html([viewer.Panel(small, "input"), viewer.Panel(large, "reconstruction")])
    grid = re.search(r"(viewergrid_s[0-9a-f]{16})", scene).group(1)
    assert "var v=g[0][1].getView();" in scene and f"w.setView(v);w.render();}});}});}})({grid});" in scene
    assert scene.index("getView()") > scene.rindex(".zoomTo(")  # after every panel framed itself


def test_a_noisy_reconstruction_is_labelled_at_both_tolerances():
    """Decoded atoms a few hundredths of an Angstrom off their sites: the group at 0.1 A, and rock salt's within 0.2."""
    from app.ui.structures import SPACE_GROUP_COLUMN, lattice_table

    nacl = _nacl()
    shifts = np.zeros((nacl.num_atoms, 3))
    shifts[0] = [0.07, 0.0, 0.0]
    shifts[3] = [0.0, -0.06, 0.05]
    noisy = type(nacl)(nacl.lattice, nacl.cart_coords + shifts, nacl.species, "noisy")
    table = lattice_table(nacl, noisy)
    assert table.loc[SPACE_GROUP_COLUMN, "input"] == "Fm-3m (225)"
    shown = table.loc[SPACE_GROUP_COLUMN, "reconstruction"]
    assert not shown.startswith("Fm-3m") and shown.endswith("; Fm-3m (225) within 0.2 Å"), shown
    assert table.loc["crystal system", "reconstruction"].endswith("; cubic within 0.2 Å")
    assert lattice_table(nacl, nacl).loc[SPACE_GROUP_COLUMN, "reconstruction"] == "Fm-3m (225)"
    assert table.loc["a (Å)", "input"] == f"{nacl.lengths_angstrom[0]:.3f}" and table.columns.tolist() == ["input", "reconstruction"]


def test_an_atom_just_below_a_far_face_is_drawn_on_the_near_one():
    """A decoded atom at x = 0.998 (0.01 A from the far face) is drawn where the input's atom at x = 0 is."""
    lattice = np.eye(3) * 5.0
    decoded = Crystal.from_frac(lattice, [[0.998, 0.5, 0.3], [0.9, 0.5, 0.5]], [11, 17], "decoded")
    cif = viewer.crystal_to_cif(decoded)
    rows = [line.split() for line in cif.splitlines() if line.startswith(("Na", "Cl"))]
    x_na, x_cl = float(rows[0][2]), float(rows[1][2])
    assert x_na == pytest.approx(-0.002, abs=1e-6)  # 0.01 A below the far face: at the near one
    assert x_cl == pytest.approx(0.9, abs=1e-6)      # 0.5 A from it: where it is


@pytest.mark.browser
@pytest.mark.slow  # two browser launches: ~9 s
def test_a_software_webgl_browser_draws_without_antialiasing_and_a_gpu_one_keeps_it(tmp_path):
    """Chromium on SwiftShader (no GPU, as on the test machines): the scene's viewers are created without
    antialiasing (its pass costs ~1 s a viewer there) and still draw; a renderer that names a GPU keeps it (the
    renderer's name faked, since the machine has no GPU)."""
    from playwright.sync_api import sync_playwright

    from app_helpers import CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, need_browser

    need_browser()
    html = viewer.scene_html([viewer.Panel(_nacl()), viewer.Panel(_nacl())],
                             js_url=(REPO_ROOT / "app" / "static" / "3Dmol-min.js").as_uri())
    page_file = tmp_path / "scene.html"
    page_file.write_text(f"<html><body>{html}</body></html>")
    fake_gpu = """() => {
      const get = WebGLRenderingContext.prototype.getParameter;
      WebGLRenderingContext.prototype.getParameter = function (p) {
        return p === 0x9246 || p === this.RENDERER ? 'ANGLE (NVIDIA GeForce RTX 4070)' : get.call(this, p);
      };
    }"""
    antialias = """() => Array.from(document.querySelectorAll('canvas'))
      .map(c => c.getContext('webgl2') || c.getContext('webgl'))
      .map(gl => gl ? gl.getContextAttributes().antialias : null)"""
    found = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS + ["--allow-file-access-from-files"])
        try:
            for name, setup in (("software", None), ("gpu", fake_gpu)):
                page = browser.new_page()
                errors = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                if setup:
                    page.add_init_script(f"({setup})()")
                page.goto(page_file.as_uri(), wait_until="load")
                page.locator("canvas").first.wait_for()
                found[name] = (page.evaluate(antialias), errors,
                               page.evaluate("() => window.sessionStorage.getItem('nesf.softwareWebGL')"))
                page.close()
        finally:
            browser.close()
    assert found["software"] == ([False], [], "true")   # the grid's panels share one canvas
    assert found["gpu"] == ([True], [], "false")
