"""`python -m nesf ...` end to end: train, evaluate, reconstruct, interpolate, atlas and download in-process through
`nesf.cli.main`; bad data and tampered checkpoints exit 2 with a message; --resume continues; SIGTERM cancels cleanly.

One tiny model (8 YBCO13_fold0 crystals, 3 epochs) is trained once per module and shared.
"""

import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nesf.api import Autoencoder
from nesf.checkpoint import list_checkpoints
from nesf.cli import main
from nesf.data.datasets import load_dataset
from nesf.data.download import DOWNLOADS, RAW_BASE_URL
from nesf.data.structure_io import to_cif
from nesf.evaluation.metrics import TABLE1_LABELS
from nesf.inference.atlas import load_atlas

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASET = "YBCO13_fold0"
TABLE1_KEYS = ("atom_count_error_percent", "position_error_actual_angstrom", "position_error_detected_angstrom",
               "species_error_actual_percent", "species_error_detected_percent", "lattice_length_error_angstrom",
               "lattice_angle_error_degrees")


def run_cli(argv: list[str]) -> int:
    """nesf.cli.main(argv), restoring the SIGINT/SIGTERM handlers that `train` replaces with its own."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return main([str(a) for a in argv])
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def train_args(data_dir, out_dir, *extra) -> list:
    return ["train", "--dataset", DATASET, "--limit", 8, "--epochs", 3, "--batch-size", 8, "--validate-every", 1,
            "--no-atlas", "--quiet", "--out-dir", out_dir, "--progress-file", Path(out_dir) / "p.jsonl",
            "--device", "cpu", "--data-dir", data_dir, *extra]


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory, data_dir):
    """A private NESF_CACHE_DIR for the module (attribute tables), so tests never touch ~/.cache, seeded with the
    data directory's parsed CDVAE CSVs (content-addressed, read only here): without them the card's novel crystals
    parsed perov_5 and carbon_24 again, 170 of the suite's seconds."""
    import shutil

    from nesf.data.datasets import default_cache_dir

    path = tmp_path_factory.mktemp("nesf-cache")
    for parsed in default_cache_dir(data_dir).glob("*.pt"):
        shutil.copy(parsed, path / parsed.name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NESF_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir, cache_dir) -> Path:
    """The tiny model's output folder: model.pt and the progress file p.jsonl."""
    out = tmp_path_factory.mktemp("trained")
    assert run_cli(train_args(data_dir, out)) == 0
    return out


def test_train_emits_protocol_and_loadable_checkpoint(trained):
    events = read_events(trained / "p.jsonl")
    kinds = [e["event"] for e in events if e["event"] != "step"]  # steps within an epoch: every 2 s at most
    assert kinds == ["start", "epoch", "epoch", "epoch", "checkpoint", "done"]
    assert all(0 < e["step"] <= e["steps"] for e in events if e["event"] == "step")
    assert events[0]["epoch"] == 0 and events[0]["epochs"] == 3
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert all(e["epochs"] == 3 and e["val_loss"] is not None and e["train_loss"] > 0 for e in epochs)
    assert all(isinstance(e["time"], float) for e in events)
    checkpoint = trained / "model.pt"
    assert events[-2]["checkpoint"] == events[-1]["checkpoint"] == str(checkpoint)
    payload = torch.load(checkpoint, weights_only=True)
    assert payload["format"] == "nesf-checkpoint" and payload["epoch"] == 3 and payload["dataset"] == DATASET
    assert payload["split_sizes"] == {"train": 90, "val": 5, "test": 5}
    assert len(payload["history"]) == 3 and "training_state" in payload
    assert all(isinstance(v, torch.Tensor) for v in payload["model_state"].values())


def test_evaluate_prints_table1(trained, data_dir, capsys):
    code = run_cli(["evaluate", trained / "model.pt", "--split", "test", "--limit", 3, "--decode", "fast",
                    "--device", "cpu", "--data-dir", data_dir])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"{DATASET} test: 3 crystals")
    for key in TABLE1_KEYS:
        assert TABLE1_LABELS[key] in out, key
    assert TABLE1_LABELS["match_rate_percent"] in out
    assert "composition probe (fitted on 90 training latents)" in out
    assert "Element presence error (linear probe)" in out and "baseline" in out


