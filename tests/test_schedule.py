"""Learning-rate schedules as pure functions of progress: the paper's StepLR and warm-up + cosine."""

import pytest
import torch

from nesf.core.config import TrainConfig
from nesf.core.errors import NesfError
from nesf.model.schedule import learning_rate


def test_step_schedule_matches_torch_steplr():
    config = TrainConfig(learning_rate=1e-3, lr_halving_epochs=3, lr_gamma=0.5)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    reference = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
    for epoch in range(10):
        for fraction in (0.0, 0.5, 0.99):  # constant within an epoch
            assert learning_rate(config, epoch + fraction) == pytest.approx(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()


def test_cosine_warms_up_peaks_and_decays_to_the_final_fraction():
    config = TrainConfig(epochs=10, learning_rate=2e-3, lr_schedule="cosine", warmup_epochs=2,
                         lr_final_fraction=0.1)
    assert 0 < learning_rate(config, 0.0) < 1e-5
    assert learning_rate(config, 1.0) == pytest.approx(1e-3, rel=1e-3)  # half-way through the linear warm-up
    assert learning_rate(config, 2.0) == pytest.approx(2e-3)
    assert learning_rate(config, 6.0) == pytest.approx(2e-4 + 0.5 * 1.8e-3)  # half-way down the cosine
    assert learning_rate(config, 10.0) == pytest.approx(2e-4)
    assert learning_rate(config, 12.0) == pytest.approx(2e-4)  # past the end it stays at the floor
    rates = [learning_rate(config, 2 + 0.1 * i) for i in range(81)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize("kwargs, message", [
    ({"lr_schedule": "linear"}, r"lr_schedule must be one of \('step', 'cosine'\), got 'linear'"),
    ({"optimizer": "sgd"}, r"optimizer must be one of \('adam', 'adamw'\), got 'sgd'"),
    ({"learning_rate": 0.0}, r"learning_rate > 0"),
])
def test_train_config_refuses_unknown_settings(kwargs, message):
    with pytest.raises(NesfError, match=message):
        TrainConfig(**kwargs)
