"""The cell-geometry module: inside-the-cell tests (numpy and torch agree) and the choice of frame."""

import numpy as np
import pytest
import torch

from nesf.core.lattice import (count_inside_cell, frame_holding, inside_cell_torch, inside_predicted_cell_torch,
                               lattice_from_parameters, lattice_from_parameters_torch)

TRICLINIC = ((3.2, 4.7, 5.9), (71.3, 84.2, 103.9))


def test_inside_cell_margin_is_in_angstrom_along_each_axis():
    lattice = torch.diag(torch.tensor([2.0, 4.0, 5.0]))[None]  # (1, 3, 3)
    points = torch.tensor([[1.0, 2.0, 2.5],    # centre
                           [2.4, 2.0, 2.5],    # 0.4 A past a: inside with a 0.5 A margin, outside with 0.3
                           [1.0, -0.6, 2.5],   # 0.6 A before b: outside
                           [1.0, 2.0, 5.45]])  # 0.45 A past c: inside with 0.5
    assert inside_cell_torch(points, lattice, 0.5).tolist() == [[True, True, False, True]]
    assert inside_cell_torch(points, lattice, 0.3).tolist() == [[True, False, False, False]]
    # per-cell points (B, G, 3) give the same answer
    assert inside_cell_torch(points[None], lattice, 0.5).tolist() == [[True, True, False, True]]


def test_numpy_and_torch_agree_on_a_triclinic_cell():
    lattice = lattice_from_parameters(*TRICLINIC)
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.2, 1.2, size=(200, 3)) @ lattice
    # a margin of 0 A in torch is a tolerance of 0 in numpy
    inside = inside_cell_torch(torch.from_numpy(points), torch.from_numpy(lattice)[None], 0.0)
    assert int(inside.sum()) == count_inside_cell(lattice, points, 0.0)
    ours = lattice_from_parameters_torch(torch.tensor([TRICLINIC[0]]), torch.tensor([TRICLINIC[1]]), vesta=True)
    np.testing.assert_allclose(ours[0].numpy(), lattice_from_parameters(*TRICLINIC, vesta=True), atol=1e-6)


@pytest.mark.parametrize("vesta", [False, True])
def test_the_frame_that_holds_the_atoms_is_chosen(vesta):
    lattice = lattice_from_parameters(*TRICLINIC, vesta=vesta)
    atoms = np.array([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [0.9, 0.1, 0.7]]) @ lattice
    np.testing.assert_allclose(frame_holding(*TRICLINIC, atoms, 0.02), lattice)
    # a cubic cell is the same in both frames; no atoms: the default frame wins the tie
    np.testing.assert_allclose(frame_holding((3, 3, 3), (90, 90, 90), np.zeros((0, 3)), 0.02), np.eye(3) * 3,
                               atol=1e-12)


def test_parameters_that_form_no_cell():
    assert frame_holding((3, 3, 3), (10, 10, 170), np.zeros((1, 3)), 0.02) is None
    points = torch.zeros((1, 4, 3)) + 100.0  # far outside any cell
    kept = inside_predicted_cell_torch(points, torch.tensor([[3.0, 3, 3]]), torch.tensor([[10.0, 10, 170]]), 0.5)
    assert kept.all()  # an impossible predicted cell filters nothing
    dropped = inside_predicted_cell_torch(points, torch.tensor([[3.0, 3, 3]]), torch.tensor([[90.0, 90, 90]]), 0.5)
    assert not dropped.any()