def test_train_recipe_with_overrides_sets_the_stored_configs(data_dir, tmp_path, cache_dir):
    code = run_cli(train_args(data_dir, tmp_path, "--recipe", "cosine", "--epochs", 1, "--species-query-fraction",
                              0.5, "--species-weight", 2.0, "--angles-weight", 100, "--lengths-weight", 5))
    assert code == 0
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    train, sampling = payload["train_config"], payload["sampling_config"]
    assert payload["model_config"]["composition_head"] is True  # from the recipe
    assert train["lr_schedule"] == "cosine" and train["epochs"] == 1 and train["batch_size"] == 8  # option wins
    assert train["loss_weights"]["species"] == 2.0 and train["loss_weights"]["composition"] == 1.0
    assert train["loss_weights"]["angles"] == 100.0 and train["loss_weights"]["lengths"] == 5.0
    assert sampling["global_in_cell"] is True and sampling["species_query_fraction"] == 0.5
    assert payload["history"][0]["train_composition"] > 0  # the auxiliary loss was trained


def test_unknown_recipe_exits_2_naming_the_known_ones(data_dir, tmp_path, capsys):
    assert run_cli(train_args(data_dir, tmp_path, "--recipe", "magic")) == 2
    assert "unknown recipe 'magic'; known: paper, standin" in capsys.readouterr().err


