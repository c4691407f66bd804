"""The field's metrics for a set of generated crystals, as CDVAE's `compute_metrics.py` computes them, plus
uniqueness and novelty (StructureMatcher, as DiffCSP and MatterGen report them).

- Validity (`nesf.inference.generation.validity`): structural, compositional, both; over every generated crystal.
- Coverage against a reference set (the test split): COV-R is the share of reference crystals that some generated
  crystal is within both fingerprint cutoffs of (structure, composition; `nesf.inference.generation.fingerprints`);
  COV-P the share of generated crystals within both cutoffs of some reference crystal, over all generated. AMSD / AMCD
  are the mean distances to the nearest partner. Cutoffs (structure, composition) as CDVAE: Perov-5 and Carbon-24
  0.2 / 4, others 0.4 / 10.
- Uniqueness: the share of valid crystals that match no earlier valid one; novelty: the share of unique valid
  crystals that match no training crystal (StructureMatcher with CDVAE's settings, compared only within the same
  reduced composition).
- Property distributions: Wasserstein distances of density (g/cm^3) and number of elements, valid crystals vs
  reference.

CDVAE's protocol (`score_generated(..., valid_sample=1000)`): validity over every generated crystal, a crystal whose
structure fingerprint cannot be computed counted invalid; coverage over every generated crystal; the property
distances over a random `valid_sample` of the valid ones (CDVAE draws 1,000 of its 10,000). Compositional validity is
given under the installed SMACT and under the 2014 oxidation-state table of SMACT 2.2.1, the version CDVAE pins
(`validity.OXIDATION_TABLES`).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import asdict, dataclass

import numpy as np

from nesf.core.crystal import Crystal
from nesf.core.progress import Progress, stage
from nesf.evaluation.metrics import MATCHER_SETTINGS
from nesf.inference.generation.fingerprints import Fingerprints, fingerprints
from nesf.inference.generation.validity import composition_valid, crystal_valid, reduced_counts

COVERAGE_CUTOFFS = {"perov_5": (0.2, 4.0), "carbon_24": (0.2, 4.0)}  # (structure, composition), CDVAE's
DEFAULT_COVERAGE_CUTOFFS = (0.4, 10.0)


def coverage_cutoffs(dataset: str) -> tuple[float, float]:
    return COVERAGE_CUTOFFS.get(dataset, DEFAULT_COVERAGE_CUTOFFS)


@dataclass(frozen=True)
class Coverage:
    recall_percent: float
    precision_percent: float
    amsd_recall: float
    amsd_precision: float
    amcd_recall: float
    amcd_precision: float


def coverage(generated: Fingerprints, reference: Fingerprints, structure_cutoff: float,
             composition_cutoff: float) -> Coverage:
    """COV-R / COV-P (percent) and the mean nearest distances. Generated crystals without fingerprints are left out
    of the distances but still count in COV-P's denominator, as CDVAE counts them."""
    from scipy.spatial.distance import cdist

    n_generated = len(generated)
    keep = generated.ok
    reference = Fingerprints(reference.structure[reference.ok], reference.composition[reference.ok])
    if not keep.any() or not len(reference):
        return Coverage(0.0, 0.0, float("nan"), float("nan"), float("nan"), float("nan"))
    structure = cdist(generated.structure[keep], reference.structure)
    composition = cdist(generated.composition[keep], reference.composition)
    recall = (structure.min(axis=0) <= structure_cutoff) & (composition.min(axis=0) <= composition_cutoff)
    precision = (structure.min(axis=1) <= structure_cutoff) & (composition.min(axis=1) <= composition_cutoff)
    return Coverage(100.0 * recall.mean(), 100.0 * precision.sum() / max(n_generated, 1),
                    float(structure.min(axis=0).mean()), float(structure.min(axis=1).mean()),
                    float(composition.min(axis=0).mean()), float(composition.min(axis=1).mean()))


def _matcher():
    try:
        from pymatgen.core.structure_matcher import StructureMatcher
    except ImportError:  # pymatgen before the move to pymatgen-core
        from pymatgen.analysis.structure_matcher import StructureMatcher
    return StructureMatcher(**MATCHER_SETTINGS)


def _fits(matcher, a, b) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(matcher.fit(a, b))
        except Exception:  # degenerate cells make the matcher fail: not the same structure
            return False


