"""The structure decoder alone, on exact fields (the official `ground_truth` mode), and the batched NMS."""

import numpy as np
import pytest
import torch

from nesf.core.config import DecodeConfig
from nesf.core.crystal import lattice_from_parameters
from nesf.core.lattice import lattice_from_parameters_torch
from nesf.data.datasets import load_dataset
from nesf.model.batch import CrystalTensors
from nesf.model.decode import StructureDecoder, to_crystals
from nesf.model.fields import ExactFields
from nesf.model.nms import batched_nms
from tests.helpers import cscl, hexagonal_zno, rocksalt_mgo

VOCAB = [8, 12, 17, 30, 55]


def decode_exact(crystals, vocab, bbox_min, bbox_max, config, batch_size=64):
    tensors = CrystalTensors(crystals, vocab)
    decoder = StructureDecoder(bbox_min, bbox_max, config)
    out = []
    for start in range(0, len(crystals), batch_size):
        batch = tensors.batch(torch.arange(start, min(start + batch_size, len(crystals))))
        out += to_crystals(decoder.decode(ExactFields(batch, len(vocab)), torch.device("cpu")), vocab)
    return out


def assert_recovered(truths, decoded, tolerance_angstrom):
    for truth, result in zip(truths, decoded):
        assert result.num_atoms == truth.num_atoms, truth.id
        distances = np.linalg.norm(truth.cart_coords[:, None] - result.cart_coords[None], axis=-1)
        assert distances.min(axis=1).max() < tolerance_angstrom, truth.id
        assert np.array_equal(result.species[distances.argmin(axis=1)], truth.species), truth.id
        np.testing.assert_allclose(result.lengths_angstrom, truth.lengths_angstrom, atol=1e-4)
        # the same frame as the input (VESTA's for some triclinic cells), so the atoms sit inside the decoded cell
        np.testing.assert_allclose(result.lattice, truth.lattice, atol=1e-4, err_msg=truth.id)


@pytest.fixture(scope="module")
def lcs6a(data_dir):
    return load_dataset("lim_l6", data_dir)


# The paper preset's 64 field passes over the dataset box cost ~0.2 s a crystal on one core: every 4th test crystal
# (76, every crystal system of the split among them) keeps it at ~15 s; the fast preset decodes all 301.
@pytest.mark.parametrize("config, stride", [pytest.param(DecodeConfig(), 4, marks=pytest.mark.slow),  # ~15 s
                                            (DecodeConfig.fast(), 1)], ids=["paper", "fast"])
def test_exact_fields_recover_the_lcs6a_test_crystals(lcs6a, config, stride):
    truths = lcs6a.crystals("test")
    assert len(truths) == 301
    truths = truths[::stride]
    decoded = decode_exact(truths, lcs6a.species_vocab, lcs6a.bbox_min, lcs6a.bbox_max, config)
    assert_recovered(truths, decoded, tolerance_angstrom=0.01)


def test_exact_fields_recover_small_hand_built_crystals():
    crystals = [rocksalt_mgo(), cscl(), hexagonal_zno()]
    coords = np.concatenate([c.cart_coords for c in crystals])
    decoded = decode_exact(crystals, VOCAB, coords.min(0), coords.max(0), DecodeConfig())
    assert_recovered(crystals, decoded, tolerance_angstrom=1e-3)
    assert [c.formula for c in decoded] == ["MgO", "CsCl", "ZnO"]


def test_decoding_is_deterministic():
    crystals = [hexagonal_zno()]
    first = decode_exact(crystals, VOCAB, [0, 0, 0], [4, 4, 6], DecodeConfig())
    second = decode_exact(crystals, VOCAB, [0, 0, 0], [4, 4, 6], DecodeConfig())
    assert np.array_equal(first[0].cart_coords, second[0].cart_coords)


def test_convergence_flag_spends_fewer_field_evaluations():
    crystals = [rocksalt_mgo()]
    tensors = CrystalTensors(crystals, VOCAB)
    paper = StructureDecoder([0, 0, 0], [4.21] * 3, DecodeConfig()).decode(ExactFields(tensors.batch(), 5), "cpu")
    early = StructureDecoder([0, 0, 0], [4.21] * 3, DecodeConfig(convergence_tolerance=1e-3)).decode(
        ExactFields(tensors.batch(), 5), "cpu")
    assert early.particles_moved < paper.particles_moved / 10
    assert len(early.positions[0]) == len(paper.positions[0]) == 8


def reference_nms(positions, scores, radius, min_particles):
    """The official nms_single_data, in numpy."""
    order = np.argsort(scores, kind="stable")
    positions, scores = positions[order], scores[order]
    centres = []
    while len(positions):
        inner = np.sum((positions - positions[0]) ** 2, axis=1) < radius ** 2
        if inner.sum() >= min_particles:
            weights = np.exp(-(scores[inner] - scores[inner].min()))
            centres.append((weights[:, None] * positions[inner]).sum(0) / weights.sum())
        positions, scores = positions[~inner], scores[~inner]
    return np.array(centres).reshape(-1, 3)


