"""Search crystals by id, formula (in any element order) or element set: the one search of the CLI and the app.

A query is matched against parallel lists of ids and reduced formulas. Element symbols are matched as symbols, so
"O" (oxygen) finds MgO and SrTiO3 but not TbHo3 (holmium).
"""

from __future__ import annotations

import re

import numpy as np

ELEMENT_SYMBOL = re.compile(r"[A-Z][a-z]?")


def reduced_formula_of(text: str) -> str | None:
    """The reduced formula of `text` ("O3SrTi" -> "SrTiO3"), or None when it is not a formula (an id, a typo)."""
    from pymatgen.core import Composition

    if not re.fullmatch(r"[A-Za-z0-9().]+", text):
        return None
    try:
        return Composition(text).reduced_formula
    except Exception:  # not a formula (an id, a typo)
        return None


def elements_of(formula: str) -> set[str]:
    """Element symbols of a formula ("SrTiO3" -> {"Sr", "Ti", "O"})."""
    return set(ELEMENT_SYMBOL.findall(str(formula)))


def search(ids, formulas, query: str, limit: int | None = None) -> np.ndarray:
    """Positions (into `ids` and `formulas`, parallel sequences) of the crystals matching `query`, best first.

    First the id (case-insensitive) or the reduced formula ("O3SrTi" finds SrTiO3) exactly; then, for a formula or
    element query ("O", "ZnS"), crystals that contain all its elements, fewest elements first; then ids (and, for
    text that is no formula, formulas) containing the query. Empty for a blank query; at most `limit` positions.
    """
    query = str(query or "").strip()
    if not query:
        return np.zeros(0, dtype=np.int64)
    ids = [str(x) for x in ids]
    formulas = [str(x) for x in formulas]
    if len(ids) != len(formulas):
        raise ValueError(f"search: {len(ids)} ids but {len(formulas)} formulas")
    lowered = query.lower()
    reduced = reduced_formula_of(query)
    exact = [i for i in range(len(ids)) if ids[i].lower() == lowered or formulas[i] == (reduced or query)]
    taken = set(exact)
    containing = []
    if reduced:
        wanted = elements_of(reduced)
        sets = {i: elements_of(formulas[i]) for i in range(len(ids)) if i not in taken}
        containing = sorted((i for i, found in sets.items() if wanted <= found), key=lambda i: len(sets[i]))
        taken.update(containing)
    partial = [i for i in range(len(ids)) if i not in taken and (
        lowered in ids[i].lower() or (not reduced and lowered in formulas[i].lower()))]
    found = np.asarray(exact + containing + partial, dtype=np.int64)
    return found if limit is None else found[:limit]
