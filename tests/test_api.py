"""The Autoencoder facade: input checks with clear messages, encode/decode shapes, interpolation paths, atlas."""

import numpy as np
import pytest

from nesf.api import Autoencoder
from nesf.atlas import build_atlas, load_atlas, nearest_neighbors, project_new, save_atlas
from nesf.config import DecodeConfig
from nesf.crystal import Crystal
from nesf.errors import NesfError
from tests.helpers import bcc_iron, cscl, cubic


@pytest.fixture(scope="module")
def autoencoder(toy_checkpoint):
    return Autoencoder.from_checkpoint(toy_checkpoint[0], "cpu")


def test_unknown_element_is_named(autoencoder):
    gold = cubic(4.08, [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]], [79] * 4, "gold")
    with pytest.raises(NesfError, match=r"gold: element\(s\) Au not in this model's vocabulary of 5 elements"):
        autoencoder.encode([gold])


def test_cell_larger_than_the_box_is_refused(autoencoder):
    big = cubic(12.0, [[0, 0, 0], [.5, .5, .5]], [55, 17], "big")
    with pytest.raises(NesfError, match="big: cell too large for this model"):
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


def test_atlas_round_trip_and_neighbours(autoencoder, tmp_path):
    import pandas as pd

    crystals = [cscl(), bcc_iron()] * 3
    table = pd.DataFrame({"id": [f"c{i}" for i in range(6)], "split": ["train"] * 4 + ["test"] * 2,
                          "formula": [c.formula for c in crystals], "num_atoms": [2] * 6,
                          "volume_angstrom3": [c.volume_angstrom3 for c in crystals],
                          "spacegroup_number": [221, 229] * 3, "spacegroup_symbol": ["Pm-3m", "Im-3m"] * 3,
                          "crystal_system": ["cubic"] * 6})
    atlas = build_atlas(autoencoder, crystals, table, dataset="toy", tsne_perplexity=2, tsne_iterations=50,
                        reconstruction_errors_for={"test"})
    path = tmp_path / "toy.atlas.pt"
    save_atlas(atlas, path)
    loaded = load_atlas(path)
    assert len(loaded) == 6 and loaded.tsne.shape == (6, 2) and loaded.pca.shape == (6, 2)
    assert np.isnan(loaded.table["reconstruction_error_angstrom"][0])
    assert loaded.table["reconstruction_error_angstrom"][5] < 0.3
    np.testing.assert_allclose(loaded.crystals[1].cart_coords, crystals[1].cart_coords, atol=1e-5)
    order, distances = nearest_neighbors(loaded, loaded.latents[1], k=3)
    assert set(order) == {1, 3, 5} and distances[0] == pytest.approx(0, abs=1e-5)
    placed = project_new(loaded, loaded.latents[:1], "pca")
    np.testing.assert_allclose(placed[0], loaded.pca[0], atol=1e-3)
