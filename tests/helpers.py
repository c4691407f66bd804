"""Small crystals built in code (no data files) shared by the tests."""

import numpy as np
from pymatgen.core import Lattice

from nesf.core.crystal import Crystal

ROCKSALT_FRAC = [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5], [.5, .5, .5]]


def cubic(a: float, frac, species, name: str) -> Crystal:
    return Crystal.from_frac(Lattice.cubic(a).matrix, frac, species, name)


def cscl() -> Crystal:
    return cubic(4.12, [[0, 0, 0], [.5, .5, .5]], [55, 17], "CsCl")


def bcc_iron() -> Crystal:
    return cubic(2.87, [[0, 0, 0], [.5, .5, .5]], [26, 26], "Fe")


def rocksalt_mgo() -> Crystal:
    return cubic(4.21, ROCKSALT_FRAC, [12] * 4 + [8] * 4, "MgO")


def hexagonal_zno() -> Crystal:
    lattice = Lattice.hexagonal(3.25, 5.21).matrix
    frac = [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, .5], [1 / 3, 2 / 3, .382], [2 / 3, 1 / 3, .882]]
    return Crystal.from_frac(lattice, frac, [30, 30, 8, 8], "ZnO")


def random_crystal(rng: np.random.Generator, num_atoms: int, vocab, a: float = 4.0, name: str = "random") -> Crystal:
    """A triclinic-ish cell with atoms at least ~1 A apart (rejection sampling)."""
    lattice = np.diag([a, a * 1.1, a * 0.9]) + rng.normal(scale=0.2, size=(3, 3))
    frac = []
    while len(frac) < num_atoms:
        candidate = rng.random(3)
        cart = candidate @ lattice
        if all(np.linalg.norm(cart - np.asarray(f) @ lattice) > 1.0 for f in frac):
            frac.append(candidate)
    species = rng.choice(vocab, size=num_atoms)
    return Crystal.from_frac(lattice, frac, species, name)


def small_cdvae_data_dir(data_dir, root, rows: int, name: str = "perov_5"):
    """`root` made a data directory holding the first `rows` rows of a CDVAE dataset's val.csv and test.csv."""
    import pandas as pd

    (root / name).mkdir(parents=True, exist_ok=True)
    for split in ("val", "test"):
        frame = pd.read_csv(data_dir / name / f"{split}.csv", dtype={"material_id": str})
        frame.head(rows).to_csv(root / name / f"{split}.csv", index=False)
    return root
