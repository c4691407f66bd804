"""Equivalent settings and other cells of one crystal (nesf.data.frames), augmentation over them
(nesf.training.augment), frame selection by the model's fields (nesf.model.frame_select), re-uploads
(nesf.inference.reupload) and trust readings (nesf.inference.trust)."""

import numpy as np
import pytest
import torch

from nesf.api import Autoencoder
from nesf.core.config import TrainConfig
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.core.canonical import role_ranks
from nesf.data.frames import (cell_variants, consistent_frame, equivalent_frames, is_hexagonal_cell,
                               orthohexagonal_cell)
from nesf.evaluation.metrics import structure_match
from nesf.inference.reupload import cell_kind_variant, reupload
from nesf.inference.trust import TrustCalibration, calibrate, nearest_distances
from nesf.model.model_range import ModelRange
from nesf.training.augment import ORIGINAL_SHARE, VariantPool, crystal_variants
from tests.helpers import ROCKSALT_FRAC, bcc_iron, cscl, cubic, hexagonal_zno, rocksalt_mgo


def zincblende() -> Crystal:
    frac = [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0],
            [.25, .25, .25], [.25, .75, .75], [.75, .25, .75], [.75, .75, .25]]
    return cubic(5.41, frac, [30] * 4 + [16] * 4, "ZnS")


def _sites(crystal: Crystal) -> set:
    return {(int(z), *np.round(np.mod(f, 1.0), 3) % 1.0) for z, f in zip(crystal.species, crystal.frac_coords)}


def test_rocksalt_has_two_settings_cation_or_anion_at_the_origin():
    frames = equivalent_frames(rocksalt_mgo())
    assert len(frames) == 2
    assert [f.meta["frame"] for f in frames] == [0, 1]
    at_origin = [{int(z) for z, f in zip(c.species, c.frac_coords) if np.allclose(f, 0)} for c in frames]
    assert at_origin == [{12}, {8}]
    for frame in frames:
        np.testing.assert_allclose(frame.lattice, frames[0].lattice)
        assert structure_match(frames[0], frame)[0]


def _at_origin(crystal: Crystal) -> set:
    frac = np.mod(crystal.frac_coords, 1.0)
    return {int(z) for z, f in zip(crystal.species, frac) if np.all(np.minimum(f, 1 - f) < 1e-6)}


def test_role_ranks_put_the_fewest_then_the_most_electropositive_element_first():
    np.testing.assert_array_equal(role_ranks([8, 22, 8, 38, 8]), [2, 1, 2, 0, 2])  # SrTiO3: Sr, Ti, O
    np.testing.assert_array_equal(role_ranks([17, 11]), [1, 0])   # NaCl: Na before Cl, though heavier
    np.testing.assert_array_equal(role_ranks([12, 8]), [0, 1])    # MgO: Mg before O, though heavier
    np.testing.assert_array_equal(role_ranks([18, 11]), [1, 0])   # Ar has no Pauling value: last among equals


def test_consistent_frame_puts_every_rock_salt_cation_at_the_origin_whatever_its_setting_or_weight():
    mgo = rocksalt_mgo()  # Mg at the origin
    mgo_shifted = Crystal.from_frac(mgo.lattice, mgo.frac_coords + 0.5, mgo.species, "MgO")  # O at the origin
    nacl = cubic(5.64, ROCKSALT_FRAC, [17] * 4 + [11] * 4, "NaCl")  # Cl at the origin
    assert [_at_origin(c) for c in (mgo, mgo_shifted, nacl)] == [{12}, {8}, {17}]
    for crystal, cation in ((mgo, 12), (mgo_shifted, 12), (nacl, 11)):
        frame = consistent_frame(crystal)
        assert _at_origin(frame) == {cation} and frame.meta["frame"] == "consistent"
        np.testing.assert_allclose(frame.lattice, crystal.lattice)
        assert structure_match(crystal, frame)[0]


