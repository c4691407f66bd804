"""`nesf ship` (nesf.checkpoint.ship): the shipped file has no run state, loads with weights_only, and in fp16 is about
half the size while the model it loads computes in fp32 from the rounded weights (the lattice heads exact)."""

from dataclasses import replace

import pytest
import torch

from nesf.api import Autoencoder
from nesf.checkpoint import Checkpoint, read_checkpoint_info, read_payload
from nesf.checkpoint.ship import shipped
from nesf.cli import main
from nesf.core.errors import NesfError
from nesf.inference.card import _stored_weights_line
from tests.test_run_state import make_trainer


@pytest.fixture(scope="module")
def run_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "run.pt"
    make_trainer(path, epochs=2).fit()
    return path


def ship(run_checkpoint, out, *extra):
    assert main(["ship", str(run_checkpoint), "--out", str(out), *extra]) == 0
    return torch.load(out, weights_only=True)


def test_fp16_ship_halves_the_file_and_loads_into_fp32_with_exact_lattice_heads(run_checkpoint, tmp_path, capsys):
    full = ship(run_checkpoint, tmp_path / "full.pt")
    half = ship(run_checkpoint, tmp_path / "small.pt", "--weights", "fp16")
    assert "small.pt" in capsys.readouterr().out
    source = read_payload(run_checkpoint)["model_state"]
    for payload, name in ((full, "full"), (half, "small")):
        assert "training_state" not in payload and "metrics" not in payload and payload["name"] == name
    assert all(torch.equal(full["model_state"][key], value) for key, value in source.items())
    for key, value in half["model_state"].items():
        if not value.is_floating_point():
            assert torch.equal(value, source[key])
        elif key.startswith(("length_head.", "angle_head.")):
            assert value.dtype == torch.float32 and torch.equal(value, source[key]), key
        else:
            assert value.dtype == torch.float16 and torch.equal(value, source[key].half()), key
    assert (tmp_path / "small.pt").stat().st_size < 0.6 * (tmp_path / "full.pt").stat().st_size

    exact, rounded = (Autoencoder.from_checkpoint(tmp_path / name, "cpu") for name in ("full.pt", "small.pt"))
    assert all(p.dtype == torch.float32 for p in rounded.model.parameters())
    latent = torch.randn(2, exact.model.config.latent_size)
    queries = torch.rand(50, 3) * 4.0
    crystal = torch.arange(50) % 2
    with torch.no_grad():
        for head in ("lattice",):
            assert all(torch.equal(a, b) for a, b in zip(getattr(exact.model, head)(latent),
                                                         getattr(rounded.model, head)(latent)))
        a = exact.model.position_field(latent, queries, crystal)
        b = rounded.model.position_field(latent, queries, crystal)
    assert torch.allclose(a, b, atol=1e-2 * a.abs().max().item()) and not torch.equal(a, b)
    assert read_checkpoint_info(tmp_path / "small.pt").stored_weights == "fp16"
    assert read_checkpoint_info(tmp_path / "full.pt").stored_weights == "fp32"
    assert "fp16" in _stored_weights_line("fp16")[0] and _stored_weights_line("fp32") == []


def test_ship_refuses_bad_names_and_files_that_hold_no_model(run_checkpoint, tmp_path, capsys):
    checkpoint = Checkpoint.load(run_checkpoint)
    with pytest.raises(NesfError, match="no model name"):
        shipped(checkpoint, name="../lcs6a")
    with pytest.raises(NesfError, match="unknown weight precision 'int8'"):
        shipped(checkpoint, name="x", weights="int8")
    with pytest.raises(NesfError, match="holds no model weights"):
        shipped(replace(checkpoint, model_state={}), name="x")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    out = tmp_path / "out.pt"
    assert main(["ship", str(corrupt), "--out", str(out)]) == 2
    assert "corrupt.pt" in capsys.readouterr().err and not out.exists()
