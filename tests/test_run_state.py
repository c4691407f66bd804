"""A run's slim resume state (nesf.checkpoint.run_state): smaller, and it resumes the same run."""

from dataclasses import replace

import pytest
import torch

from nesf.checkpoint import Checkpoint, read_payload
from nesf.checkpoint.run_state import rewarm_factor, slim_run_state
from nesf.cli import main
from nesf.core.config import SamplingConfig, TrainConfig
from nesf.core.errors import NesfError
from nesf.training.trainer import Trainer
from tests.test_train import small_data


def make_trainer(path, epochs):
    """Three crystals, one step per epoch, validated (with the probe) only at the last epoch."""
    return Trainer(small_data(), sampling_config=SamplingConfig(global_interval=2.0),
                   train_config=TrainConfig(epochs=epochs, batch_size=3, validate_every=1000, checkpoint_every_s=0),
                   checkpoint_path=path)


@pytest.fixture(scope="module")
def run_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "run.pt"
    make_trainer(path, epochs=2).fit()
    return path


def test_bf16_moments_resume_to_the_same_optimizer_state_within_bf16_rounding(run_checkpoint, tmp_path):
    full = Checkpoint.load(run_checkpoint)
    slim_path = tmp_path / "slim.pt"
    slim_run_state(full, moments="bf16", weights="fp32").save(slim_path)
    # weights once (the only validation was the last epoch's, so the checkpoint's weights are the training weights) + bf16
    # moments: half of the full state's four copies, within the container's overhead
    assert slim_path.stat().st_size < 0.6 * run_checkpoint.stat().st_size

    reference, resumed = make_trainer(tmp_path / "a.pt", epochs=3), make_trainer(tmp_path / "b.pt", epochs=3)
    reference.resume(run_checkpoint)
    resumed.resume(slim_path)
    assert resumed.epoch == reference.epoch == 2 and resumed.global_step == reference.global_step
    assert all(torch.equal(value, reference.model.state_dict()[key])
               for key, value in resumed.model.state_dict().items())
    for index, moments in reference.optimizer.state_dict()["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            restored = resumed.optimizer.state_dict()["state"][index][key]
            assert restored.dtype == torch.float32  # cast back to the parameters' dtype on load
            torch.testing.assert_close(restored, moments[key], rtol=2 ** -8, atol=0)
    assert resumed.fit() == "done" and read_payload(tmp_path / "b.pt")["epoch"] == 3


def test_without_moments_the_learning_rate_is_rewarmed_after_resume(run_checkpoint, tmp_path):
    slim = slim_run_state(Checkpoint.load(run_checkpoint), moments="drop", rewarm_steps=4)
    assert slim.training_state.optimizer_state is None
    slim_path = tmp_path / "slim.pt"
    slim.save(slim_path)
    assert "optimizer_state" not in read_payload(slim_path)["training_state"]
    trainer = make_trainer(tmp_path / "run.pt", epochs=6)  # one step per epoch
    trainer.resume(slim_path)
    assert not trainer.optimizer.state_dict()["state"]
    trainer.fit()
    # constant 1e-3 (the step schedule halves only every 640 epochs), ramped over the 4 steps after the resume
    assert [record["lr"] for record in trainer.history[2:]] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert [rewarm_factor(step, 0) for step in (0, 5)] == [1.0, 1.0]


def test_best_weights_that_differ_from_the_training_weights_are_dropped(run_checkpoint):
    full = Checkpoint.load(run_checkpoint)
    full = replace(full, model_state={key: value + 1 for key, value in full.model_state.items()})
    slim = slim_run_state(full)
    assert slim.best_val_loss is None
    assert slim.model_state is slim.training_state.model_state


def test_slim_refuses_what_it_cannot_slim(run_checkpoint, tmp_path, capsys):
    full = Checkpoint.load(run_checkpoint)
    with pytest.raises(NesfError, match="unknown moments policy 'fp8'"):
        slim_run_state(full, moments="fp8")
    with pytest.raises(NesfError, match="moments were already dropped"):
        slim_run_state(slim_run_state(full, moments="drop"), moments="bf16")
    shipped = tmp_path / "shipped.pt"
    full.without_training_state().save(shipped)
    assert main(["slim", str(shipped), "--out", str(tmp_path / "x.pt")]) == 2
    assert "holds no training state (a shipped model?)" in capsys.readouterr().err
    assert main(["slim", str(run_checkpoint), "--out", str(run_checkpoint)]) == 2
    assert "--out must differ from the checkpoint" in capsys.readouterr().err
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch file")
    assert main(["slim", str(broken), "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "not a readable NeSF checkpoint" in err and err.count(str(broken)) == 1  # the file named once
    assert not (tmp_path / "x.pt").exists()


def test_slim_command_drops_the_moments_by_default(run_checkpoint, tmp_path, capsys):
    out = tmp_path / "state" / "slim.pt"
    assert main(["slim", str(run_checkpoint), "--out", str(out), "--weights", "fp32"]) == 0  # default: no moments
    assert f"{out}: " in capsys.readouterr().out
    payload = torch.load(out, map_location="cpu", weights_only=True)
    assert payload["training_state"]["slimmed"] == "drop" and payload["training_state"]["rewarm_steps"] == 100


def test_fp16_weights_halve_the_state_and_resume_in_fp32_from_the_rounded_weights(run_checkpoint, tmp_path, capsys):
    full = Checkpoint.load(run_checkpoint)
    fp32_path, fp16_path = tmp_path / "fp32.pt", tmp_path / "fp16.pt"
    slim_run_state(full, weights="fp32").save(fp32_path)
    assert main(["slim", str(run_checkpoint), "--out", str(fp16_path)]) == 0  # default: fp16 weights
    assert "weights: fp16" in capsys.readouterr().out
    assert fp16_path.stat().st_size < 0.6 * fp32_path.stat().st_size
    slim = read_payload(fp16_path)
    assert slim["training_state"]["slimmed"] == "drop, fp16 weights"
    assert slim["model_state"]["encoder.position_branch.0.weight"].dtype == torch.float16
    assert slim["model_state"]["encoder.position_branch.2.num_batches_tracked"].dtype == torch.int64  # as it was
    assert slim["best_val_loss"] == full.best_val_loss  # the same weights, rounded

    trainer = make_trainer(tmp_path / "run.pt", epochs=3)
    trainer.resume(fp16_path)
    for key, value in trainer.model.state_dict().items():
        original = full.training_state.model_state[key]
        assert value.dtype == original.dtype
        if value.is_floating_point():
            torch.testing.assert_close(value, original, rtol=2 ** -11, atol=1e-7)  # fp16's rounding, no more
    assert trainer.fit() == "done"
    resumed = read_payload(tmp_path / "run.pt")
    assert resumed["epoch"] == 3 and resumed["model_state"]["encoder.position_branch.0.weight"].dtype == torch.float32
    with pytest.raises(NesfError, match="unknown weight precision 'int8'"):
        slim_run_state(full, weights="int8")
