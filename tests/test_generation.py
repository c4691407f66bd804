"""Generation: the latent densities, and the generated-set metrics against hand-made cases (CDVAE's definitions)."""

import numpy as np
import pytest

from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.inference.generation.density import fit_density
from nesf.inference.generation.fingerprints import (Fingerprints, composition_fingerprint, fingerprints,
                                                    structure_fingerprint)
from nesf.inference.generation.scores import coverage, coverage_cutoffs, score_crystals, score_generated
from nesf.inference.generation.validity import composition_valid, crystal_valid, min_distance_angstrom, structure_valid
from tests.helpers import ROCKSALT_FRAC, bcc_iron, cscl, cubic, rocksalt_mgo


def nacl(a: float = 5.64) -> Crystal:
    return cubic(a, ROCKSALT_FRAC, [11] * 4 + [17] * 4, "NaCl")


def pair(distance: float, a: float = 4.0) -> Crystal:
    return Crystal(np.eye(3) * a, np.array([[0.0, 0, 0], [distance, 0, 0]]), np.array([11, 17]), "pair")


# -- validity -----------------------------------------------------------------------------------------------------
def test_two_atoms_closer_than_half_an_angstrom_are_invalid():
    assert not structure_valid(pair(0.4))
    assert structure_valid(pair(2.0))
    # periodic images count: 3.8 A apart in a 4 A cell is 0.2 A through the boundary
    assert min_distance_angstrom(pair(3.8)) == pytest.approx(0.2)
    assert not structure_valid(pair(3.8))
    assert min_distance_angstrom(nacl()) == pytest.approx(5.64 / 2)


def test_tiny_or_empty_cells_are_invalid():
    assert not structure_valid(Crystal(np.eye(3) * 0.4, np.zeros((1, 3)), np.array([26]), "tiny"))  # 0.064 A^3
    assert not structure_valid(Crystal(np.eye(3) * 4, np.zeros((0, 3)), np.zeros(0, dtype=int), "empty"))
    assert structure_valid(bcc_iron())


def test_smact_charge_neutrality():
    assert composition_valid([11, 17])          # NaCl: Na+ Cl-
    assert not composition_valid([11, 17, 17])  # NaCl2: no oxidation states balance it
    assert composition_valid([12, 8])           # MgO
    assert composition_valid([38, 22, 8, 8, 8])  # SrTiO3
    assert composition_valid([26, 26])          # one element
    assert composition_valid([26, 28, 28])      # only metals: an alloy
    assert not composition_valid([8, 9])        # OF: both anions
    assert crystal_valid(nacl()) == (True, True)
    assert crystal_valid(cubic(5.64, ROCKSALT_FRAC, [11] * 2 + [17] * 6, "NaCl3")) == (True, False)


# -- uniqueness and novelty ---------------------------------------------------------------------------------------
def test_a_training_crystal_is_not_novel_and_a_repeat_is_not_unique():
    training = [nacl(), cscl()]
    generated = [nacl(5.70),  # the training NaCl, slightly strained: the same structure
                 rocksalt_mgo(),  # rocksalt but another composition: novel
                 rocksalt_mgo(),  # a repeat: not unique
                 pair(0.3)]  # invalid: neither
    scores = score_crystals(generated, training)
    assert scores.valid.tolist() == [True, True, True, False]
    assert scores.unique.tolist() == [True, True, False, False]
    assert scores.novel.tolist() == [False, True, False, False]


# -- coverage -----------------------------------------------------------------------------------------------------
def test_coverage_against_hand_made_fingerprints():
    reference = Fingerprints(np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]]), np.zeros((3, 2)))
    # generated: one on the first reference point, one near the second (0.1 away), one far, one without fingerprint
    generated = Fingerprints(np.array([[0.0, 0.0], [1.1, 0.0], [9.0, 9.0], [np.nan, np.nan]]), np.zeros((4, 2)))
    result = coverage(generated, reference, structure_cutoff=0.2, composition_cutoff=4.0)
    assert result.recall_percent == pytest.approx(200 / 3)   # 2 of 3 reference points covered
    assert result.precision_percent == pytest.approx(50.0)   # 2 of 4 generated (the one without counts)
    assert result.amsd_recall == pytest.approx((0.0 + 0.1 + np.hypot(4, 4)) / 3)
    # the composition cutoff binds too
    far = Fingerprints(generated.structure, np.full((4, 2), 10.0))
    assert coverage(far, reference, 0.2, 4.0).recall_percent == 0.0
    assert coverage_cutoffs("perov_5") == (0.2, 4.0) and coverage_cutoffs("lim_l6") == (0.4, 10.0)


