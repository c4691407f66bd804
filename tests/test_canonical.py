"""The canonical frame: the same crystal in any orientation, origin, axis order or cell setting gives one cell, one
latent vector and one reconstruction; the model's range names what is out of it and offers a cell that fits."""

import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from nesf.api import Autoencoder
from nesf.core.canonical import (canonical_crystal, canonical_frame, canonical_structure, frame_lattice, is_triclinic,
                                 wrap_fractional)
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.core.lattice import lattice_from_parameters
from nesf.data.structure_io import alternative_cells, read_structures, to_poscar
from nesf.model.model_range import ModelRange, RangeProblem

PROTOTYPES_PER_RUN = 36   # of pymatgen's 288 bundled AFLOW prototypes, a seeded spread over all crystal systems


def _prototypes() -> list[tuple[str, Structure]]:
    import pymatgen.analysis.prototypes as prototypes

    path = Path(list(prototypes.__path__)[0]) / "aflow_prototypes.json.gz"
    entries = json.load(gzip.open(path, "rt"))
    found = []
    for entry in entries:
        structure = Structure.from_dict(entry["snl"])
        if structure.is_ordered and len(structure) <= 24:
            found.append((entry["tags"]["aflow"], structure))
    picked = np.random.default_rng(7).choice(len(found), PROTOTYPES_PER_RUN, replace=False)
    return [found[i] for i in sorted(picked)]


PROTOTYPES = _prototypes()


def _variants(structure: Structure, rng: np.random.Generator) -> dict[str, Structure]:
    """The same crystal, written differently."""
    from scipy.spatial.transform import Rotation

    frac, species, matrix = structure.frac_coords, structure.species, structure.lattice.matrix
    rotation = Rotation.random(random_state=int(rng.integers(2**31))).as_matrix()
    swapped = matrix[[1, 0, 2]].copy()
    swapped[2] *= -1  # keep the cell right-handed: a mirror image would be another (enantiomorphic) crystal
    swapped_frac = frac[:, [1, 0, 2]].copy()
    swapped_frac[:, 2] *= -1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        primitive = SpacegroupAnalyzer(structure, symprec=0.01).find_primitive()
    return {
        "rotated": Structure(Lattice(matrix @ rotation.T), species, frac),
        "origin shifted": Structure(structure.lattice, species, frac + rng.random(3)),
        "axes cycled": Structure(Lattice(matrix[[1, 2, 0]]), species, frac[:, [1, 2, 0]]),
        "axes swapped": Structure(Lattice(swapped), species, swapped_frac),
        "atoms outside the cell": Structure(structure.lattice, species,
                                            frac + rng.integers(-2, 3, size=frac.shape)),
        "primitive cell": primitive,
        "supercell": structure * (1, 2, 1),
        "all at once": Structure(Lattice(matrix[[1, 2, 0]] @ rotation.T), species,
                                 frac[:, [1, 2, 0]] + rng.random(3)),
    }


def _same_cell(a: Structure, b: Structure, tolerance: float = 1e-4) -> bool:
    """Same lattice matrix and, atom for atom, the same element at the same Cartesian place (to `tolerance` A)."""
    if len(a) != len(b) or not np.allclose(a.lattice.matrix, b.lattice.matrix, atol=tolerance):
        return False
    species_a = np.array([site.specie.Z for site in a])
    species_b = np.array([site.specie.Z for site in b])
    delta = a.frac_coords[:, None, :] - b.frac_coords[None, :, :]
    distance = np.linalg.norm((delta - np.round(delta)) @ a.lattice.matrix, axis=-1)  # (Na, Nb), nearest image
    distance[species_a[:, None] != species_b[None, :]] = np.inf
    return bool(np.all(distance.min(axis=1) < tolerance) and np.all(distance.min(axis=0) < tolerance))


@pytest.mark.parametrize("tag, structure", PROTOTYPES, ids=[tag for tag, _ in PROTOTYPES])
def test_one_cell_whatever_the_writing(tag, structure):
    reference = canonical_structure(structure)
    assert reference is not None
    assert np.all((reference.frac_coords >= 0) & (reference.frac_coords < 1))
    rng = np.random.default_rng(len(tag))
    different = [name for name, variant in _variants(structure, rng).items()
                 if not _same_cell(reference, canonical_structure(variant))]
    assert not different, f"{tag}: another cell for {different}"


