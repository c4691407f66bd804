"""Hexagonal and trigonal training crystals in their orthohexagonal cells, built in code from pymatgen's AFLOW
prototype library, for fine-tuning a model to read the orthohexagonal cell it offers hexagonal uploads.

The paper's datasets hold almost no hexagonal crystals (LCS6A stores 14, in orthohexagonal or rhombohedral cells;
ICSG3D and Perov-5 none; Carbon-24 three carbon structures). This set takes every primitive hexagonal (hP) prototype
of the library (hcp, wurtzite, NiAs, CdI2, AlB2, WC, graphite-like BN, Li3N, ...) and substitutes its elements by
others of their kind (a metal by any metal; B, C, N, O, the halogens, the metalloids and H by their group), the cell
scaled by the atoms' radii (`Element.atomic_radius`: the volume by the ratio of the summed cubed radii, the
prototype's c/a and internal coordinates kept). So the lattice constants are the prototype's handbook ones, scaled,
not measured: approximate, as a training signal for the cell's geometry, not a database of real compounds.

Kept are the crystals whose orthohexagonal cell lies strictly inside the training set it is added to (`CellBounds`:
vocabulary, atom count, cell lengths and atom box, with no tolerance), so adding them widens neither the model's range
nor its vocabulary. Excluded by reduced formula are the
crystals of `nesf.data.hexagonal_set` (held out to measure the orthohexagonal offer) and any `exclude` formulas.
Deterministic: the same library and range give the same crystals.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from nesf.core.crystal import Crystal

MAX_SUBSTITUTIONS_PER_PROTOTYPE = 40   # substituted crystals kept per prototype (a seeded choice among those that fit)
MAX_HEXAGONAL_ATOMS = 14               # prototypes with more atoms in the hexagonal cell are skipped
MAX_TRIES_PER_PROTOTYPE = 400         # substitutions read per prototype (those whose cell is too long are not read)
METALLOID_LIKE = {"B", "Si", "Ge", "As", "Sb", "Te"}
SEED = 0


def _family(element) -> str | int:
    """The substitution family of an element: "metal" for every metal (close-packed and intermetallic sites take
    most of them), else its group (B, C, N, O, F, H and the metalloids keep their group)."""
    if element.is_metal and element.symbol not in METALLOID_LIKE:
        return "metal"
    return element.group


def _candidates(element, vocab: set[int]) -> list:
    from pymatgen.core import Element

    family = _family(element)
    return [other for other in (Element.from_Z(z) for z in sorted(vocab))
            if _family(other) == family and other.atomic_radius is not None]


def hexagonal_prototypes() -> list:
    """The library's primitive hexagonal prototypes of at most MAX_HEXAGONAL_ATOMS atoms, as (label, Structure) in
    their conventional hexagonal cells, ordered by label."""
    from pymatgen.analysis.prototypes._data import AFLOW_PROTOTYPE_LIBRARY
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    found = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for entry in AFLOW_PROTOTYPE_LIBRARY:
            label = entry["tags"].get("aflow", "")
            if "_hP" not in label:
                continue
            structure = entry["snl"].structure
            try:
                conventional = SpacegroupAnalyzer(structure, symprec=0.01).get_conventional_standard_structure()
            except Exception:  # noqa: BLE001 - a library entry spglib cannot read is skipped
                continue
            if len(conventional) <= MAX_HEXAGONAL_ATOMS and abs(conventional.lattice.gamma - 120) < 0.1:
                found.setdefault(label, conventional)
    return sorted(found.items())


def _substituted(structure, mapping: dict):
    """`structure` with its elements replaced by `mapping`, the volume scaled by the summed cubed atomic radii."""
    old = sum(site.specie.atomic_radius ** 3 for site in structure)
    new = sum(mapping[site.specie].atomic_radius ** 3 for site in structure)
    substituted = structure.copy()
    substituted.replace_species({old_el: new_el for old_el, new_el in mapping.items() if old_el != new_el})
    substituted.scale_lattice(structure.volume * float(new / old))
    return substituted


@dataclass(frozen=True)
class CellBounds:
    """What a training set spans: its elements (atomic numbers), longest a, b, c (Angstrom), most atoms per cell and
    its atoms' bounding box (Cartesian, canonical frame, Angstrom)."""
    elements: tuple
    max_lengths_angstrom: tuple
    max_atoms: int
    box_min_angstrom: tuple
    box_max_angstrom: tuple

    @classmethod
    def of(cls, crystals, vocab, box_min, box_max) -> "CellBounds":
        lengths = np.array([c.lengths_angstrom for c in crystals]).max(axis=0)
        return cls(tuple(int(z) for z in vocab), tuple(float(x) for x in lengths),
                   int(max(c.num_atoms for c in crystals)), tuple(float(x) for x in box_min),
                   tuple(float(x) for x in box_max))

    def short_enough(self, structure) -> bool:
        """Whether the orthohexagonal cell (a, sqrt(3) a, c) of a hexagonal pymatgen `structure` is no longer."""
        a, c = structure.lattice.a, structure.lattice.c
        return bool(np.all(np.array([a, np.sqrt(3) * a, c]) <= np.asarray(self.max_lengths_angstrom)))

    def holds(self, crystal: Crystal) -> bool:
        """Whether `crystal` lies inside, with no tolerance (angles are not checked: orthohexagonal cells are 90)."""
        coords = crystal.cart_coords
        return bool(set(int(z) for z in crystal.species) <= set(self.elements)
                    and crystal.num_atoms <= self.max_atoms
                    and np.all(np.asarray(crystal.lengths_angstrom) <= np.asarray(self.max_lengths_angstrom))
                    and np.all(coords.min(axis=0) >= np.asarray(self.box_min_angstrom))
                    and np.all(coords.max(axis=0) <= np.asarray(self.box_max_angstrom)))


