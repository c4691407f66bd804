"""Map filters and derived colorings, checked against the table by hand."""

import numpy as np
import pandas as pd
import pytest

from nesf.core.errors import NesfError
from nesf.inference.map_filters import MapFilter, element_matrix, local_density, matching, number_of_elements
from tests.helpers import bcc_iron, cscl, rocksalt_mgo


@pytest.fixture
def crystals():
    return [cscl(), bcc_iron(), rocksalt_mgo()]


@pytest.fixture
def table():
    return pd.DataFrame({"id": ["CsCl", "Fe", "MgO"], "num_atoms": [2, 2, 8], "volume_angstrom3": [69.9, 23.6, 74.6],
                         "crystal_system": ["cubic", "cubic", "cubic"], "split": ["train", "test", "train"]})


def test_element_fractions(crystals):
    fractions, vocabulary = element_matrix(crystals)
    assert vocabulary == [8, 12, 17, 26, 55]
    np.testing.assert_allclose(fractions[0], [0, 0, 0.5, 0, 0.5])
    np.testing.assert_allclose(fractions[2], [0.5, 0.5, 0, 0, 0])
    assert number_of_elements(fractions).tolist() == [2, 1, 2]


def test_filters_by_elements_ranges_and_categories(crystals, table):
    fractions, vocabulary = element_matrix(crystals)
    keep = lambda spec: table["id"][matching(table, fractions, vocabulary, spec)].tolist()  # noqa: E731
    assert keep(MapFilter()) == ["CsCl", "Fe", "MgO"]
    assert keep(MapFilter(elements=(55, 17), element_mode="all")) == ["CsCl"]
    assert keep(MapFilter(elements=(55, 8), element_mode="all")) == []
    assert keep(MapFilter(elements=(55, 8), element_mode="any")) == ["CsCl", "MgO"]
    assert keep(MapFilter(elements=(55, 8), element_mode="none")) == ["Fe"]
    assert keep(MapFilter(elements=(92,), element_mode="any")) == []  # an element no crystal has
    assert keep(MapFilter(ranges=(("num_atoms", None, 2),))) == ["CsCl", "Fe"]
    assert keep(MapFilter(ranges=(("volume_angstrom3", 50.0, 70.0),))) == ["CsCl"]  # bounds inclusive
    assert keep(MapFilter(categories=(("split", ("train",)),))) == ["CsCl", "MgO"]
    assert keep(MapFilter(elements=(12,), element_mode="any", categories=(("split", ("train",)),))) == ["MgO"]
    with pytest.raises(NesfError, match="no column 'band_gap' to filter on"):
        matching(table, fractions, vocabulary, MapFilter(ranges=(("band_gap", 0, 1),)))
    with pytest.raises(NesfError, match="unknown element filter 'most'"):
        MapFilter(element_mode="most")


def test_local_density_is_higher_in_a_cluster():
    rng = np.random.default_rng(0)
    latents = np.concatenate([rng.normal(0, 0.1, (50, 8)), rng.normal(5, 2.0, (50, 8))])
    density = local_density(latents, k=5)
    assert density[:50].min() > density[50:].max()
    # against a brute-force reference
    distances = np.linalg.norm(latents[:, None] - latents[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    expected = 1.0 / np.sort(distances, axis=1)[:, :5].mean(axis=1)
    np.testing.assert_allclose(density, expected, rtol=1e-3)
