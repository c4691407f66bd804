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


def test_distance_from_data_against_the_datasets_own_spacing():
    """A grid of spacing 1: a grid point is within the data, a point between rows at the edge, one far away far."""
    from nesf.inference.decode_anywhere import distance_from_data, nearest_spacing

    grid = np.array([[i, j] for i in range(10) for j in range(10)], dtype=float)
    np.testing.assert_allclose(nearest_spacing(grid), 1.0)
    inside = distance_from_data(np.array([3.0, 4.0]), grid)
    assert (inside.nearest, inside.median_spacing, inside.far_spacing) == (0.0, 1.0, 1.0)
    assert inside.level == "within the data"
    far = distance_from_data(np.array([30.0, 4.0]), grid)
    assert far.nearest == pytest.approx(21.0) and far.level == "far from any data"
    assert far.sentence().startswith("far from any data: the nearest dataset crystal is 21 away in latent space, "
                                     "21.0x the dataset's median spacing (1; 95 % of its crystals have a neighbour "
                                     "within 1)")
    assert "read the structure as a guess" in far.sentence()
    # a looser dataset: 9 % of its crystals on a row of spacing 3 put the edge at 3
    loose = np.vstack([grid, [[20.0 + 3 * k, 20.0] for k in range(10)]])
    edge = distance_from_data(np.array([4.5, 11.5]), loose)
    assert edge.median_spacing == 1.0 and 1.0 < edge.nearest <= edge.far_spacing and edge.level == "at the data's edge"
    with pytest.raises(NesfError, match="at least two"):
        nearest_spacing(grid[:1])


def test_far_latents_take_no_axis_of_the_pca_map_and_it_still_inverts(latent_map):
    """Two latents 1,000 units out (LCS6A's one-atom O cells sat ~1,570 out) would be the first principal axis on
    their own; the map's PCA is fitted without them, so its axes are the data's, and every position still inverts
    exactly through the projection."""
    from nesf.inference.atlas import compute_map, map_pca

    latents, _ = latent_map
    far = np.concatenate([latents, np.full((2, latents.shape[1]), 1000.0)])
    pca = map_pca(far)
    clean = map_pca(latents)
    np.testing.assert_allclose(np.abs(pca.components_), np.abs(clean.components_), atol=1e-9)
    coords = compute_map(far, "pca")
    source = Atlas(dataset="far", checkpoint_sha256="", table=pd.DataFrame(), latents=far, crystals=[], pca=coords)
    for xy in ([0.0, 0.0], [2.5, -1.0], coords[3], coords[-1]):
        point = latent_at(xy, far, coords, "pca")
        np.testing.assert_allclose(project_new(source, point.latent[None], "pca")[0], xy, atol=1e-4)
