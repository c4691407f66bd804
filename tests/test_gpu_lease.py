"""The GPU-lease driver's pace reading: a work folder reused by a second call on the same machine holds the first
call's epoch events, which must not count towards the second call's pace."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "gpu_lease.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_lease", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_epochs_done_reads_only_the_events_written_since_the_launch(tmp_path):
    gpu_lease = load_script()
    progress = tmp_path / "lcs6a_progress.jsonl"
    earlier = [{"time": 100.0 + epoch, "event": "epoch", "epoch": epoch, "elapsed_s": 3.5 * epoch} for epoch in (1, 2, 3)]
    later = [{"time": 500.0 + epoch, "event": "epoch", "epoch": epoch, "elapsed_s": 4.0 * epoch} for epoch in (1, 2)]
    lines = [json.dumps(e) for e in earlier] + ["not json", json.dumps({"time": 499.0, "event": "start"})]
    progress.write_text("\n".join(lines + [json.dumps(e) for e in later]) + "\n")

    assert [e.time for e in gpu_lease.epochs_done(progress)] == [101.0, 102.0, 103.0, 501.0, 502.0]
    assert [(e.kind, e.epoch, e.elapsed_s) for e in gpu_lease.epochs_done(progress, since=400.0)] == [
        ("epoch", e["epoch"], e["elapsed_s"]) for e in later]
    assert gpu_lease.epochs_done(tmp_path / "missing.jsonl") == []


def test_the_run_gets_the_recipe_levers_that_were_given(tmp_path, monkeypatch):
    gpu_lease = load_script()
    launched = []
    monkeypatch.setattr(gpu_lease.subprocess, "Popen", lambda command, **_: launched.append(command))
    args = gpu_lease.argparse.Namespace(lr=5e-4, dropout=0.0, lengths_weight=5.0, angles_weight=100.0,
                                        hard_crystal_fraction=None, validate_every=10, device="cuda",
                                        data_dir=tmp_path, limit=0)
    gpu_lease.Lcs6aRun(args, tmp_path).launch(tmp_path / "start.pt", 40, source="init_from")
    command = launched[0]
    flags = {command[i]: command[i + 1] for i in range(len(command) - 1) if command[i].startswith("--")}
    assert flags["--lr"] == "0.0005" and flags["--dropout"] == "0.0"
    assert flags["--lengths-weight"] == "5.0" and flags["--angles-weight"] == "100.0"
    assert "--hard-crystal-fraction" not in command and flags["--init-from"] == str(tmp_path / "start.pt")
