"""Composition probe: how much of a crystal's composition its latent vector carries.

Fitted on one set of latents (the training split) and scored on another (validation or test), as a linear probe in
representation learning. Three readings, each beside the figure a latent-free guess would get:

- element presence: one logistic regression per common element ("is element X in the crystal?") on standardised
  latents; the error is the share of wrong answers over (crystal, element) pairs, against the majority baseline
  (always answering what most training crystals answer);
- element set and reduced composition by the nearest training latent (Euclidean, as the app's neighbours): the
  share of crystals whose nearest training crystal has the same element set / the same reduced composition, with
  its ceiling (the share whose element set / composition occurs in training at all);
- element fractions: mean L1 distance between a crystal's element fractions and those of its nearest training
  latent, against predicting the training mean.

Compositions are (N, K) element-fraction matrices over a species vocabulary; `composition_fractions` builds them.
"""

from __future__ import annotations

import warnings

import numpy as np

PROBE_ELEMENTS = 15            # elements probed for presence: the most common in the fitting set
PROBE_KEYS = {
    "probe_presence_error": "Element presence error (linear probe)",
    "probe_presence_baseline": "Element presence error, majority baseline",
    "probe_element_set_match_percent": "Nearest training latent has the same element set [%]",
    "probe_element_set_ceiling_percent": "Element set occurs in training [%] (ceiling)",
    "probe_formula_match_percent": "Nearest training latent has the same reduced composition [%]",
    "probe_formula_ceiling_percent": "Reduced composition occurs in training [%] (ceiling)",
    "probe_fraction_l1": "Element-fraction L1 error (nearest training latent)",
    "probe_fraction_l1_baseline": "Element-fraction L1 error, training mean",
}


def composition_fractions(species_index_lists, num_species: int) -> np.ndarray:
    """(N, K) element fractions from per-crystal lists of vocabulary indices."""
    fractions = np.zeros((len(species_index_lists), num_species), dtype=np.float64)
    for row, indices in enumerate(species_index_lists):
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size:
            fractions[row] = np.bincount(indices, minlength=num_species)[:num_species] / indices.size
    return fractions


def crystal_fractions(crystals, vocab) -> np.ndarray:
    """(N, K) element fractions of crystals over the species vocabulary `vocab` (atomic numbers, index -> Z)."""
    z_to_index = {int(z): i for i, z in enumerate(vocab)}
    return composition_fractions([[z_to_index[int(z)] for z in c.species] for c in crystals], len(vocab))


def _reduced_keys(fractions: np.ndarray) -> list[bytes]:
    """A hashable key per row for 'same reduced composition': fractions rounded to 1e-6 (exact for integer ratios)."""
    return [np.round(row, 6).tobytes() for row in fractions]


def _set_keys(fractions: np.ndarray) -> list[bytes]:
    return [(row > 0).tobytes() for row in fractions]


def _nearest(fit_latents: np.ndarray, eval_latents: np.ndarray) -> np.ndarray:
    """Index of the nearest fitting latent for each evaluation latent (squared Euclidean, in chunks)."""
    fit = np.asarray(fit_latents, dtype=np.float64)
    fit_sq = (fit ** 2).sum(1)
    nearest = np.empty(len(eval_latents), dtype=np.int64)
    for start in range(0, len(eval_latents), 1024):
        chunk = np.asarray(eval_latents[start:start + 1024], dtype=np.float64)
        dist = fit_sq[None] - 2 * chunk @ fit.T
        nearest[start:start + 1024] = dist.argmin(1)
    return nearest


def _presence(fit_latents, fit_fractions, eval_latents, eval_fractions, elements: int, seed: int) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    fit_present, eval_present = fit_fractions > 0, eval_fractions > 0
    common = np.argsort(-fit_present.sum(0), kind="stable")[:elements]
    common = [k for k in common if fit_present[:, k].any()]
    if not common:
        return float("nan"), float("nan")
    scaler = StandardScaler().fit(fit_latents)
    fit_x, eval_x = scaler.transform(fit_latents), scaler.transform(eval_latents)
    wrong = baseline_wrong = 0
    for k in common:
        truth = eval_present[:, k]
        majority = fit_present[:, k].mean() >= 0.5
        baseline_wrong += int(np.sum(truth != majority))
        if fit_present[:, k].all() or not fit_present[:, k].any():
            guess = np.full(len(truth), majority)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = LogisticRegression(max_iter=500, random_state=seed).fit(fit_x, fit_present[:, k])
            guess = model.predict(eval_x)
        wrong += int(np.sum(guess != truth))
    pairs = len(common) * len(eval_latents)
    return wrong / pairs, baseline_wrong / pairs


def composition_probe(fit_latents: np.ndarray, fit_fractions: np.ndarray, eval_latents: np.ndarray,
                      eval_fractions: np.ndarray, *, elements: int = PROBE_ELEMENTS, seed: int = 0) -> dict:
    """The probe's readings (keys of `PROBE_KEYS`) for latents (N, L) / (M, L) and fractions (N, K) / (M, K)."""
    fit_latents, eval_latents = np.asarray(fit_latents), np.asarray(eval_latents)
    if len(fit_latents) != len(fit_fractions) or len(eval_latents) != len(eval_fractions):
        raise ValueError("composition_probe: latents and fractions differ in length")
    if len(fit_latents) < 2 or len(eval_latents) < 1:
        return {key: float("nan") for key in PROBE_KEYS}
    presence, presence_baseline = _presence(fit_latents, fit_fractions, eval_latents, eval_fractions, elements, seed)
    nearest = _nearest(fit_latents, eval_latents)
    fit_sets, eval_sets = _set_keys(fit_fractions), _set_keys(eval_fractions)
    fit_formulas, eval_formulas = _reduced_keys(fit_fractions), _reduced_keys(eval_fractions)
    known_sets, known_formulas = set(fit_sets), set(fit_formulas)
    mean_fraction = fit_fractions.mean(0)
    readings = {
        "probe_presence_error": presence,
        "probe_presence_baseline": presence_baseline,
        "probe_element_set_match_percent": 100.0 * np.mean([eval_sets[i] == fit_sets[j]
                                                            for i, j in enumerate(nearest)]),
        "probe_element_set_ceiling_percent": 100.0 * np.mean([key in known_sets for key in eval_sets]),
        "probe_formula_match_percent": 100.0 * np.mean([eval_formulas[i] == fit_formulas[j]
                                                        for i, j in enumerate(nearest)]),
        "probe_formula_ceiling_percent": 100.0 * np.mean([key in known_formulas for key in eval_formulas]),
        "probe_fraction_l1": float(np.abs(eval_fractions - fit_fractions[nearest]).sum(1).mean()),
        "probe_fraction_l1_baseline": float(np.abs(eval_fractions - mean_fraction[None]).sum(1).mean()),
    }
    return {key: float(value) for key, value in readings.items()}  # plain floats: checkpoints load weights-only


def format_probe(values: dict) -> str:
    """Plain-text lines of the probe's readings, each beside its baseline or ceiling."""
    pairs = (("probe_presence_error", "probe_presence_baseline", "baseline"),
             ("probe_element_set_match_percent", "probe_element_set_ceiling_percent", "ceiling"),
             ("probe_formula_match_percent", "probe_formula_ceiling_percent", "ceiling"),
             ("probe_fraction_l1", "probe_fraction_l1_baseline", "baseline"))
    lines = []
    for key, reference, word in pairs:
        if key in values:
            lines.append(f"{PROBE_KEYS[key]:<60} {values[key]:>8.4f}   ({word} {values.get(reference, float('nan')):.4f})")
    return "\n".join(lines)
