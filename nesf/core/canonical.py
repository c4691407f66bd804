"""One canonical frame for every crystal that enters the model, the frame of the paper's datasets.

`canonical_structure` maps a crystal given in any orientation, origin, axis order or cell setting (primitive,
conventional, supercell) to one cell:

1. the conventional standard cell (spglib through pymatgen, symprec 0.01 Angstrom, as the official dataset
   generation: `get_conventional_standard_structure`);
2. among the settings that are equally standard (the same space-group operations: origin shifts and axis changes of
   the space group's normalizer that keep the cell's shape), the one whose sorted (element, fractional position) list
   is smallest; where the group leaves the origin free along an axis (polar groups, P1), an atom of the rarest
   element is put at 0 along it, again taking the smallest result. spglib alone picks among these from the input's
   origin and axes, so this step is what makes the result independent of them;
3. the lattice rebuilt from its parameters in the datasets' frame: pymatgen's default (c along z), VESTA's (a along
   x) for triclinic cells, as 110 of LCS6A's 140 triclinic training cells (the other 30 fit either frame);
4. fractional coordinates wrapped into [0, 1), atoms closer than DUPLICATE_DISTANCE merged.

Lengths in Angstrom, angles in degrees. With `nesf.core.crystal` and `nesf.data.structure_io`, one of the modules that
touch pymatgen.
"""

from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np

from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.core.lattice import lattice_from_parameters, parameters_from_lattice

CANONICAL_SYMPREC = 0.01      # Angstrom; pymatgen's default, used by the official dataset generation
DUPLICATE_DISTANCE = 1e-3     # Angstrom; two atoms closer than this (over periodic images) are one
_KEY_DECIMALS = 4             # fractional coordinates are compared to this many decimals when ranking settings
_SHIFT_DENOMINATOR = 8        # normalizer origin shifts are searched on the grid k / 8 (covers the 230 groups' ones)
_OP_TOLERANCE = 1e-3          # fractional, when comparing translations of symmetry operations
_METRIC_TOLERANCE = 1e-4      # relative, when an axis change keeps the cell's shape
_FIRST_OPERATIONS = 4         # checked on every origin shift before the others are checked on those left standing


def is_triclinic(angles_degrees) -> bool:
    """A cell with fewer than two right angles: the datasets store these in VESTA's frame."""
    return sum(abs(float(x) - 90.0) < 1e-3 for x in angles_degrees) < 2


def frame_lattice(lengths_angstrom, angles_degrees) -> np.ndarray:
    """(3, 3) lattice of these parameters in the canonical frame: VESTA's for triclinic cells, else pymatgen's."""
    return lattice_from_parameters(lengths_angstrom, angles_degrees, vesta=is_triclinic(angles_degrees))


def wrap_fractional(frac_coords: np.ndarray) -> np.ndarray:
    """Fractional coordinates in [0, 1) (values within 1e-8 of 1 become 0)."""
    wrapped = np.mod(np.round(np.asarray(frac_coords, dtype=np.float64), 10), 1.0)
    wrapped[wrapped >= 1.0 - 1e-8] = 0.0
    return wrapped


def merge_duplicates(lattice: np.ndarray, frac_coords: np.ndarray, species: np.ndarray,
                     distance: float = DUPLICATE_DISTANCE) -> tuple[np.ndarray, np.ndarray]:
    """(frac_coords, species) without the atoms that sit within `distance` Angstrom of an earlier atom of the same
    element (over periodic images). Atoms of different elements on one spot are left for the caller to refuse."""
    keep: list[int] = []
    for i in range(len(species)):
        if keep:
            delta = frac_coords[keep] - frac_coords[i]
            delta -= np.round(delta)
            near = np.linalg.norm(delta @ lattice, axis=1) < distance
            if np.any(near & (species[keep] == species[i])):
                continue
        keep.append(i)
    return frac_coords[keep], species[keep]