def test_fingerprints_tell_structures_apart_and_cache(tmp_path):
    same = [nacl(), nacl(5.9)]  # the same rocksalt structure at two scales
    prints = fingerprints(same + [cscl()], cache_dir=tmp_path)
    assert np.linalg.norm(prints.structure[0] - prints.structure[1]) < 1e-6
    assert np.linalg.norm(prints.structure[0] - prints.structure[2]) > 0.2  # 6-fold vs 8-fold coordination
    assert np.linalg.norm(prints.composition[0] - prints.composition[1]) < 1e-9
    assert list(tmp_path.glob("fingerprints-*.pt"))
    again = fingerprints(same + [cscl()], cache_dir=tmp_path)
    np.testing.assert_array_equal(again.structure, prints.structure)
    assert np.isnan(structure_fingerprint(Crystal(np.eye(3), np.zeros((0, 3)), np.zeros(0, int)))).all()
    assert composition_fingerprint([11, 17]).shape == (132,)


def test_score_generated_summary():
    reference = [nacl(), cscl(), rocksalt_mgo()]
    scores, per_crystal = score_generated([nacl(5.66), rocksalt_mgo(), pair(0.3)], reference, training=[nacl()],
                                          cutoffs=(0.2, 4.0))
    assert scores.generated == 3
    assert scores.structure_valid_percent == pytest.approx(200 / 3)
    assert scores.valid_percent == pytest.approx(200 / 3)
    assert scores.unique_percent == 100.0 and scores.novel_percent == 50.0
    assert scores.cov_recall_percent == pytest.approx(200 / 3)  # NaCl and MgO covered, CsCl not
    assert per_crystal.novel.tolist() == [False, True, False]


def test_smact14_is_the_table_cdvae_scored_with():
    # O in SMACT 2.2.1's 2014 table can be +1 or +2, so OF passes there; the installed default (ICSD 2024) has O -2 only
    assert not composition_valid([8, 9]) and composition_valid([8, 9], "smact14")
    assert composition_valid([38, 22, 8, 8, 8], "smact14")
    with pytest.raises(ValueError, match="unknown oxidation-state table 'smact2'; use one of installed, smact14"):
        composition_valid([11, 17], "smact2")


def test_cdvae_protocol_counts_a_crystal_without_fingerprint_invalid_and_samples_the_property_set():
    reference = [nacl(), cscl(), rocksalt_mgo()]
    generated = [nacl(5.66), rocksalt_mgo(), nacl(5.70), cscl(), pair(0.3)]
    everything, _ = score_generated(generated, reference, training=[nacl()], cutoffs=(0.2, 4.0))
    assert everything.property_sample_size == 4 and everything.fingerprint_failed_percent == 0.0
    assert everything.valid_smact14_percent == everything.valid_percent == 80.0
    # every count of atoms the generated hold (8, 8, 8, 2, 2) is one some reference crystal has
    assert everything.reference_atom_count_percent == 100.0
    sampled, per_crystal = score_generated(generated, reference, training=[nacl()], cutoffs=(0.2, 4.0),
                                           valid_sample=2, seed=1)
    assert sampled.property_sample_size == 2 and sampled.valid_percent == 80.0
    assert per_crystal.fingerprinted.all()


def test_a_failed_fingerprint_makes_a_crystal_invalid(monkeypatch):
    import nesf.inference.generation.scores as scores_module

    real = scores_module.fingerprints

    def failing_first(crystals, **kwargs):
        prints = real(crystals, **kwargs)
        structure = prints.structure.copy()
        structure[0] = np.nan
        return Fingerprints(structure, prints.composition)

    monkeypatch.setattr(scores_module, "fingerprints", failing_first)
    scores, per_crystal = score_generated([nacl(5.66), rocksalt_mgo()], [nacl(), rocksalt_mgo()], training=[],
                                          cutoffs=(0.2, 4.0), reference_fingerprints=real([nacl(), rocksalt_mgo()]))
    assert per_crystal.valid.tolist() == [False, True]
    assert scores.valid_percent == 50.0 and scores.fingerprint_failed_percent == 50.0
    assert scores.structure_valid_percent == 100.0  # CDVAE keeps the structural and compositional figures


