"""Crystal record: fractional <-> Cartesian and parameters <-> lattice round trips, validation errors."""

import numpy as np
import pytest
from pymatgen.core import Lattice

from nesf.core.crystal import Crystal, lattice_from_parameters, parameters_from_lattice
from nesf.core.errors import NesfError

# (lengths in Angstrom, angles in degrees): pymatgen named lattices, a triclinic cell, CDVAE data_utils_test cases
PARAMETER_CASES = [
    ((3.0, 3.0, 3.0), (90.0, 90.0, 90.0)),
    ((2.5, 2.5, 4.1), (90.0, 90.0, 120.0)),
    ((3.2, 4.7, 5.9), (71.3, 84.2, 103.9)),
    ((1.0, 2.0, 3.0), (90.0, 90.0, 90.0)),
    ((4.0, 4.0, 4.0), (60.0, 60.0, 60.0)),
    ((6.1, 7.3, 5.2), (95.0, 105.0, 80.0)),
]


@pytest.mark.parametrize("lengths,angles", PARAMETER_CASES)
@pytest.mark.parametrize("vesta", [False, True])
def test_parameters_lattice_round_trip(lengths, angles, vesta):
    lattice = lattice_from_parameters(lengths, angles, vesta=vesta)
    got_lengths, got_angles = parameters_from_lattice(lattice)
    np.testing.assert_allclose(got_lengths, lengths, atol=1e-9)
    np.testing.assert_allclose(got_angles, angles, atol=1e-7)
    expected = Lattice.from_parameters(*lengths, *angles, vesta=vesta).matrix
    np.testing.assert_allclose(lattice, expected, atol=1e-12)


def test_vesta_frame_puts_a_along_x():
    lattice = lattice_from_parameters((3.2, 4.7, 5.9), (71.3, 84.2, 103.9), vesta=True)
    np.testing.assert_allclose(lattice[0], [3.2, 0.0, 0.0], atol=1e-12)
    default = lattice_from_parameters((3.2, 4.7, 5.9), (71.3, 84.2, 103.9))
    np.testing.assert_allclose(default[2, :2], [0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("lattice", [
    Lattice.cubic(4.2).matrix,
    Lattice.hexagonal(2.46, 6.7).matrix,
    Lattice.from_parameters(3.2, 4.7, 5.9, 71.3, 84.2, 103.9).matrix,
    Lattice.tetragonal(3.9, 12.0).matrix,
])
def test_frac_cart_round_trip(lattice):
    rng = np.random.default_rng(0)
    frac = rng.random((7, 3))
    crystal = Crystal.from_frac(lattice, frac, [8] * 7, "x")
    np.testing.assert_allclose(crystal.frac_coords, frac, atol=1e-12)
    np.testing.assert_allclose(crystal.cart_coords, frac @ np.asarray(lattice), atol=1e-12)
    structure = crystal.to_structure()
    np.testing.assert_allclose(structure.frac_coords, frac, atol=1e-12)
    back = Crystal.from_structure(structure, "x")
    np.testing.assert_allclose(back.cart_coords, crystal.cart_coords, atol=1e-12)
    assert back.species.tolist() == [8] * 7


def test_properties():
    crystal = Crystal.from_parameters((3.9, 3.9, 3.9), (90, 90, 90), [[0, 0, 0], [1.95, 1.95, 1.95]], [38, 22], "st")
    assert crystal.num_atoms == 2
    assert crystal.volume_angstrom3 == pytest.approx(3.9 ** 3)
    np.testing.assert_allclose(crystal.lengths_angstrom, [3.9] * 3)
    np.testing.assert_allclose(crystal.angles_degrees, [90] * 3)
    assert crystal.formula == "SrTi"


def test_validation_errors():
    with pytest.raises(NesfError, match=r"bad: 2 coordinates but 1 species"):
        Crystal(np.eye(3), np.zeros((2, 3)), [1], "bad")
    with pytest.raises(NesfError, match="not finite"):
        Crystal(np.eye(3), [[np.nan, 0, 0]], [1], "nan")
    with pytest.raises(NesfError, match="singular"):
        Crystal(np.zeros((3, 3)), [[0, 0, 0]], [1], "flat")
    with pytest.raises(NesfError, match=r"1\.\.118, got 0\.\.0"):
        Crystal(np.eye(3), [[0, 0, 0]], [0], "z0")
    with pytest.raises(NesfError, match="119"):
        Crystal(np.eye(3), [[0, 0, 0]], [119], "z119")


def test_disordered_structure_refused():
    from pymatgen.core import Structure

    structure = Structure(Lattice.cubic(3.0), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]])
    with pytest.raises(NesfError, match="disordered"):
        Crystal.from_structure(structure, "alloy")
