"""DistributedDataParallel on the CPU: `torchrun --standalone --nproc_per_node 2` running `nesf train` with gloo.

The two ranks run the CLI's own `main` through a small probe script (written to a temporary folder) that records,
per rank, the crystal ids it trained on and its final parameters, so the test can check that the ranks saw disjoint
halves of the training set and ended with the same weights (gradients were averaged).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASET = "YBCO13_fold0"

PROBE = '''
import json, os, sys
from nesf.cli import main
from nesf.training import trainer

fit = trainer.Trainer.fit


def recording_fit(self):
    status = fit(self)
    record = {"rank": self.rank, "world_size": self.world_size, "ids": list(self.train_tensors.ids),
              "epoch": self.epoch, "params": {k: v.detach().double().sum().item()
                                              for k, v in self.model.named_parameters()}}
    with open(os.path.join(os.environ["NESF_DDP_PROBE_DIR"], f"rank{self.rank}.json"), "w") as stream:
        json.dump(record, stream)
    return status


trainer.Trainer.fit = recording_fit
sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, data_dir):
    """(completed process, output folder) of one 2-process CPU training run."""
    root = tmp_path_factory.mktemp("ddp")
    out = root / "out"
    probe = root / "probe.py"
    probe.write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NESF_DDP_PROBE_DIR": str(root),
           "NESF_CACHE_DIR": str(root / "cache"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(probe),
               "train", "--dataset", DATASET, "--limit", "8", "--epochs", "2", "--batch-size", "8",
               "--validate-every", "1", "--device", "cpu", "--no-atlas", "--quiet", "--out-dir", str(out),
               "--progress-file", str(out / "p.jsonl"), "--data-dir", str(data_dir)]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    return result, root


@pytest.mark.slow  # two torchrun processes: ~13 s
def test_ddp_trains_on_disjoint_halves(ddp_run, data_dir):
    result, root = ddp_run
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((root / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    assert all(r["epoch"] == 2 for r in ranks)
    first, second = (set(r["ids"]) for r in ranks)
    assert len(first) == len(second) == 4 and not first & second
    from nesf.data.datasets import load_dataset

    expected = {c.id for c in load_dataset(DATASET, data_dir, cache_dir=root / "cache").crystals("train")[:8]}
    assert first | second == expected
    # gradients are all-reduced: both ranks end with the same weights
    assert ranks[0]["params"].keys() == ranks[1]["params"].keys()
    for name, value in ranks[0]["params"].items():
        assert ranks[1]["params"][name] == pytest.approx(value, rel=1e-6, abs=1e-6), name


def test_ddp_writes_one_checkpoint(ddp_run):
    result, root = ddp_run
    assert result.returncode == 0, result.stderr[-3000:]
    out = root / "out"
    assert sorted(p.name for p in out.iterdir()) == ["model.pt", "p.jsonl"]  # no stray temporary files
    events = [json.loads(line) for line in (out / "p.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events if e["event"] not in ("done", "step")] == ["start", "epoch", "epoch",
                                                                                  "checkpoint"]
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["epoch"] == 2 and len(payload["history"]) == 2
    assert payload["split_sizes"]["train"] == 90  # the dataset's split size, not one rank's share


def test_ddp_progress_file_has_one_writer(ddp_run):
    result, root = ddp_run
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in (root / "out" / "p.jsonl").read_text().splitlines()]
    # (steps within an epoch, every 2 s at most, come from rank 0 only as well)
    assert [e["event"] for e in events if e["event"] != "step"] == ["start", "epoch", "epoch", "checkpoint", "done"]
