"""Hexagonal crystals held out of every dataset here, to measure how a model reconstructs orthohexagonal cells.

LCS6A stores its few hexagonal crystals in orthohexagonal or rhombohedral cells and its validation and test splits
hold none that convert to one, so the quality of the orthohexagonal cell offered to hexagonal uploads
(`nesf.data.frames.orthohexagonal_cell`) is measured on these instead: hcp elements and wurtzite-type binaries whose
orthohexagonal cell (a, sqrt(3) a, c) fits a 6 A box, at their experimental room-temperature lattice parameters
(standard handbook values, rounded to 0.01 A; the wurtzite u parameter 0.38). Built in code, no data files.
"""

from __future__ import annotations

from nesf.core.crystal import Crystal

HCP = {  # element: (a, c) in Angstrom, space group P6_3/mmc, atoms at (1/3, 2/3, 1/4) and (2/3, 1/3, 3/4)
    "Be": (2.29, 3.58), "Mg": (3.21, 5.21), "Sc": (3.31, 5.27), "Ti": (2.95, 4.68), "Co": (2.51, 4.07),
    "Zn": (2.66, 4.95), "Zr": (3.23, 5.15), "Ru": (2.71, 4.28), "Cd": (2.98, 5.62), "Hf": (3.19, 5.05),
    "Re": (2.76, 4.46), "Os": (2.73, 4.32), "Tl": (3.46, 5.53),
}
WURTZITE = {  # (cation, anion): (a, c) in Angstrom, space group P6_3mc
    ("Zn", "O"): (3.25, 5.21), ("Ga", "N"): (3.19, 5.19), ("Al", "N"): (3.11, 4.98), ("Be", "O"): (2.70, 4.38),
    ("Si", "C"): (3.08, 5.05),
}
WURTZITE_U = 0.38


def hexagonal_crystals() -> list[Crystal]:
    """The hcp and wurtzite crystals above in their hexagonal conventional cells (gamma = 120 degrees), in the
    canonical frame an upload gets (`nesf.data.structure_io.read_structures`)."""
    from pymatgen.core import Lattice, Structure

    from nesf.data.structure_io import read_structures

    structures = []
    for element, (a, c) in HCP.items():
        structures.append((element, Structure(Lattice.hexagonal(a, c), [element] * 2,
                                              [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])))
    for (cation, anion), (a, c) in WURTZITE.items():
        frac = [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, WURTZITE_U], [2 / 3, 1 / 3, 0.5 + WURTZITE_U]]
        structures.append((cation + anion, Structure(Lattice.hexagonal(a, c), [cation, cation, anion, anion], frac)))
    crystals = []
    for name, structure in structures:
        crystal = read_structures(structure.to(fmt="cif").encode(), f"{name}.cif")[0]
        crystals.append(Crystal(crystal.lattice, crystal.cart_coords, crystal.species, name, dict(crystal.meta)))
    return crystals