# -- densities ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_clusters():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(-3, 0.5, size=(300, 4)), rng.normal(3, 0.5, size=(300, 4))])


def test_temperature_scales_each_draw_about_its_component_mean(two_clusters):
    density = fit_density(two_clusters, "gmm")
    means = density.mixture.means_
    cold = density.sample(400, seed=3, temperature=0.0)
    assert np.min(np.linalg.norm(cold[:, None] - means[None], axis=-1), axis=1).max() < 1e-5
    full, half = density.sample(4000, seed=3), density.sample(4000, seed=3, temperature=0.5)
    spread = lambda x: np.min(np.linalg.norm(x[:, None] - means[None], axis=-1), axis=1).mean()  # noqa: E731
    assert spread(half) / spread(full) == pytest.approx(0.5, abs=0.03)
    with pytest.raises(NesfError, match="temperature must be 0 to 2, got 3"):
        density.sample(4, temperature=3)


def test_gmm_finds_two_clusters_and_samples_reproducibly(two_clusters):
    density = fit_density(two_clusters, "gmm")
    assert density.label == "gmm: 2 full-covariance components"
    labels = [s.label for s in density.selection]
    assert labels[:2] == ["1 full-covariance component", "2 full-covariance components"]
    samples = density.sample(400, seed=1)
    np.testing.assert_array_equal(samples, density.sample(400, seed=1))
    assert not np.array_equal(samples, density.sample(400, seed=2))
    # both clusters, none in the empty middle
    assert (samples[:, 0] < 0).mean() == pytest.approx(0.5, abs=0.1)
    assert np.abs(samples.mean(axis=1)).min() > 1.0
    gaussian = fit_density(two_clusters, "gaussian")
    assert density.log_likelihood(two_clusters) > gaussian.log_likelihood(two_clusters) + 1.0


def test_local_sampling_stays_near(two_clusters):
    density = fit_density(two_clusters, "gmm")
    centre = two_clusters[0]
    tight = density.near(centre, 500, seed=0, spread=0.1)
    wide = density.near(centre, 500, seed=0, spread=0.5)
    assert np.linalg.norm(tight - centre, axis=1).mean() == pytest.approx(
        0.2 * np.linalg.norm(wide - centre, axis=1).mean(), rel=1e-4)  # same noise, scaled
    region = two_clusters[300:310]
    inside = density.within(region, 200, seed=0, spread=0.1)
    nearest = np.linalg.norm(inside[:, None] - region[None], axis=-1).min(axis=1)
    assert nearest.max() < 0.5
    with pytest.raises(NesfError, match="a region to sample in needs at least one crystal"):
        density.within(np.zeros((0, 4)), 5)
    with pytest.raises(NesfError, match="latent vectors have 3 entries, the density 4"):
        density.near(np.zeros(3), 5)


def test_kde_and_bad_settings(two_clusters):
    kde = fit_density(two_clusters, "kde")
    assert kde.label.startswith("kde: bandwidth") and kde.mixture is None
    assert kde.sample(10, seed=3).shape == (10, 4)
    with pytest.raises(NesfError, match="unknown density 'flow'; use one of gmm, kde, gaussian"):
        fit_density(two_clusters, "flow")
    with pytest.raises(NesfError, match="needs at least 20 training latents, got 5"):
        fit_density(two_clusters[:5])


# -- CDVAE's reconstruction benchmark -----------------------------------------------------------------------------
def test_cdvae_reconstruction_needs_valid_and_matching():
    from nesf.inference.card import _cdvae_section
    from nesf.inference.generation.published import cdvae_reconstruction

    trues = [nacl(), rocksalt_mgo(), cscl(), nacl()]
    preds = [nacl(5.66),  # matches
             rocksalt_mgo(),  # matches exactly
             bcc_iron(),  # another structure: a miss
             cubic(5.64, ROCKSALT_FRAC, [11] * 2 + [17] * 6, "NaCl3")]  # not charge-neutral: a miss however close
    result = cdvae_reconstruction(trues, preds)
    assert result["cdvae_match_rate_percent"] == 50.0
    assert 0.0 <= result["cdvae_rmse"] < 0.05
    card = "\n".join(_cdvae_section("perov_5", {"test": {**result, "count": 4}, "val": {"count": 3}}))
    assert "| Match rate [%] | 50.00 | 97.52 | 99.34 |" in card  # to 2 decimals, as CDVAE publishes
    assert "| metric | ours (test, 4) | CDVAE | FTCP |" in card
    assert _cdvae_section("lim_l6", {"test": {"count": 4}}) == []