def test_same_latent_and_reconstruction_through_the_upload_path(shipped_autoencoder):
    """End to end, files in: POSCARs of one crystal written five ways give one latent vector (to 1e-5) and one
    reconstruction."""
    wurtzite = Structure(Lattice.hexagonal(3.25, 5.21), ["Zn", "Zn", "O", "O"],
                         [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.382], [2 / 3, 1 / 3, 0.882]])
    rng = np.random.default_rng(0)
    writings = [wurtzite, *(_variants(wurtzite, rng)[name] for name in
                            ("rotated", "origin shifted", "axes cycled", "atoms outside the cell", "all at once"))]
    crystals = [read_structures(to_poscar(Crystal.from_structure(s, id=f"w{i}")).encode(), f"w{i}.vasp")[0]
                for i, s in enumerate(writings)]
    latents = shipped_autoencoder.encode(crystals, check_box=False)  # LCS6A has no hexagonal cell: out of its range
    np.testing.assert_allclose(latents, np.repeat(latents[:1], len(latents), axis=0), atol=1e-5)
    reconstructions = shipped_autoencoder.decode(latents[:2])
    np.testing.assert_allclose(reconstructions[0].cart_coords, reconstructions[1].cart_coords, atol=1e-4)
    assert reconstructions[0].formula == reconstructions[1].formula


@pytest.fixture(scope="module")
def shipped_autoencoder():
    path = Path(__file__).resolve().parents[1] / "checkpoints" / "lcs6a.pt"
    return Autoencoder.from_checkpoint(path, "cpu")


def test_a_hexagonal_cell_in_a_file_frame_is_judged_in_the_canonical_frame(shipped_autoencoder):
    """The issue's case: a hexagonal NiAs-type cell written with a = (a/2, -a sqrt3/2, 0), as pymatgen's conventional
    cell is, was refused as "too large" because its atoms sat at negative y. In the canonical frame its atoms are in
    the box; what the shipped model refuses it for is the truth: LCS6A holds no cell with a 120 degree angle."""
    half = 3.94 / 2
    lattice = Lattice([[half, -half * 3 ** 0.5, 0], [half, half * 3 ** 0.5, 0], [0, 0, 5.14]])
    nisb = Structure(lattice, ["Ni", "Ni", "Sb", "Sb"], [[0, 0, 0], [0, 0, .5], [1 / 3, 2 / 3, .25], [2 / 3, 1 / 3, .75]])
    crystal = read_structures(to_poscar(Crystal.from_structure(nisb, id="nisb")).encode(), "NiSb.vasp")[0]
    assert crystal.cart_coords[:, 1].min() >= -1e-9
    np.testing.assert_allclose(crystal.lattice, lattice_from_parameters((3.94, 3.94, 5.14), (90, 90, 120)), atol=1e-6)
    problems = shipped_autoencoder.range.problems(crystal)
    assert [p.kind for p in problems] == ["angle"]
    assert problems[0].message.startswith("gamma = 120.0 deg; this model was trained on angles from")


def test_triclinic_cells_use_the_vesta_frame_as_the_datasets_do():
    assert is_triclinic((71.3, 84.2, 103.9)) and not is_triclinic((90, 101.2, 90))
    np.testing.assert_allclose(frame_lattice((3.2, 4.7, 5.9), (71.3, 84.2, 103.9))[0], [3.2, 0, 0], atol=1e-9)
    np.testing.assert_allclose(frame_lattice((3.2, 4.7, 5.9), (90, 101.2, 90))[2], [0, 0, 5.9], atol=1e-9)


