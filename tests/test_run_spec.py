"""A training run as data: spec files round-trip, `nesf train --spec` reads them (options beside it win), bad specs
are named, and the shipped lineages in checkpoints/specs/ are runnable specs that match their model cards."""

import json
import re
import shlex
from pathlib import Path

import pytest

from nesf.cli import build_parser
from nesf.core.errors import NesfError
from nesf.training.run_spec import TrainRun, read_spec, run_configs, write_spec

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "checkpoints" / "specs"


def _parsed(words: list[str]):
    return TrainRun.from_args(build_parser().parse_args(["train", *words]))


def test_a_spec_round_trips_and_holds_only_what_differs_from_the_defaults(tmp_path):
    run = TrainRun(name="wide", datasets=("lim_l6", "hex_prototypes"), recipe="cpu", out_dir=Path("runs/w"),
                   init_from=Path("checkpoints/lcs6a.pt"), threads=1, atlas=False,
                   overrides={"epochs": 40, "learning_rate": 5e-4, "position_field_channels": (256, 256, 256)})
    path = write_spec(run, tmp_path / "run.json")
    stored = json.loads(path.read_text())
    assert stored == {"kind": "nesf train run", "version": 1, "name": "wide", "datasets": ["lim_l6", "hex_prototypes"],
                      "recipe": "cpu", "overrides": {"epochs": 40, "learning_rate": 5e-4,
                                                     "position_field_channels": [256, 256, 256]},
                      "out_dir": "runs/w", "init_from": "checkpoints/lcs6a.pt", "threads": 1, "atlas": False}
    assert read_spec(path) == run
    assert _parsed(run.argv()) == run  # the command line and the spec file say the same run


def test_nesf_train_reads_a_spec_and_the_options_beside_it_replace_its_values(tmp_path):
    path = write_spec(TrainRun(name="m", datasets=("perov_5",), recipe="cpu", threads=1,
                               overrides={"epochs": 140, "dropout": 0.0}), tmp_path / "run.json")
    run = _parsed(["--spec", str(path), "--threads", "2", "--epochs", "3", "--out-dir", "runs/x"])
    assert (run.name, run.datasets, run.recipe, run.threads, run.out_dir) == ("m", ("perov_5",), "cpu", 2,
                                                                             Path("runs/x"))
    assert run.overrides == {"epochs": 3, "dropout": 0.0}


@pytest.mark.parametrize("content, message", [
    ('{"kind": "nesf train run", "version": 1, "name": "m", "epochs": 3}',
     r"run\.json: unknown field\(s\) epochs; a run spec holds name, datasets, "),
    ('{"kind": "nesf train run", "version": 1, "overrides": {"epochz": 3}}', r"run\.json: .*epochz"),
    ('{"name": "m"}', r"run\.json: not a run spec \(kind None, version None; expected 'nesf train run', version 1\)"),
    ('{"kind": "nesf train run", "version": 1,', r"run\.json: not JSON \(line 1: "),
    ('[1, 2]', r"run\.json: not a run spec \(a JSON object is expected\)"),
])
def test_a_bad_spec_is_refused_naming_the_problem(tmp_path, content, message):
    path = tmp_path / "run.json"
    path.write_text(content)
    with pytest.raises(NesfError, match=message):
        read_spec(path)
    with pytest.raises(NesfError, match=r"missing\.json: cannot read the run spec"):
        read_spec(tmp_path / "missing.json")


def _lineages():
    return sorted(SPECS.glob("*/lineage.json"))


@pytest.mark.parametrize("lineage", _lineages(), ids=lambda p: p.parent.name)
def test_each_shipped_lineage_is_runnable_data(lineage):
    """Every train step a spec `nesf train --spec` reads, every other step a command the CLI parses, and the
    checkpoint it ships is the one its card describes, whose notes link the lineage."""
    data = json.loads(lineage.read_text())
    assert data["kind"] == "nesf lineage" and (REPO / data["checkpoint"]).is_file()
    parser = build_parser()
    trained = 0
    for step in data["steps"]:
        if "train" in step:
            run = _parsed(["--spec", str(lineage.parent / step["train"])])
            assert run == read_spec(lineage.parent / step["train"]) and run.datasets
            trained += 1
        elif "nesf" in step:
            parser.parse_args(step["nesf"])
        else:
            assert set(step) == {"note"}
    assert trained >= 1
    card = (REPO / data["checkpoint"]).with_suffix(".md").read_text()
    assert str(lineage.relative_to(REPO)) in card


@pytest.mark.parametrize("lineage", _lineages(), ids=lambda p: p.parent.name)
def test_the_lineage_trains_what_its_card_says(lineage):
    """The card's written-out `nesf train` commands, in order, are the lineage's train specs."""
    data = json.loads(lineage.read_text())
    card = (REPO / data["checkpoint"]).with_suffix(".md").read_text()
    commands = [c.replace("\\\n", " ") for c in re.findall(r"^python -m nesf train ((?:.*\\\n)*.*)\n", card, re.M)]
    specs = [lineage.parent / step["train"] for step in data["steps"] if "train" in step]
    assert [_parsed(shlex.split(c.partition("  #")[0])) for c in commands] == [read_spec(p) for p in specs]


def test_the_first_stage_of_the_shipped_lcs6a_lineage_has_the_cards_configs():
    """`nesf train --spec checkpoints/specs/lcs6a/01-lcs6a_cpu_d0.json` trains with the configs of the card's first
    command: the cpu recipe, 130 epochs, the encoder's dropout off."""
    card = (REPO / "checkpoints" / "lcs6a.md").read_text()
    first = re.search(r"^python -m nesf train ((?:.*\\\n)*.*)\n", card, re.M).group(1).replace("\\\n", " ")
    configs = run_configs(_parsed(["--spec", str(SPECS / "lcs6a" / "01-lcs6a_cpu_d0.json")]))
    assert configs == run_configs(_parsed(shlex.split(first)))
    assert (configs.train.epochs, configs.model.dropout, configs.train.bn_recalibration_batches) == (130, 0.0, 50)
