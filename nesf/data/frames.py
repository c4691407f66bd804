"""The many ways one crystal can be written, for a model that has seen only one of them.

A conventional cell has several equally standard settings: the origin shifts and axis changes of its space group's
normalizer that keep the cell's shape (`nesf.core.canonical.equivalent_settings`). The paper's datasets hold one of them
per crystal, whichever the source file had; an upload's canonical frame often picks another. Besides these, the same
crystal has other valid cells: primitive, Niggli-reduced, and for hexagonal and trigonal lattices the orthohexagonal
cell (a, sqrt(3) a, c, all angles 90 degrees), the form LCS6A stores its hexagonal crystals in.

`equivalent_frames` lists the settings (used to choose an upload's frame by the model's fields,
`nesf.model.frame_select`, and to augment training); `consistent_frame` picks the one setting that gives every crystal
of a structure type the same origin (for atlases); `orthohexagonal_cell` and `cell_variants` give the other cells
(offers for uploads outside a model's range, and augmentation). Lengths in Angstrom, angles in degrees.
"""

from __future__ import annotations

import numpy as np

from nesf.core.canonical import (CANONICAL_SYMPREC, canonical_frame, consistent_setting, equivalent_settings,
                                 symmetry_operations, wrap_fractional)
from nesf.core.crystal import Crystal

FRAME_KEY_DECIMALS = 3   # fractional coordinates are compared to this many decimals when merging equal settings
ATLAS_FRAMES = {  # the settings an atlas can map a dataset's crystals in (`nesf atlas --frames`)
    "stored": "each crystal as its dataset stores it (the setting its source file had)",
    "consistent": "each crystal in the setting that gives its structure type one origin (consistent_frame)"}
HEXAGONAL_TOLERANCE = 1e-3  # relative on a = b, degrees on gamma = 120, when recognising a hexagonal cell


def equivalent_frames(crystal: Crystal, *, symprec: float = CANONICAL_SYMPREC, improper: bool = True,
                      max_frames: int | None = None) -> list[Crystal]:
    """The distinct settings of `crystal`'s cell (same lattice, atoms moved by a normalizer operation), the crystal
    as given first, each with `meta["frame"]` its index. `improper` includes the enantiomorphic settings (which a
    scorer or an augmentation may use; a structure matcher that allows inversion sees them as the same crystal).
    Coordinates wrapped into [0, 1). Only the crystal itself where the symmetry analysis fails."""
    first = Crystal.from_frac(crystal.lattice, wrap_fractional(crystal.frac_coords), crystal.species, crystal.id)
    first.meta.update({**crystal.meta, "frame": 0})
    if crystal.num_atoms == 0:
        return [first]
    frac, species = first.frac_coords, first.species
    operations = symmetry_operations(crystal.lattice, wrap_fractional(frac), species, symprec)
    if operations is None:
        return [first]
    options = equivalent_settings(crystal.lattice, wrap_fractional(frac), species, *operations, improper=improper)
    if options is None:
        return [first]
    frames, seen = [first], {_setting_key(wrap_fractional(frac), species)}
    for option in options:
        key = _setting_key(option, species)
        if key in seen:
            continue
        seen.add(key)
        frame = Crystal.from_frac(crystal.lattice, option, species, crystal.id)
        frame.meta.update({**crystal.meta, "frame": len(frames)})
        frames.append(frame)
        if max_frames and len(frames) >= max_frames:
            break
    return frames


def consistent_frame(crystal: Crystal, *, symprec: float = CANONICAL_SYMPREC) -> Crystal:
    """`crystal` in the setting that puts its elements where their roles put them in every crystal of its structure
    type (`nesf.core.canonical.consistent_setting`), `meta["frame"] = "consistent"`: an atlas of crystals in these
    settings does not split one structure type by origin choice. For a crystal in a standard setting of its
    conventional cell (as the datasets and `nesf.core.canonical.canonical_structure` give them): the choice is among
    that setting's equivalents. The crystal itself, wrapped, where the symmetry analysis fails."""
    frac = consistent_setting(crystal.lattice, crystal.frac_coords, crystal.species, symprec) \
        if crystal.num_atoms else None
    frame = Crystal.from_frac(crystal.lattice, wrap_fractional(crystal.frac_coords) if frac is None else frac,
                              crystal.species, crystal.id)
    frame.meta.update({**crystal.meta, "frame": "consistent"})
    return frame


def _setting_key(frac: np.ndarray, species: np.ndarray) -> bytes:
    rounded = np.round(frac, FRAME_KEY_DECIMALS)
    rounded[rounded >= 1.0] = 0.0
    rows = np.concatenate([species[:, None].astype(np.float64), rounded], axis=1)
    return rows[np.lexsort(rows.T[::-1])].tobytes()


def is_hexagonal_cell(crystal: Crystal) -> bool:
    """a = b, alpha = beta = 90 and gamma = 120 degrees (or 60): a hexagonal lattice in its usual setting."""
    (a, b, _), (alpha, beta, gamma) = crystal.lengths_angstrom, crystal.angles_degrees
    return (abs(a - b) <= HEXAGONAL_TOLERANCE * a and abs(alpha - 90) < 0.1 and abs(beta - 90) < 0.1
            and (abs(gamma - 120) < 0.1 or abs(gamma - 60) < 0.1))


def orthohexagonal_cell(crystal: Crystal) -> Crystal | None:
    """The orthohexagonal (C-centred orthorhombic) cell of a crystal whose cell is hexagonal (`is_hexagonal_cell`,
    trigonal crystals in their hexagonal setting included): a' = a, b' = a + 2b (gamma 120) or 2b - a (gamma 60),
    c' = c, so lengths (a, sqrt(3) a, c) and all angles 90 degrees, twice the atoms; in the canonical frame, with
    `meta["cell"] = "orthohexagonal"`. None for any other cell."""
    if crystal.num_atoms == 0 or not is_hexagonal_cell(crystal):
        return None
    gamma = crystal.angles_degrees[2]
    transform = np.array([[1, 0, 0], [1, 2, 0], [0, 0, 1]]) if gamma > 90 else np.array([[1, 0, 0], [-1, 2, 0],
                                                                                          [0, 0, 1]])
    lattice = transform @ crystal.lattice
    # the new cell holds the old one twice: the atoms and their copies shifted by b, in the new cell's fractions
    cart = np.concatenate([crystal.cart_coords, crystal.cart_coords + crystal.lattice[1]])
    frac = cart @ np.linalg.inv(lattice)
    species = np.concatenate([crystal.species, crystal.species])
    lattice, frac, species = canonical_frame(lattice, frac, species)
    cell = Crystal.from_frac(lattice, frac, species, crystal.id)
    cell.meta.update({**crystal.meta, "cell": "orthohexagonal"})
    return cell


def cell_variants(crystal: Crystal) -> list[Crystal]:
    """Other valid cells of the same crystal, each in the canonical frame with `meta["cell"]` naming it: the
    orthohexagonal cell of a hexagonal one, then the primitive standard and Niggli-reduced cells
    (`nesf.data.structure_io.alternative_cells`), each listed once."""
    from nesf.data.structure_io import alternative_cells

    found = []
    orthohexagonal = orthohexagonal_cell(crystal)
    if orthohexagonal is not None:
        found.append(orthohexagonal)
    for cell in alternative_cells(crystal):
        if not any(np.allclose(cell.lattice, other.lattice, atol=1e-4) and cell.num_atoms == other.num_atoms
                   for other in found):
            found.append(cell)
    return found