def test_a_gas_element_alone_is_valid_by_the_rules_but_flagged_for_a_chemist():
    from nesf.core.crystal import Crystal
    from nesf.inference.generation.validity import chemist_caution

    oxygen = Crystal.from_frac(np.eye(3) * 3.0, [[0, 0, 0], [0.4, 0.4, 0.4]], [8, 8], "O2")
    assert composition_valid(oxygen.species)  # CDVAE's rule passes any single element
    assert chemist_caution(oxygen) == ("O alone: the validity rules pass any single element, but O is a gas at room "
                                       "temperature")
    iron = Crystal.from_frac(np.eye(3) * 2.87, [[0, 0, 0], [0.5, 0.5, 0.5]], [26, 26], "Fe")
    salt = Crystal.from_frac(np.eye(3) * 5.64, [[0, 0, 0], [0.5, 0.5, 0.5]], [11, 17], "NaCl")
    assert chemist_caution(iron) == "" and chemist_caution(salt) == ""


@pytest.mark.parametrize("method", ["gmm", "kde", "gaussian"])
def test_a_stored_density_samples_as_the_fitted_one(two_clusters, method):
    """What an atlas stores of a density (`state`, through a weights-only torch file) rebuilds it: the same draws
    (to the float16 rounding of the stored covariance factors), likelihoods and local draws; a state fitted on other
    latents is refused."""
    import io

    import torch

    from nesf.inference.generation.density import density_from_state

    fitted = fit_density(two_clusters, method, seed=2)
    buffer = io.BytesIO()
    torch.save(fitted.state(seed=2), buffer)
    buffer.seek(0)
    stored = torch.load(buffer, weights_only=True)
    rebuilt = density_from_state(two_clusters, stored)
    assert (rebuilt.method, rebuilt.label, rebuilt.selection) == (fitted.method, fitted.label, fitted.selection)
    np.testing.assert_allclose(rebuilt.sample(300, seed=5), fitted.sample(300, seed=5), atol=5e-3)
    np.testing.assert_allclose(rebuilt.near(two_clusters[3], 50, seed=1), fitted.near(two_clusters[3], 50, seed=1),
                               atol=5e-3)
    assert rebuilt.log_likelihood(two_clusters) == pytest.approx(fitted.log_likelihood(two_clusters), abs=1e-2)
    with pytest.raises(NesfError, match=f"a stored {method} density was fitted on {len(two_clusters)} latents, "
                                        f"not these {len(two_clusters) - 1}"):
        density_from_state(two_clusters[1:], stored)


def test_outlying_latents_are_left_out_of_the_fit(two_clusters):
    """A few latents far from the rest (LCS6A's one-atom cells encode ~130 times farther out than the typical
    latent) would make the covariance point at them: they are left out, and the draws stay where the data is."""
    far = np.concatenate([two_clusters, np.full((2, 4), 400.0)])
    density = fit_density(far, "gmm")
    assert density.outliers == 2 and density.label.endswith("(2 outlying latents left out)")
    assert np.abs(density.sample(500, seed=0)).max() < 10
    assert fit_density(two_clusters, "gmm").outliers == 0