def test_reconstruct_writes_cifs(trained, data_dir, tmp_path, capsys):
    crystal = load_dataset(DATASET, data_dir).crystals("test")[0]
    source = tmp_path / "input.cif"
    source.write_text(to_cif(crystal))
    out_dir = tmp_path / "out"
    code = run_cli(["reconstruct", trained / "model.pt", source, "--out-dir", out_dir, "--decode", "fast",
                    "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    written = out_dir / "recon-input.cif"
    assert written.is_file() and str(written) in out
    assert out.startswith(f"input: {crystal.formula} ({crystal.num_atoms} atoms) -> ")
    # a CIF pymatgen reads back (a 3-epoch model may decode any cell: the upload checks may refuse it, the file is
    # still well formed), in the canonical frame of the atoms --as-decoded writes
    from pymatgen.core import Structure

    from nesf.core.canonical import canonical_crystal
    from nesf.core.crystal import Crystal

    # refinement's Adam steps amplify the float noise of multithreaded CPU kernels (~1e-5 of a coordinate from
    # run to run), so the frame comparison decodes the encoder's latent, which is the same in every run
    assert "  latent: latent refined in " in out
    assert run_cli(["reconstruct", trained / "model.pt", source, "--out-dir", out_dir, "--decode", "fast",
                    "--device", "cpu", "--encoder-only"]) == 0
    assert "  latent: the encoder's latent, not refined (the paper's protocol)" in capsys.readouterr().out
    raw_dir = tmp_path / "raw"
    assert run_cli(["reconstruct", trained / "model.pt", source, "--out-dir", raw_dir, "--decode", "fast",
                    "--device", "cpu", "--as-decoded", "--encoder-only"]) == 0
    shown = Crystal.from_structure(Structure.from_file(written))
    expected = canonical_crystal(Crystal.from_structure(Structure.from_file(raw_dir / "recon-input.cif")))
    # (a CIF holds the cell's parameters, not its frame: compare those)
    np.testing.assert_allclose(shown.lengths_angstrom, expected.lengths_angstrom, atol=1e-5)
    np.testing.assert_allclose(shown.angles_degrees, expected.angles_degrees, atol=1e-4)
    np.testing.assert_allclose(shown.frac_coords, expected.frac_coords, atol=1e-5)
    assert shown.species.tolist() == expected.species.tolist()
    assert ((shown.frac_coords >= 0) & (shown.frac_coords < 1)).all()


def test_reconstruct_judges_a_batch_file_by_file(trained, data_dir, tmp_path, capsys):
    """A refused file never costs the others their reconstruction: each refused one is named with its reason, the
    rest are written, and the exit status says that something was refused."""
    crystal = load_dataset(DATASET, data_dir).crystals("test")[0]
    good = tmp_path / "good.cif"
    good.write_text(to_cif(crystal))
    broken = tmp_path / "broken.cif"
    broken.write_text("data_broken\n_cell_length_a 3.0\n")
    gold = tmp_path / "gold.cif"  # an element the YBCO-like model has never seen
    from nesf.core.crystal import Crystal

    gold.write_text(to_cif(Crystal.from_frac(np.eye(3) * 4.08, [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]],
                                             [79] * 4, "Au")))
    out_dir = tmp_path / "out"
    code = run_cli(["reconstruct", trained / "model.pt", broken, good, gold, "--out-dir", out_dir, "--decode", "fast",
                    "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out_dir.iterdir()) == ["recon-good.cif"]
    assert captured.out.startswith(f"good: {crystal.formula} ({crystal.num_atoms} atoms) -> ")
    assert "trust (unknown): field residual" in captured.out  # a model without calibration says so
    assert "broken.cif: refused: not a readable cif file" in captured.err
    assert "gold.cif: refused: gold: outside this model's range: element(s) Au not among the 31" in captured.err
    assert "1 of 3 structure(s) reconstructed, 2 refused" in captured.err


def test_interpolate_writes_path(trained, data_dir, tmp_path, capsys):
    test = load_dataset(DATASET, data_dir).crystals("test")
    out_dir = tmp_path / "path"
    code = run_cli(["interpolate", trained / "model.pt", test[0].id, test[1].id, "--dataset", DATASET,
                    "--steps", 3, "--decode", "fast", "--out-dir", out_dir, "--device", "cpu",
                    "--data-dir", data_dir])
    out, err = capsys.readouterr()
    assert code == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["path.extxyz", "step-0.cif", "step-1.cif", "step-2.cif"]
    assert [line.split(":")[0] for line in out.splitlines()] == ["step   0", "step   1", "step   2"]
    # each endpoint's latent refined (or kept where refinement did not lower its residual), said on stderr
    ends = [line for line in err.splitlines() if line.startswith(("start: ", "end: "))]
    assert len(ends) == 2 and all("latent refined in" in line or "did not lower" in line for line in ends)
    assert run_cli(["interpolate", trained / "model.pt", test[0].id, test[1].id, "--dataset", DATASET, "--steps", 2,
                    "--decode", "fast", "--out-dir", tmp_path / "paper", "--device", "cpu", "--data-dir", data_dir,
                    "--encoder-only"]) == 0
    assert "start: " in (err := capsys.readouterr().err) and "not refined (the paper's protocol)" in err
    frames = (out_dir / "path.extxyz").read_text().count("Lattice=")
    assert frames == 3


def test_atlas_has_a_row_per_crystal(trained, data_dir, tmp_path, capsys):
    target = tmp_path / "map.atlas.pt"
    code = run_cli(["atlas", trained / "model.pt", "--out", target, "--errors", "none", "--iterations", 50,
                    "--perplexity", 5, "--device", "cpu", "--data-dir", data_dir])
    out = capsys.readouterr().out
    assert code == 0 and out.strip() == f"atlas of 100 crystals -> {target}"
    atlas = load_atlas(target, Autoencoder.from_checkpoint(trained / "model.pt", "cpu"))
    assert len(atlas) == 100 and atlas.latents.shape[0] == 100 and atlas.tsne.shape == (100, 2)
    assert atlas.dataset == DATASET
    assert sorted(set(atlas.table["split"])) == ["test", "train", "val"]


def test_atlas_in_consistent_settings_from_the_command_line(trained, data_dir, tmp_path, capsys):
    target = tmp_path / "map.atlas.pt"
    code = run_cli(["atlas", trained / "model.pt", "--out", target, "--errors", "none", "--iterations", 50,
                    "--perplexity", 5, "--device", "cpu", "--data-dir", data_dir, "--frames", "consistent"])
    assert code == 0
    atlas = load_atlas(target)
    assert atlas.frames == "consistent" and len(atlas) == 100
    code = run_cli(["atlas", trained / "model.pt", "--uploads", tmp_path, "--frames", "consistent"])
    assert code != 0
    assert ("--frames consistent maps a dataset's crystals; uploads are mapped each in the setting the model reads "
            "best") in capsys.readouterr().err


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_download_from_local_mirror(data_dir, tmp_path, capsys):
    root = tmp_path / "served"
    for remote in DOWNLOADS[DATASET]:  # laid out like raw.githubusercontent.com
        served = root / remote.url[len(RAW_BASE_URL) + 1:]
        served.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / remote.path, served)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    target = tmp_path / "data"
    try:
        code = run_cli(["download", DATASET, "--base-url", f"http://127.0.0.1:{server.server_address[1]}",
                        "--data-dir", target])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.strip() == f"6 files in {target}"
    assert captured.err.count(" MB") == 6
    for remote in DOWNLOADS[DATASET]:
        assert (target / remote.path).read_bytes() == (data_dir / remote.path).read_bytes()


def test_missing_dataset_exits_2_and_suggests_download(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = run_cli(train_args(empty, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and DATASET in err and f"python -m nesf download {DATASET}" in err
    assert read_events(tmp_path / "out" / "p.jsonl")[-1]["event"] == "failed"
    assert not (tmp_path / "out" / "model.pt").exists()


def test_tampered_checkpoints_exit_2_naming_the_file(trained, data_dir, tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(4096))
    payload = torch.load(trained / "model.pt", weights_only=True)
    name = next(k for k, v in payload["model_state"].items() if v.ndim == 2)
    payload["model_state"][name] = torch.zeros(3, 5)
    wrong_shape = tmp_path / "wrong_shape.pt"
    torch.save(payload, wrong_shape)
    for path, problem in ((garbage, "not a readable NeSF checkpoint"), (wrong_shape, "do not fit")):
        code = run_cli(["evaluate", path, "--limit", 1, "--device", "cpu", "--data-dir", data_dir])
        err = capsys.readouterr().err
        assert code == 2, path
        assert err.startswith(f"error: {path}: ") and problem in err


def test_resume_continues_the_epoch_count(trained, data_dir, tmp_path):
    out = tmp_path / "resumed"
    code = run_cli(train_args(data_dir, out, "--resume", trained / "model.pt", "--epochs", 5))
    assert code == 0
    events = read_events(out / "p.jsonl")
    assert events[0] == {**events[0], "event": "start", "epoch": 3, "epochs": 5}
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [4, 5]
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["epoch"] == 5 and [h["epoch"] for h in payload["history"]] == [1, 2, 3, 4, 5]
    assert events[-1]["event"] == "done"


def test_hard_crystal_fraction_reaches_the_run(data_dir, tmp_path):
    out = tmp_path / "hard"
    assert run_cli(train_args(data_dir, out, "--epochs", 1, "--hard-crystal-fraction", 0.25)) == 0
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["train_config"]["hard_crystal_fraction"] == 0.25
    assert payload["training_state"]["hard_crystals"]["losses"].shape == (8,)  # --limit 8 training crystals


def test_latent_noise_reaches_the_run_and_changes_the_training_steps(data_dir, tmp_path):
    losses = {}
    for noise in (0.0, 0.5):
        out = tmp_path / f"noise{noise}"
        assert run_cli(train_args(data_dir, out, "--epochs", 1, "--latent-noise", noise)) == 0
        payload = torch.load(out / "model.pt", weights_only=True)
        assert payload["train_config"]["latent_noise"] == noise
        losses[noise] = payload["history"][0]["train_loss"]
    assert losses[0.0] != losses[0.5]  # same seed, same queries: only the noise differs


@pytest.mark.slow
def test_init_from_fine_tunes_a_new_run(trained, data_dir, tmp_path, capsys):
    out = tmp_path / "tuned"
    code = run_cli(train_args(data_dir, out, "--init-from", trained / "model.pt", "--epochs", 1, "--lr", 1e-4,
                              "--dropout", 0))
    assert code == 0
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["epoch"] == 1 and payload["init_from"]["epochs"] == 3
    assert payload["train_config"]["learning_rate"] == 1e-4
    assert payload["model_config"]["dropout"] == 0.0
    assert [info.epochs for info in list_checkpoints([out])] == [4]  # 3 epochs of the source + 1 of fine-tuning
    assert run_cli(["card", out / "model.pt", "--splits", "test", "--ci-count", 2, "--decode", "fast", "--device",
                    "cpu", "--data-dir", data_dir, "--novel", 2]) == 0
    card = (out / "model.md").read_text()
    assert "- Started from the weights of `model` (3 epochs" in card
    assert "## Metrics: test (5 crystals" in card and "## Metrics: test[:2] (2 crystals" in card
    stored = torch.load(out / "model.pt", weights_only=True)["metrics"]
    assert stored["test"]["count"] == 5 and stored["test"]["decode"] == "fast"
    label = TABLE1_LABELS["atom_count_error_percent"]
    value = f"{stored['test']['atom_count_error_percent']:#.3g}".rstrip(".")  # 3 significant digits
    assert f"| {label} | {value} |" in card
    assert "| metric | ours | paper (NeSF, Table 1: test) |" in card  # the paper's figures for the same split
    # what users get: the test split re-uploaded through the upload path, and the trust calibration from it
    assert stored["test[re-uploaded]"]["count"] == 5 and stored["test[re-uploaded]"]["seed"] == 0
    assert "## What users get: uploads through the app's path" in card
    assert "| uploads | crystals | match [%] |" in card
    assert any(line.startswith("| test, re-uploaded | 5 |") for line in card.splitlines())
    assert any(line.startswith("| test, re-uploaded, encoder only | 5 |") for line in card.splitlines())
    # novel crystals: other datasets' test crystals that are no training crystal, at most 2 per source (--novel 2)
    novel = [label for label in stored if "[novel, re-uploaded]" in label]
    assert novel and all(stored[label]["count"] <= 2 for label in novel)
    assert set(stored["trust"]) == {"field_residual", "latent_distance", "field_residual, encoder only",
                                    "latent_distance, encoder only"}
    assert "Trust calibration, field residual, refined latents (" in card
    assert "Trust calibration, field residual, encoder's latents (" in card
    # the test split both ways: the paper's protocol beside refined latents
    assert stored["test[refined]"]["count"] == 5 and stored["test[refined]"]["refine_steps_mean"] >= 1
    assert "## test: encoder only (the paper's protocol) and refined" in card
    # --stored writes the card again from the stored metrics: the checkpoint file stays byte for byte
    (out / "model.md").unlink()
    before = (out / "model.pt").read_bytes()
    assert run_cli(["card", out / "model.pt", "--stored", "--device", "cpu"]) == 0
    assert (out / "model.pt").read_bytes() == before and (out / "model.md").read_text() == card
    assert run_cli(["card", trained / "model.pt", "--stored", "--device", "cpu"]) == 2  # never evaluated
    assert "no stored metrics; run `python -m nesf card" in capsys.readouterr().err
    both = run_cli(train_args(data_dir, tmp_path / "x", "--init-from", trained / "model.pt", "--resume",
                              trained / "model.pt"))
    assert both == 2
    assert "give --resume (continue a run) or --init-from (new run from its weights), not both" in \
        capsys.readouterr().err


@pytest.mark.slow
def test_init_from_may_widen_the_position_field(trained, data_dir, tmp_path, capsys):
    out = tmp_path / "wide"
    widths = "256,160,160,160,160,160,160,160"
    assert run_cli(train_args(data_dir, out, "--init-from", trained / "model.pt", "--epochs", 1,
                              "--position-field-channels", widths)) == 0
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["model_config"]["position_field_channels"] == (256,) + (160,) * 7
    assert payload["init_from"]["widened_field_channels"] == {"position_field_channels": [256] + [128] * 7}
    assert run_cli(["card", out / "model.pt", "--splits", "test", "--ci-count", 0, "--decode", "fast", "--device",
                    "cpu", "--data-dir", data_dir, "--novel", 0]) == 0
    card = (out / "model.md").read_text()
    assert ("with a new optimizer and learning-rate schedule; position field widened from hidden widths (256, 128, "
            "128, 128, 128, 128, 128, 128), the new units starting with zero outgoing weights\n") in card
    # from the widened model, and resuming it, the widths come from the checkpoint
    onward = tmp_path / "onward"
    assert run_cli(train_args(data_dir, onward, "--init-from", out / "model.pt", "--epochs", 1)) == 0
    assert run_cli(train_args(data_dir, onward, "--resume", onward / "model.pt", "--epochs", 2)) == 0
    payload = torch.load(onward / "model.pt", weights_only=True)
    assert payload["epoch"] == 2 and payload["model_config"]["position_field_channels"] == (256,) + (160,) * 7
    assert "widened_field_channels" not in payload["init_from"]
    with pytest.raises(SystemExit):
        run_cli(train_args(data_dir, tmp_path / "bad", "--position-field-channels", "256,wide"))
    assert "expected positive integers separated by commas, got '256,wide'" in capsys.readouterr().err


def test_refit_lattice_writes_a_new_checkpoint_and_leaves_the_input_intact(trained, data_dir, tmp_path, capsys):
    source = trained / "model.pt"
    source_bytes = source.read_bytes()
    assert run_cli(["refit-lattice", source, "--out", source, "--device", "cpu", "--data-dir", data_dir]) == 2
    assert "--out must differ from the checkpoint: the checkpoint stays as it is" in capsys.readouterr().err
    out = tmp_path / "refit.pt"
    code = run_cli(["refit-lattice", source, "--out", out, "--epochs", 20, "--device", "cpu", "--data-dir", data_dir])
    printed = capsys.readouterr().out
    assert code == 0 and source.read_bytes() == source_bytes
    assert printed.startswith(f"{out}: val lattice error ") and f"nesf card {out}" in printed
    original, refit = torch.load(source, weights_only=True), torch.load(out, weights_only=True)
    record = refit["lattice_refit"]
    assert record["dataset"] == DATASET and record["config"]["epochs"] == 20
    assert record["result"]["train_count"] == 90 and record["result"]["val_count"] == 5
    before, after = record["result"]["val_before"], record["result"]["val_after"]
    assert after["length_angstrom"] <= before["length_angstrom"] and after["angle_degrees"] <= before["angle_degrees"]
    assert "metrics" not in refit  # measured with the old heads
    moved = {k for k, v in refit["model_state"].items() if not torch.equal(v, original["model_state"][k])}
    assert all(k.startswith(("length_head.", "angle_head.")) for k in moved)
    assert {k.split(".")[0] for k in moved} == {head for head, key in (("length_head", "length_epoch"),
                                                                        ("angle_head", "angle_epoch"))
                                                  if record["result"][key] > 0}
    assert record["augmentation"] == "none" and record["crystals"] == {"train": 90, "val": 5}
    # with --augment the heads are fitted and chosen on every variant of the train and val crystals
    augmented = tmp_path / "refit-frames.pt"
    assert run_cli(["refit-lattice", source, "--out", augmented, "--epochs", 2, "--augment", "frames", "--device",
                    "cpu", "--data-dir", data_dir]) == 0
    record = torch.load(augmented, weights_only=True)["lattice_refit"]
    assert record["augmentation"] == "frames"
    assert record["crystals"]["train"] > 90 and record["result"]["train_count"] == record["crystals"]["train"]


@pytest.mark.slow  # a training process started and stopped: ~10 s
def test_sigterm_cancels_with_a_checkpoint(data_dir, tmp_path, cache_dir):
    out = tmp_path / "run"
    progress = out / "p.jsonl"
    argv = train_args(data_dir, out, "--epochs", 1000, "--checkpoint-every-s", 1000)
    env = {**os.environ, "NESF_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "nesf", *map(str, argv)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (progress.is_file() and '"event": "epoch"' in progress.read_text()):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no epoch event within 60 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr.decode()
    events = read_events(progress)
    assert events[-1]["event"] == "cancelled"
    assert events[-2]["event"] == "checkpoint"
    epoch = events[-1]["epoch"]
    assert 1 <= epoch < 1000
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["epoch"] == epoch and "training_state" in payload


def test_interpolation_endpoints_by_id_or_formula(data_dir):
    from nesf.core.errors import NesfError
    from nesf.inference.uploads import path_end

    dataset = load_dataset(DATASET, data_dir)
    crystal = dataset.crystals("test")[0]
    assert path_end(None, crystal.id, dataset) == (crystal, "")
    assert path_end(None, crystal.id.upper(), dataset)[0].id == crystal.id
    assert path_end(None, crystal.formula, dataset)[0].formula == crystal.formula
    with pytest.raises(NesfError, match=r"Xe: no crystal with this id or formula in dataset YBCO13_fold0"):
        path_end(None, "Xe", dataset)
    with pytest.raises(NesfError, match=r"mp-0: not a file; to pick a dataset crystal by id or formula"):
        path_end(None, "mp-0", None)