def test_frame_wraps_and_merges_duplicates():
    lattice = np.diag([3.0, 3.0, 3.0])
    frac = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0 - 1e-12], [0.5, 0.5, -0.5], [1.5, 0.5, 0.5]])
    new_lattice, new_frac, species = canonical_frame(lattice, frac, np.array([26, 26, 17, 17]))
    np.testing.assert_allclose(new_lattice, lattice, atol=1e-12)
    np.testing.assert_allclose(new_frac, [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert species.tolist() == [26, 17]
    assert wrap_fractional(np.array([[-1e-12, 0.9999999999, 2.25]])).tolist() == [[0.0, 0.0, 0.25]]


def test_a_decoded_crystal_is_shown_in_the_canonical_frame_of_its_own_cell():
    """A rotated monoclinic cell (as no decoder gives, but a caller may) with an atom past a face and a periodic
    duplicate: the same cell parameters in the datasets' frame, atoms wrapped and merged, the id kept."""
    lengths, angles = (3.0, 4.0, 5.0), (90.0, 101.0, 90.0)
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    lattice = lattice_from_parameters(lengths, angles) @ turn.T
    frac = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.25, 0.5, -0.25]])
    decoded = Crystal.from_frac(lattice, frac, [29, 29, 8], "step-3")
    shown = canonical_crystal(decoded)
    np.testing.assert_allclose(shown.lattice, frame_lattice(lengths, angles), atol=1e-9)
    assert shown.id == "step-3" and shown.species.tolist() == [29, 8]
    np.testing.assert_allclose(shown.frac_coords, [[0.0, 0.0, 0.0], [0.25, 0.5, 0.75]], atol=1e-9)
    empty = Crystal(np.eye(3) * 4.0, np.zeros((0, 3)), [], "empty")
    assert canonical_crystal(empty) is empty


def test_the_datasets_are_already_in_the_canonical_frame(paper_dir):
    """LCS6A's crystals, as stored, are in the frame that uploads are brought to: lattice from the parameters in the
    canonical frame (or a triclinic cell whose atoms fit both frames), atoms inside the cell to within 0.02 of it (the
    stored positions are relaxed ones: a few sit just past a face, where an upload's are wrapped to the other)."""
    from nesf.data.paper_data import read_paper_split

    crystals, _ = read_paper_split(paper_dir / "dataset_lim_l6_test")
    other_frame = 0
    for crystal in crystals:
        if not np.allclose(crystal.lattice, frame_lattice(crystal.lengths_angstrom, crystal.angles_degrees),
                           atol=1e-4):
            assert is_triclinic(crystal.angles_degrees), crystal.id
            other_frame += 1
        assert np.all((crystal.frac_coords > -0.02) & (crystal.frac_coords < 1.02)), crystal.id
    assert other_frame < 0.01 * len(crystals)


# -- honest limits ---------------------------------------------------------------------------------------------------
COPPER = Crystal.from_frac(np.eye(3) * 3.61, [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]], [29] * 4, "Cu")
SMALL_RANGE = ModelRange(max_lengths_angstrom=(3.0, 3.0, 3.0), min_angle_degrees=55.0, max_angle_degrees=125.0, max_atoms=4,
                         box_min_angstrom=(-2.0, 0.0, 0.0), box_max_angstrom=(3.0, 3.0, 3.0), elements=(8, 29))


def test_a_refusal_names_what_is_out_of_range_and_by_how_much():
    problems = SMALL_RANGE.problems(COPPER)
    assert problems == [RangeProblem("length", f"{axis} = 3.61 A; this model was trained on cells with {axis} <= 3.00 A "
                                               "and accepts up to 3.50 A") for axis in "abc"]
    gold = Crystal.from_frac(np.eye(3) * 2.9, [[0, 0, 0]], [79], "Au")
    assert SMALL_RANGE.problems(gold) == [RangeProblem("element", "element(s) Au not among the 2 this model was trained on")]
    flat = Crystal.from_parameters((2.5, 2.5, 2.5), (90, 90, 150), [[0, 0, 0]], [8], "flat")
    assert SMALL_RANGE.problems(flat) == [
        RangeProblem("angle", "gamma = 150.0 deg; this model was trained on angles from 55.0 to 125.0 deg and accepts "
                              "53.0 to 127.0 deg")]
    # within the margin: accepted, as the message says
    assert SMALL_RANGE.problems(Crystal.from_frac(np.eye(3) * 3.45, [[0, 0, 0]], [29], "Cu-sc")) == []


