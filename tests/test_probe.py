"""Composition probe against cases with known answers: latents that are the composition, latents that are noise."""

import numpy as np
import pytest

from nesf.evaluation.probe import PROBE_KEYS, composition_fractions, composition_probe, crystal_fractions, format_probe
from tests.helpers import cscl, rocksalt_mgo


def random_compositions(rng, count, num_species=12, max_elements=3):
    rows = []
    for _ in range(count):
        elements = rng.choice(num_species, size=rng.integers(1, max_elements + 1), replace=False)
        counts = rng.integers(1, 4, size=len(elements))
        rows.append(np.repeat(elements, counts))
    return composition_fractions(rows, num_species)


def test_fractions_count_each_vocabulary_index():
    fractions = composition_fractions([[0, 0, 2], [1], []], 3)
    assert np.allclose(fractions, [[2 / 3, 0, 1 / 3], [0, 1, 0], [0, 0, 0]])
    assert np.allclose(crystal_fractions([rocksalt_mgo(), cscl()], [8, 12, 17, 55]),
                       [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])


def test_latents_that_are_the_composition_read_back_perfectly():
    rng = np.random.default_rng(0)
    fit = random_compositions(rng, 400)
    evaluated = fit[rng.choice(len(fit), 60)]  # every evaluated composition occurs in the fitting set
    result = composition_probe(fit, fit, evaluated, evaluated)
    assert set(result) == set(PROBE_KEYS)
    assert result["probe_presence_error"] < 0.01  # separable; the L2-regularised fit may miss a rare element
    assert result["probe_presence_baseline"] > 0.05
    assert result["probe_element_set_match_percent"] == 100.0 == result["probe_element_set_ceiling_percent"]
    assert result["probe_formula_match_percent"] == 100.0
    assert result["probe_fraction_l1"] == 0.0 < result["probe_fraction_l1_baseline"]
    assert all(isinstance(value, float) for value in result.values())  # plain floats: stored in checkpoints


def test_noise_latents_do_no_better_than_the_baselines():
    rng = np.random.default_rng(1)
    fit, evaluated = random_compositions(rng, 400), random_compositions(rng, 200)
    result = composition_probe(rng.normal(size=(400, 16)), fit, rng.normal(size=(200, 16)), evaluated)
    assert result["probe_presence_error"] >= result["probe_presence_baseline"] - 0.02
    assert result["probe_element_set_match_percent"] < 15.0
    assert result["probe_fraction_l1"] > result["probe_fraction_l1_baseline"]


def test_ceiling_counts_compositions_unseen_in_fitting():
    fit = composition_fractions([[0], [1], [0, 1]], 3)
    evaluated = composition_fractions([[0], [2], [0, 0, 1]], 3)
    result = composition_probe(np.eye(3), fit, np.eye(3), evaluated)
    assert result["probe_element_set_ceiling_percent"] == pytest.approx(200 / 3)  # {0} and {0, 1} seen, {2} not
    assert result["probe_formula_ceiling_percent"] == pytest.approx(100 / 3)      # only the pure {0}


def test_format_puts_each_reading_beside_its_baseline():
    text = format_probe({"probe_presence_error": 0.01, "probe_presence_baseline": 0.07})
    assert "Element presence error (linear probe)" in text and "(baseline 0.0700)" in text
