"""Search in a atlas (the Reconstruct picker, the map's highlight, the Interpolate endpoints)."""

import pandas as pd

from nesf.inference.atlas import Atlas


def atlas() -> Atlas:
    table = pd.DataFrame({"id": ["mp-1", "mp-2", "mp-3", "mp-4", "mp-5", "mp-10"],
                          "formula": ["MgO", "TbHo3", "SrTiO3", "ZnS", "Cu", "NaCl"]})
    return Atlas(dataset="t", checkpoint_sha256="", table=table, latents=None, crystals=[None] * len(table))


def ids(frame) -> list[str]:
    return list(frame["id"])


def test_element_query_matches_element_symbols_not_substrings():
    # "O" is oxygen: MgO (2 elements) before SrTiO3 (3); TbHo3 (holmium) is no match.
    assert ids(atlas().find("O")) == ["mp-1", "mp-3"]


def test_formula_in_any_order_matches_the_reduced_formula_first():
    assert ids(atlas().find("O3SrTi")) == ["mp-3"]
    assert ids(atlas().find("ZnS")) == ["mp-4"]


def test_ids_and_plain_text():
    assert ids(atlas().find("MP-1")) == ["mp-1", "mp-10"]   # exact id first, then ids containing it
    assert ids(atlas().find("nacl")) == ["mp-10"]           # lower-case text falls back to a substring match
    assert ids(atlas().find("  ")) == []
    assert ids(atlas().find("Xx")) == []