def test_consistent_frame_of_shifted_perovskites_puts_the_a_cation_at_the_origin():
    srtio3 = cubic(3.905, [[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]], [38, 22, 8, 8, 8], "SrTiO3")
    for shift in ([0, 0, 0], [.5, .5, .5]):  # the standard settings: Sr or Ti at the origin
        given = Crystal.from_frac(srtio3.lattice, srtio3.frac_coords + shift, srtio3.species, "SrTiO3")
        frame = consistent_frame(given)
        assert _at_origin(frame) == {38}
        assert _sites(frame) == _sites(srtio3)


def test_consistent_frame_of_a_cell_without_symmetry_puts_its_first_role_at_the_origin():
    rng = np.random.default_rng(3)
    crystal = Crystal.from_frac(np.diag([3.1, 4.3, 5.7]), rng.random((3, 3)), [8, 12, 26], "P1")
    frame = consistent_frame(crystal)  # P1 leaves the origin free: Mg (one atom each, the lowest electronegativity)
    assert _at_origin(frame) == {12}
    np.testing.assert_allclose(frame.lattice, crystal.lattice)
    assert structure_match(crystal, frame)[0]  # shifted, and turned by an axis change that keeps the cell


def test_zincblende_has_eight_settings_both_tetrahedral_sublattices_included():
    frames = equivalent_frames(zincblende())
    assert len(frames) == 8  # which element at the fcc sites x which tetrahedral holes x origin at 0 or 1/2
    # S at (1/4, 1/4, 1/4) or (3/4, 3/4, 3/4) with Zn at the origin: the enantiomorphic pair
    with_zn_at_origin = [c for c in frames if (30, 0.0, 0.0, 0.0) in _sites(c)]
    assert {(16, .25, .25, .25) in _sites(c) for c in with_zn_at_origin} == {True, False}
    assert len({frozenset(_sites(c)) for c in frames}) == len(frames)  # no setting listed twice


def test_a_cell_without_symmetry_gains_its_inverted_setting_only_when_asked():
    rng = np.random.default_rng(3)
    lattice = np.diag([4.0, 4.4, 3.6]) + rng.normal(scale=0.2, size=(3, 3))
    crystal = Crystal.from_frac(lattice, rng.random((3, 3)), [8, 12, 26], "P1")
    proper = equivalent_frames(crystal, improper=False)
    both = equivalent_frames(crystal)
    assert _sites(proper[0]) == _sites(crystal)
    # P1 leaves the origin free: the setting with the rarest (lightest) element's atom at 0, and its inversion
    assert len(proper) == 2 and (8, 0.0, 0.0, 0.0) in _sites(proper[1])
    assert len(both) == 3
    inverted = both[2]
    np.testing.assert_allclose(np.sort(np.mod(-proper[1].frac_coords, 1.0).round(6) % 1.0, axis=0),
                               np.sort(inverted.frac_coords.round(6) % 1.0, axis=0), atol=1e-5)


def test_orthohexagonal_cell_of_hexagonal_zno():
    zno = hexagonal_zno()
    assert is_hexagonal_cell(zno)
    cell = orthohexagonal_cell(zno)
    a, c = 3.25, 5.21
    np.testing.assert_allclose(sorted(cell.lengths_angstrom), sorted([a, np.sqrt(3) * a, c]), atol=1e-6)
    np.testing.assert_allclose(cell.angles_degrees, [90, 90, 90], atol=1e-6)
    assert cell.num_atoms == 8 and cell.meta["cell"] == "orthohexagonal"
    assert cell.volume_angstrom3 == pytest.approx(2 * zno.volume_angstrom3)
    assert structure_match(zno, cell)[0]
    assert orthohexagonal_cell(rocksalt_mgo()) is None


def test_cell_variants_list_each_cell_once_with_its_name():
    variants = cell_variants(rocksalt_mgo())
    kinds = [v.meta["cell"] for v in variants]
    assert kinds[0] == "primitive standard" and len(set(kinds)) == len(kinds)
    primitive = variants[0]
    assert primitive.num_atoms == 2
    np.testing.assert_allclose(primitive.angles_degrees, [60, 60, 60], atol=1e-4)
    assert structure_match(rocksalt_mgo(), primitive)[0]
    assert cell_variants(hexagonal_zno())[0].meta["cell"] == "orthohexagonal"


