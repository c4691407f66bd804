"""Configs validate themselves, name the bad field and value, and load old and foreign dicts."""

import logging

import pytest

from nesf.core.config import DecodeConfig, MapConfig, ModelConfig, SamplingConfig, TrainConfig
from nesf.core.errors import NesfError


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, r"TrainConfig\.epochs must be at least 1, got 0"),
    ({"batch_size": -2}, r"TrainConfig\.batch_size must be at least 1, got -2"),
    ({"learning_rate": 0.0}, r"TrainConfig needs learning_rate > 0, got 0\.0"),
    ({"lr_gamma": 1.5}, r"TrainConfig\.lr_gamma must lie in \(0, 1\], got 1\.5"),
    ({"validate_every": 0}, r"TrainConfig\.validate_every must be at least 1, got 0"),
    ({"weight_decay": -1e-3}, r"TrainConfig\.weight_decay must not be negative"),
    ({"latent_noise": -0.1}, r"TrainConfig\.latent_noise must not be negative, got -0\.1"),
    ({"lr_schedule": "linear"}, r"TrainConfig\.lr_schedule must be one of \('step', 'cosine'\), got 'linear'"),
])
def test_train_config_refuses_bad_values_by_name(kwargs, match):
    with pytest.raises(NesfError, match=match):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("cls, kwargs, match", [
    (DecodeConfig, {"particle_interval": 0.0}, r"DecodeConfig\.particle_interval must be positive, got 0\.0"),
    (DecodeConfig, {"nms_min_particles": 0}, r"DecodeConfig\.nms_min_particles must be at least 1, got 0"),
    (DecodeConfig, {"cell_margin": -0.5}, r"DecodeConfig\.cell_margin must not be negative, got -0\.5"),
    (SamplingConfig, {"species_query_fraction": 0.0}, r"SamplingConfig\.species_query_fraction must lie in \(0, 1\]"),
    (MapConfig, {"perplexity": 0.0}, r"MapConfig\.perplexity must be positive, got 0\.0"),
])
def test_other_configs_refuse_bad_values_by_name(cls, kwargs, match):
    with pytest.raises(NesfError, match=match):
        cls(**kwargs)


def test_decode_presets_by_name():
    assert DecodeConfig.preset("paper") == DecodeConfig()
    assert DecodeConfig.preset("fast") == DecodeConfig.fast()
    assert DecodeConfig.fast().particles_in_predicted_cell and not DecodeConfig().particles_in_predicted_cell
    with pytest.raises(NesfError, match=r"unknown decoding preset 'quick'; use one of paper, fast"):
        DecodeConfig.preset("quick")


def test_from_dict_round_trips_and_fills_missing_fields_with_defaults():
    config = TrainConfig(epochs=7, lr_schedule="cosine")
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert ModelConfig.from_dict(ModelConfig(position_channels=(8, 8)).to_dict()).position_channels == (8, 8)
    old = {k: v for k, v in DecodeConfig.fast().to_dict().items() if k != "wrap_to_cell"}  # an older checkpoint
    assert DecodeConfig.from_dict(old) == DecodeConfig.fast()


def test_from_dict_warns_about_unknown_keys_by_name(caplog):
    with caplog.at_level(logging.WARNING, logger="nesf.core.config"):
        config = SamplingConfig.from_dict({"global_interval": 2.0, "future_knob": 3})
    assert config == SamplingConfig(global_interval=2.0)
    assert "SamplingConfig: ignoring unknown field(s) future_knob" in caplog.text
    with caplog.at_level(logging.WARNING, logger="nesf.core.config"):
        TrainConfig.from_dict({"loss_weights": {"position": 1.0, "stress": 2.0}})
    assert "LossWeights: ignoring unknown field(s) stress" in caplog.text
