"""Validity of a crystal as CDVAE judges generated ones (Xie et al. 2022, `scripts/eval_utils.py`).

Structural: every pair of atoms (nearest periodic images) at least 0.5 Angstrom apart, and a cell of at least
0.1 A^3. Compositional: SMACT finds oxidation states (one per element) that make the reduced composition charge
neutral and pass Pauling's electronegativity test; a single element, or only metals (an alloy), is valid.

Oxidation-state tables (`OXIDATION_TABLES`): "installed" is the installed SMACT's default (SMACT 4: the ICSD-2024
filtered list); "smact14" is the 2014 list SMACT 2.2.1 used by default, the version CDVAE pins (SMACT 4 still ships it,
as `Element.oxidation_states_smact14`), so CDVAE's figures can be reproduced without installing the old version.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np

from nesf.core.crystal import Crystal

MIN_DISTANCE_ANGSTROM = 0.5
MIN_VOLUME_ANGSTROM3 = 0.1


def min_distance_angstrom(crystal: Crystal) -> float:
    """The smallest distance between two atoms, over periodic images (inf for fewer than two atoms)."""
    if crystal.num_atoms < 2:
        return math.inf
    matrix = crystal.to_structure().distance_matrix
    return float((matrix + np.diag(np.full(len(matrix), np.inf))).min())


def structure_valid(crystal: Crystal) -> bool:
    if crystal.num_atoms == 0 or not np.isfinite(crystal.lattice).all():
        return False
    volume = abs(float(np.linalg.det(crystal.lattice)))
    if volume < MIN_VOLUME_ANGSTROM3:
        return False
    return min_distance_angstrom(crystal) >= MIN_DISTANCE_ANGSTROM


def reduced_counts(species) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(atomic numbers ascending, their counts divided by the counts' gcd)."""
    elements, counts = np.unique(np.asarray(species, dtype=np.int64), return_counts=True)
    divisor = np.gcd.reduce(counts) if len(counts) else 1
    return tuple(int(z) for z in elements), tuple(int(c) for c in counts // divisor)


OXIDATION_TABLES = {"installed": "oxidation_states", "smact14": "oxidation_states_smact14"}


def composition_valid(species, table: str = "installed") -> bool:
    """SMACT charge neutrality with the electronegativity test, on the reduced composition of `species` (atomic
    numbers), with the oxidation states of `table` (`OXIDATION_TABLES`)."""
    if table not in OXIDATION_TABLES:
        raise ValueError(f"unknown oxidation-state table {table!r}; use one of {', '.join(OXIDATION_TABLES)}")
    elements, counts = reduced_counts(species)
    return _smact_valid(elements, counts, OXIDATION_TABLES[table])


@lru_cache(maxsize=65536)
def _smact_valid(elements: tuple[int, ...], counts: tuple[int, ...], attribute: str = "oxidation_states") -> bool:
    if not elements:
        return False
    if len(elements) == 1:
        return True
    import smact
    from pymatgen.core.periodic_table import Element
    from smact.screening import pauling_test

    symbols = tuple(Element.from_Z(z).symbol for z in elements)
    if all(symbol in smact.metals for symbol in symbols):
        return True
    try:
        smact_elements = list(smact.element_dictionary(symbols).values())
    except (NameError, KeyError):  # an element SMACT has no data for
        return False
    electronegativities = [e.pauling_eneg for e in smact_elements]
    stoichs = [(c,) for c in counts]
    for oxidation_states in itertools.product(*(getattr(e, attribute) or [0] for e in smact_elements)):
        if not _neutral(smact, oxidation_states, stoichs, max(counts)):
            continue
        try:
            if pauling_test(oxidation_states, electronegativities):
                return True
        except TypeError:  # no electronegativity for an element: CDVAE counts the test as passed
            return True
    return False


def _neutral(smact, oxidation_states, stoichs, threshold) -> bool:
    """Whether the oxidation states balance in the given ratio (SMACT 4 returns the ratios; SMACT 2, which CDVAE
    used, a (found, ratios) pair)."""
    found = smact.neutral_ratios(oxidation_states, stoichs=stoichs, threshold=threshold)
    if isinstance(found, tuple) and len(found) == 2 and isinstance(found[0], bool):
        return found[0]
    return bool(found)


def crystal_valid(crystal: Crystal, table: str = "installed") -> tuple[bool, bool]:
    """(structurally valid, compositionally valid under the oxidation-state `table`)."""
    return structure_valid(crystal), bool(crystal.num_atoms) and composition_valid(crystal.species, table)


GASEOUS_ELEMENTS = {1: "H", 2: "He", 7: "N", 8: "O", 9: "F", 10: "Ne", 17: "Cl", 18: "Ar", 36: "Kr", 54: "Xe",
                    86: "Rn"}  # gases at room temperature and pressure


def chemist_caution(crystal: Crystal) -> str:
    """What CDVAE's validity rules pass but a chemist would not take for a material, in words ("" where nothing):
    a cell of one gaseous element alone (the rules call any single element valid, so an oxygen-only cell counts as a
    valid, novel crystal)."""
    elements = {int(z) for z in np.asarray(crystal.species).reshape(-1)}
    if len(elements) == 1 and (z := next(iter(elements))) in GASEOUS_ELEMENTS:
        return (f"{GASEOUS_ELEMENTS[z]} alone: the validity rules pass any single element, but {GASEOUS_ELEMENTS[z]} "
                "is a gas at room temperature")
    return ""
