"""The Autoencoder facade: input checks with clear messages, encode/decode shapes, interpolation paths, atlas."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from nesf.api import Autoencoder
from nesf.core.config import DecodeConfig, MapConfig
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.data.datasets import dataset_from_crystals
from nesf.inference.atlas import (Atlas, build_atlas, load_atlas, nearest_neighbors, project_new, save_atlas,
                                  write_atlas)
from tests.helpers import bcc_iron, cscl, cubic


@pytest.fixture(scope="module")
def autoencoder(toy_checkpoint):
    return Autoencoder.from_checkpoint(toy_checkpoint[0], "cpu")


def test_unknown_element_is_named(autoencoder):
    gold = cubic(4.08, [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]], [79] * 4, "gold")
    with pytest.raises(NesfError, match=r"gold: outside this model's range: element\(s\) Au not among the 5 this model was trained on"):
        autoencoder.encode([gold])


def test_cell_larger_than_the_box_is_refused(autoencoder):
    big = cubic(12.0, [[0, 0, 0], [.5, .5, .5]], [55, 17], "big")
    limit = autoencoder.range.max_lengths_angstrom[0]
    with pytest.raises(NesfError, match=rf"big: outside this model's range: a = 12.00 A; this model was trained on "
                                        rf"cells with a <= {limit:.2f} A"):
        autoencoder.reconstruct([big])
    assert autoencoder.encode([big], check_box=False).shape == (1, 192)


def test_empty_structure_is_refused(autoencoder):
    empty = Crystal(np.eye(3) * 3, np.zeros((0, 3)), [], "nothing")
    with pytest.raises(NesfError, match="nothing: has no atoms"):
        autoencoder.encode([empty])


def test_decode_checks_latent_width(autoencoder):
    with pytest.raises(NesfError, match="latent vectors have 3 entries, this model uses 192"):
        autoencoder.decode(np.zeros((1, 3)))


def test_interpolation_path_starts_and_ends_at_the_inputs(autoencoder):
    latents, path = autoencoder.interpolate(cscl(), bcc_iron(), 5, "spherical", DecodeConfig.fast())
    assert latents.shape == (5, 192) and len(path) == 5
    np.testing.assert_allclose(latents[0], autoencoder.encode([cscl()])[0], atol=1e-5)
    assert path[0].formula == "CsCl" and path[-1].formula == "Fe"


def toy_atlas_table(crystals, ids, splits):
    """The atlas table rows of CsCl (Pm-3m) and bcc Fe (Im-3m) crystals."""
    groups = {"CsCl": (221, "Pm-3m"), "Fe": (229, "Im-3m")}
    return pd.DataFrame({"id": ids, "split": splits, "formula": [c.formula for c in crystals],
                         "num_atoms": [c.num_atoms for c in crystals],
                         "volume_angstrom3": [c.volume_angstrom3 for c in crystals],
                         "spacegroup_number": [groups[c.formula][0] for c in crystals],
                         "spacegroup_symbol": [groups[c.formula][1] for c in crystals],
                         "crystal_system": ["cubic"] * len(crystals)})


def test_atlas_round_trip_and_neighbours(autoencoder, tmp_path):
    crystals = [cscl(), bcc_iron()] * 3
    table = toy_atlas_table(crystals, [f"c{i}" for i in range(6)], ["train"] * 4 + ["test"] * 2)
    atlas = build_atlas(autoencoder, crystals, table, dataset="toy", maps=MapConfig(perplexity=2, iterations=50),
                        reconstruction_errors_for={"test"})
    path = tmp_path / "toy.atlas.pt"
    save_atlas(atlas, path)
    loaded = load_atlas(path, autoencoder)
    assert len(loaded) == 6 and loaded.tsne.shape == (6, 2) and loaded.pca.shape == (6, 2)
    assert np.isnan(loaded.table["reconstruction_error_angstrom"][0])
    assert loaded.table["reconstruction_error_angstrom"][5] < 0.3
    np.testing.assert_allclose(loaded.crystals[1].cart_coords, crystals[1].cart_coords, atol=1e-5)
    assert "latents" not in torch.load(path, weights_only=True)  # recomputed from the crystals on load
    assert loaded.latents.dtype == np.float32
    np.testing.assert_allclose(loaded.latents, atlas.latents, atol=1e-5)
    order, distances = nearest_neighbors(loaded, loaded.latents[1], k=3)
    assert set(order) == {1, 3, 5} and distances[0] == pytest.approx(0, abs=1e-5)
    placed = project_new(loaded, loaded.latents[:1], "pca")
    np.testing.assert_allclose(placed[0], loaded.pca[0], atol=1e-3)


def test_encode_reports_progress_per_chunk(autoencoder, monkeypatch):
    from nesf.inference import autoencoder as implementation

    monkeypatch.setattr(implementation, "ENCODE_CHUNK", 2)
    crystals = [cscl(), bcc_iron(), cscl(), bcc_iron(), cscl()]
    calls = []
    latents = autoencoder.encode(crystals, progress=lambda fraction, message: calls.append((fraction, message)))
    assert [fraction for fraction, _ in calls] == pytest.approx([0.4, 0.8, 1.0])
    assert calls[-1][1] == "encoded 5/5 crystals"
    np.testing.assert_allclose(latents, autoencoder.encode(crystals), atol=1e-6)  # the same latents without it


def test_decode_presets_by_name(autoencoder):
    assert autoencoder.decode_preset("paper") == DecodeConfig()
    assert autoencoder.decode_preset("fast") == DecodeConfig.fast()
    assert autoencoder.decode_preset("checkpoint") == autoencoder.decode_config
    with pytest.raises(NesfError, match=r"unknown decoding preset 'Fast'; use one of paper, fast, checkpoint"):
        autoencoder.decode_preset("Fast")


def test_neighbours_and_projection_of_latents_without_maps():
    rng = np.random.default_rng(0)
    latents = Atlas(dataset="random", checkpoint_sha256="", table=pd.DataFrame(), latents=rng.normal(size=(40, 6)),
                    crystals=[])
    order, distances = nearest_neighbors(latents, latents.latents[7] + 1e-3, k=3)
    assert order[0] == 7 and distances[0] == pytest.approx(1e-3 * np.sqrt(6))
    assert np.all(np.diff(distances) >= 0) and len(order) == 3
    # PCA: new points land where the PCA of the base latents puts them, whatever the signs of the stored map
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2).fit(latents.latents)
    stored = pca.transform(latents.latents) * np.array([-1.0, 1.0])
    new = rng.normal(size=(3, 6))
    np.testing.assert_allclose(project_new(latents, new, "pca", coords=stored),
                               pca.transform(new) * np.array([-1.0, 1.0]), atol=1e-6)
    # t-SNE: a latent on top of a base crystal lands (almost) on its map position
    coords = rng.normal(size=(40, 2))
    np.testing.assert_allclose(project_new(latents, latents.latents[3:4], "tsne", coords=coords)[0], coords[3],
                               atol=1e-3)
    with pytest.raises(NesfError, match="unknown map method 'umap'"):
        project_new(latents, new, "umap", coords=coords)
    with pytest.raises(NesfError, match="no latent vectors"):
        nearest_neighbors(replace(latents, latents=np.zeros((0, 6))), new[0])
    with pytest.raises(NesfError, match="loaded without its model, so it has no latents"):
        nearest_neighbors(replace(latents, latents=None), new[0])


def test_atlas_loaded_without_its_model_has_maps_but_no_latents(autoencoder, tmp_path):
    crystals = [cscl(), bcc_iron(), cscl()]
    table = toy_atlas_table(crystals, ["a", "b", "c"], ["train"] * 3)
    path = tmp_path / "toy.atlas.pt"
    save_atlas(build_atlas(autoencoder, crystals, table, dataset="toy", maps=MapConfig(iterations=50)), path)
    loaded = load_atlas(path)
    assert loaded.latents is None and loaded.tsne.shape == (3, 2) and list(loaded.table["id"]) == ["a", "b", "c"]
    with pytest.raises(NesfError, match="loaded without its model, so it has no latents"):
        nearest_neighbors(loaded, np.zeros(192))


def test_atlas_of_other_weights_is_refused_with_the_fix(autoencoder, toy_checkpoint, tmp_path):
    crystals = [cscl(), bcc_iron(), cscl()]
    path = tmp_path / "toy.atlas.pt"
    save_atlas(build_atlas(autoencoder, crystals, toy_atlas_table(crystals, ["a", "b", "c"], ["train"] * 3),
                           dataset="toy", maps=MapConfig(iterations=50)), path)
    payload = torch.load(toy_checkpoint[0], weights_only=True)
    carded = tmp_path / "carded.pt"  # the same weights in a rewritten file (`nesf card` stores metrics in it)
    torch.save({**payload, "metrics": {"test": {"count": 3}}}, carded)
    assert len(load_atlas(path, Autoencoder.from_checkpoint(carded, "cpu"))) == 3
    state = dict(payload["model_state"])
    state["length_head.0.bias"] = state["length_head.0.bias"] + 1e-3
    retrained = tmp_path / "retrained.pt"
    torch.save({**payload, "model_state": state}, retrained)
    with pytest.raises(NesfError, match=r"toy\.atlas\.pt: built from other model weights than retrained\.pt's, so its "
                                        r"maps place crystals by another model's latents; rebuild it: python -m nesf "
                                        r"atlas .*retrained\.pt"):
        load_atlas(path, Autoencoder.from_checkpoint(retrained, "cpu"))
    # an atlas written before the weights' digest: the checkpoint file's digest decides
    old = torch.load(path, weights_only=True)
    del old["weights_sha256"]
    torch.save(old, path)
    assert len(load_atlas(path, autoencoder)) == 3 and len(load_atlas(path)) == 3
    with pytest.raises(NesfError, match="built from other model weights than carded.pt's"):
        load_atlas(path, Autoencoder.from_checkpoint(carded, "cpu"))


def test_format_1_atlas_with_stored_latents_still_loads(autoencoder, tmp_path):
    """Atlases written before format 2 stored float16 latents; they load as they are, model or not."""
    crystals = [cscl(), bcc_iron(), cscl()]
    latents = autoencoder.encode(crystals)
    payload = {"format": "nesf-atlas", "format_version": 1, "dataset": "toy", "checkpoint_sha256": "0" * 64,
               "columns": {"id": ["a", "b", "c"], "split": ["train"] * 3, "formula": ["CsCl", "Fe", "CsCl"]},
               "latents": torch.from_numpy(latents.astype(np.float16)), "tsne": torch.zeros(3, 2),
               "pca": torch.zeros(3, 2), "lattices": torch.from_numpy(np.stack([c.lattice for c in crystals])),
               "cart_coords": torch.from_numpy(np.concatenate([c.cart_coords for c in crystals]).astype(np.float32)),
               "species": torch.from_numpy(np.concatenate([c.species for c in crystals]).astype(np.int16)),
               "atom_counts": torch.tensor([c.num_atoms for c in crystals])}
    path = tmp_path / "old.atlas.pt"
    torch.save(payload, path)
    loaded = load_atlas(path)
    np.testing.assert_allclose(loaded.latents, latents, atol=1e-2)
    assert loaded.crystals[1].formula == "Fe"
    payload["format_version"] = 3
    torch.save(payload, path)
    with pytest.raises(NesfError, match="atlas format version 3; this version of nesf reads 1 and 2"):
        load_atlas(path)


def test_atlas_in_consistent_settings_maps_every_cscl_with_cs_at_the_origin(autoencoder, tmp_path):
    cs_first, cl_first = cscl(), cubic(4.12, [[0, 0, 0], [.5, .5, .5]], [17, 55], "CsCl")
    dataset = dataset_from_crystals("toy", [cs_first, cl_first] * 3, cache_dir=tmp_path)
    maps = MapConfig(perplexity=2, iterations=50)
    stored = load_atlas(write_atlas(autoencoder, dataset, tmp_path / "stored.pt", errors="none", maps=maps),
                        autoencoder)
    consistent = load_atlas(write_atlas(autoencoder, dataset, tmp_path / "consistent.pt", errors="none", maps=maps,
                                        frames="consistent"), autoencoder)
    assert (stored.frames, consistent.frames) == ("stored", "consistent")
    at_origin = lambda atlas: {int(c.species[np.flatnonzero(np.all(np.isclose(c.frac_coords, 0, atol=1e-6), 1))[0]])  # noqa: E731
                               for c in atlas.crystals}
    assert at_origin(stored) == {55, 17} and at_origin(consistent) == {55}
    latents = consistent.latents
    np.testing.assert_allclose(latents, latents[[0]].repeat(6, 0), atol=1e-5)  # one crystal, one point
    with pytest.raises(NesfError, match="atlas frames 'best': choose one of stored, consistent"):
        write_atlas(autoencoder, dataset, tmp_path / "x.pt", frames="best")


def test_an_atlas_in_consistent_settings_is_not_the_trust_signals_training_reference(toy_checkpoint, tmp_path):
    import shutil

    from nesf.checkpoint import atlas_path_for

    checkpoint = tmp_path / "toy.pt"
    shutil.copy(toy_checkpoint[0], checkpoint)
    dataset = dataset_from_crystals("toy", [cscl(), bcc_iron()] * 3, val_fraction=0, test_fraction=0,
                                    cache_dir=tmp_path)
    maps = MapConfig(perplexity=2, iterations=50)
    for frames, has_reference in (("stored", True), ("consistent", False)):
        model = Autoencoder.from_checkpoint(checkpoint, "cpu")
        write_atlas(model, dataset, atlas_path_for(checkpoint), errors="none", maps=maps, frames=frames)
        assert (model.training_reference() is not None) == has_reference
