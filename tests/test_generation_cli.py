"""`nesf generate` and `nesf score-generated` end to end on the shipped LCS6A model and a small Perov-5 data folder."""

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from nesf.cli import main
from nesf.core.errors import NesfError
from nesf.data.structure_io import read_structure_file, to_cif
from tests.helpers import ROCKSALT_FRAC, cubic, small_cdvae_data_dir

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "lcs6a.pt"
ROWS = 12


def run(argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    assert run(["generate", SHIPPED, "--count", 6, "--density", "gaussian", "--seed", 3, "--out-dir", out,
                "--device", "cpu"]) == 0
    return out


def test_generate_writes_cifs_and_a_summary(generated, capsys):
    from nesf.checkpoint import atlas_path_for
    from nesf.inference.atlas import load_atlas

    atlas_ids = set(load_atlas(atlas_path_for(SHIPPED)).table["id"])
    rows = list(csv.DictReader((generated / "summary.csv").open()))
    assert [r["id"] for r in rows] == [f"gen-3-{i}" for i in range(6)]
    written = sorted(p.stem for p in generated.glob("*.cif"))
    assert written == sorted(r["id"] for r in rows if int(r["num_atoms"]) > 0)
    for row in rows:
        if int(row["num_atoms"]) and row["structure_valid"] == "True":
            crystal = read_structure_file(generated / f"{row['id']}.cif")[0]
            assert crystal.num_atoms >= 1
        elif int(row["num_atoms"]):  # atoms closer than 0.5 A (CDVAE's structure validity): written, but not an
            # upload the app takes, and the refusal says why
            with pytest.raises(NesfError, match="closer than 0.5 A"):
                read_structure_file(generated / f"{row['id']}.cif")
        assert row["valid"] == str(row["structure_valid"] == "True" and row["composition_valid"] == "True")
        if int(row["num_atoms"]):  # each file says whether it is valid, and which rule fails
            first = (generated / f"{row['id']}.cif").read_text().splitlines()[0]
            assert first.startswith(f"# NeSF Explorer generated sample {row['id']}: ")
            assert ("INVALID (" in first) == (row["valid"] == "False")
            assert ("closer than 0.5 A" in first) == (row["structure_valid"] == "False")
            assert ("charge-neutral" in first) == (row["composition_valid"] == "False")
        assert row["nearest_dataset_crystal"] in atlas_ids  # an LCS6A crystal (mp-... or mvc-... ids)


def test_generate_is_reproducible_by_seed(generated, tmp_path, capsys):
    assert run(["generate", SHIPPED, "--count", 6, "--density", "gaussian", "--seed", 3, "--out-dir", tmp_path,
                "--device", "cpu"]) == 0
    assert (tmp_path / "summary.csv").read_text() == (generated / "summary.csv").read_text()
    assert (tmp_path / "gen-3-0.cif").read_text() == (generated / "gen-3-0.cif").read_text()


@pytest.mark.slow  # ~7 s
def test_generate_near_a_crystal_and_in_a_region(tmp_path, capsys):
    assert run(["generate", SHIPPED, "--count", 4, "--density", "gaussian", "--near", "NaCl", "--spread", 0.05,
                "--out-dir", tmp_path / "near", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    centre = re.search(r"near (mp-\d+) \(NaCl\)", out).group(1)  # the first NaCl of the atlas
    rows = list(csv.DictReader((tmp_path / "near" / "summary.csv").open()))
    # a tight spread around NaCl decodes crystals whose nearest dataset crystal is that NaCl itself
    assert sum(r["nearest_dataset_crystal"] == centre for r in rows) >= 3
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{centre}\nmp-1265\n")
    assert run(["generate", SHIPPED, "--count", 4, "--density", "gaussian", "--region", f"@{ids}",
                "--out-dir", tmp_path / "region", "--device", "cpu"]) == 0
    assert "within a region of 2 crystals" in capsys.readouterr().out


def test_generate_refuses_bad_requests(tmp_path, capsys):
    assert run(["generate", SHIPPED, "--near", "mp-22862", "--region", "mp-1265", "--out-dir", tmp_path]) == 2
    assert "sample near one crystal or within a region, not both" in capsys.readouterr().err
    assert run(["generate", SHIPPED, "--density", "gaussian", "--near", "Xx9", "--out-dir", tmp_path,
                "--device", "cpu"]) == 2
    assert "no crystal with id or formula 'Xx9' in the atlas of lim_l6" in capsys.readouterr().err
    assert run(["generate", SHIPPED, "--density", "gaussian", "--count", 0, "--out-dir", tmp_path,
                "--device", "cpu"]) == 2
    assert "number of samples must be 1 to 10000, got 0" in capsys.readouterr().err


@pytest.fixture(scope="module")
def small_perov(data_dir, tmp_path_factory):
    return small_cdvae_data_dir(data_dir, tmp_path_factory.mktemp("perov"), ROWS)


def test_score_generated_against_perov5(small_perov, tmp_path, capsys):
    from nesf.data.datasets import load_dataset

    dataset = load_dataset("perov_5", small_perov)
    folder = tmp_path / "gen"
    folder.mkdir()
    for crystal in dataset.crystals("test")[:3]:  # three test crystals: valid, novel to training, covering 3/12
        (folder / f"{crystal.id}.cif").write_text(to_cif(crystal))
    (folder / "copy.cif").write_text(to_cif(dataset.crystals("train")[0]))  # a training crystal: not novel
    bad = cubic(5.64, ROCKSALT_FRAC, [11] * 2 + [17] * 6, "NaCl3")
    (folder / "nacl3.cif").write_text(to_cif(bad))  # not charge-neutral
    (folder / "broken.cif").write_text("data_x\nnot a cif\n")  # unreadable: counted invalid
    assert run(["score-generated", folder, "--dataset", "perov_5", "--data-dir", small_perov, "--json"]) == 0
    captured = capsys.readouterr()
    assert "broken.cif: not readable as a structure" in captured.err
    scores = json.loads(captured.out)["scores"]
    assert scores["generated"] == 6
    assert scores["composition_valid_percent"] == pytest.approx(100 * 4 / 6)
    assert scores["valid_percent"] == pytest.approx(100 * 4 / 6)
    assert scores["unique_percent"] == 100.0
    assert scores["novel_percent"] == pytest.approx(75.0)
    assert scores["cov_recall_percent"] == pytest.approx(100 * 3 / ROWS)
    assert (scores["structure_cutoff"], scores["composition_cutoff"]) == (0.2, 4.0)
    assert run(["score-generated", folder, "--dataset", "perov_5", "--data-dir", small_perov]) == 0
    table = capsys.readouterr().out
    assert "| COV-R [%] | 25.00 | 99.45 | 99.74 |" in table


# every shipped model but LCS6A, which the tests above run
SHIPPED_MODELS = sorted(p for p in SHIPPED.parent.glob("*.pt")
                        if p.with_name(p.stem + ".atlas.pt").is_file() and p != SHIPPED)


@pytest.mark.parametrize("checkpoint", SHIPPED_MODELS, ids=lambda p: p.stem)
def test_generate_works_on_every_shipped_model(checkpoint, tmp_path, capsys):
    assert run(["generate", checkpoint, "--count", 3, "--density", "gaussian", "--out-dir", tmp_path,
                "--device", "cpu"]) == 0
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert len(rows) == 3
    said = capsys.readouterr().out
    assert "3 crystals from gaussian: 1 full-covariance component, across the whole latent space" in said


@pytest.mark.slow  # ~13 s
def test_a_session_samples_the_density_its_atlas_stores(monkeypatch):
    """The shipped atlas holds its fitted densities: a session rebuilds them without fitting (the app's first
    sampling waited for the fit), and the stored one is the fit of the training latents less their outliers."""
    from nesf.api import Autoencoder
    from nesf.inference.atlas import training_latents
    from nesf.inference.generation import sample
    from nesf.inference.generation.density import fit_density
    from nesf.inference.generation.workflow import GenerationSession

    autoencoder = Autoencoder.from_checkpoint(SHIPPED, "cpu")

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted a density the atlas stores")

    monkeypatch.setattr(sample, "fit_density", no_fit)
    session = GenerationSession.open(autoencoder, "gmm")
    assert set(session.atlas.densities) == {"gmm", "kde", "gaussian"}
    assert session.density.outliers == 4 and "(4 outlying latents left out)" in session.density.label
    monkeypatch.undo()
    fitted = fit_density(training_latents(session.atlas), "gmm")
    assert fitted.label == session.density.label
    np.testing.assert_allclose(session.density.sample(50, seed=4), fitted.sample(50, seed=4), atol=5e-3)