def hexagonal_prototype_crystals(bounds: CellBounds, exclude: set[str] = frozenset(),
                                 labels: set[str] | None = None) -> list[Crystal]:
    """The set (see the module docstring) inside `bounds` (those of the training set it is added to), from the
    prototypes with AFLOW `labels` (default all), each crystal in its orthohexagonal cell and canonical frame, id "<formula>:<aflow label>", `meta["source"]`
    the prototype and its substitution."""
    from itertools import product

    from pymatgen.core import Composition

    from nesf.data.frames import orthohexagonal_cell
    from nesf.data.hexagonal_set import hexagonal_crystals
    from nesf.data.structure_io import read_structures

    held_out = {Composition(c.formula).reduced_formula for c in hexagonal_crystals()}
    excluded = held_out | {Composition(f).reduced_formula for f in exclude}
    vocab = set(bounds.elements)
    rng = np.random.default_rng(SEED)
    crystals, seen = [], set()
    for label, structure in hexagonal_prototypes():
        if labels is not None and label not in labels:
            continue
        elements = sorted(structure.composition.elements)
        options = [_candidates(el, vocab) for el in elements]
        combos = [c for c in product(*options) if len(set(c)) == len(c)]
        kept = tried = 0
        for index in rng.permutation(len(combos)):
            if kept >= MAX_SUBSTITUTIONS_PER_PROTOTYPE or tried >= MAX_TRIES_PER_PROTOTYPE:
                break
            mapping = dict(zip(elements, combos[index]))
            substituted = _substituted(structure, mapping)
            formula = substituted.composition.reduced_formula
            if formula in excluded or (formula, label) in seen or not bounds.short_enough(substituted):
                continue
            tried += 1
            try:
                read = read_structures(substituted.to(fmt="cif").encode(), f"{formula}.cif")[0]
            except Exception:  # noqa: BLE001 - a substitution the reader refuses is skipped
                continue
            cell = orthohexagonal_cell(read)
            if cell is None or not bounds.holds(cell):
                continue
            seen.add((formula, label))
            kept += 1
            crystal = Crystal(cell.lattice, cell.cart_coords, cell.species, f"{formula}:{label}", dict(cell.meta))
            crystal.meta["source"] = f"AFLOW {label}, " + ", ".join(
                f"{a.symbol}->{b.symbol}" for a, b in mapping.items())
            crystals.append(crystal)
    return crystals
