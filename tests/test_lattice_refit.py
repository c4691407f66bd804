"""The lattice-head refit (`nesf.training.lattice_refit`): it lowers the lattice error on crystals it has not fitted,
touches nothing but the two heads, keeps the original heads when no epoch beats them, and refuses bad settings by
name."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice

from nesf.checkpoint import LatticeRefitRecord
from nesf.core.config import ModelConfig
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.inference.card import _lattice_refit_line
from nesf.model.batch import CrystalTensors
from nesf.model.network import NeSF
from nesf.training.lattice_refit import LatticeRefitConfig, refit_lattice_heads

VOCAB = [8, 12, 26, 55]


def cells(seed: int, count: int) -> list[Crystal]:
    """Orthorhombic and hexagonal cells of 3-6 A with two atoms: a lattice the heads can learn to read back."""
    rng = np.random.default_rng(seed)
    crystals = []
    for i in range(count):
        a, b, c = rng.uniform(3.0, 6.0, size=3)
        lattice = Lattice.hexagonal(a, c) if i % 4 == 0 else Lattice.orthorhombic(a, b, c)
        species = rng.choice(VOCAB, size=2)
        crystals.append(Crystal.from_frac(lattice.matrix, [[0, 0, 0], [.5, .5, .5]], species, f"cell{i}"))
    return crystals


@pytest.fixture(scope="module")
def splits():
    return CrystalTensors(cells(0, 96), VOCAB), CrystalTensors(cells(1, 24), VOCAB)


def untrained_model() -> NeSF:
    torch.manual_seed(0)
    return NeSF(ModelConfig(num_species=len(VOCAB), dropout=0.0)).eval()


def test_refit_lowers_unseen_lattice_error_and_touches_only_the_heads(splits):
    train, val = splits
    model = untrained_model()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    result = refit_lattice_heads(model, train, val, LatticeRefitConfig(epochs=60, validate_every=5))
    assert result.changed and 0 < result.length_epoch <= 60 and 0 < result.angle_epoch <= 60
    assert result.train_count == 96 and result.val_count == 24
    # an untrained head reads lengths of 3-6 A as ~0 and angles of 90-120 deg as ~0: the refit reads them back
    assert result.val_before.length_angstrom > 2.0 and result.val_before.angle_degrees > 50.0
    assert result.val_after.length_angstrom < 0.25 * result.val_before.length_angstrom
    assert result.val_after.angle_degrees < 0.1 * result.val_before.angle_degrees
    assert result.train_after.length_angstrom < result.train_before.length_angstrom
    after = model.state_dict()
    changed = {key for key in after if not torch.equal(after[key], before[key])}
    assert changed and all(key.startswith(("length_head.", "angle_head.")) for key in changed)
    assert not model.training


def test_heads_that_no_epoch_beats_are_kept(splits):
    train, val = splits
    model = untrained_model()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    # a learning rate of 1e4 throws the heads' weights far off in the first step: every epoch is worse on val
    config = LatticeRefitConfig(epochs=2, length_learning_rate=1e4, angle_learning_rate=1e4, validate_every=1)
    result = refit_lattice_heads(model, train, val, config)
    assert not result.changed and result.length_epoch == result.angle_epoch == 0
    assert result.val_after == result.val_before
    assert all(torch.equal(value, before[key]) for key, value in model.state_dict().items())


def test_each_head_is_kept_or_replaced_on_its_own(splits):
    train, val = splits
    model = untrained_model()
    angle_before = {key: value.clone() for key, value in model.angle_head.state_dict().items()}
    # the angle head's rate throws it off (kept as it was); the length head's fits (replaced)
    config = LatticeRefitConfig(epochs=20, angle_learning_rate=1e4, validate_every=5)
    result = refit_lattice_heads(model, train, val, config)
    assert result.length_epoch > 0 and result.angle_epoch == 0
    assert result.val_after.length_angstrom < result.val_before.length_angstrom
    assert result.val_after.angle_degrees == result.val_before.angle_degrees
    assert all(torch.equal(value, angle_before[key]) for key, value in model.angle_head.state_dict().items())


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs, batch size and validate-every must be at least 1"),
    ("angle_learning_rate", 0.0, "the learning rates must be positive"),
    ("length_learning_rate", -1.0, "the learning rates must be positive"),
    ("squared_weight", -1.0, "the squared weight >= 0"),
])
def test_bad_settings_are_refused_by_name(field, value, message):
    with pytest.raises(NesfError, match=message):
        LatticeRefitConfig(**{field: value})


def test_refit_without_validation_crystals_is_refused(splits):
    train, _ = splits
    with pytest.raises(NesfError, match="needs validation crystals"):
        refit_lattice_heads(untrained_model(), train, _Empty())


class _Empty:  # CrystalTensors refuses to hold no crystals; a caller's own container may
    def __len__(self):
        return 0


def test_card_line_names_the_chosen_epoch_and_the_change():
    refit = LatticeRefitRecord.from_dict({
        "dataset": "lim_l6", "config": LatticeRefitConfig().to_dict(),
        "result": {"length_epoch": 150, "angle_epoch": 0, "seconds": 24.0,
                   "val_before": {"length_angstrom": 0.0843, "angle_degrees": 0.576},
                   "val_after": {"length_angstrom": 0.0597, "angle_degrees": 0.129}}})
    line, = _lattice_refit_line(refit)
    assert "160 epochs, 24 s; length head from epoch 150, angle head kept as trained, chosen on validation" in line
    assert "0.0843 A / 0.576 deg -> 0.0597 A / 0.129 deg" in line and "`lim_l6` train" in line
    assert _lattice_refit_line(None) == []
