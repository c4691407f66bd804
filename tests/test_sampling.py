"""Training queries and targets: grid sizes of Supplementary Note 6 and nearest-atom targets against brute force."""

import numpy as np
import pytest
import torch

from nesf.core.config import SamplingConfig
from nesf.core.grids import box_grid, local_grid
from nesf.model.batch import CrystalTensors
from nesf.model.fields import nearest_atom
from nesf.model.sampling import QuerySampler
from tests.helpers import cscl, hexagonal_zno, random_crystal, rocksalt_mgo

VOCAB = [8, 12, 17, 30, 55]


def test_grids_follow_official_arange_convention():
    # The LCS6A bounding box gives the official 7,280 decoding particles at 0.5 A and 1,232 training points at 1 A.
    bbox_min, bbox_max = [-0.00766566, -0.00552928, 0.0], [11.64967439, 8.49575273, 5.96743293]
    assert box_grid(bbox_min, bbox_max, 0.5).shape == (7280, 3)
    assert box_grid(bbox_min, bbox_max, 1.0).shape == (1232, 3)
    assert local_grid(0.3, 1.2).shape == (64, 3)   # arange(-0.6, 0.6, 0.3): 4 per axis
    assert local_grid(0.1, 0.6).shape == (216, 3)  # arange(-0.3, 0.3, 0.1): 6 per axis
    assert torch.allclose(local_grid(0.3, 1.2).min(0).values, torch.tensor([-0.6] * 3))


def test_query_counts_per_crystal():
    crystals = [rocksalt_mgo(), cscl()]
    tensors = CrystalTensors(crystals, VOCAB)
    coords = np.concatenate([c.cart_coords for c in crystals])
    sampler = QuerySampler(coords.min(0), coords.max(0), SamplingConfig(), torch.device("cpu"))
    queries = sampler.sample(tensors.batch(), torch.Generator().manual_seed(0))
    global_count = sampler.global_grid.shape[0]
    counts = torch.bincount(queries.position_crystal)
    assert counts.tolist() == [global_count + 64 * 8, global_count + 64 * 2]
    assert torch.bincount(queries.species_crystal).tolist() == [216 * 8, 216 * 2]


def test_targets_are_vectors_to_the_nearest_atom_of_the_same_crystal():
    rng = np.random.default_rng(0)
    crystals = [random_crystal(rng, n, VOCAB, name=f"r{n}") for n in (1, 3, 7)]
    tensors = CrystalTensors(crystals, VOCAB)
    queries = torch.from_numpy(rng.uniform(-1, 6, size=(500, 3))).float()
    crystal_index = torch.from_numpy(rng.integers(0, 3, size=500))
    vectors, labels = nearest_atom(queries, crystal_index, tensors.batch())
    for q, c, v, label in zip(queries.numpy(), crystal_index.numpy(), vectors.numpy(), labels.numpy()):
        atoms = crystals[c].cart_coords
        nearest = np.argmin(np.linalg.norm(atoms - q, axis=1))
        np.testing.assert_allclose(v, atoms[nearest] - q, atol=1e-5)
        assert VOCAB[label] == crystals[c].species[nearest]


def test_periodic_targets_see_neighbouring_images():
    crystal = cscl()  # Cs at the origin, Cl at the body centre of a 4.12 A cube
    tensors = CrystalTensors([crystal], VOCAB)
    query = torch.tensor([[4.0, 4.0, 4.0]])  # next to the corner image of Cs at (4.12, 4.12, 4.12)
    in_cell, _ = nearest_atom(query, torch.tensor([0]), tensors.batch())
    periodic, label = nearest_atom(query, torch.tensor([0]), tensors.batch(), periodic=True)
    assert torch.allclose(in_cell, torch.tensor([[-1.94, -1.94, -1.94]]), atol=1e-5)  # to Cl at 2.06
    assert torch.allclose(periodic, torch.tensor([[0.12, 0.12, 0.12]]), atol=1e-5)  # to the Cs image
    assert VOCAB[int(label)] == 55


def test_global_in_cell_keeps_only_queries_near_the_cell():
    crystals = [cscl(), hexagonal_zno()]
    tensors = CrystalTensors(crystals, VOCAB)
    sampler = QuerySampler([0, 0, 0], [10, 10, 10], SamplingConfig(global_in_cell=True, global_sigma=0.0),
                           torch.device("cpu"))
    full = QuerySampler([0, 0, 0], [10, 10, 10], SamplingConfig(global_sigma=0.0), torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    fewer = sampler.sample(tensors.batch(), generator)
    more = full.sample(tensors.batch(), torch.Generator().manual_seed(0))
    assert fewer.position_queries.shape[0] < more.position_queries.shape[0] / 3
    for index, crystal in enumerate(crystals):
        points = fewer.position_queries[fewer.position_crystal == index].double().numpy()
        frac = points @ np.linalg.inv(crystal.lattice)
        pad = 1.0 / np.linalg.norm(crystal.lattice, axis=1)
        assert np.all(frac > -pad - 0.1) and np.all(frac < 1 + pad + 0.1)


def test_sampling_is_reproducible_with_a_seeded_generator():
    tensors = CrystalTensors([rocksalt_mgo()], VOCAB)
    sampler = QuerySampler([0, 0, 0], [4.21, 4.21, 4.21], SamplingConfig(), torch.device("cpu"))
    first = sampler.sample(tensors.batch(), torch.Generator().manual_seed(3))
    second = sampler.sample(tensors.batch(), torch.Generator().manual_seed(3))
    assert torch.equal(first.position_queries, second.position_queries)
    assert torch.equal(first.species_targets, second.species_targets)


@pytest.mark.parametrize("fraction, local_count, species_count", [(0.5, 32, 108), (0.25, 16, 54), (0.01, 1, 2)])
def test_query_fractions_draw_distinct_grid_points_per_atom(fraction, local_count, species_count):
    crystals = [rocksalt_mgo(), cscl()]
    tensors = CrystalTensors(crystals, VOCAB)
    coords = np.concatenate([c.cart_coords for c in crystals])
    config = SamplingConfig(local_query_fraction=fraction, species_query_fraction=fraction, local_sigma=0.0,
                            species_sigma=0.0)
    sampler = QuerySampler(coords.min(0), coords.max(0), config, torch.device("cpu"))
    queries = sampler.sample(tensors.batch(), torch.Generator().manual_seed(0))
    global_count = sampler.global_grid.shape[0]
    assert torch.bincount(queries.position_crystal).tolist() == [global_count + local_count * 8,
                                                                global_count + local_count * 2]
    assert torch.bincount(queries.species_crystal).tolist() == [species_count * 8, species_count * 2]
    # without jitter each species query is its atom plus one grid offset, and no offset repeats for an atom
    positions = tensors.batch().flat_atoms()[0]
    offsets = queries.species_queries.reshape(10, species_count, 3) - positions[:, None]
    for per_atom in offsets:
        assert len({tuple(row) for row in per_atom.round(decimals=4).tolist()}) == species_count
        assert per_atom.abs().max() <= 0.3 + 1e-5


def test_query_fraction_outside_0_1_is_refused():
    with pytest.raises(ValueError, match=r"species_query_fraction must lie in \(0, 1\], got 0"):
        SamplingConfig(species_query_fraction=0)
