"""The equal-budget ablation harness end to end on a tiny setting: two recipes side by side, scored at marks of
their CPU budget, a markdown table, and a second call that finds the work done."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "benchmarks" / "ablate.py"


@pytest.mark.slow
def test_two_recipes_train_for_the_same_budget_and_print_a_table(data_dir, tmp_path):
    # An untrained model's particles never converge: each scored crystal costs 64 field passes over the ~7,000
    # particles of the dataset box (~8 s of one core), at three marks per recipe; one crystal keeps that small.
    argv = [sys.executable, str(SCRIPT), "--recipes", "standin", "aux", "--budget-minutes", "0.1",
            "--eval-every-minutes", "0.05", "--train-count", "48", "--val-count", "1", "--recalibration-batches", "2",
            "--out-dir", str(tmp_path), "--data-dir", str(data_dir)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr + "".join(
        p.read_text()[-2000:] for p in tmp_path.glob("*.log"))
    for recipe in ("standin", "aux"):
        rows = [json.loads(line) for line in (tmp_path / f"{recipe}.jsonl").read_text().splitlines()]
        marks = [row["mark"] for row in rows]
        assert marks[0] == "start" and marks[-2:] == ["final", "final+bn"] and "0.05 min" in marks
        final = rows[-2]
        assert 0.1 <= final["train_cpu_min"] < 0.5  # stopped at the budget (a step may overshoot it)
        assert final["steps"] >= 1 and rows[0]["horizon_epochs"] >= 1
        for key in ("species_error_actual_percent", "atom_count_error_percent", "probe_presence_error", "val_loss"):
            assert key in final
    table = done.stdout
    assert "| recipe | mark | CPU min | epochs | species err %" in table
    assert sum(line.startswith("| standin | ") for line in table.splitlines()) == 3
    assert sum(line.startswith("| aux | ") for line in table.splitlines()) == 3

    again = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already done with these settings: standin, aux" in again.stdout


def test_unknown_recipe_is_refused_naming_the_known_ones(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--recipes", "magic", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "unknown recipe(s) magic; known: paper, standin" in done.stderr