def unique_mask(crystals: list[Crystal]) -> np.ndarray:
    """(N,) bool: crystal i matches none of crystals 0..i-1 (same reduced composition, StructureMatcher)."""
    matcher = _matcher()
    seen: dict[tuple, list] = defaultdict(list)
    unique = np.zeros(len(crystals), dtype=bool)
    for i, crystal in enumerate(crystals):
        key = reduced_counts(crystal.species)
        structure = crystal.to_structure()
        if not any(_fits(matcher, structure, other) for other in seen[key]):
            unique[i] = True
            seen[key].append(structure)
    return unique


def novel_mask(crystals: list[Crystal], training: list[Crystal]) -> np.ndarray:
    """(N,) bool: crystal i matches no training crystal (same reduced composition, StructureMatcher)."""
    matcher = _matcher()
    by_composition: dict[tuple, list[Crystal]] = defaultdict(list)
    for crystal in training:
        by_composition[reduced_counts(crystal.species)].append(crystal)
    novel = np.ones(len(crystals), dtype=bool)
    for i, crystal in enumerate(crystals):
        candidates = by_composition.get(reduced_counts(crystal.species), [])
        if candidates:
            structure = crystal.to_structure()
            novel[i] = not any(_fits(matcher, structure, other.to_structure()) for other in candidates)
    return novel


@dataclass(frozen=True)
class CrystalScores:
    """Per generated crystal: its validity, and (valid ones only) whether it is unique and novel."""
    structure_valid: np.ndarray
    composition_valid: np.ndarray
    unique: np.ndarray  # False for invalid crystals
    novel: np.ndarray   # False for invalid or repeated crystals
    fingerprinted: np.ndarray | None = None  # False where the structure fingerprint failed (None: not computed)

    @property
    def valid(self) -> np.ndarray:
        valid = self.structure_valid & self.composition_valid
        return valid if self.fingerprinted is None else valid & self.fingerprinted


def score_crystals(crystals: list[Crystal], training: list[Crystal] | None = None) -> CrystalScores:
    """Validity of each crystal; uniqueness among the valid ones; novelty against `training` (None: not judged,
    every unique valid crystal counts as novel)."""
    validity = np.array([crystal_valid(c) for c in crystals], dtype=bool).reshape(-1, 2)
    valid = validity[:, 0] & validity[:, 1]
    valid_index = np.flatnonzero(valid)
    unique = np.zeros(len(crystals), dtype=bool)
    unique[valid_index] = unique_mask([crystals[i] for i in valid_index])
    novel = np.zeros(len(crystals), dtype=bool)
    unique_index = np.flatnonzero(unique)
    if training is None:
        novel[unique_index] = True
    else:
        novel[unique_index] = novel_mask([crystals[i] for i in unique_index], training)
    return CrystalScores(validity[:, 0], validity[:, 1], unique, novel)


@dataclass(frozen=True)
class GenerationScores:
    generated: int
    structure_valid_percent: float
    composition_valid_percent: float
    valid_percent: float
    cov_recall_percent: float
    cov_precision_percent: float
    amsd_recall: float
    amsd_precision: float
    amcd_recall: float
    amcd_precision: float
    unique_percent: float       # of valid crystals
    novel_percent: float        # of unique valid crystals
    density_wasserstein_g_cm3: float
    num_elements_wasserstein: float
    structure_cutoff: float
    composition_cutoff: float
    reference_size: int
    training_size: int
    composition_valid_smact14_percent: float = float("nan")  # SMACT 2.2.1's oxidation-state table (CDVAE's)
    valid_smact14_percent: float = float("nan")
    fingerprint_failed_percent: float = 0.0      # counted invalid, as CDVAE counts them
    property_sample_size: int = 0                # valid crystals the property distances were measured on
    reference_atom_count_percent: float = float("nan")  # generated crystals whose atom count some reference has

    def to_dict(self) -> dict:
        return asdict(self)


def _density_g_cm3(crystal: Crystal) -> float:
    from pymatgen.core.periodic_table import Element

    mass_amu = sum(float(Element.from_Z(int(z)).atomic_mass) for z in crystal.species)
    return mass_amu * 1.66053906660 / abs(float(np.linalg.det(crystal.lattice)))


