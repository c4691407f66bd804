"""One record type for a crystal: lattice rows and Cartesian coordinates in Angstrom, atomic numbers, an id.

This module and `nesf.data.structure_io` are the only places that touch pymatgen objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nesf.core.errors import NesfError
from nesf.core.lattice import lattice_from_parameters, parameters_from_lattice


@dataclass(frozen=True, eq=False)
class Crystal:
    """A periodic crystal in its conventional cell.

    lattice: (3, 3) row vectors a, b, c in Angstrom.
    cart_coords: (N, 3) Cartesian coordinates of the atoms in Angstrom.
    species: (N,) atomic numbers.
    id: a name (Materials Project id, file name, ...).
    """

    lattice: np.ndarray
    cart_coords: np.ndarray
    species: np.ndarray
    id: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        lattice = np.asarray(self.lattice, dtype=np.float64).reshape(3, 3)
        coords = np.asarray(self.cart_coords, dtype=np.float64).reshape(-1, 3)
        species = np.asarray(self.species, dtype=np.int64).reshape(-1)
        if coords.shape[0] != species.shape[0]:
            raise NesfError(f"{self.id or 'crystal'}: {coords.shape[0]} coordinates but {species.shape[0]} species")
        if not np.all(np.isfinite(lattice)) or not np.all(np.isfinite(coords)):
            raise NesfError(f"{self.id or 'crystal'}: lattice or coordinates are not finite numbers")
        if abs(np.linalg.det(lattice)) < 1e-6:
            raise NesfError(f"{self.id or 'crystal'}: the lattice is singular (cell volume ~0 A^3)")
        if species.size and (species.min() < 1 or species.max() > 118):
            raise NesfError(f"{self.id or 'crystal'}: atomic numbers must lie in 1..118, got {species.min()}..{species.max()}")
        object.__setattr__(self, "lattice", lattice)
        object.__setattr__(self, "cart_coords", coords)
        object.__setattr__(self, "species", species)

    @property
    def num_atoms(self) -> int:
        return int(self.species.shape[0])

    @property
    def lengths_angstrom(self) -> np.ndarray:
        return parameters_from_lattice(self.lattice)[0]

    @property
    def angles_degrees(self) -> np.ndarray:
        return parameters_from_lattice(self.lattice)[1]

    @property
    def volume_angstrom3(self) -> float:
        return float(abs(np.linalg.det(self.lattice)))

    @property
    def frac_coords(self) -> np.ndarray:
        return self.cart_coords @ np.linalg.inv(self.lattice)

    @classmethod
    def from_parameters(cls, lengths_angstrom, angles_degrees, cart_coords, species, id: str = "", *, vesta=False):
        return cls(lattice_from_parameters(lengths_angstrom, angles_degrees, vesta=vesta), cart_coords, species, id)

    @classmethod
    def from_frac(cls, lattice, frac_coords, species, id: str = ""):
        lattice = np.asarray(lattice, dtype=np.float64)
        return cls(lattice, np.asarray(frac_coords, dtype=np.float64) @ lattice, species, id)

    def to_structure(self):
        """A pymatgen Structure with the same lattice and Cartesian coordinates."""
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.lattice), self.species.tolist(), self.cart_coords, coords_are_cartesian=True)

    @classmethod
    def from_structure(cls, structure, id: str = "") -> "Crystal":
        """From an ordered pymatgen Structure, as it is (no cell conversion)."""
        if not structure.is_ordered:
            raise NesfError(f"{id or 'structure'}: disordered structure (partial occupancies); NeSF needs one element per site")
        species = [site.specie.Z for site in structure]
        return cls(structure.lattice.matrix, structure.cart_coords, species, id)

    @property
    def formula(self) -> str:
        from pymatgen.core import Composition

        if self.num_atoms == 0:
            return ""
        return Composition.from_dict(_count(self.species)).reduced_formula

    def __repr__(self) -> str:
        return f"Crystal(id={self.id!r}, formula={self.formula!r}, num_atoms={self.num_atoms})"


def _count(species: np.ndarray) -> dict:
    from pymatgen.core import Element

    values, counts = np.unique(species, return_counts=True)
    return {Element.from_Z(int(z)).symbol: int(n) for z, n in zip(values, counts)}
