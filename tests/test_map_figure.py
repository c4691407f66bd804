"""The latent map as a paper figure: valid SVG, PNG at the asked resolution."""

import io
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from nesf.core.errors import NesfError
from nesf.inference.map_figure import map_figure_bytes

COORDS = np.random.default_rng(0).normal(size=(300, 2))


def test_svg_is_vector_xml():
    svg = map_figure_bytes(COORDS, values=np.arange(300), label="volume", fmt="svg")
    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    assert svg.count(b"<use") >= 300  # each point a vector marker (only the colorbar's gradient is an image)


@pytest.mark.parametrize("dpi", [150, 300])
def test_png_has_the_asked_resolution(dpi):
    greyed = np.arange(300) % 2 == 0
    png = map_figure_bytes(COORDS, values=["cubic", "hexagonal", "triclinic"] * 100, categorical=True,
                           label="crystal system", greyed=greyed, highlight=[0, 1], fmt="png", dpi=dpi)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.info["dpi"][0] == pytest.approx(dpi, abs=0.1)
    assert image.size[0] >= 4 * dpi  # a 6-inch-wide figure, trimmed to its content


def test_unknown_format():
    with pytest.raises(NesfError, match="unknown figure format 'pdf'; use svg or png"):
        map_figure_bytes(COORDS, fmt="pdf")
