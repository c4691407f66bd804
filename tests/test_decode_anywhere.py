"""Decode anywhere: the latent behind a map position, checked by round trips."""

import numpy as np
import pandas as pd
import pytest

from nesf.core.errors import NesfError
from nesf.inference.atlas import Atlas, project_new
from nesf.inference.decode_anywhere import latent_at


@pytest.fixture
def latent_map():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(200, 16)) * np.linspace(3, 0.1, 16)
    from sklearn.decomposition import PCA

    coords = PCA(n_components=2, random_state=0).fit_transform(latents) * np.array([-1.0, 1.0])  # a flipped axis
    return latents, coords


def test_pca_inverse_round_trips_through_the_projection(latent_map):
    latents, coords = latent_map
    source = Atlas(dataset="random", checkpoint_sha256="", table=pd.DataFrame(), latents=latents, crystals=[],
                   pca=coords)
    for xy in ([0.0, 0.0], [2.5, -1.0], coords[17]):
        point = latent_at(xy, latents, coords, "pca")
        np.testing.assert_allclose(project_new(source, point.latent[None], "pca")[0], xy, atol=1e-4)
    # on the mean plane: the origin of the map is the mean latent
    np.testing.assert_allclose(latent_at([0, 0], latents, coords, "pca").latent, latents.mean(0), atol=1e-4)


def test_tsne_position_interpolates_the_nearest_points(latent_map):
    latents, coords = latent_map
    point = latent_at(coords[42], latents, coords, "tsne")
    assert point.neighbors[0] == 42
    np.testing.assert_allclose(point.latent, latents[42], atol=1e-3)  # on a point: that point's latent
    assert "t-SNE has no inverse" in point.how


def test_bad_positions(latent_map):
    latents, coords = latent_map
    with pytest.raises(NesfError, match="is not a pair of finite numbers"):
        latent_at([np.nan, 0], latents, coords, "pca")
    with pytest.raises(NesfError, match="unknown map method 'umap'"):
        latent_at([0, 0], latents, coords, "umap")
