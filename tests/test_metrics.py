"""Table 1 metrics against hand-computed values."""

import math

import numpy as np
import pytest

from nesf.core.crystal import Crystal
from nesf.evaluation.metrics import (TABLE1_KEYS, TABLE1_LABELS, format_table1, paper_reference, structure_metrics,
                                     table1_metrics)
from tests.helpers import cscl, rocksalt_mgo


def shifted(crystal: Crystal, shift) -> Crystal:
    return Crystal(crystal.lattice, crystal.cart_coords + np.asarray(shift), crystal.species, crystal.id)


def test_identical_structures_have_zero_error_and_match():
    m = structure_metrics(rocksalt_mgo(), rocksalt_mgo())
    assert m["atom_count_correct"] and m["match"]
    assert m["position_error_actual_angstrom"] == 0 and m["species_error_actual_percent"] == 0
    assert m["rmsd"] == pytest.approx(0, abs=1e-6)


def test_position_error_is_the_mean_distance_to_the_nearest_atom():
    truth = cscl()
    pred = shifted(truth, [0.1, 0.0, 0.0])
    m = structure_metrics(truth, pred)
    assert m["position_error_actual_angstrom"] == pytest.approx(0.1)
    assert m["position_error_detected_angstrom"] == pytest.approx(0.1)


def test_missing_and_extra_atoms_count_on_the_right_side():
    truth = rocksalt_mgo()
    missing = Crystal(truth.lattice, truth.cart_coords[:7], truth.species[:7])  # one O dropped
    m = structure_metrics(truth, missing)
    assert not m["atom_count_correct"]
    # the dropped O at (2.105, 2.105, 2.105) is 2.105 A from its nearest neighbours; 7 others are exact
    assert m["position_error_actual_angstrom"] == pytest.approx(2.105 / 8)
    assert m["position_error_detected_angstrom"] == pytest.approx(0.0)
    assert m["species_error_actual_percent"] == pytest.approx(100 / 8)  # its nearest detected atom is Mg
    assert m["species_error_detected_percent"] == pytest.approx(0.0)


def test_wrong_species_and_lattice_errors():
    truth = cscl()
    pred = Crystal(truth.lattice * 1.01, truth.cart_coords, [55, 55], "p")
    m = structure_metrics(truth, pred)
    assert m["species_error_actual_percent"] == pytest.approx(50.0)
    assert m["lattice_length_error_angstrom"] == pytest.approx(0.0412)
    assert m["lattice_angle_error_degrees"] == pytest.approx(0.0, abs=1e-9)


def test_dataset_metrics_pool_atoms_over_crystals():
    truths = [cscl(), rocksalt_mgo()]
    preds = [shifted(cscl(), [0.2, 0, 0]), rocksalt_mgo()]
    m = table1_metrics(truths, preds)
    assert m["atom_count_error_percent"] == 0.0
    assert m["position_error_actual_angstrom"] == pytest.approx(0.2 * 2 / 10)  # pooled over 10 atoms, not per crystal
    assert m["match_rate_percent"] == 100.0
    text = format_table1(m, {"atom_count_error_percent": 6.35})
    for label in TABLE1_LABELS.values():
        assert label in text
    assert "(paper 6.35, Table 1)" in text


def test_paper_reference_matches_the_split_to_its_table():
    # the paper's LCS6A NeSF column: Table 1 (test), S1 (train), S2 (val)
    assert paper_reference("lim_l6", "test") == ("Table 1", dict(zip(TABLE1_KEYS, (
        6.35, 0.1161, 0.1632, 14.78, 16.11, 0.05, 0.19))))
    table, val = paper_reference("lim_l6", "val")
    assert table == "Table S2" and val["position_error_actual_angstrom"] == 0.1503
    assert val["atom_count_error_percent"] == 6.33
    table, train = paper_reference("lim_l6", "train")
    assert table == "Table S1" and train["position_error_actual_angstrom"] == 0.1172
    assert paper_reference("YBCO13_fold7", "test")[1]["atom_count_error_percent"] == 12.00  # fold means
    assert paper_reference("perov_5", "test") == ("Table 1", {})  # not in the paper
    # additions to the train split alone leave val and test the base's: its figures apply; a merge of splits does not
    assert paper_reference("lim_l6+hex_prototypes", "val") == paper_reference("lim_l6", "val")
    assert paper_reference("lim_l6+perov_5", "test") == ("Table 1", {})
    text = format_table1({"atom_count_error_percent": 5.0}, val, "Table S2")
    assert "(paper 6.33, Table S2)" in text


def test_empty_reconstruction_counts_as_wrong_and_unmatched():
    truth = cscl()
    empty = Crystal(truth.lattice, np.zeros((0, 3)), [], "empty")
    m = structure_metrics(truth, empty)
    assert not m["atom_count_correct"] and not m["match"]
    assert math.isinf(m["position_error_actual_angstrom"])
    assert table1_metrics([truth], [empty])["atom_count_error_percent"] == 100.0


def test_metrics_refuse_mismatched_lists():
    with pytest.raises(ValueError, match="equal, non-empty"):
        table1_metrics([cscl()], [])