def _range(crystals, max_length=6.0):
    vocab = sorted({int(z) for c in crystals for z in c.species})
    return ModelRange((max_length,) * 3, 60.0, 90.0, 28, (0.0,) * 3, (max_length,) * 3, tuple(vocab))


def test_training_variants_fit_the_range_and_start_with_the_crystal_as_stored():
    mgo = rocksalt_mgo()
    variants = crystal_variants(mgo, "frames+cells", _range([mgo]))
    assert variants[0] is mgo
    kinds = {v.meta.get("cell", "conventional") for v in variants}
    assert kinds == {"conventional", "primitive standard"}  # Niggli's 60-degree cell equals the primitive one
    assert all(not _range([mgo]).problems(v) for v in variants)
    frames_only = crystal_variants(mgo, "frames", _range([mgo]))
    assert len(frames_only) == 2
    # a range without 60-degree angles keeps the primitive cell out
    narrow = ModelRange((6.0,) * 3, 89.0, 91.0, 28, (0.0,) * 3, (6.0,) * 3, (8, 12))
    assert len(crystal_variants(mgo, "frames+cells", narrow)) == 2


def test_variant_draws_keep_the_stored_crystal_at_its_share():
    pool = VariantPool([None] * 6, torch.tensor([0, 1, 5]), torch.tensor([1, 4, 1]))
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([pool.draw(torch.tensor([0, 1, 2]), generator) for _ in range(4000)])
    assert (draws[:, 0] == 0).all() and (draws[:, 2] == 5).all()  # single-variant crystals: always as stored
    second = draws[:, 1]
    assert set(second.tolist()) == {1, 2, 3, 4}
    assert (second == 1).float().mean().item() == pytest.approx(ORIGINAL_SHARE, abs=0.03)
    for other in (2, 3, 4):
        assert (second == other).float().mean().item() == pytest.approx((1 - ORIGINAL_SHARE) / 3, abs=0.03)


def test_train_config_refuses_an_unknown_augmentation():
    with pytest.raises(NesfError, match=r"TrainConfig\.augmentation must be one of .*got 'rotations'"):
        TrainConfig(augmentation="rotations")


def test_reupload_gives_the_same_crystal_in_the_canonical_cell():
    rng = np.random.default_rng(0)
    for crystal in (rocksalt_mgo(), cscl(), zincblende()):
        uploaded = reupload(crystal, rng)
        assert uploaded.id == crystal.id
        np.testing.assert_allclose(uploaded.lengths_angstrom, crystal.lengths_angstrom, atol=1e-4)
        assert structure_match(crystal, uploaded)[0]


def test_measured_uploads_hold_a_ci_subset_of_the_same_files(toy_checkpoint):
    """The card's "re-uploaded" figures carry those of their first `ci_count` uploads, which CI reproduces from
    `reuploaded(crystals[:ci_count])` (one generator drawn in order: the same files)."""
    from nesf.inference.reupload import evaluate_uploads, measure_uploads, reuploaded

    model = Autoencoder.from_checkpoint(toy_checkpoint[0], device="cpu")
    crystals = [cscl(), bcc_iron(), Crystal.from_frac(cscl().lattice, [[.5, .5, .5], [0, 0, 0]], cscl().species, "s")]
    measured, _ = measure_uploads(model, crystals, "test", model.decode_preset("fast"), seed=3, ci_count=2)
    whole = measured["test[re-uploaded]"]
    assert whole["count"] == 3 and whole["ci_subset"]["count"] == 2
    again, _ = evaluate_uploads(model, reuploaded(crystals[:2], 3), model.decode_preset("fast"))
    for key in ("match_rate_percent", "atom_count_error_percent", "position_error_actual_angstrom"):
        assert again[key] == pytest.approx(whole["ci_subset"][key], abs=1e-6), key


def test_cell_kind_variant_converts_or_says_none():
    assert cell_kind_variant(rocksalt_mgo(), "primitive standard").num_atoms == 2
    assert cell_kind_variant(rocksalt_mgo(), "orthohexagonal") is None
    assert cell_kind_variant(hexagonal_zno(), "orthohexagonal").num_atoms == 8
    with pytest.raises(NesfError, match="unknown cell kind 'supercell'"):
        cell_kind_variant(cscl(), "supercell")


