"""Test-time refinement of latents (`nesf.model.refine`): the loss it minimises, batch invariance, determinism, the
guard, the stopping rule and the encoder-only protocol, on the shipped LCS6A model (loads in a second)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from nesf.api import Autoencoder
from nesf.core.config import LossWeights, SamplingConfig
from nesf.core.errors import NesfError
from nesf.model.batch import CrystalTensors
from nesf.model.refine import ENCODER_ONLY, RefineConfig, crystal_losses, crystal_seed
from nesf.model.sampling import QuerySampler
from tests.helpers import bcc_iron, cscl, cubic, rocksalt_mgo

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "lcs6a.pt"


@pytest.fixture(scope="module")
def model():
    if not SHIPPED.is_file():
        pytest.skip(f"{SHIPPED} is not there")
    return Autoencoder.from_checkpoint(SHIPPED, "cpu")


def nacl():
    return cubic(5.64, [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5],
                        [.5, 0, 0], [0, .5, 0], [0, 0, .5], [.5, .5, .5]], [11] * 4 + [17] * 4, "NaCl")


def crystals():
    return [nacl(), cscl(), rocksalt_mgo(), bcc_iron()]


def test_per_crystal_loss_is_the_training_loss_of_each_crystal_alone(model):
    """`crystal_losses` of a batch equals, crystal by crystal, the trainer's `compute_loss` on that crystal alone."""
    from nesf.training.trainer import compute_loss

    weights = model.info.train_config.loss_weights
    sampler = QuerySampler(model.bbox_min, model.bbox_max, SamplingConfig(global_in_cell=True), model.device)
    tensors = CrystalTensors(crystals(), model.vocab, model.device)
    with torch.no_grad():
        latent = model.model.encode(tensors.batch())
        for row in range(len(tensors)):
            batch = tensors.batch(torch.tensor([row]))
            queries = sampler.sample(batch, torch.Generator().manual_seed(row))
            outputs = (*model.model.lattice(latent[row:row + 1]),
                       model.model.position_field(latent[row:row + 1], queries.position_queries,
                                                  queries.position_crystal),
                       model.model.species_field(latent[row:row + 1], queries.species_queries,
                                                 queries.species_crystal),
                       model.model.composition_head(latent[row:row + 1]))
            expected, _ = compute_loss(outputs, batch, queries, weights)
            ours = crystal_losses(model.model, latent[row:row + 1], batch, queries, weights)
            assert ours.shape == (1,)
            assert float(ours[0]) == pytest.approx(float(expected), rel=1e-5)


def test_refinement_lowers_the_field_score_and_records_both(model):
    choices = model.select_frames(crystals(), refine=ENCODER_ONLY)
    refined = model.refine(choices, RefineConfig())
    for before, after in zip(choices, refined):
        record = after.refinement
        assert record.encoder_score == before.score
        assert 1 <= record.steps <= RefineConfig().max_steps
        if record.used_refined:  # the guard: a refined latent is used only where its score is lower
            assert record.refined_score.score < record.encoder_score.score
            assert after.score == record.refined_score and not np.allclose(after.latent, before.latent)
        else:
            assert after.score == record.encoder_score and np.array_equal(after.latent, before.latent)
        assert after.score.score <= before.score.score
        assert after.refined and after.crystal is before.crystal


def test_refinement_recovers_a_latent_knocked_off_its_crystal(model):
    """Started from the encoder's latent plus noise, refinement brings the fields back to the crystal's atoms: its
    field score falls far below the noisy start's, towards the encoder's."""
    choice = model.select_frames([nacl()], refine=ENCODER_ONLY)[0]
    noisy = replace(choice, latent=choice.latent + np.random.default_rng(0).normal(0, 1.0, choice.latent.shape)
                    .astype(np.float32))
    start = model.refine([noisy], ENCODER_ONLY)[0].score.score
    refined = model.refine([noisy], RefineConfig(max_steps=100, patience=100))[0]
    assert refined.refinement.used_refined
    assert start > 0.2 and refined.score.score < 0.25 * start  # measured: 0.237 -> 0.041 A
    assert refined.score.score < choice.score.score + 0.02   # the encoder's own: 0.035 A


def test_batched_refinement_equals_refinement_alone_and_repeats_exactly(model):
    """Each crystal's queries come from its own seed and its loss is its own: together or alone, the same latent;
    run again, the same steps and latents (to the last digits CPU threads' summation order moves)."""
    choices = model.select_frames(crystals(), refine=ENCODER_ONLY)
    together = model.refine(choices)
    again = model.refine(choices)
    for a, b in zip(together, again):
        assert a.refinement.steps == b.refinement.steps and a.refinement.used_refined == b.refinement.used_refined
        np.testing.assert_allclose(a.latent, b.latent, atol=1e-5)
    for choice, batched in zip(choices, together):
        alone = model.refine([choice])[0]
        assert alone.refinement.steps == batched.refinement.steps
        np.testing.assert_allclose(alone.latent, batched.latent, atol=2e-4)
    # the seed is part of the draw
    assert crystal_seed(nacl(), 0) == crystal_seed(nacl(), 0) != crystal_seed(nacl(), 1)


def test_stopping_rule_and_step_budget(model):
    choices = model.select_frames(crystals(), refine=ENCODER_ONLY)
    capped = model.refine(choices, RefineConfig(max_steps=3))
    assert all(1 <= c.refinement.steps <= 3 for c in capped)
    impatient = model.refine(choices, RefineConfig(max_steps=200, patience=1, min_relative_improvement=0.5))
    patient = model.refine(choices, RefineConfig(max_steps=200, patience=200, min_relative_improvement=0.0))
    assert all(c.refinement.steps < 10 for c in impatient)  # no step halves the loss for long
    assert all(c.refinement.steps == 200 for c in patient)


def test_encoder_only_is_the_papers_protocol(model):
    choices = model.select_frames(crystals(), refine=ENCODER_ONLY)
    latents = model.encode([c.crystal for c in choices])
    for choice, latent in zip(choices, latents):
        np.testing.assert_allclose(choice.latent, latent, atol=1e-5)
        assert choice.refinement.steps == 0 and not choice.refinement.used_refined and not choice.refined
    default = model.select_frames([nacl()])[0]  # the product's default refines
    assert default.refined and default.refinement.steps >= 1


def test_refinement_leaves_the_weights_and_their_flags_alone(model):
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    flags = [p.requires_grad for p in model.model.parameters()]
    model.refine(model.select_frames([nacl()], refine=ENCODER_ONLY))
    assert all(torch.equal(before[k], v) for k, v in model.model.state_dict().items())
    assert [p.requires_grad for p in model.model.parameters()] == flags
    assert not model.model.training


def test_bad_settings_are_named():
    with pytest.raises(NesfError, match="RefineConfig.max_steps must be >= 0, got -1"):
        RefineConfig(max_steps=-1)
    with pytest.raises(NesfError, match=r"RefineConfig.local_query_fraction must lie in \(0, 1\], got 0"):
        RefineConfig(local_query_fraction=0)
    assert ENCODER_ONLY.encoder_only and ENCODER_ONLY.label() == "encoder only"
    assert LossWeights()  # the loss weights come from the checkpoint; defaults exist for checkpoints without them