def test_batched_nms_matches_the_sequential_reference():
    rng = np.random.default_rng(0)
    batch_positions, batch_scores, references = [], [], []
    for _ in range(3):
        centres = rng.uniform(0, 6, size=(5, 3))
        sizes = rng.integers(2, 30, size=5)
        positions = np.concatenate([c + rng.normal(scale=0.08, size=(n, 3)) for c, n in zip(centres, sizes)])
        positions = np.concatenate([positions, rng.uniform(0, 6, size=(10, 3))])  # scattered outliers
        scores = rng.random(len(positions))
        batch_positions.append(positions[:100])
        batch_scores.append(scores[:100])
        references.append(reference_nms(positions[:100], scores[:100], 0.5, 10))
    width = max(len(p) for p in batch_positions)
    padded = np.zeros((3, width, 3))
    padded_scores = np.zeros((3, width))
    valid = np.zeros((3, width), dtype=bool)
    for i, (p, s) in enumerate(zip(batch_positions, batch_scores)):
        padded[i, :len(p)], padded_scores[i, :len(p)], valid[i, :len(p)] = p, s, True
    centres, accepted = batched_nms(torch.from_numpy(padded), torch.from_numpy(padded_scores),
                                    torch.from_numpy(valid), radius=0.5, min_particles=10)
    for i, reference in enumerate(references):
        found = centres[i][accepted[i]].numpy()
        assert found.shape == reference.shape
        np.testing.assert_allclose(found, reference, atol=1e-9)


@pytest.mark.parametrize("vesta", [False, True])
def test_torch_lattice_matches_pymatgen(vesta):
    rng = np.random.default_rng(1)
    lengths = rng.uniform(2, 8, size=(20, 3))
    angles = rng.uniform(70, 110, size=(20, 3))
    ours = lattice_from_parameters_torch(torch.from_numpy(lengths), torch.from_numpy(angles), vesta=vesta).numpy()
    for i in range(20):
        np.testing.assert_allclose(ours[i], lattice_from_parameters(lengths[i], angles[i], vesta=vesta), atol=1e-9)


def test_nms_round_limit_bounds_spread_particles_and_keeps_the_first_clusters():
    rng = np.random.default_rng(1)
    spread = torch.from_numpy(rng.uniform(0, 20, size=(2, 3000, 3)))  # untrained fields: no clusters at all
    scores = torch.from_numpy(rng.random((2, 3000)))
    valid = torch.ones((2, 3000), dtype=torch.bool)
    unlimited, _ = batched_nms(spread, scores, valid, radius=0.5, min_particles=1)
    limited, accepted = batched_nms(spread, scores, valid, radius=0.5, min_particles=1, max_rounds=100)
    assert unlimited.shape[1] > 1000 and limited.shape[1] == 100 and bool(accepted.all())
    torch.testing.assert_close(limited, unlimited[:, :100])  # the same first clusters, in the same order
    assert DecodeConfig.fast().max_nms_rounds == 1024 and DecodeConfig().max_nms_rounds == 0
    with pytest.raises(ValueError, match="DecodeConfig.max_nms_rounds must not be negative, got -1"):
        DecodeConfig(max_nms_rounds=-1)


def test_wrap_to_cell_puts_decoded_atoms_in_the_canonical_frame():
    """Two decoded copies of one site on opposite faces and an atom just outside the cell: raw, as decoded (the
    paper); with `wrap_to_cell`, wrapped into [0, 1) and the periodic duplicate merged, as uploads are read."""
    from nesf.model.decode import DecodedBatch, to_crystals

    a = 4.0
    positions = np.array([[0.0, 0.0, 0.0], [a, 0.0, 0.0], [2.0, 2.0, 2.0], [2.0, 2.0, -0.2]])
    decoded = DecodedBatch([positions], [np.array([0, 0, 1, 1])], np.array([[a, a, a]]), np.array([[90.0] * 3]), 0)
    raw = to_crystals(decoded, [12, 8])[0]
    assert raw.num_atoms == 4 and raw.frac_coords.min() < 0
    wrapped = to_crystals(decoded, [12, 8], wrap_to_cell=True)[0]
    assert sorted(wrapped.species.tolist()) == [8, 8, 12]  # the Mg at x = a is the one at x = 0
    frac = wrapped.frac_coords
    assert frac.min() >= 0 and frac.max() < 1
    np.testing.assert_allclose(sorted(frac[:, 2][wrapped.species == 8]), [0.5, 0.95], atol=1e-9)
    np.testing.assert_allclose(wrapped.lattice, raw.lattice, atol=1e-9)