def canonical_frame(lattice: np.ndarray, frac_coords: np.ndarray, species: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 3 and 4 only, for a cell that is already the chosen setting: (lattice in the canonical frame, wrapped
    and merged fractional coordinates, species)."""
    lengths, angles = parameters_from_lattice(lattice)
    canonical_lattice = frame_lattice(lengths, angles)
    frac, species = merge_duplicates(canonical_lattice, wrap_fractional(frac_coords), np.asarray(species))
    return canonical_lattice, frac, species


def canonical_crystal(crystal):
    """A Crystal whose cell is already the chosen one (a decoded crystal: the cell the lattice heads predicted) in
    the canonical frame: `canonical_frame` on it, the id kept. How the app and the CLI show and write decoded
    crystals; Table 1 metrics compare the atoms as decoded (the paper's errors are not periodic). A crystal with
    no atoms is returned as it is."""
    if crystal.num_atoms == 0:
        return crystal
    return Crystal.from_frac(*canonical_frame(crystal.lattice, crystal.frac_coords, crystal.species), crystal.id)


def as_shown(crystal, *, as_decoded: bool = False):
    """A decoded crystal as the app shows and the CLI writes it: in the canonical frame (`canonical_crystal`), or as
    decoded with `as_decoded` or where its predicted cell has no canonical form (a near-singular one)."""
    if as_decoded:
        return crystal
    try:
        return canonical_crystal(crystal)
    except NesfError:
        return crystal


def canonical_structure(structure, symprec: float = CANONICAL_SYMPREC):
    """The canonical cell of a pymatgen `Structure` (see the module docstring), as a new Structure, or None where the
    symmetry analysis fails (garbage cells). The caller validates the cell first: spglib crashes on NaN cells."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            conventional = SpacegroupAnalyzer(structure, symprec=symprec).get_conventional_standard_structure()
        except Exception:  # spglib gives up on garbage cells
            return None
    lengths, angles = conventional.lattice.abc, conventional.lattice.angles
    frac = wrap_fractional(conventional.frac_coords)
    species = np.array([site.specie.Z for site in conventional], dtype=np.int64)
    operations = symmetry_operations(conventional.lattice.matrix, frac, species, symprec)
    if operations is not None:
        frac = _smallest_setting(conventional.lattice.matrix, frac, species, *operations)
    lattice = frame_lattice(lengths, angles)
    frac, species = merge_duplicates(lattice, frac, species)
    return Structure(Lattice(lattice), species.tolist(), frac)


def consistent_setting(lattice, frac, species, symprec: float = CANONICAL_SYMPREC) -> np.ndarray | None:
    """Fractional coordinates of the setting equivalent to this standard one (same lattice, `equivalent_settings`)
    that puts each element where its role puts it in every crystal of the same structure type: the smallest sorted
    (role, x, y, z) list, the role ranking elements by `role_ranks` instead of atomic number. Rock salts all get the
    cation at the origin, where the canonical choice puts Na in NaCl but O in MgO. Where the group leaves the origin
    free, an atom of the first role is put at 0 along it. The setting as given (wrapped) where no other is found; None
    where the symmetry analysis fails."""
    frac = wrap_fractional(frac)
    operations = symmetry_operations(lattice, frac, np.asarray(species), symprec)
    if operations is None:
        return None
    # the settings ranked (and free origins anchored) by role where the canonical choice uses the atomic number
    return _smallest_setting(lattice, frac, role_ranks(species), *operations)


def role_ranks(species) -> np.ndarray:
    """(N,) each atom's element ranked by the role it can play in a structure type whatever fills it: fewest atoms in
    the cell first, then the lowest Pauling electronegativity (cations before anions; elements without one last),
    then the atomic number."""
    species = np.asarray(species, dtype=np.int64)
    values, counts = np.unique(species, return_counts=True)
    order = np.lexsort((values, [_electronegativity(int(z)) for z in values], counts))
    ranks = np.empty(len(values), dtype=np.int64)
    ranks[order] = np.arange(len(values))
    return ranks[np.searchsorted(values, species)]


@functools.lru_cache(maxsize=None)
def _electronegativity(atomic_number: int) -> float:
    from pymatgen.core.periodic_table import Element

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns for elements without a Pauling value (noble gases)
        value = float(Element.from_Z(atomic_number).X)
    return value if np.isfinite(value) else 10.0


def symmetry_operations(lattice, frac, species, symprec):
    import spglib

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            symmetry = spglib.get_symmetry((np.asarray(lattice), frac, species), symprec=symprec)
    except Exception:
        return None
    if not symmetry:
        return None
    return np.asarray(symmetry["rotations"], dtype=np.int64), np.asarray(symmetry["translations"], dtype=np.float64)


@functools.lru_cache(maxsize=1)
def _unimodular_matrices() -> np.ndarray:
    """All 3x3 integer matrices with entries in {-1, 0, 1} and determinant +1 (axis changes that keep handedness)."""
    values = np.array(list(itertools.product((-1, 0, 1), repeat=9)), dtype=np.int64).reshape(-1, 3, 3)
    return values[np.round(np.linalg.det(values)).astype(np.int64) == 1]


@functools.lru_cache(maxsize=1)
def _shift_grid() -> np.ndarray:
    steps = np.arange(_SHIFT_DENOMINATOR) / _SHIFT_DENOMINATOR
    grid = np.array(list(itertools.product(steps, repeat=3)))
    grid.flags.writeable = False  # shared by every call
    return grid


def _smallest_setting(lattice, frac, species, rotations, translations) -> np.ndarray:
    """Fractional coordinates of the smallest (`_smallest_key`) of the settings equivalent to this standard one."""
    options = equivalent_settings(lattice, frac, species, rotations, translations)
    if options is None:
        return frac
    return options[_smallest_key(options, species)]


def equivalent_settings(lattice, frac, species, rotations, translations, *, improper: bool = False
                        ) -> np.ndarray | None:
    """(C, N, 3) wrapped fractional coordinates of every setting equivalent to this one under the space group's
    normalizer (origin shifts on the k/8 grid and axis changes that keep the cell's shape and map the group onto
    itself), in the order the search meets them, repeats included; None when none is found. `improper=True` also
    takes the axis changes of determinant -1 (the enantiomorphic settings: inversion through the origin and its
    products), which the canonical choice leaves out to keep a crystal's handedness. Where the group leaves the
    origin free along a direction, each atom of the rarest element is put at 0 along it in turn."""
    metric = lattice @ lattice.T
    matrices = _unimodular_matrices()
    if improper:
        matrices = np.concatenate([matrices, -matrices])
    # a basis change M (new rows = M @ lattice) keeps the cell's shape when M G M^T = G
    kept = np.abs(matrices @ metric @ matrices.transpose(0, 2, 1) - metric).max(axis=(1, 2))
    matrices = matrices[kept <= _METRIC_TOLERANCE * np.abs(metric).max()]
    # the group's translations grouped by rotation: (unique rotations, most translations per rotation, 3), NaN-padded
    unique_codes, which = np.unique(_rotation_codes(rotations), return_inverse=True)
    table = np.full((len(unique_codes), np.bincount(which).max(), 3), np.nan)
    slot = np.zeros(len(which), dtype=np.int64)
    for u in range(len(unique_codes)):
        members = np.flatnonzero(which == u)
        slot[members] = np.arange(len(members))
    table[which, slot] = translations
    # x' = A x for fractional column vectors, A = (M^T)^-1; the rotations become A W A^-1 (A^-1 = M^T)
    inverse = matrices.transpose(0, 2, 1)
    forward = np.round(np.linalg.inv(inverse)).astype(np.int64)
    new_rotations = forward[:, None] @ rotations[None] @ inverse[:, None]  # (matrices, operations, 3, 3)
    new_codes = _rotation_codes(new_rotations.reshape(-1, 3, 3)).reshape(len(matrices), len(rotations))
    position = np.searchsorted(unique_codes, new_codes).clip(max=len(unique_codes) - 1)
    normalizer = np.all(unique_codes[position] == new_codes, axis=1)  # no conjugate outside the group
    free = _free_directions(rotations)
    anchor = _anchor_atoms(species)
    shifts = _shift_grid()
    candidates = []
    for m in np.flatnonzero(normalizer):
        a = forward[m]
        # the operations become (A W A^-1, A w + (I - W') t); each must be one of the group's (one with the same
        # rotation: those differ by the centring translations only): checked on a few operations first, which
        # leave few shifts standing, then on the rest
        standing, moved_translations = shifts, translations @ a.T
        for ops in (slice(0, _FIRST_OPERATIONS), slice(_FIRST_OPERATIONS, None)):
            standing = _shifts_keeping(standing, new_rotations[m, ops], moved_translations[ops],
                                       table[position[m, ops]])
            if not len(standing):
                break
        if not len(standing):
            continue
        transformed = frac @ a.T  # (N, 3)
        if free.shape[1]:  # shifts along the free directions are undone by anchoring an atom at 0 along them
            free_projector = _projector(a.astype(np.float64) @ free)
            standing = np.unique(np.round(wrap_fractional(standing - standing @ free_projector.T), 6), axis=0)
            options = transformed[None, None] + standing[:, None, None]  # (shifts, 1, N, 3)
            options = options - (options[:, :, anchor] @ free_projector.T).transpose(0, 2, 1, 3)
            candidates.append(options.reshape(-1, len(frac), 3))
        else:
            candidates.append(transformed[None] + standing[:, None])
    if not candidates:
        return None
    return wrap_fractional(np.concatenate(candidates))  # (C, N, 3), in the order the search meets them


def _shifts_keeping(shifts, rotations, translations, group_translations) -> np.ndarray:
    """The origin shifts t under which each operation (W, w) maps to one of the group's, (W, w + (I - W) t) with
    w + (I - W) t equal to one of `group_translations` (per operation, NaN-padded) modulo lattice translations."""
    moved = translations[:, None, :] + shifts @ (np.eye(3) - rotations).transpose(0, 2, 1)
    delta = moved[:, :, None, :] - group_translations[:, None, :, :]  # (operations, shifts, translations, 3)
    delta -= np.round(delta)
    with np.errstate(invalid="ignore"):
        matches = (np.abs(delta) < _OP_TOLERANCE).all(-1).any(-1)  # NaN padding never matches
    return shifts[matches.all(0)]


def _rotation_codes(rotations: np.ndarray) -> np.ndarray:
    """One integer per 3x3 integer matrix with entries in -3..3; -1 for any other (never a group's rotation)."""
    entries = np.asarray(rotations, dtype=np.int64).reshape(len(rotations), 9)
    codes = (np.clip(entries, -3, 3) + 3) @ (7 ** np.arange(9, dtype=np.int64))
    return np.where(np.abs(entries).max(axis=1) > 3, -1, codes)


def _smallest_key(options: np.ndarray, species: np.ndarray) -> int:
    """Index of the candidate (C, N, 3) whose (element, x, y, z) list, sorted and rounded to _KEY_DECIMALS, is
    lexicographically smallest; the first one among equals."""
    rounded = np.round(options, _KEY_DECIMALS)
    rounded[rounded >= 1.0] = 0.0
    count, atoms = rounded.shape[:2]
    owner = np.repeat(np.arange(count), atoms)
    flat = rounded.reshape(-1, 3)
    order = np.lexsort((flat[:, 2], flat[:, 1], flat[:, 0], np.tile(species, count), owner)).reshape(count, atoms)
    rows = np.concatenate([np.broadcast_to(np.sort(species), (count, atoms))[:, :, None],
                           rounded[np.arange(count)[:, None], order % atoms]], axis=2).reshape(count, -1)
    return int(np.lexsort(rows.T[::-1])[0])


def _free_directions(rotations: np.ndarray) -> np.ndarray:
    """(3, k) basis of the fractional directions every rotation leaves fixed: the origin is free along them."""
    stacked = (rotations - np.eye(3)[None]).reshape(-1, 3).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(stacked.T @ stacked)  # its null space is the stack's
    return eigenvectors[:, eigenvalues < 1e-8]


def _projector(basis: np.ndarray) -> np.ndarray:
    q, _ = np.linalg.qr(basis)
    return q @ q.T


def _anchor_atoms(species: np.ndarray) -> np.ndarray:
    """Indices of the atoms of the rarest element (the lightest among equally rare ones)."""
    values, counts = np.unique(species, return_counts=True)
    rarest = values[np.lexsort((values, counts))[0]]
    return np.flatnonzero(species == rarest)
