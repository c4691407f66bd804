"""The self-consistency readings of generated samples (`nesf.inference.generation.consistency`) on the toy model
(overfitted on CsCl and bcc Fe): a crystal the model reconstructs reads consistent at its own latent, the same
latent read at displaced atoms does not, a crystal without atoms reads NaN."""

import numpy as np
import pytest

from nesf.api import Autoencoder
from nesf.core.crystal import Crystal
from nesf.inference.generation.consistency import consistency
from nesf.model.frame_select import field_scores


@pytest.fixture(scope="module")
def autoencoder(toy_checkpoint):
    return Autoencoder.from_checkpoint(toy_checkpoint[0], "cpu")


def test_a_reconstructed_crystal_reads_consistent_and_displaced_atoms_do_not(autoencoder, toy_checkpoint):
    crystals = toy_checkpoint[1]
    latents = autoencoder.encode(crystals)
    found = consistency(autoencoder, latents, crystals)
    # read at the training crystals themselves with their own latents: the re-encoded residual is the encoder's
    # field residual (the same numbers `field_scores` gives) and the drift is zero
    _, scores = field_scores(autoencoder.model, crystals, autoencoder.vocab, autoencoder.device)
    assert found.reencoded_residual == pytest.approx([s.score for s in scores], rel=1e-5)
    assert found.self_residual == pytest.approx(found.reencoded_residual, rel=1e-5)
    assert found.latent_drift == pytest.approx([0.0, 0.0], abs=1e-4)
    assert (found.self_residual < 0.3).all()
    # the same latents read at atoms moved by 0.8 A: the fields point back to where the atoms should be
    moved = [Crystal(c.lattice, c.cart_coords + np.array([0.8, 0.0, 0.0]), c.species, c.id) for c in crystals]
    worse = consistency(autoencoder, latents, moved)
    assert (worse.self_residual > found.self_residual + 0.4).all()


def test_a_sample_without_atoms_reads_nan(autoencoder, toy_checkpoint):
    crystal = toy_checkpoint[1][0]
    empty = Crystal(crystal.lattice, np.zeros((0, 3)), np.zeros(0, dtype=int), "empty")
    latents = autoencoder.encode([crystal, crystal])
    found = consistency(autoencoder, latents, [empty, crystal])
    for reading in (found.self_residual, found.reencoded_residual, found.latent_drift):
        assert np.isnan(reading[0]) and np.isfinite(reading[1])
