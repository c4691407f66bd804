"""The background training manager, against a fake trainer that speaks the progress protocol."""

import sys
import time
from pathlib import Path

import pytest

from app.training_runs import TrainingManager, TrainSpec, read_events
from nesf.core.errors import NesfError

FAKE = Path(__file__).with_name("fake_trainer.py")


def fake_command(extra=()):
    def build(spec, out_dir, progress_file):
        return [sys.executable, str(FAKE), "--epochs", str(spec.epochs), "--progress-file", str(progress_file),
                "--out-dir", str(out_dir), "--name", spec.name, *extra]
    return build


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_run_to_completion(tmp_path):
    manager = TrainingManager(tmp_path / "runs", tmp_path / "out", command=fake_command())
    status = manager.start(TrainSpec(name="tiny", datasets=("LCS6A",), epochs=4))
    assert status.running
    done = wait_until(lambda: (s := manager.status(status.run_id)).state != "running" and s)
    assert done.state == "done", done
    assert done.epoch == 4 and len(done.history) == 4
    assert Path(done.checkpoint).name == "tiny.pt"
    assert manager.active() is None
    assert [r.run_id for r in manager.runs()] == [status.run_id]


def test_only_one_run_at_a_time_and_cancel_keeps_last_checkpoint(tmp_path):
    manager = TrainingManager(tmp_path / "runs", tmp_path / "out", command=fake_command(["--epoch-s", "0.2"]))
    first = manager.start(TrainSpec(name="slow", datasets=("LCS6A",), epochs=200))
    with pytest.raises(NesfError, match="is running"):
        manager.start(TrainSpec(name="other", datasets=("LCS6A",), epochs=2))
    # a second manager (a reloaded page, a restarted server) finds the same run
    again = TrainingManager(tmp_path / "runs", tmp_path / "out", command=fake_command())
    assert again.active().run_id == first.run_id
    wait_until(lambda: manager.status(first.run_id).checkpoint)
    cancelled = manager.cancel(first.run_id, wait_s=10)
    assert cancelled.state == "cancelled"
    assert "last good checkpoint" in cancelled.message
    assert Path(cancelled.checkpoint).is_file()
    assert manager.active() is None
    manager.start(TrainSpec(name="after", datasets=("LCS6A",), epochs=1))  # the lock was released


def test_failed_and_crashed_runs_say_what_happened(tmp_path):
    manager = TrainingManager(tmp_path / "runs", tmp_path / "out", command=fake_command(["--fail-at", "2"]))
    run = manager.start(TrainSpec(name="nan", datasets=("X",), epochs=5))
    failed = wait_until(lambda: (s := manager.status(run.run_id)).state != "running" and s)
    assert failed.state == "failed" and "NaN" in failed.message

    manager.command = fake_command(["--crash-at", "1"])
    run = manager.start(TrainSpec(name="boom", datasets=("X",), epochs=5))
    crashed = wait_until(lambda: (s := manager.status(run.run_id)).state != "running" and s)
    assert crashed.state == "crashed"
    assert "fake crash" in crashed.message


@pytest.mark.parametrize(
    "spec, match",
    [
        (TrainSpec(name="bad name!", datasets=("A",)), "checkpoint name"),
        (TrainSpec(name="ok"), "at least one dataset"),
        (TrainSpec(name="ok", datasets=("A",), epochs=0), r"TrainConfig\.epochs must be at least 1, got 0"),
        (TrainSpec(name="ok", datasets=("A",), learning_rate=0), r"TrainConfig needs learning_rate > 0, got 0"),
        (TrainSpec(name="lcs6a", datasets=("A",)), "exists already"),
    ],
)
def test_bad_specs_are_refused(tmp_path, spec, match):
    manager = TrainingManager(tmp_path / "runs", tmp_path / "out", command=fake_command())
    with pytest.raises(NesfError, match=match):
        manager.start(spec, taken_names={"lcs6a"})
    assert manager.active() is None


