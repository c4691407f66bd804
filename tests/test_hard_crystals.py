"""Hard-crystal sampling: epoch orders weighted by each crystal's latest position loss, and its place in training."""

import pytest
import torch

from nesf.checkpoint import read_payload
from nesf.core.config import TrainConfig
from nesf.core.errors import NesfError
from nesf.training.hard_crystals import HardCrystalOrder, per_crystal_position_loss
from tests.test_train import make_trainer


def test_fraction_zero_is_a_plain_shuffle_of_every_crystal():
    order = HardCrystalOrder(7, 0.0)
    order.record(torch.tensor([3]), torch.tensor([50.0]))
    assert sorted(order.epoch_order().tolist()) == list(range(7))


def test_a_high_loss_crystal_is_drawn_in_proportion_to_its_loss():
    torch.manual_seed(0)
    order = HardCrystalOrder(10, 0.5)
    order.record(torch.arange(10), torch.tensor([1.0] * 9 + [100.0]))
    counts = [int((order.epoch_order() == 9).sum()) for _ in range(400)]
    orders_have_ten = all(len(order.epoch_order()) == 10 for _ in range(5))
    # uniform half: 5 of 10 distinct crystals (crystal 9 with chance 1/2); loss half: 5 draws, each 100/109
    assert orders_have_ten
    assert sum(counts) / len(counts) == pytest.approx(0.5 + 5 * 100 / 109, abs=0.15)


def test_crystals_not_yet_seen_count_at_the_mean_loss():
    torch.manual_seed(1)
    order = HardCrystalOrder(4, 0.75)
    order.record(torch.tensor([0, 1]), torch.tensor([1.0, 3.0]))  # unseen 2 and 3 weigh the mean, 2
    draws = torch.cat([order.epoch_order() for _ in range(2000)])
    share = torch.bincount(draws, minlength=4).float() / len(draws)
    # per epoch: 1 uniform pick (1/4 each) + 3 picks weighted 1 : 3 : 2 : 2
    expected = torch.tensor([0.25 + 3 / 8, 0.25 + 9 / 8, 0.25 + 6 / 8, 0.25 + 6 / 8]) / 4
    torch.testing.assert_close(share, expected, atol=0.02, rtol=0)


def test_per_crystal_position_loss_is_each_crystals_mean_squared_error():
    position = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 2.0, 0], [0, 0, 0]])
    targets = torch.zeros(4, 3)
    crystal = torch.tensor([0, 0, 2, 2])
    loss = per_crystal_position_loss(position, targets, crystal, 3)
    torch.testing.assert_close(loss, torch.tensor([(1 / 3) / 2, 0.0, (4 / 3) / 2]))


def test_bad_fractions_are_refused_with_their_value():
    with pytest.raises(NesfError, match=r"hard_crystal_fraction must lie in \[0, 1\), got 1.0"):
        TrainConfig(hard_crystal_fraction=1.0)
    with pytest.raises(NesfError, match=r"hard-crystal fraction must lie in \[0, 1\), got -0.1"):
        HardCrystalOrder(3, -0.1)


def hard_trainer(path, epochs):
    return make_trainer(path, epochs, train_options={"hard_crystal_fraction": 0.5})


def test_training_records_the_losses_and_a_resume_keeps_them(tmp_path):
    path = tmp_path / "run.pt"
    hard_trainer(path, epochs=2).fit()
    saved = read_payload(path)["training_state"]["hard_crystals"]
    seen = ~torch.isnan(saved["losses"])
    assert saved["fraction"] == 0.5 and seen.any() and (saved["losses"][seen] > 0).all()
    resumed = hard_trainer(path, epochs=3)
    resumed.resume(path)
    torch.testing.assert_close(resumed.hard_crystals.losses, saved["losses"], equal_nan=True)
    resumed.fit()
    assert read_payload(path)["epoch"] == 3
    with pytest.raises(NesfError, match="cover 3 crystals, the training split has 5"):
        HardCrystalOrder(5, 0.5).load_state_dict(saved)
