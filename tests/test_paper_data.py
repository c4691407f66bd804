"""The paper's dataset pickles: geometry sanity of all 6,005 LCS6Å entries, and the restricted unpickler."""

import json
import os
import pickle
import shutil

import numpy as np
import pytest

from nesf.core.crystal import lattice_from_parameters
from nesf.core.errors import NesfError
from nesf.data.paper_data import load_restricted_pickle, read_paper_split

SPLIT_SIZES = {"train": 5418, "val": 286, "test": 301}


@pytest.fixture(scope="module")
def lim_l6(paper_dir):
    crystals = []
    for split, size in SPLIT_SIZES.items():
        found, vocab = read_paper_split(paper_dir / f"dataset_lim_l6_{split}")
        assert len(found) == size
        assert len(vocab) == 80
        crystals += found
    return crystals


def _min_periodic_distance(lattice, frac):
    """Smallest distance in Angstrom between two different atoms, or an atom and its own image (27 images)."""
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=float)  # (27, 3)
    diff = frac[:, None, :] - frac[None, :, :]                   # (N, N, 3)
    diff -= np.round(diff)
    cart = (diff[None] + shifts[:, None, None, :]) @ lattice     # (27, N, N, 3)
    dist = np.linalg.norm(cart, axis=-1)
    n = frac.shape[0]
    dist[13, np.arange(n), np.arange(n)] = np.inf                # shift (0, 0, 0) of an atom to itself
    return dist.min()


def test_all_lcs6a_entries_are_sane(lim_l6):
    assert len(lim_l6) == 6005
    for crystal in lim_l6:
        frac = crystal.frac_coords
        assert frac.min() >= -0.02 and frac.max() <= 1.02, crystal.id
        assert _min_periodic_distance(crystal.lattice, frac) > 0.5, crystal.id


def test_vesta_frame_count(lim_l6):
    """119 of the 6,005 cells only hold their atoms in the VESTA frame (a along x)."""
    vesta = 0
    for crystal in lim_l6:
        default = lattice_from_parameters(crystal.lengths_angstrom, crystal.angles_degrees)
        if not np.allclose(default, crystal.lattice, atol=1e-6):
            vesta += 1
            np.testing.assert_allclose(
                crystal.lattice, lattice_from_parameters(crystal.lengths_angstrom, crystal.angles_degrees, vesta=True),
                atol=1e-6)
    assert vesta == 119


class _Hostile:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("func,refused", [(os.system, "system"), (eval, "builtins.eval")])
def test_hostile_pickle_is_refused_without_running(tmp_path, func, refused):
    marker = tmp_path / "pwned"
    payload = f"touch {marker}" if func is os.system else f"open({str(marker)!r}, 'w').close()"
    folder = tmp_path / "dataset_evil_test"
    folder.mkdir()
    (folder / "dataset.pkl").write_bytes(pickle.dumps([_Hostile(func, payload)]))
    (folder / "dataset_attr.json").write_text(json.dumps({"num_species": 1, "sidx_to_z": [1], "mpid": ["x"]}))
    with pytest.raises(NesfError, match=rf"refusing pickle global .*{refused}"):
        read_paper_split(folder)
    with pytest.raises(NesfError, match="dataset.pkl"):
        load_restricted_pickle(folder / "dataset.pkl")
    assert not marker.exists()


def test_truncated_pickle(tmp_path, paper_dir):
    folder = tmp_path / "dataset_lim_l6_test"
    folder.mkdir()
    shutil.copyfile(paper_dir / "dataset_lim_l6_test" / "dataset_attr.json", folder / "dataset_attr.json")
    data = (paper_dir / "dataset_lim_l6_test" / "dataset.pkl").read_bytes()
    (folder / "dataset.pkl").write_bytes(data[: len(data) // 2])
    with pytest.raises(NesfError, match="not a readable dataset pickle"):
        read_paper_split(folder)


def test_missing_files(tmp_path):
    with pytest.raises(NesfError, match="missing dataset_attr.json"):
        read_paper_split(tmp_path)
