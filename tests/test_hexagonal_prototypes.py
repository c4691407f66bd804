"""The hexagonal prototype training set: orthohexagonal cells inside the training range, none held out."""

import numpy as np
import pytest
from pymatgen.core import Composition

from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.data import hexagonal_prototypes as hp
from nesf.data.hexagonal_set import hexagonal_crystals

HCP, NIAS, WURTZITE = "A_hP2_194_c", "AB_hP4_194_c_a", "AB_hP4_186_b_b"
LABELS = {HCP, NIAS, WURTZITE}


def lcs6a_like_bounds() -> hp.CellBounds:
    """LCS6A's training range: 6 A cells, 28 atoms, its box, every element up to Pu but the noble gases."""
    noble = {2, 10, 18, 36, 54, 86}
    return hp.CellBounds(tuple(z for z in range(1, 95) if z not in noble), (6.0, 6.0, 6.0), 28,
                         (-0.01, -0.01, 0.0), (11.6, 8.5, 5.97))


@pytest.fixture(scope="module")
def built():
    return hp.hexagonal_prototype_crystals(lcs6a_like_bounds(), labels=LABELS)


def test_every_crystal_is_an_orthohexagonal_cell_inside_the_bounds(built):
    bounds = lcs6a_like_bounds()
    assert len(built) >= 20
    for crystal in built:
        a, b, c = crystal.lengths_angstrom
        np.testing.assert_allclose(crystal.angles_degrees, 90.0, atol=1e-3)
        assert b == pytest.approx(np.sqrt(3) * a, rel=1e-4), crystal.id
        assert crystal.meta["cell"] == "orthohexagonal" and bounds.holds(crystal)
        assert crystal.num_atoms % 2 == 0  # twice the hexagonal cell's atoms
    assert {c.id.split(":")[1] for c in built} <= LABELS
    assert {c.id.split(":")[1] for c in built} >= {HCP, NIAS}


def test_the_held_out_hexagonal_set_is_excluded_by_formula(built):
    held_out = {Composition(c.formula).reduced_formula for c in hexagonal_crystals()}
    made = {Composition(c.formula).reduced_formula for c in built}
    assert not made & held_out
    again = hp.hexagonal_prototype_crystals(lcs6a_like_bounds(), exclude={"Pd", "CrN"}, labels=LABELS)
    assert not {Composition(c.formula).reduced_formula for c in again} & {"Pd", "CrN", *held_out}


def test_the_set_is_deterministic(built):
    again = hp.hexagonal_prototype_crystals(lcs6a_like_bounds(), labels=LABELS)
    assert [c.id for c in again] == [c.id for c in built]
    np.testing.assert_array_equal(again[0].cart_coords, built[0].cart_coords)


def test_substitution_scales_the_cell_by_the_atoms_radii():
    from pymatgen.core import Element, Lattice, Structure

    mg = Structure(Lattice.hexagonal(3.21, 5.21), ["Mg", "Mg"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    ni = hp._substituted(mg, {Element("Mg"): Element("Ni")})
    ratio = Element("Ni").atomic_radius / Element("Mg").atomic_radius
    assert ni.composition.reduced_formula == "Ni"
    assert ni.lattice.a == pytest.approx(3.21 * ratio, rel=1e-6) and ni.lattice.c / ni.lattice.a == pytest.approx(
        5.21 / 3.21, rel=1e-6)


def test_bounds_refuse_a_cell_too_long_or_an_unknown_element():
    bounds = lcs6a_like_bounds()
    long_cell = Crystal.from_frac(np.diag([3.0, 5.2, 6.5]), np.array([[0.0, 0.0, 0.0]]), np.array([12]), "long")
    assert not bounds.holds(long_cell)
    neon = Crystal.from_frac(np.diag([3.0, 5.2, 5.0]), np.array([[0.1, 0.1, 0.1]]), np.array([10]), "Ne")
    assert not bounds.holds(neon)
    assert bounds.holds(Crystal.from_frac(np.diag([3.0, 5.2, 5.0]), np.array([[0.1, 0.1, 0.1]]), np.array([12]), "Mg"))


def test_load_dataset_adds_the_prototypes_to_the_train_split_only(data_dir, monkeypatch):
    from nesf.data.datasets import load_dataset

    full = hp.hexagonal_prototypes
    monkeypatch.setattr(hp, "hexagonal_prototypes", lambda: [p for p in full() if p[0] in {HCP, NIAS}])
    base = load_dataset("ICSG3D", data_dir)
    merged = load_dataset("icsg3d+hex_prototypes", data_dir)
    assert merged.name == "ICSG3D+hex_prototypes"
    added = len(merged.splits["train"]) - len(base.splits["train"])
    assert added > 0 and all(c.id.endswith((HCP, NIAS)) for c in merged.splits["train"][-added:])
    for split in ("val", "test"):
        assert [c.id for c in merged.splits[split]] == [c.id for c in base.splits[split]]
    assert list(merged.species_vocab) == list(base.species_vocab)
    np.testing.assert_array_equal(merged.bbox_min, base.bbox_min)
    np.testing.assert_array_equal(merged.bbox_max, base.bbox_max)


@pytest.mark.parametrize("name", ["hex_prototypes", "hex_prototypes+lim_l6"])
def test_prototypes_alone_or_first_are_refused_with_the_reason(name, data_dir):
    from nesf.data.datasets import load_dataset

    with pytest.raises(NesfError, match="hex_prototypes"):
        load_dataset(name, data_dir)
