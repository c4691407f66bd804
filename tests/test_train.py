"""Training end to end on the CPU: overfit two crystals and decode them back; resume; cancel."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from nesf.api import Autoencoder
from nesf.checkpoint import Checkpoint, read_payload
from nesf.core.config import DecodeConfig, ModelConfig, SamplingConfig, TrainConfig
from nesf.core.errors import NesfError
from nesf.evaluation.metrics import structure_metrics
from nesf.model.batch import batch_bounds
from nesf.training.trainer import TRAIN_MIN_BATCH, Trainer, TrainingData, bounding_box, recalibrate_batchnorm
from tests.helpers import bcc_iron, cscl, rocksalt_mgo


@pytest.mark.parametrize("config", [DecodeConfig(), DecodeConfig.fast()], ids=["paper", "fast"])
def test_short_cpu_training_overfits_and_decodes_back(toy_checkpoint, config):
    path, crystals = toy_checkpoint
    autoencoder = Autoencoder.from_checkpoint(path, "cpu")
    for truth, result in zip(crystals, autoencoder.reconstruct(crystals, config)):
        metrics = structure_metrics(truth, result)
        assert result.num_atoms == truth.num_atoms, (truth.id, result)
        assert sorted(result.species) == sorted(truth.species)
        assert metrics["position_error_actual_angstrom"] < 0.3
        assert metrics["lattice_length_error_angstrom"] < 0.3
        assert metrics["lattice_angle_error_degrees"] < 5.0


def test_checkpoint_holds_everything_to_rebuild_the_model(toy_checkpoint):
    path, _ = toy_checkpoint
    payload = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model_config", "vocab", "bbox_min", "bbox_max", "dataset", "history", "metrics", "train_config",
                "sampling_config", "decode_config", "training_state", "created", "wall_time_s"):
        assert key in payload
    assert payload["vocab"] == [8, 12, 17, 26, 55]
    assert payload["epoch"] == 100
    assert payload["history"][-1]["train_loss"] < payload["history"][0]["train_loss"] / 10
    assert "training_state" not in Checkpoint.load(path).without_training_state().to_payload()


def small_data():
    crystals = [cscl(), bcc_iron(), rocksalt_mgo()]
    bbox_min, bbox_max = bounding_box(crystals)
    return TrainingData("small", crystals, crystals[:1], [8, 12, 17, 26, 55], bbox_min, bbox_max)


def make_trainer(path, epochs, train_options: dict | None = None, **kwargs):
    return Trainer(small_data(), sampling_config=SamplingConfig(global_interval=2.0),
                   train_config=TrainConfig(epochs=epochs, batch_size=3, validate_every=1, checkpoint_every_s=0,
                                            **(train_options or {})),
                   checkpoint_path=path, **kwargs)


def test_resume_continues_from_the_saved_epoch(tmp_path):
    path = tmp_path / "run.pt"
    first = make_trainer(path, epochs=2)
    first.fit()
    resumed = make_trainer(path, epochs=4)
    resumed.resume(path)
    assert resumed.epoch == 2
    resumed.fit()
    payload = read_payload(path)
    assert payload["epoch"] == 4
    assert [record["epoch"] for record in payload["history"]] == [1, 2, 3, 4]
    assert resumed.optimizer.state_dict()["state"]  # Adam moments came back


def test_eta_after_resume_follows_this_runs_pace(tmp_path):
    path = tmp_path / "run.pt"
    make_trainer(path, epochs=1).fit()
    payload = read_payload(path)
    payload["wall_time_s"] = 1e6  # a long earlier run must not inflate the new run's per-epoch estimate
    torch.save(payload, path)
    events = []
    resumed = make_trainer(path, epochs=3, progress=events.append)
    resumed.resume(path)
    resumed.fit()
    etas = [event.eta_s for event in events if event.kind == "epoch"]
    assert len(etas) == 2 and etas[-1] == 0
    assert 0 < etas[0] < 600
    assert read_payload(path)["wall_time_s"] > 1e6  # total wall time still accumulates


def test_initialize_from_starts_from_the_weights_with_a_new_schedule(tmp_path):
    source = tmp_path / "source.pt"
    make_trainer(source, epochs=2).fit()
    tuned = make_trainer(tmp_path / "tuned.pt", epochs=1)
    tuned.initialize_from(source)
    source_state = read_payload(source)["training_state"]["model_state"]
    assert all(torch.equal(value, source_state[key]) for key, value in tuned.model.state_dict().items())
    assert tuned.epoch == 0 and not tuned.optimizer.state_dict()["state"]  # new run: fresh Adam, epoch 0
    tuned.fit()
    payload = read_payload(tmp_path / "tuned.pt")
    assert payload["epoch"] == 1
    assert payload["init_from"]["name"] == "small" and payload["init_from"]["epochs"] == 2
    assert len(payload["init_from"]["sha256"]) == 64
    # a fine-tune of the fine-tune records the whole chain behind its weights: 2 + 1 epochs, both runs' hours
    again = make_trainer(tmp_path / "again.pt", epochs=1)
    again.initialize_from(tmp_path / "tuned.pt")
    again.fit()
    chain = read_payload(tmp_path / "again.pt")["init_from"]
    assert chain["epochs"] == 3
    assert chain["wall_time_s"] == pytest.approx(payload["wall_time_s"] + payload["init_from"]["wall_time_s"])
    assert chain["cpu_time_s"] == pytest.approx(payload["cpu_time_s"] + payload["init_from"]["cpu_time_s"])
    # a link that never recorded its CPU time leaves the chain's unknown rather than short
    tuned_checkpoint = Checkpoint.load(tmp_path / "tuned.pt")
    older = replace(tuned_checkpoint, init_from=replace(tuned_checkpoint.init_from, cpu_time_s=None))
    assert "cpu_time_s" not in older.lineage() and older.lineage()["epochs"] == 3


def test_initialize_from_may_change_the_dropout_but_not_a_layer(tmp_path):
    source = tmp_path / "source.pt"
    make_trainer(source, epochs=1).fit()
    tuned = make_trainer(tmp_path / "tuned.pt", epochs=1, model_config=ModelConfig(dropout=0.0))
    tuned.initialize_from(source)  # dropout holds no weights
    assert {layer.p for layer in tuned.model.modules() if isinstance(layer, torch.nn.Dropout)} == {0.0}
    tuned.fit()
    assert read_payload(tmp_path / "tuned.pt")["model_config"]["dropout"] == 0.0
    wider = make_trainer(tmp_path / "wider.pt", epochs=1, model_config=ModelConfig(latent_size=64))
    with pytest.raises(NesfError, match=r"source\.pt: model config differs from this run's"):
        wider.initialize_from(source)


def test_initialize_from_may_add_a_query_encoding_to_raw_xyz_weights(tmp_path):
    source = tmp_path / "source.pt"
    make_trainer(source, epochs=1).fit()
    encoded = make_trainer(tmp_path / "encoded.pt", epochs=1,
                           model_config=ModelConfig(positional_encoding_frequencies=3))
    encoded.initialize_from(source)  # widened: zero columns for the sin/cos entries (tests/test_model.py)
    encoded.fit()
    payload = read_payload(tmp_path / "encoded.pt")
    assert payload["model_config"]["positional_encoding_frequencies"] == 3
    assert payload["init_from"]["widened_query_encoding"] == 3 and payload["init_from"]["epochs"] == 1
    other = make_trainer(tmp_path / "other.pt", epochs=1, model_config=ModelConfig(positional_encoding_frequencies=5))
    with pytest.raises(NesfError, match=r"encoded\.pt: only a raw-xyz model can be widened to a query encoding; "
                                        r"this one already encodes with 3 frequencies; cannot start from it"):
        other.initialize_from(tmp_path / "encoded.pt")


def test_initialize_from_may_widen_the_field_mlps(tmp_path):
    source = tmp_path / "source.pt"
    make_trainer(source, epochs=1).fit()
    wide_fields = ModelConfig(position_field_channels=(256,) + (160,) * 7, species_field_channels=(256, 144))
    wide = make_trainer(tmp_path / "wide.pt", epochs=1, model_config=wide_fields)
    wide.initialize_from(source)  # same function, new units with zero outgoing weights (tests/test_model.py)
    wide.fit()
    payload = read_payload(tmp_path / "wide.pt")
    assert payload["model_config"]["position_field_channels"] == (256,) + (160,) * 7
    assert payload["init_from"]["widened_field_channels"] == {
        "position_field_channels": [256] + [128] * 7, "species_field_channels": [256, 128]}
    narrow = make_trainer(tmp_path / "narrow.pt", epochs=1)
    with pytest.raises(NesfError, match=r"wide\.pt: position_field can only be widened at equal depth, each layer no "
                                        r"narrower: \(256, 160, .*\) -> \(256, 128, .*\); cannot start from it"):
        narrow.initialize_from(tmp_path / "wide.pt")


def test_dropout_must_be_a_probability():
    with pytest.raises(NesfError, match=r"ModelConfig\.dropout must be in \[0, 1\), got 1\.0"):
        ModelConfig(dropout=1.0)


def test_initialize_from_refuses_another_vocabulary(toy_checkpoint, tmp_path):
    trainer = make_trainer(tmp_path / "run.pt", epochs=1)
    trainer.data = TrainingData("other", trainer.data.train, [], [8, 12, 17, 26], trainer.data.bbox_min,
                                trainer.data.bbox_max)
    with pytest.raises(NesfError, match=r"toy\.pt: species vocabulary differs from the training data's"):
        trainer.initialize_from(toy_checkpoint[0])


def test_cancel_at_an_epoch_end_saves_that_epoch(tmp_path):
    path = tmp_path / "run.pt"
    make_trainer(path, epochs=1).fit()
    before = read_payload(path)["training_state"]["model_state"]
    events = []
    steps = {"count": 0}

    def stop_after_one_step():
        steps["count"] += 1
        return steps["count"] >= 1

    cancelled = make_trainer(path, epochs=5, progress=events.append, should_stop=stop_after_one_step)
    cancelled.resume(path)
    assert cancelled.fit() == "cancelled"
    payload = read_payload(path)  # still a complete, loadable checkpoint
    assert events[0].kind == "start"
    # one batch per epoch here: the single step completed epoch 2, and the checkpoint says so
    assert payload["epoch"] == 2 and payload["training_state"]["step_in_epoch"] == 0
    assert [record["epoch"] for record in payload["history"]] == [1, 2]
    after = payload["training_state"]["model_state"]
    assert any(not torch.equal(after[key], before[key]) for key in before)


def test_cancel_mid_epoch_records_the_steps_taken_and_resume_finishes_the_epoch(tmp_path):
    path = tmp_path / "run.pt"
    config = TrainConfig(epochs=2, batch_size=2, validate_every=1, checkpoint_every_s=0)  # 3 steps per epoch
    data = small_data()
    data.train = data.train * 2
    calls = {"count": 0}

    def stop_after_four_steps():
        calls["count"] += 1
        return calls["count"] >= 4

    trainer = Trainer(data, sampling_config=SamplingConfig(global_interval=2.0), train_config=config,
                      checkpoint_path=path, should_stop=stop_after_four_steps)
    assert trainer.fit() == "cancelled"
    payload = read_payload(path)
    assert payload["epoch"] == 1
    assert payload["training_state"]["step_in_epoch"] == 1 and payload["training_state"]["global_step"] == 4
    saved = payload["training_state"]["model_state"]
    assert all(torch.equal(saved[key], value) for key, value in trainer.model.state_dict().items())

    resumed = Trainer(data, sampling_config=SamplingConfig(global_interval=2.0), train_config=config,
                      checkpoint_path=path)
    resumed.resume(path)
    assert resumed.fit() == "done"
    payload = read_payload(path)
    assert payload["epoch"] == 2 and payload["training_state"]["global_step"] == 6  # 2 steps left of epoch 2


def test_without_validation_the_checkpoint_holds_the_latest_weights(tmp_path):
    crystals = [cscl(), bcc_iron(), rocksalt_mgo()]
    bbox_min, bbox_max = bounding_box(crystals)
    data = TrainingData("no-val", crystals, [], [8, 12, 17, 26, 55], bbox_min, bbox_max)
    path = tmp_path / "run.pt"
    first = Trainer(data, sampling_config=SamplingConfig(global_interval=2.0), checkpoint_path=path,
                    train_config=TrainConfig(epochs=1, batch_size=3, validate_every=1, checkpoint_every_s=0))
    first.fit()
    after_first_epoch = read_payload(path)["model_state"]
    trainer = Trainer(data, sampling_config=SamplingConfig(global_interval=2.0), checkpoint_path=path,
                      train_config=TrainConfig(epochs=4, batch_size=3, validate_every=1, checkpoint_every_s=0))
    trainer.resume(path)
    trainer.fit()
    payload = read_payload(path)
    assert payload["best_val_loss"] is None
    final = trainer.model.state_dict()
    assert all(torch.equal(payload["model_state"][key], value) for key, value in final.items())
    assert any(not torch.equal(payload["model_state"][key], after_first_epoch[key]) for key in after_first_epoch)


def test_cosine_schedule_and_adamw_drive_the_optimizer(tmp_path):
    config = TrainConfig(epochs=4, batch_size=3, validate_every=1, checkpoint_every_s=0, lr_schedule="cosine",
                         warmup_epochs=1, learning_rate=1e-3, optimizer="adamw", weight_decay=0.05)
    trainer = Trainer(small_data(), sampling_config=SamplingConfig(global_interval=2.0), train_config=config,
                      checkpoint_path=tmp_path / "run.pt")
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 0.05
    trainer.fit()
    # one step per epoch, taken at progress 0, 1, 2, 3: warm-up start, then the cosine from its peak
    rates = [record["lr"] for record in trainer.history]
    assert rates[0] < 1e-5
    assert rates[1:] == pytest.approx([1e-3, 0.5 * 1e-3 * (1 + np.cos(np.pi / 3)), 0.5 * 1e-3 * (1 + np.cos(2 * np.pi / 3))])


def test_validation_records_the_composition_probe(tmp_path):
    trainer = make_trainer(tmp_path / "run.pt", epochs=1)
    trainer.fit()
    record = trainer.history[-1]
    assert "val_probe_presence_error" in record and "val_probe_element_set_match_percent" in record


def test_batchnorm_recalibration_sets_running_stats_to_the_batch_statistics():
    data = small_data()
    trainer = Trainer(data, model_config=ModelConfig(dropout=0.0), sampling_config=SamplingConfig(global_interval=2.0),
                      train_config=TrainConfig(epochs=1, batch_size=3))
    norm = trainer.model.encoder.position_branch[2]
    assert isinstance(norm, torch.nn.BatchNorm1d)
    recalibrate_batchnorm(trainer.model, trainer.train_tensors, trainer.sampler, batch_size=3, batches=1,
                          generator=torch.Generator().manual_seed(0))
    positions = trainer.train_tensors.batch().flat_atoms()[0]
    with torch.no_grad():
        features = trainer.model.encoder.position_branch[:2](positions)  # Linear -> ReLU: the BatchNorm's input
    assert torch.allclose(norm.running_mean, features.mean(0), atol=1e-5)
    assert torch.allclose(norm.running_var, features.var(0, unbiased=True), atol=1e-5)
    assert norm.momentum == 0.1 and not norm.training  # momentum restored, model left in eval mode


def test_recalibration_flag_keeps_the_recalibrated_final_weights(tmp_path):
    path = tmp_path / "run.pt"
    trainer = Trainer(small_data(), sampling_config=SamplingConfig(global_interval=2.0), checkpoint_path=path,
                      train_config=TrainConfig(epochs=2, batch_size=3, validate_every=1, checkpoint_every_s=0,
                                               bn_recalibration_batches=1))
    assert trainer.fit() == "done"
    payload = read_payload(path)
    assert payload["history"][-1]["bn_recalibration"] == 1 and "val_loss" in payload["history"][-1]
    final = trainer.model.state_dict()
    assert all(torch.equal(payload["model_state"][key], value) for key, value in final.items())


def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    trainer = make_trainer(path, epochs=1)
    trainer.fit()
    before = path.read_bytes()

    def exploding_save(obj, stream, *args, **kwargs):
        stream.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", exploding_save)
    with pytest.raises(OSError, match="disk full"):
        trainer.save()
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cpu_time_accumulates_over_a_resume(tmp_path):
    path = tmp_path / "run.pt"
    make_trainer(path, epochs=1).fit()
    first = read_payload(path)["cpu_time_s"]
    assert first > 0
    resumed = make_trainer(path, epochs=2)
    resumed.resume(path)
    resumed.fit()
    payload = read_payload(path)
    assert payload["cpu_time_s"] > first
    # the last epoch's record counts the first run's time too; validation and the final save come after it
    assert first < payload["history"][-1]["cpu_s"] <= payload["cpu_time_s"]


def test_batch_bounds_merge_a_lone_last_crystal_into_the_batch_before():
    assert batch_bounds(33, 32, 2) == [(0, 33)]
    assert batch_bounds(34, 32, 2) == [(0, 32), (32, 34)]
    assert batch_bounds(65, 32, 2) == [(0, 32), (32, 65)]
    assert batch_bounds(33, 32) == [(0, 32), (32, 33)]  # evaluation batches keep a lone crystal
    assert batch_bounds(1, 32, 2) == [(0, 1)]


def test_a_training_set_one_past_a_whole_number_of_batches_trains(tmp_path):
    """4 crystals at batch 3 once ended each epoch with a batch of one, which training-mode BatchNorm refuses."""
    data = small_data()
    data = TrainingData("small", data.train + [cscl()], data.val, data.vocab, data.bbox_min, data.bbox_max)
    trainer = Trainer(data, sampling_config=SamplingConfig(global_interval=2.0),
                      train_config=TrainConfig(epochs=2, batch_size=3, validate_every=1, checkpoint_every_s=0,
                                               bn_recalibration_batches=2),
                      checkpoint_path=tmp_path / "run.pt")
    assert trainer.train_tensors.num_batches(3, TRAIN_MIN_BATCH) == 1
    assert trainer.fit() == "done" and trainer.epoch == 2 and trainer.global_step == 2


def test_a_single_training_crystal_is_refused_with_the_reason():
    data = small_data()
    one = TrainingData("one", data.train[:1], data.val, data.vocab, data.bbox_min, data.bbox_max)
    with pytest.raises(NesfError, match=r"one: 1 training crystal\(s\); training needs at least 2 \(BatchNorm"):
        Trainer(one, train_config=TrainConfig(epochs=1, batch_size=3))


def test_steps_within_an_epoch_are_reported(tmp_path, monkeypatch):
    """STEP events (steps done within the running epoch) come between epochs, throttled by STEP_EVENT_EVERY_S."""
    import nesf.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "STEP_EVENT_EVERY_S", 0.0)
    events = []
    make_trainer(tmp_path / "run.pt", epochs=2, progress=events.append).fit()
    kinds = [e.kind for e in events if e.kind in ("step", "epoch")]
    assert kinds == ["step", "epoch", "step", "epoch"]
    steps = [e for e in events if e.kind == "step"]
    assert [(e.epoch, e.step, e.steps, e.epochs) for e in steps] == [(0, 1, 1, 2), (1, 1, 1, 2)]
    monkeypatch.setattr(trainer_module, "STEP_EVENT_EVERY_S", 1e9)  # throttled: none within a short run
    quiet = []
    make_trainer(tmp_path / "quiet.pt", epochs=1, progress=quiet.append).fit()
    assert not [e for e in quiet if e.kind == "step"]