def score_generated(crystals: list[Crystal], reference: list[Crystal], training: list[Crystal], *,
                    cutoffs: tuple[float, float] = DEFAULT_COVERAGE_CUTOFFS, reference_fingerprints=None,
                    cache_dir=None, progress: Progress | None = None, valid_sample: int | None = None,
                    seed: int = 0, cache_generated: bool = False) -> tuple[GenerationScores, CrystalScores]:
    """All metrics of a generated set against `reference` (coverage, property distributions: the test split) and
    `training` (novelty). `reference_fingerprints` or `cache_dir` spare recomputing the reference's fingerprints.
    `valid_sample`: measure the property distances on that many valid crystals drawn at random (`seed`), as CDVAE
    does (None: on every valid crystal). `cache_generated`: keep the generated crystals' fingerprints in `cache_dir`
    too (real crystals scored as a baseline, asked for again)."""
    from scipy.stats import wasserstein_distance

    def say(fraction, message):
        if progress is not None:
            progress(fraction, message)

    say(0.0, f"validity, uniqueness and novelty of {len(crystals)} crystals")
    checked = score_crystals(crystals, training)
    say(0.2, f"fingerprints of the {len(crystals)} generated crystals")
    generated_fp = fingerprints(crystals, cache_dir=cache_dir if cache_generated else None,
                                progress=stage(progress, 0.2, 0.7))
    fingerprinted = np.isfinite(generated_fp.structure).all(axis=1)
    per_crystal = CrystalScores(checked.structure_valid, checked.composition_valid, checked.unique & fingerprinted,
                                checked.novel & fingerprinted, fingerprinted)
    say(0.7, f"fingerprints of the {len(reference)} reference crystals (cached after the first time)")
    reference_fp = reference_fingerprints or fingerprints(reference, cache_dir=cache_dir,
                                                          progress=stage(progress, 0.7, 1.0))
    cov = coverage(generated_fp, reference_fp, *cutoffs)
    valid_index = np.flatnonzero(per_crystal.valid)
    if valid_sample is not None and len(valid_index) > valid_sample:
        valid_index = np.sort(np.random.default_rng(seed).choice(valid_index, valid_sample, replace=False))
    valid = [crystals[i] for i in valid_index]
    n = max(len(crystals), 1)
    n_valid = int(per_crystal.valid.sum())
    n_unique = int(per_crystal.unique.sum())
    if valid and reference:
        density = wasserstein_distance([_density_g_cm3(c) for c in valid], [_density_g_cm3(c) for c in reference])
        elements = wasserstein_distance([len(set(c.species.tolist())) for c in valid],
                                        [len(set(c.species.tolist())) for c in reference])
    else:
        density = elements = float("nan")
    composition_smact14 = np.array([bool(c.num_atoms) and composition_valid(c.species, "smact14") for c in crystals],
                                   dtype=bool)
    reference_counts = {c.num_atoms for c in reference}
    scores = GenerationScores(
        generated=len(crystals),
        structure_valid_percent=100.0 * per_crystal.structure_valid.sum() / n,
        composition_valid_percent=100.0 * per_crystal.composition_valid.sum() / n,
        valid_percent=100.0 * n_valid / n,
        cov_recall_percent=cov.recall_percent, cov_precision_percent=cov.precision_percent,
        amsd_recall=cov.amsd_recall, amsd_precision=cov.amsd_precision,
        amcd_recall=cov.amcd_recall, amcd_precision=cov.amcd_precision,
        unique_percent=100.0 * n_unique / max(n_valid, 1),
        novel_percent=100.0 * per_crystal.novel.sum() / max(n_unique, 1),
        density_wasserstein_g_cm3=float(density), num_elements_wasserstein=float(elements),
        structure_cutoff=float(cutoffs[0]), composition_cutoff=float(cutoffs[1]),
        reference_size=len(reference), training_size=len(training),
        composition_valid_smact14_percent=100.0 * composition_smact14.sum() / n,
        valid_smact14_percent=100.0 * (per_crystal.structure_valid & composition_smact14 & fingerprinted).sum() / n,
        fingerprint_failed_percent=100.0 * (~fingerprinted).sum() / n,
        property_sample_size=len(valid),
        reference_atom_count_percent=(100.0 * sum(c.num_atoms in reference_counts for c in crystals) / n
                                      if reference else float("nan")))
    return scores, per_crystal
