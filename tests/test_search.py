"""The one search of the CLI and the app: ids, formulas in any element order, element sets."""

import pytest

from nesf.core.search import reduced_formula_of, search

IDS = ["mp-1", "mp-2", "mp-3", "mp-4", "mp-5", "mp-10"]
FORMULAS = ["MgO", "TbHo3", "SrTiO3", "ZnS", "Cu", "NaCl"]


def found(query, limit=None):
    return [IDS[i] for i in search(IDS, FORMULAS, query, limit)]


def test_element_query_matches_element_symbols_not_substrings():
    # "O" is oxygen: MgO (2 elements) before SrTiO3 (3); TbHo3 (holmium) is no match
    assert found("O") == ["mp-1", "mp-3"]
    assert found("Ho") == ["mp-2"]


def test_formula_in_any_order_matches_the_reduced_formula_first_then_supersets():
    assert found("O3SrTi") == ["mp-3"]
    assert found("ZnS") == ["mp-4"]
    assert found("OMg") == ["mp-1"]
    assert found("TiO") == ["mp-3"]   # no TiO: the crystals holding Ti and O


def test_ids_plain_text_blank_and_limit():
    assert found("MP-1") == ["mp-1", "mp-10"]   # exact id first, then ids containing it
    assert found("nacl") == ["mp-10"]           # lower-case text that is no formula: a substring of a formula
    assert found("  ") == [] and found("") == []
    assert found("Xx") == []
    assert found("mp", limit=2) == ["mp-1", "mp-2"]


def test_reduced_formula_of():
    assert reduced_formula_of("O3SrTi") == "SrTiO3"
    assert reduced_formula_of("mp-1") is None and reduced_formula_of("Na Cl") is None


def test_ids_and_formulas_must_be_parallel():
    with pytest.raises(ValueError, match="2 ids but 1 formulas"):
        search(["a", "b"], ["Cu"], "Cu")