def test_a_cell_that_fits_is_offered_where_the_conventional_one_does_not(shipped_autoencoder, monkeypatch):
    cells = {c.meta["cell"]: c for c in alternative_cells(COPPER)}
    primitive = cells["primitive standard"]
    assert primitive.num_atoms == 1
    np.testing.assert_allclose(primitive.lengths_angstrom, [3.61 / 2 ** 0.5] * 3, atol=1e-6)
    np.testing.assert_allclose(primitive.angles_degrees, [60, 60, 60], atol=1e-6)
    monkeypatch.setattr(shipped_autoencoder, "range", SMALL_RANGE)
    with pytest.raises(NesfError, match="Cu: outside this model's range: a = 3.61 A"):
        shipped_autoencoder.check(COPPER)
    offered = shipped_autoencoder.fitting_cell(COPPER)
    assert offered is not None and offered.num_atoms == 1 and not SMALL_RANGE.problems(offered)
    assert shipped_autoencoder.fitting_cell(primitive) is None  # already fits: nothing to offer


def test_the_range_round_trips_and_is_on_the_card():
    assert ModelRange.from_dict(SMALL_RANGE.to_dict()) == SMALL_RANGE
    summary = SMALL_RANGE.summary()
    assert summary["cell lengths a, b, c (A)"] == "<= 3.00, 3.00, 3.00 (uploads accepted up to 0.50 A longer)"
    assert summary["cell angles (deg)"] == "55.0 to 125.0 (uploads accepted 2.0 deg beyond)"
    assert summary["elements"] == "2: O Cu"


def test_offers_quote_crystals_unlike_the_training_set_and_the_uploads_own_trust(shipped_autoencoder, monkeypatch):
    """An offered cell's quality is the one measured on novel crystals converted to it (then the held-out hexagonal
    set, then the test split), a kind offered only from MIN_OFFER_MATCH_PERCENT; the offer note adds the upload's own
    trust reading."""
    from dataclasses import replace

    from nesf.api import MIN_OFFER_MATCH_PERCENT
    from nesf.inference.uploads import prepare

    metrics = {"test[primitive standard cells]": {"match_rate_percent": 95.7, "count": 46},
               "novel[primitive standard cells]": {"match_rate_percent": 71.0, "count": 31},
               "test[Niggli-reduced primitive cells]": {"match_rate_percent": 90.0, "count": 20},
               "novel[Niggli-reduced primitive cells]": {"match_rate_percent": 80.0, "count": 3}}  # too few to quote
    monkeypatch.setattr(shipped_autoencoder, "info", replace(shipped_autoencoder.info, metrics=metrics))
    primitive = shipped_autoencoder.cell_offer_quality("primitive standard")
    assert (primitive["match_rate_percent"], primitive["measured_on"]) == (71.0, "crystals unlike the training set")
    assert shipped_autoencoder.cell_offer_quality("Niggli-reduced primitive")["measured_on"] == "test crystals"
    assert shipped_autoencoder.cell_offer_quality("orthohexagonal") is None
    monkeypatch.setattr(shipped_autoencoder, "range", SMALL_RANGE)
    upload = prepare(shipped_autoencoder, COPPER, "Cu.cif")
    assert upload.choice is not None and upload.choice.refined
    assert upload.cell_note.startswith("its primitive standard cell (1 atoms, a, b, c = 2.55, 2.55, 2.55 A) fits "
                                       "this model; crystals unlike the training set converted to this kind of cell "
                                       "matched 71 % of the time (31 crystals); this upload's own trust: ")
    metrics["novel[primitive standard cells]"]["match_rate_percent"] = MIN_OFFER_MATCH_PERCENT - 1
    offered, declined = shipped_autoencoder.cell_offers(COPPER)
    assert "primitive standard" in [c.meta["cell"] for c in declined]
    assert "primitive standard" not in [c.meta["cell"] for c in offered]


