"""Structure files: round trips through every format, conventional cells, and every bad input named by file."""

import json
import warnings

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.data import structure_io
from nesf.data.structure_io import (
    download_name, read_structure_file, read_structures, spacegroup, to_cif, to_extxyz, to_json, to_poscar,
)

WRITERS = {
    "cif": (lambda c: to_cif(c), "x.cif"),
    "poscar": (lambda c: to_poscar(c), "POSCAR"),
    "json": (lambda c: to_json(c), "x.json"),
    "extxyz": (lambda c: to_extxyz([c]), "x.extxyz"),
}


def _rutile() -> Crystal:
    structure = Structure.from_spacegroup(
        "P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.3053, 0.3053, 0]])
    return Crystal.from_structure(structure, "rutile")


def _graphite_like() -> Crystal:
    structure = Structure.from_spacegroup(
        "P6_3/mmc", Lattice.hexagonal(2.46, 6.7), ["C", "C"], [[0, 0, 0.25], [1 / 3, 2 / 3, 0.25]])
    return Crystal.from_structure(structure, "graphite")


def _triclinic() -> Crystal:
    lattice = Lattice.from_parameters(4.1, 5.3, 6.2, 78.0, 85.0, 101.0)
    return Crystal.from_frac(lattice.matrix, [[0.1, 0.2, 0.3], [0.6, 0.5, 0.9], [0.35, 0.8, 0.1]], [8, 26, 3], "tri")


@pytest.fixture(scope="module")
def samples(paper_dir):
    from nesf.data.paper_data import read_paper_split

    paper, _ = read_paper_split(paper_dir / "dataset_lim_l6_test")
    return [_rutile(), _graphite_like(), _triclinic(), *paper[:6]]


def _same(a: Crystal, b: Crystal) -> bool:
    return StructureMatcher(primitive_cell=False, scale=False, attempt_supercell=True).fit(
        a.to_structure(), b.to_structure())


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_round_trip(samples, fmt):
    write, filename = WRITERS[fmt]
    for crystal in samples:
        text = write(crystal)
        (back,) = read_structures(text.encode(), filename)
        assert _same(crystal, back), (fmt, crystal.id)
        assert back.formula == crystal.formula
        # the content alone is enough to tell the format
        (sniffed,) = read_structures(text.encode(), "upload")
        assert _same(crystal, sniffed)


def test_extxyz_trajectory(samples):
    text = to_extxyz(samples)
    back = read_structures(text.encode(), "traj.xyz")
    assert [c.id for c in back] == [f"traj_{i}" for i in range(len(samples))]
    for a, b in zip(samples, back):
        assert _same(a, b)
    first = text.splitlines()[1]
    assert 'Lattice="' in first and "Properties=species:S:1:pos:R:3" in first


def test_ids_and_multiblock_cif():
    cu = Structure(Lattice.cubic(3.61), ["Cu"] * 4, [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    text = str(CifWriter(cu)) + "\n" + str(CifWriter(nacl)).replace("data_NaCl", "data_salt")
    found = read_structures(text.encode(), "two.cif")
    assert [c.id for c in found] == ["two_0", "two_1"]
    assert [c.num_atoms for c in found] == [4, 8]
    (single,) = read_structures(str(CifWriter(cu)).encode(), "copper.cif")
    assert single.id == "copper"


def test_primitive_fcc_becomes_conventional():
    primitive = Structure(Lattice.from_parameters(2.553, 2.553, 2.553, 60, 60, 60), ["Cu"], [[0, 0, 0]])
    (crystal,) = read_structures(primitive.to(fmt="poscar").encode(), "CONTCAR")
    assert crystal.num_atoms == 4
    np.testing.assert_allclose(crystal.lengths_angstrom, [2.553 * 2 ** 0.5] * 3, atol=1e-3)
    np.testing.assert_allclose(crystal.angles_degrees, [90, 90, 90], atol=1e-6)
    assert crystal.meta["cell"] == "conventional standard"
    assert spacegroup(crystal) == (225, "Fm-3m", "cubic")


def test_read_structure_file(tmp_path):
    path = tmp_path / "rutile.vasp"
    path.write_text(to_poscar(_rutile()))
    (crystal,) = read_structure_file(path)
    assert crystal.id == "rutile" and crystal.formula == "TiO2"
    with pytest.raises(NesfError, match="nothere.cif"):
        read_structure_file(tmp_path / "nothere.cif")
    with pytest.raises(NesfError, match=r"rutile\.vasp: file is .* over the limit of 10 bytes"):
        read_structure_file(path, max_bytes=10)


def _disordered_cif() -> bytes:
    structure = Structure(Lattice.cubic(2.9), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(CifWriter(structure)).encode()


BAD_INPUTS = [
    (b"", "empty.cif", "empty.cif: the file is empty"),
    (b"   \n\t\n", "blank.vasp", "blank.vasp: the file holds only whitespace"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.cif", "image.cif: binary file"),
    (b"\xff\xfe\xfa garbage \xc3\x28", "latin.cif", "latin.cif: not UTF-8 text"),
    (b"hello world\nthis is not a crystal\n", "notes.cif", "notes.cif: not a CIF file"),
    (b"hello world\nthis is not a crystal\n", "notes.txt", "notes.txt: unknown structure format"),
    (b"garbage\n1.0\nx y z\n", "POSCAR", "POSCAR: not a readable poscar file"),
    (b"{not json", "bad.json", r"bad.json: not valid JSON"),
    (b'{"a": 1}', "dict.json", r"dict.json: JSON item 0 is not a pymatgen Structure"),
    (b"[]", "none.json", "none.json: no structure found"),
    (b"2\nno lattice here\nH 0 0 0\nH 0 0 1\n", "mol.xyz", r'mol.xyz: frame 0: no Lattice="..."'),
    (b"data_empty\n_cell_length_a 3\n", "blank_block.cif", "blank_block.cif: not a readable cif file"),
    (_disordered_cif(), "alloy.cif", "alloy.cif: disordered structure"),
]


@pytest.mark.parametrize("data,filename,message", BAD_INPUTS, ids=[b[1] for b in BAD_INPUTS])
def test_bad_input_names_the_file(data, filename, message):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning may escape either
        with pytest.raises(NesfError, match=message) as info:
            read_structures(data, filename)
    assert filename in str(info.value)


def test_disordered_json_and_vacancy():
    vacancy = Structure(Lattice.cubic(2.9), [{"Fe": 0.5}], [[0, 0, 0]])
    with pytest.raises(NesfError, match="vac.json: disordered"):
        read_structures(json.dumps(vacancy.as_dict()).encode(), "vac.json")


def test_file_too_large():
    with pytest.raises(NesfError, match=r"big.cif: file is 2,000 bytes, over the limit of 1,000 bytes"):
        read_structures(b"x" * 2000, "big.cif", max_bytes=1000)


def test_too_many_atoms():
    primitive = Structure(Lattice.from_parameters(2.553, 2.553, 2.553, 60, 60, 60), ["Cu"], [[0, 0, 0]])
    data = primitive.to(fmt="cif").encode()
    with pytest.raises(NesfError, match=r"cu.cif: 4 atoms in the conventional cell, more than the limit of 3"):
        read_structures(data, "cu.cif", max_atoms=3)
    big = Structure(Lattice.cubic(20.0), ["H"] * 30, np.random.default_rng(0).random((30, 3)))
    with pytest.raises(NesfError, match=r"many.json: 30 atoms, more than the limit of 20"):
        read_structures(json.dumps(big.as_dict()).encode(), "many.json", max_atoms=20)


def test_spacegroup_and_download_name():
    assert spacegroup(_rutile()) == (136, "P4_2/mnm", "tetragonal")
    assert download_name(_rutile(), "cif") == "TiO2-P4_2mnm.cif"
    assert download_name(_graphite_like(), ".vasp") == "C-P6_3mmc.vasp"
    assert spacegroup(_triclinic())[2] == "triclinic"


def test_spacegroup_falls_back_on_spglib_failure(monkeypatch):
    import spglib

    def broken(*args, **kwargs):
        raise RuntimeError("spglib gave up")

    monkeypatch.setattr(spglib, "get_symmetry_dataset", broken)
    assert spacegroup(_rutile()) == (1, "P1", "triclinic")
    monkeypatch.setattr(spglib, "get_symmetry_dataset", lambda *a, **k: None)
    assert spacegroup(_rutile()) == (1, "P1", "triclinic")


def test_crystal_system_names():
    assert [structure_io.crystal_system(n) for n in (1, 2, 3, 16, 75, 143, 168, 195, 230)] == [
        "triclinic", "triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic", "cubic"]
    with pytest.raises(NesfError, match="231"):
        structure_io.crystal_system(231)


NACL_CIF = """data_test
_cell_length_a {a}
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha {alpha}
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na1 Na 0 0 0
Cl1 Cl 0.5 0.5 0.5
{extra}"""


@pytest.mark.parametrize("a, alpha, extra, message", [
    ("nan", "90", "", r"_cell_length_a is nan, not a finite number"),   # segfaulted inside spglib before
    ("inf", "90", "", r"_cell_length_a is inf, not a finite number"),
    ("-5.64", "90", "", r"_cell_length_a = -5.64 A; a cell length must lie in \(0, 1000\] A"),
    ("1e300", "90", "", r"_cell_length_a = 1e300 A; a cell length must lie in \(0, 1000\] A"),
    ("1e-5", "90", "", r"cell volume 0.000318 A\^3 from a, b, c = 1e-05, 5.64, 5.64 A is below 1 A\^3"),
    ("5.64", "180", "", r"_cell_angle_alpha = 180 deg; a cell angle must lie strictly between 0 and 180"),
    ("5.64", "179.999", "", r"cell angles \(179.999, 90, 90\) deg do not form a cell"),
    ("5.64", "90", "Na2 Na 0.01 0 0\n", r"atoms 1 \(Na\) and 2 \(Na\) are 0.06 A apart, closer than 0.5 A"),
    ("5.64", "90", "".join(f"X{i} Na 0.{i:03d} 0.3 0.3\n" for i in range(600)),
     r"lists 602 atom sites, more than the limit of 400 atoms"),
])
def test_cells_that_would_crash_or_hang_native_code_are_refused_first(a, alpha, extra, message):
    data = NACL_CIF.format(a=a, alpha=alpha, extra=extra).encode()
    with pytest.raises(NesfError, match=r"^bad\.cif: .*" + message):
        read_structures(data, "bad.cif")


def test_symmetry_expansion_is_bounded_before_pymatgen_expands_it():
    operations = "".join(f"'x+{i}/97, y, z'\n" for i in range(96))
    text = NACL_CIF.format(a="5.64", alpha="90", extra="").replace(
        "_symmetry_space_group_name_H-M 'P 1'\n", "loop_\n_symmetry_equiv_pos_as_xyz\n" + operations)
    text += "".join(f"Y{i} Cl 0.{i + 10:02d} 0.2 0.7\n" for i in range(30))
    with pytest.raises(NesfError, match=r"32 sites x 96 symmetry operations would expand to up to 3,072 atoms"):
        read_structures(text.encode(), "bad.cif")