def test_session_coverage_scores_a_run_against_the_atlas_test_crystals(tmp_path):
    """A run's CDVAE metrics against its atlas's test crystals: a sample equal to a test crystal covers it (COV-P of
    that sample, COV-R of that crystal), the test crystals' fingerprints are cached, an atlas without a test split is
    refused by name."""
    import types

    import pandas as pd

    from nesf.inference.generation.workflow import GeneratedSet, session_coverage

    crystals = [nacl(), rocksalt_mgo(), cscl(), bcc_iron()]
    table = pd.DataFrame({"split": ["train", "train", "test", "test"]})
    session = types.SimpleNamespace(atlas=types.SimpleNamespace(table=table, crystals=crystals, dataset="toy"),
                                    training_crystals=crystals[:2])
    samples = [cscl(), nacl()]
    generated = GeneratedSet(np.zeros((2, 4)), samples, score_crystals(samples, crystals[:2]), [[], []], "", "", 0)
    updates = []
    scores = session_coverage(session, generated, cache_dir=tmp_path, progress=lambda f, m: updates.append((f, m)))
    messages = [m for _, m in updates]
    assert scores.reference_size == 2 and scores.training_size == 2 and scores.generated == 2
    assert scores.cov_recall_percent == pytest.approx(50.0)   # CsCl is covered, bcc Fe is not
    assert scores.novel_percent == pytest.approx(50.0)        # the NaCl sample is a training crystal
    assert any(m.startswith("fingerprints of the 2 reference crystals") for m in messages)
    fractions = [f for f, _ in updates]  # one progress: fractions of the whole, in order, ending at 1
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == pytest.approx(1.0)
    assert list(tmp_path.glob("fingerprints-*.pt"))
    session.atlas.table = pd.DataFrame({"split": ["train"] * 4})
    with pytest.raises(NesfError, match="the atlas of toy has no test crystals to measure coverage against"):
        session_coverage(session, generated)


def test_support_replaces_samples_whose_atom_count_no_training_crystal_has(two_clusters):
    """A stub decoder gives one atom for a latent whose first entry is negative, two otherwise; with training crystals
    of two atoms only, every kept sample has two, drawn again in later rounds, reproducibly."""
    from nesf.inference.generation.sample import AtomCountSupport, generate

    class Decoder:
        def decode(self, latents, config=None, ids=None, progress=None):
            return [Crystal(np.eye(3) * 4, np.array([[0.0, 0, 0], [0.5, 0.5, 0.5]])[: 1 + int(z[0] >= 0)],
                            np.array([11, 17])[: 1 + int(z[0] >= 0)], i) for z, i in zip(latents, ids)]

    density = fit_density(two_clusters, "gmm")
    support = AtomCountSupport.of([pair(2.0)])
    assert support.atom_counts == frozenset({2})
    raw = generate(Decoder(), density, 40, seed=1)[1]
    assert 0 < sum(c.num_atoms == 1 for c in raw) < 40  # both clusters drawn
    latents, kept = generate(Decoder(), density, 40, seed=1, support=support)
    assert len(kept) == len(latents) == 40 and all(c.num_atoms == 2 for c in kept) and (latents[:, 0] >= 0).all()
    assert len({c.id.rsplit("-", 1)[0] for c in kept}) > 1  # later rounds named by their seeds
    assert not any(c.id.startswith("gen-2-") for c in kept)  # not the draws of the run with the next seed
    again = generate(Decoder(), density, 40, seed=1, support=support)[0]
    np.testing.assert_array_equal(again, latents)
    with pytest.raises(NesfError, match="no training crystals to take the atom counts from"):
        AtomCountSupport.of([])


def test_real_coverage_scores_training_crystals_drawn_at_random_as_a_run(monkeypatch):
    """The Generate page's real-data column: `count` training crystals of the atlas, drawn without replacement with
    the seed, go through the same scoring as a run's samples (their fingerprints cached)."""
    from types import SimpleNamespace

    from nesf.inference.generation import workflow

    training = [nacl(5.5 + 0.01 * i) for i in range(10)]
    seen = {}

    def scored(session, generated, *, cache_dir=None, progress=None, cache_generated=False):
        seen.update(crystals=generated.crystals, cache_generated=cache_generated)
        return "scores"

    monkeypatch.setattr(workflow, "session_coverage", scored)
    session = SimpleNamespace(training_crystals=training)
    assert workflow.real_coverage(session, 4, seed=3) == "scores"
    assert len(seen["crystals"]) == 4 and len({id(c) for c in seen["crystals"]}) == 4
    assert all(any(c is t for t in training) for c in seen["crystals"]) and seen["cache_generated"]
    workflow.real_coverage(session, 40)  # more than there are: all of them
    assert len(seen["crystals"]) == 10