def test_one_upload_path_asks_uses_or_never_uses_the_offered_cell(shipped_autoencoder, monkeypatch):
    """`prepare`'s cell policy: the app asks ("ask": refused with the offer, `accept_offer` once the user agrees), the
    CLI uses it ("use"), `--no-fitting-cell` never; asked then accepted is the same encoding as used at once."""
    from dataclasses import replace

    from nesf.inference.uploads import accept_offer, prepare
    from nesf.model.refine import ENCODER_ONLY

    metrics = {"novel[primitive standard cells]": {"match_rate_percent": 95.0, "count": 40}}
    monkeypatch.setattr(shipped_autoencoder, "info", replace(shipped_autoencoder.info, metrics=metrics))
    monkeypatch.setattr(shipped_autoencoder, "range", SMALL_RANGE)
    asked = prepare(shipped_autoencoder, COPPER, "Cu.cif", cells="ask", refine=ENCODER_ONLY)
    assert not asked.accepted and asked.choice is None
    assert asked.refused.startswith("Cu: outside this model's range: a = 3.61 A")
    assert asked.offer.kind == "primitive standard" and asked.offer.crystal.num_atoms == 1
    assert asked.offer.note == ("its primitive standard cell (1 atoms, a, b, c = 2.55, 2.55, 2.55 A) fits this model; "
                                "crystals unlike the training set converted to this kind of cell matched 95 % of the "
                                "time (40 crystals)")
    accepted = accept_offer(shipped_autoencoder, asked, refine=ENCODER_ONLY)
    used = prepare(shipped_autoencoder, COPPER, "Cu.cif", cells="use", refine=ENCODER_ONLY)
    for item in (accepted, used):
        assert item.accepted and not item.refused and item.choice.crystal.num_atoms == 1
        assert item.cell_note.startswith(asked.offer.note + "; this upload's own trust: ")
    np.testing.assert_allclose(accepted.choice.latent, used.choice.latent, atol=1e-6)
    never = prepare(shipped_autoencoder, COPPER, "Cu.cif", cells="never", refine=ENCODER_ONLY)
    assert not never.accepted and never.offer is None and never.refused == asked.refused
    with pytest.raises(NesfError, match=r"^Cu\.cif: no other cell of it fits this model$"):
        accept_offer(shipped_autoencoder, never)


def test_one_upload_path_reconstructs_measures_and_reads_trust(shipped_autoencoder):
    """`reconstruct`: each accepted upload decoded, scored against the input in the setting encoded (the paper's
    metrics) and read for trust; the decoded crystals may be given (the app keeps them); a refused upload is named."""
    from nesf.core.config import DecodeConfig
    from nesf.inference.uploads import prepare, reconstruct
    from nesf.model.refine import ENCODER_ONLY

    nacl = Crystal.from_frac(np.eye(3) * 5.64, [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5], [.5, 0, 0],
                                                 [0, .5, 0], [0, 0, .5], [.5, .5, .5]], [11] * 4 + [17] * 4, "NaCl")
    prepared = prepare(shipped_autoencoder, nacl, "NaCl.cif", refine=ENCODER_ONLY)
    (result,) = reconstruct(shipped_autoencoder, [prepared], DecodeConfig.fast())
    assert result.upload is prepared and result.decoded.formula == "NaCl" and not result.metrics_problem
    assert result.metrics["num_atoms_true"] == 8 and result.metrics["match"]
    assert result.metrics["position_error_actual_angstrom"] < 0.2
    assert result.trust.level in ("high", "medium", "low", "beyond calibration", "unknown") and result.trust.readings
    empty = Crystal(np.eye(3) * 5.64, np.zeros((0, 3)), [], "NaCl")
    (given,) = reconstruct(shipped_autoencoder, [prepared], decoded=[empty])
    assert given.decoded is empty and given.metrics["num_atoms_pred"] == 0 and not given.metrics["match"]
    refused = prepare(shipped_autoencoder, Crystal(np.eye(3) * 30.0, [[0, 0, 0]], [11], "big"), "big.cif")
    with pytest.raises(NesfError, match=r"^not encoded, nothing to reconstruct: big\.cif$"):
        reconstruct(shipped_autoencoder, [prepared, refused])


def test_the_app_and_the_cli_read_files_under_the_same_limits():
    import app.settings as app_settings
    from nesf.data import limits

    assert app_settings.MAX_ATOMS == limits.MAX_ATOMS == 400
    assert app_settings.MAX_UPLOAD_BYTES == limits.MAX_FILE_BYTES