def test_progress_reader_skips_partial_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"event": "start"}\nnot json\n{"event": "epoch", "epoch": 1}\n{"event": "ep')
    assert [e.kind for e in read_events(path)] == ["start", "epoch"]


def test_an_event_round_trips_through_its_file_and_what_is_no_event_is_skipped(tmp_path):
    from nesf.training.progress import EPOCH, Event, ProgressLog

    path = tmp_path / "p.jsonl"
    heard = []
    log = ProgressLog(path, heard.append)
    sent = Event(EPOCH, epoch=3, epochs=10, train_loss=0.5, val_loss=None, elapsed_s=12.0, eta_s=28.0)
    log(sent)
    log.stream.close()
    with open(path, "a") as f:
        f.write('{"event": "epoch", "epoch": "three"}\n{"no": "kind"}\n{"event": "done", "future_key": 1}\n')
    events = read_events(path)
    assert events[0] == heard[0] and events[0].time > 0 and events[0].val_loss is None
    assert events[0] == Event(EPOCH, time=events[0].time, epoch=3, epochs=10, train_loss=0.5, elapsed_s=12.0,
                              eta_s=28.0)
    assert [e.kind for e in events] == ["epoch", "done"] and events[1].terminal  # a bad field, no kind: skipped


def test_command_passes_the_run_as_data_with_only_the_hyperparameters_given(tmp_path, monkeypatch):
    """The app writes the run as a spec file beside its progress file and starts `nesf train --spec` on it; the
    spec holds only the hyperparameters given (the others stay the recipe's)."""
    from app.training_runs import default_command
    from nesf.training.run_spec import read_spec

    monkeypatch.delenv("NESF_TRAIN_COMMAND", raising=False)
    bare = default_command(TrainSpec(name="m", datasets=("A",)), tmp_path, tmp_path / "p.jsonl")
    assert bare[-4:] == ["nesf", "train", "--spec", str(tmp_path / "run.json")]
    run = read_spec(tmp_path / "run.json")
    assert (run.name, run.datasets, run.out_dir, run.progress_file) == ("m", ("A",), tmp_path, tmp_path / "p.jsonl")
    assert run.overrides == {}  # TrainConfig's defaults: nothing given
    default_command(TrainSpec(name="m", datasets=("A",), epochs=5, learning_rate=2e-3), tmp_path,
                    tmp_path / "p.jsonl")
    assert read_spec(tmp_path / "run.json").overrides == {"epochs": 5, "learning_rate": 2e-3}


def test_a_run_between_epochs_counts_its_steps():
    """The progress bar moves within an epoch (STEP events): 1.5 epochs of 4 done is 37.5 %."""
    from app.training_runs import RunStatus

    status = RunStatus(run_id="r", name="r", state="running", epochs=4)
    status.epoch, status.step, status.steps_per_epoch = 1, 5, 10
    assert status.fraction == pytest.approx(1.5 / 4)


def test_a_run_cancelled_before_its_first_epoch_is_not_offered_as_a_model(toy_checkpoint, tmp_path):
    """Its checkpoint holds near-random weights: listed nowhere as a model, and the panel says why and how to go on
    (a fine-tune cancelled in its first epoch still has its source's epochs: a model)."""
    from app.training_runs import RunStatus
    from app.ui.training_panel import _kept_checkpoint
    from nesf.checkpoint import list_checkpoints, read_checkpoint_info, read_payload, write_payload

    payload = read_payload(toy_checkpoint[0])
    untrained, tuned = tmp_path / "untrained.pt", tmp_path / "tuned.pt"
    write_payload({**payload, "epoch": 0, "init_from": None}, untrained)
    write_payload({**payload, "epoch": 0, "init_from": {"name": "src", "epochs": 5, "sha256": "0" * 64,
                                                        "wall_time_s": 1.0}}, tuned)
    assert not read_checkpoint_info(untrained).trained
    assert read_checkpoint_info(tuned).trained and read_checkpoint_info(tuned).epochs == 5
    assert {c.path.name for c in list_checkpoints([tmp_path]) if c.trained} == {"tuned.pt"}

    def said(path) -> str:
        return _kept_checkpoint(RunStatus("r", "r", "cancelled", checkpoint=str(path) if path else None))

    assert "weights are untrained" in said(untrained) and f"--resume {untrained}" in said(untrained)
    assert "`tuned.pt` is kept and selectable" in said(tuned)
    assert "nothing to select" in said(None) and "nothing to select" in said(tmp_path / "absent.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    assert "cannot be read" in said(tmp_path / "text.pt")


def test_a_run_cancelled_while_starting_says_cancelled_not_crashed(tmp_path):
    """Cancel pressed before the trainer installed its signal handler (still importing): the process dies of the
    signal without a word, and the run reads as cancelled, not as "stopped without saying why" (seen in a browser)."""
    def sleeper(spec, out_dir, progress_file):
        return [sys.executable, "-c", "import time; time.sleep(60)"]

    manager = TrainingManager(tmp_path / "runs", tmp_path / "out", command=sleeper)
    started = manager.start(TrainSpec(name="early", datasets=("LCS6A",), epochs=3))
    cancelled = manager.cancel(started.run_id, wait_s=10)
    assert cancelled.state == "cancelled", cancelled
    assert cancelled.message == "cancelled at epoch 0, before the trainer had started"
    assert manager.active() is None
    # a process that dies on its own, uncancelled, still reads as crashed
    crashed = manager.start(TrainSpec(name="crash", datasets=("LCS6A",), epochs=3))
    import os
    import signal
    os.kill(crashed.pid, signal.SIGKILL)
    assert wait_until(lambda: (s := manager.status(crashed.run_id)).state != "running" and s).state == "crashed"
