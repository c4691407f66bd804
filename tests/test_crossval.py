"""Cross-validation (`nesf crossval`): the paper's YBCO-like protocol on a tiny setting (2 folds, 4 crystals, 2
epochs), its resumption at every level, and the fold means against numpy."""

import json
import math

import numpy as np
import pytest
import torch

from nesf.checkpoint import read_payload
from nesf.cli import main
from nesf.core.errors import NesfError
from nesf.training.crossval import Crossval, CrossvalConfig, fold_means, format_table, parse_folds, read_results

TINY = dict(family="YBCO13", folds=(0, 1), recipe="standin", epochs=2, bn_recalibration_batches=1, limit=2)


def test_parse_folds():
    assert parse_folds("0-19") == tuple(range(20))
    assert parse_folds("3,0-2,3") == (3, 0, 1, 2)
    for bad in ("", "a", "2-x", "-1"):
        with pytest.raises(NesfError, match="give fold numbers like 0-19"):
            parse_folds(bad)


def test_crossval_command_parses_back_to_its_config(tmp_path):
    """`run_spec.crossval_command` (the GPU driver's way to start folds) writes the command line that `nesf crossval`
    parses back into the same config; fields at their defaults are left out."""
    from nesf.cli import build_parser
    from nesf.cli.training import crossval_config
    from nesf.training.run_spec import crossval_command

    config = CrossvalConfig(folds=(3, 7), epochs=40, compile=False, limit=5, decode="fast", train_only=True)
    words = crossval_command(config, tmp_path / "cv", progress_file=tmp_path / "p.jsonl", threads=1, device="cpu",
                             data_dir=tmp_path / "data", quiet=True)
    assert words[1:5] == ["-m", "nesf", "crossval", "YBCO13"] and "--recipe" not in words
    args = build_parser().parse_args(words[3:])
    assert crossval_config(args) == config
    assert (args.out_dir, args.progress_file, args.threads, args.device, args.data_dir, args.quiet) == (
        tmp_path / "cv", tmp_path / "p.jsonl", 1, "cpu", tmp_path / "data", True)
    table = build_parser().parse_args(crossval_command(CrossvalConfig(), tmp_path / "cv", table_only=True)[3:])
    assert table.table_only and crossval_config(table) == CrossvalConfig()


def test_fold_means_are_the_mean_over_folds_skipping_non_finite():
    results = {k: {"fold": k, "metrics": {"atom_count_error_percent": v, "position_error_actual_angstrom": p}}
               for k, (v, p) in enumerate([(0.0, 0.1), (20.0, math.inf), (40.0, 0.3)])}
    means = fold_means(results)
    assert means["atom_count_error_percent"] == {"mean": 20.0, "std": pytest.approx(np.std([0, 20, 40])),
                                                 "folds": 3}
    assert means["position_error_actual_angstrom"]["mean"] == pytest.approx(0.2)  # the inf fold left out
    assert means["position_error_actual_angstrom"]["folds"] == 2
    table = format_table(results, "YBCO13")
    assert "| **mean of 3** | **20** ± 16 |" in table
    assert table.splitlines()[-1].startswith("| paper (20 folds) | 12.0 | 0.2631 |")


def test_tiny_crossval_trains_scores_and_resumes(tmp_path, data_dir):
    out = tmp_path / "cv"
    config = CrossvalConfig(**TINY)
    # a run stopped during fold 0 leaves that fold's resumable checkpoint and no result
    calls = {"n": 0}

    def stop_soon():
        calls["n"] += 1
        return calls["n"] >= 2

    assert Crossval(config, out, data_dir=data_dir, device="cpu", should_stop=stop_soon).run() == "cancelled"
    assert not (out / "fold0.json").exists()
    assert "training_state" in read_payload(out / "fold0.pt")

    assert Crossval(config, out, data_dir=data_dir, device="cpu").run() == "done"
    results = read_results(out)
    assert sorted(results) == [0, 1]
    for fold, result in results.items():
        payload = read_payload(out / f"fold{fold}.pt")
        assert "training_state" not in payload and payload["epoch"] == 2  # finished folds keep weights only
        assert payload["train_config"]["keep_best_by_validation"] is False  # the paper: last weights on YBCO
        assert result["dataset"] == f"YBCO13_fold{fold}" and result["test_count"] == 2
        assert 0.0 <= result["metrics"]["atom_count_error_percent"] <= 100.0
    table = json.loads((out / "table.json").read_text())
    assert table["folds_done"] == [0, 1]
    mean = np.mean([r["metrics"]["lattice_length_error_angstrom"] for r in results.values()])
    assert table["means"]["lattice_length_error_angstrom"]["mean"] == pytest.approx(mean)

    # done folds are neither retrained nor rescored; a lost result is rescored from the kept weights
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("fold*")}
    assert Crossval(config, out, data_dir=data_dir, device="cpu").run() == "done"
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.glob("fold*")}
    lost = (out / "fold1.json").read_text()
    (out / "fold1.json").unlink()
    assert Crossval(config, out, data_dir=data_dir, device="cpu").run() == "done"
    assert (out / "fold1.pt").stat().st_mtime_ns == stamps["fold1.pt"]
    assert json.loads((out / "fold1.json").read_text())["metrics"] == json.loads(lost)["metrics"]


def test_crossval_command_prints_the_table(tmp_path, data_dir, capsys):
    out = tmp_path / "cv"
    code = main(["crossval", "YBCO13", "--folds", "2", "--recipe", "standin", "--epochs", "1", "--limit", "3",
                 "--bn-recalibration-batches", "0", "--out-dir", str(out), "--device", "cpu", "--threads", "1",
                 "--data-dir", str(data_dir), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| 2 |" in printed and "| **mean of 1** |" in printed and f"table: {out / 'table.md'}" in printed
    assert torch.load(out / "fold2.pt", weights_only=True)["dataset"] == "YBCO13_fold2"


def test_crossval_of_a_family_without_folds_names_it(tmp_path, data_dir, capsys):
    code = main(["crossval", "NOPE", "--folds", "0", "--out-dir", str(tmp_path), "--device", "cpu",
                 "--data-dir", str(data_dir)])
    assert code == 2
    assert "NOPE_fold0" in capsys.readouterr().err