def test_frame_selection_picks_the_setting_the_model_was_trained_on(toy_checkpoint):
    """The toy model saw CsCl with Cs at the origin only; given Cl at the origin it moves back to Cs."""
    model = Autoencoder.from_checkpoint(toy_checkpoint[0], device="cpu")
    shifted = Crystal.from_frac(cscl().lattice, [[.5, .5, .5], [0, 0, 0]], cscl().species, "CsCl shifted")
    choice = model.select_frames([shifted])[0]
    assert choice.candidates == 2 and choice.changed
    assert (55, 0.0, 0.0, 0.0) in _sites(choice.crystal)
    assert choice.score.score < choice.given_score.score
    assert choice.score.position_residual_angstrom < 0.3
    given = model.given_frames([cscl()])[0]
    assert not given.changed and given.score == given.given_score
    np.testing.assert_allclose(given.latent, model.encode([cscl()])[0], atol=1e-5)


def test_frame_selection_finds_the_setting_inside_the_box(toy_checkpoint):
    """Cl at (1, 1, 1) lies past the toy model's box (0..2.06 A); the setting with Cs at the origin fits."""
    model = Autoencoder.from_checkpoint(toy_checkpoint[0], device="cpu")
    outside = Crystal.from_frac(cscl().lattice, [[.5, .5, .5], [1, 1, 1]], cscl().species, "CsCl outside")
    with pytest.raises(NesfError, match="CsCl outside: outside this model's range: atoms lie 2.06 A beyond"):
        model.check(outside)
    choice = model.select_frames([outside])[0]
    assert (55, 0.0, 0.0, 0.0) in _sites(choice.crystal) and choice.candidates == 1
    gold = Crystal.from_frac(np.eye(3) * 4, [[0, 0, 0]], [79], "Au")
    with pytest.raises(NesfError, match=r"Au: outside this model's range: element\(s\) Au not among"):
        model.select_frames([gold])
    big = Crystal.from_frac(np.eye(3) * 9, [[0, 0, 0], [.5, .5, .5]], [55, 17], "big CsCl")
    with pytest.raises(NesfError, match="big CsCl: outside this model's range: a = 9.00 A"):
        model.select_frames([big])


def test_calibration_bins_by_quantile_and_reads_a_new_value():
    values = np.arange(10, dtype=float)          # 0..9
    matched = values < 5                          # the low half matched
    calibration = calibrate("field_residual", values, matched, "synthetic", bins=2)
    assert calibration.upper_edges == (4.5, 9.0) and calibration.match_rates == (1.0, 0.0)
    assert calibration.counts == (5, 5) and calibration.max_value == 9.0
    low, high, beyond = calibration.reading(1.0), calibration.reading(7.0), calibration.reading(100.0)
    assert (low.match_rate, low.level, high.level) == (1.0, "high", "low")
    assert low.sentence() == ("field residual 1: uploads with a value at most 4.5 matched 10.0 times in 10 "
                              "(5 crystals)")
    assert high.sentence() == ("field residual 7: uploads with a value between 4.5 and 9 matched 0.0 times in 10 "
                               "(5 crystals)")
    # past the largest calibrated value: no number, a state of its own
    assert beyond.match_rate is None and beyond.level == "beyond calibration"
    assert beyond.sentence().startswith("field residual 100: beyond what was calibrated (no calibration upload had "
                                        "a value above 9)")
    assert np.isnan(calibration.rate(100.0)) and calibration.rate(7.0) == 0.0
    assert TrustCalibration.from_dict(calibration.to_dict()) == calibration
    with pytest.raises(ValueError, match="one match flag per value"):
        calibrate("field_residual", [1.0, 2.0], [True], "x")


