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
