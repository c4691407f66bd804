"""Checkpoint files: plain types, weights_only loading, atomic writes, refusal of foreign or tampered files."""

from pathlib import Path

import pytest
import torch

from nesf.api import Autoencoder
from nesf.checkpoint import Checkpoint, list_checkpoints, read_payload, write_payload
from nesf.core.errors import NesfError

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "checkpoints"


def test_checkpoint_loads_with_weights_only(toy_checkpoint):
    path, _ = toy_checkpoint
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["format"] == "nesf-checkpoint"
    autoencoder = Autoencoder.from_checkpoint(path, "cpu")
    assert autoencoder.vocab == [8, 12, 17, 26, 55]
    assert autoencoder.info.dataset == "toy"


def test_random_bytes_are_refused_with_the_file_name(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x00\x01not a checkpoint" * 10)
    with pytest.raises(NesfError, match=r"junk\.pt: not a readable NeSF checkpoint \(corrupt or not a torch file"):
        read_payload(path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "hostile.pt"

    class Payload:
        def __reduce__(self):
            return (print, ("executed",))

    torch.save({"format": "nesf-checkpoint", "evil": Payload()}, path)
    with pytest.raises(NesfError, match=r"hostile\.pt: not a readable NeSF checkpoint \(refused: it holds a Python "
                                         r"object \(print\) that only loads by running code\)") as error:
        read_payload(path)
    assert "weights_only=False" not in str(error.value) and "weights_only` set to `False" not in str(error.value)


def test_other_format_versions_are_refused(toy_checkpoint, tmp_path):
    payload = torch.load(toy_checkpoint[0], weights_only=True)
    payload["format_version"] = 99
    path = tmp_path / "future.pt"
    torch.save(payload, path)
    with pytest.raises(NesfError, match=r"future\.pt: checkpoint format version 99"):
        read_payload(path)


def test_tampered_weights_are_refused(toy_checkpoint, tmp_path):
    payload = torch.load(toy_checkpoint[0], weights_only=True)
    key = next(k for k in payload["model_state"] if k.endswith("weight"))
    payload["model_state"][key] = torch.zeros(7, 7)
    path = tmp_path / "tampered.pt"
    write_payload(payload, path)
    with pytest.raises(NesfError, match=r"tampered\.pt: model weights do not fit the model config"):
        Autoencoder.from_checkpoint(path, "cpu")


def test_saving_a_loaded_payload_writes_this_versions_marker(toy_checkpoint, tmp_path):
    payload = read_payload(toy_checkpoint[0])
    payload["format_version"] = 0  # whatever a payload carries, the file gets the current marker
    write_payload(payload, tmp_path / "again.pt")
    assert read_payload(tmp_path / "again.pt")["format_version"] == 1


def test_missing_file_and_missing_keys(tmp_path):
    with pytest.raises(NesfError, match="checkpoint not found"):
        read_payload(tmp_path / "absent.pt")
    path = tmp_path / "partial.pt"
    write_payload({"vocab": [1]}, path)
    with pytest.raises(NesfError, match="missing model_config"):
        read_payload(path)


def test_listing_skips_unreadable_files_and_atlases(toy_checkpoint, tmp_path):
    path, _ = toy_checkpoint
    (tmp_path / "good.pt").write_bytes(path.read_bytes())
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    (tmp_path / "good.atlas.pt").write_bytes(b"not listed")
    listed = list_checkpoints([tmp_path], shipped_directory=tmp_path)
    assert [info.path.name for info in listed] == ["good.pt"]
    assert listed[0].shipped and listed[0].dataset == "toy" and listed[0].atlas_path == tmp_path / "good.atlas.pt"


def test_metadata_is_read_without_loading_the_weights(toy_checkpoint, monkeypatch):
    from nesf.checkpoint import record as module

    path, _ = toy_checkpoint
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(module.torch, "load", spy)
    info = module.read_checkpoint_info(path)
    assert calls == [{"map_location": "cpu", "weights_only": True, "mmap": True}]  # memory-mapped, not read
    autoencoder = Autoencoder.from_checkpoint(path, "cpu")
    assert info == autoencoder.info  # the same record whether the weights are loaded or not
    assert info.name and info.dataset == "toy" and info.epochs >= 1 and info.mtime == path.stat().st_mtime
    assert info.model_config == autoencoder.model.config
    assert "shipped" not in info.label and "toy" in info.label


def test_metadata_of_a_missing_or_foreign_file_names_it(tmp_path):
    from nesf.checkpoint import read_checkpoint_info

    with pytest.raises(NesfError, match=r"nothing\.pt: checkpoint not found"):
        read_checkpoint_info(tmp_path / "nothing.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(NesfError, match=r"other\.pt: not a NeSF checkpoint"):
        read_checkpoint_info(tmp_path / "other.pt")


@pytest.mark.parametrize("path", sorted(p for p in SHIPPED_DIR.glob("*.pt") if not p.name.endswith(".atlas.pt")),
                         ids=lambda p: p.name)
def test_each_shipped_checkpoint_loads_and_converts_back_to_the_same_file_dict(path):
    """Every format in checkpoints/ loads as a typed `Checkpoint`, and `to_payload` gives back the file's dict: the
    same keys, the same values (a checkpoint rewritten by `nesf card` changes nothing else), its configs typed (a
    config field added after the file was written appears at its default, the behaviour before it existed)."""
    payload = read_payload(path)
    checkpoint = Checkpoint.load(path)
    assert checkpoint.name == payload["name"] and checkpoint.vocab == [int(z) for z in payload["vocab"]]
    again = {**checkpoint.to_payload(), "format": payload["format"], "format_version": payload["format_version"]}
    assert again.keys() == payload.keys()
    assert again["model_state"].keys() == payload["model_state"].keys()
    assert all(torch.equal(again["model_state"][key], value) for key, value in payload["model_state"].items())
    configs = ("model_config", "train_config", "sampling_config", "decode_config")
    for key, value in payload.items():  # by repr: the stored metrics hold NaNs
        assert key in ("model_state", *configs) or repr(again[key]) == repr(value), key
    for key in configs:  # typed: every stored field kept; fields added since the file was written at their defaults
        stored = {name: tuple(v) if isinstance(v, list) else v for name, v in payload[key].items()}
        assert {name: again[key][name] for name in stored} == stored, key


def test_a_run_checkpoint_round_trips_with_its_training_state(toy_checkpoint, tmp_path):
    payload = read_payload(toy_checkpoint[0])
    checkpoint = Checkpoint.from_payload(payload)
    assert checkpoint.training_state is not None and checkpoint.training_state.optimizer_state is not None
    checkpoint.save(tmp_path / "again.pt")
    again = read_payload(tmp_path / "again.pt")
    assert again.keys() == payload.keys() and again["training_state"].keys() == payload["training_state"].keys()
    assert "training_state" not in checkpoint.without_training_state().to_payload()