def test_calibration_is_monotone_pooling_bins_that_would_rise():
    """A higher residual never reads as more trustworthy: bins whose rate rises are pooled (weighted by count)."""
    values = np.arange(30, dtype=float)
    matched = np.array([1] * 8 + [0] * 2 + [0] * 6 + [1] * 4 + [0] * 10, bool)  # bins of 10: 0.8, 0.4, 0.0
    assert calibrate("field_residual", values, matched, "s", bins=3).match_rates == pytest.approx((0.8, 0.4, 0.0))
    rising = np.array([1] * 8 + [0] * 2 + [0] * 8 + [1] * 2 + [1] * 6 + [0] * 4, bool)  # 0.8, 0.2, 0.6
    rates = calibrate("field_residual", values, rising, "s", bins=3).match_rates
    assert rates == pytest.approx((0.8, 0.4, 0.4))  # the last two pooled: (0.2 + 0.6) / 2
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def test_calibration_reliability_per_source_out_of_fold_and_its_verdict():
    """With sources, each source's Brier score is read out of fold, beside the base rate's; a signal that separates
    matches is informative, a random one is not (so the app shows it without a probability)."""
    rng = np.random.default_rng(0)
    values = rng.random(400)
    matched = values < 0.5
    sources = np.where(np.arange(400) < 300, "test", "novel")
    good = calibrate("field_residual", values, matched, "s", sources=sources)
    names = [r.source for r in good.reliability]
    assert names == ["test", "novel", "all"] and [r.count for r in good.reliability] == [300, 100, 400]
    overall = good.reliability[-1]
    assert overall.matched_rate == pytest.approx(matched.mean())
    assert overall.brier < 0.06 < overall.base_rate_brier and good.informative
    noise = calibrate("latent_distance", rng.random(400), matched, "s", sources=sources)
    assert not noise.informative and noise.reliability[-1].brier >= noise.reliability[-1].base_rate_brier
    assert TrustCalibration.from_dict(noise.to_dict()) == noise
    # good on the pooled set, misleading on one source of 30 or more crystals: no probability shown
    mixed_values = np.where(sources == "test", values, rng.random(400))
    mixed = calibrate("latent_distance", mixed_values, matched, "s", sources=sources)
    test_row, novel_row, overall_row = mixed.reliability
    assert overall_row.brier < overall_row.base_rate_brier and novel_row.brier > novel_row.base_rate_brier + 0.02
    assert not mixed.informative


def test_nearest_distances_against_brute_force():
    rng = np.random.default_rng(1)
    latents, reference = rng.normal(size=(7, 5)), rng.normal(size=(30, 5))
    distance, index = nearest_distances(latents, reference)
    brute = np.linalg.norm(latents[:, None] - reference[None], axis=2)
    np.testing.assert_allclose(distance, brute.min(1), atol=1e-9)
    assert index.tolist() == brute.argmin(1).tolist()


def test_map_trust_colors_by_each_crystals_calibrated_match_rate(toy_checkpoint):
    """The map's trust coloring: the field residual's bin rate (in %) of each crystal, the bare residual without a
    calibration; in batches or not, the same values."""
    from nesf.inference.trust import map_trust

    model = Autoencoder.from_checkpoint(toy_checkpoint[0], device="cpu")
    crystals = [cscl(), bcc_iron(), Crystal.from_frac(cscl().lattice, [[.5, .5, .5], [0, 0, 0]], cscl().species, "s")]
    residuals = [choice.score.score for choice in model.given_frames(crystals)]
    raw, label = map_trust(model, crystals, batch_size=2)
    np.testing.assert_allclose(raw, residuals, rtol=1e-4)  # batches of 2 and of 3
    assert label == "field residual (not calibrated for this model)"
    low, middle, high = sorted(residuals)   # bin edges between them, so batching's last digits move no crystal
    calibration = TrustCalibration("field_residual", ((low + middle) / 2, (middle + high) / 2, high + 1),
                                   (0.9, 0.5, 0.2), (10, 10, 10), "synthetic")
    model.trust_calibration = lambda signal, refined=True: calibration if signal == "field_residual" else None
    rates, label = map_trust(model, crystals, batch_size=1)
    assert label == "expected match rate from the field residual (%)"
    np.testing.assert_allclose(rates, [100 * calibration.reading(r).match_rate for r in residuals])
    assert sorted(rates) == [20, 50, 90]
