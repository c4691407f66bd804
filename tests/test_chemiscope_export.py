"""The latent map as a Chemiscope file, read back by the chemiscope package's own reader."""

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from nesf.core.errors import NesfError
from nesf.inference.chemiscope_export import chemiscope_input, write_chemiscope
from tests.helpers import bcc_iron, cscl, rocksalt_mgo

chemiscope = pytest.importorskip("chemiscope")


@pytest.fixture
def map_data():
    crystals = [cscl(), bcc_iron(), rocksalt_mgo()]
    table = pd.DataFrame({"id": ["CsCl", "Fe", "MgO"], "num_atoms": [2, 2, 8],
                          "volume_angstrom3": [69.93, 23.64, 74.62], "crystal_system": ["cubic"] * 3,
                          "reconstruction_error_angstrom": [np.nan, 0.12, np.nan]})
    maps = {"t-SNE": np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), "PCA": np.zeros((3, 2))}
    return crystals, table, maps


def test_written_file_loads_in_chemiscope_and_holds_the_map(map_data, tmp_path):
    crystals, table, maps = map_data
    path = write_chemiscope(tmp_path / "map.json.gz", crystals, table, maps, name="toy map")
    widget = chemiscope.show_input(str(path))  # the package's own reader
    assert type(widget).__name__ == "ChemiscopeWidget"
    data = json.loads(gzip.open(path, "rt").read())
    assert data["meta"]["name"] == "toy map"
    assert data["properties"]["t-SNE 2"]["values"] == [1.0, 3.0, 5.0]
    assert data["properties"]["id"]["values"] == ["CsCl", "Fe", "MgO"]
    errors = data["properties"]["reconstruction_error_angstrom"]
    assert np.isnan(errors["values"][0]) and errors["values"][1] == 0.12 and np.isnan(errors["values"][2])
    assert errors["description"] == "NaN (missing) where not computed"
    assert data["settings"]["map"]["x"]["property"] == "t-SNE 1"
    mgo = data["structures"][2]
    assert mgo["size"] == 8 and sorted(set(mgo["names"])) == ["Mg", "O"]
    np.testing.assert_allclose(mgo["cell"], np.asarray(crystals[2].lattice).reshape(-1))
    np.testing.assert_allclose(mgo["x"], crystals[2].cart_coords[:, 0])


def test_a_selection_exports_its_rows_in_order(map_data):
    crystals, table, maps = map_data
    data = chemiscope_input(crystals, table, maps, name="sel", rows=[2, 0])
    assert data["properties"]["id"]["values"] == ["MgO", "CsCl"]
    assert [s["size"] for s in data["structures"]] == [8, 2]
    with pytest.raises(NesfError, match="nothing to export: no crystals selected"):
        chemiscope_input(crystals, table, maps, name="none", rows=[])
