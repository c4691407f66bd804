"""A dataset split as users would upload it, and what the model makes of it: the card's "re-uploaded" figures.

`reupload` writes a crystal as a P1 CIF after a random rotation and a random origin shift and reads it back through
the upload path (`nesf.data.structure_io.read_structures`: the canonical cell). `cell_kind_variant` gives a crystal in
one of the other cells a user may be offered (orthohexagonal, primitive, Niggli-reduced). `evaluate_uploads` runs
uploads through what the app and the CLI do (range check, frame selection, reconstruction) and scores them against
the crystal as uploaded, with the Table 1 metrics, StructureMatcher and the two trust signals per crystal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nesf.checkpoint import labels
from nesf.checkpoint.labels import MetricsLabel
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError

REUPLOAD_SEED = 0
CELL_KINDS = ("orthohexagonal", "primitive standard", "Niggli-reduced primitive")


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random proper rotation (3, 3) (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def reupload(crystal: Crystal, rng: np.random.Generator) -> Crystal:
    """`crystal` rotated at random, its origin shifted at random, written as a P1 CIF and read back as an upload
    (the canonical cell of `read_structures`). NesfError where the upload path refuses it."""
    from nesf.data.structure_io import read_structures, to_cif

    rotation = random_rotation(rng)
    shift = rng.random(3)
    moved = Crystal.from_frac(crystal.lattice @ rotation.T, crystal.frac_coords + shift, crystal.species, crystal.id)
    uploaded = read_structures(to_cif(moved).encode(), f"{crystal.id or 'crystal'}.cif")[0]
    uploaded.meta.update({**crystal.meta, "reuploaded_from": crystal.id})
    return Crystal(uploaded.lattice, uploaded.cart_coords, uploaded.species, crystal.id, uploaded.meta)


def reuploaded(crystals: list[Crystal], seed: int = REUPLOAD_SEED) -> list[Crystal | None]:
    """`reupload` of each crystal with one random generator seeded `seed`; None where the upload path refuses one."""
    rng = np.random.default_rng(seed)
    out = []
    for crystal in crystals:
        try:
            out.append(reupload(crystal, rng))
        except NesfError:
            out.append(None)
    return out


def cell_kind_variant(crystal: Crystal, kind: str) -> Crystal | None:
    """The cell of kind `kind` (one of CELL_KINDS) of `crystal`'s canonical conventional cell, or None where it has
    none (a primitive cell equal to the conventional one, a lattice that is not hexagonal)."""
    from nesf.data.frames import cell_variants
    from nesf.data.structure_io import read_structures, to_cif

    if kind not in CELL_KINDS:
        raise NesfError(f"unknown cell kind {kind!r}; use one of {', '.join(CELL_KINDS)}")
    conventional = read_structures(to_cif(crystal).encode(), f"{crystal.id or 'crystal'}.cif")[0]
    for cell in cell_variants(conventional):
        if cell.meta.get("cell") == kind:
            return Crystal(cell.lattice, cell.cart_coords, cell.species, crystal.id, dict(cell.meta))
    return None


@dataclass(frozen=True)
class UploadResult:
    """One upload through the product's path."""

    crystal_id: str
    refused: str                    # why the upload path or the range check refused it ("" when it went through)
    matched: bool                   # StructureMatcher against the crystal as uploaded (False when refused)
    field_residual: float           # the field score of the latent used (NaN when refused)
    latent_distance: float          # to the nearest training latent (NaN when refused or none given)
    frame_changed: bool             # frame selection chose another setting than the upload's
    refine_steps: int = 0           # refinement steps taken (0: the encoder's latent)


def evaluate_uploads(autoencoder, uploads: list[Crystal | None], config=None, *, select_frame: bool = True,
                     training_latents: np.ndarray | None = None, refine=None) -> tuple[dict, list[UploadResult]]:
    """Table 1 metrics and match rate of `uploads` (None: refused by the upload path) through the product's path
    (frame selection, then refinement: `refine`, default the model's own; `ENCODER_ONLY` for the paper's protocol),
    each compared with the setting it was encoded in; a refused upload counts as a miss in the match rate and is
    left out of the other metrics. Returns (metrics with "refused_percent", "frame_changed_percent" and
    "refine_s_per_crystal", one `UploadResult` per upload)."""
    import time

    from nesf.evaluation.metrics import structure_match, table1_metrics
    from nesf.inference.trust import nearest_distances

    accepted, results = [], {}
    for i, crystal in enumerate(uploads):
        if crystal is None:
            results[i] = UploadResult("", "the upload path refused it", False, np.nan, np.nan, False)
            continue
        problems = autoencoder.range.problems(crystal)
        if problems:
            results[i] = UploadResult(crystal.id, "; ".join(p.message for p in problems), False, np.nan, np.nan,
                                      False)
            continue
        accepted.append(i)
    metrics: dict = {}
    if accepted:
        from nesf.model.refine import ENCODER_ONLY

        crystals = [uploads[i] for i in accepted]
        choices = (autoencoder.select_frames(crystals, refine=ENCODER_ONLY) if select_frame
                   else autoencoder.given_frames(crystals))
        started = time.monotonic()
        choices = autoencoder.refine(choices, refine)
        refine_seconds = time.monotonic() - started
        encoded = [c.crystal for c in choices]
        latents = np.stack([c.latent for c in choices])
        preds = autoencoder.decode(latents, config, ids=[c.id for c in encoded])
        metrics = table1_metrics(encoded, preds, match=False)
        metrics["refine_s_per_crystal"] = refine_seconds / len(choices)
        distances = (nearest_distances(latents, training_latents)[0] if training_latents is not None
                     else np.full(len(accepted), np.nan))
        for i, choice, pred, distance in zip(accepted, choices, preds, distances):
            results[i] = UploadResult(choice.crystal.id, "", structure_match(choice.crystal, pred)[0],
                                      choice.score.score, float(distance), choice.changed,
                                      choice.refinement.steps if choice.refinement else 0)
    ordered = [results[i] for i in range(len(uploads))]
    count = max(len(ordered), 1)
    metrics["match_rate_percent"] = 100.0 * sum(r.matched for r in ordered) / count
    metrics["refused_percent"] = 100.0 * sum(bool(r.refused) for r in ordered) / count
    metrics["frame_changed_percent"] = 100.0 * sum(r.frame_changed for r in ordered) / max(len(accepted), 1)
    metrics["count"] = len(ordered)
    return metrics, ordered


# the labels' words (nesf.checkpoint.labels): "re-uploaded", "encoder only" (figures and trust calibrations measured
# in the paper's protocol, no refinement), "novel" (crystals unlike the training set, `novel_sources`)
REUPLOADED, ENCODER_ONLY_TAG, NOVEL = labels.REUPLOADED, labels.ENCODER_ONLY, labels.NOVEL
NOVEL_PER_SOURCE = 100               # crystals drawn from each novel source
NOVEL_DATASETS = ("ICSG3D", "perov_5", "carbon_24")


def cell_label(kind: str) -> str:
    """"primitive standard cells": how labels and tables name crystals converted to cells of `kind`."""
    return MetricsLabel.in_cells("", kind).qualifier


def novel_sources(autoencoder, training_crystals: list[Crystal], own_dataset: str, data_dir=None, *,
                  per_source: int = NOVEL_PER_SOURCE, seed: int = REUPLOAD_SEED) -> tuple[dict, list[str]]:
    """({source name: crystals}, notes): crystals unlike the model's training set, as a user's own new materials
    would be: from the test splits of NOVEL_DATASETS (not the model's own) found in `data_dir`, crystals whose elements
    the model knows and that are no training crystal (a reduced formula nowhere in `training_crystals`, or, for a
    formula there, a structure StructureMatcher matches to none of its training crystals), drawn at random (`seed`):
    at most `per_source` whose cell is in the model's range and as many whose cell is not (for the offered cells), as
    they are stored (callers re-upload or convert them). Notes name the sources skipped."""
    from collections import defaultdict

    from nesf.data.datasets import load_dataset
    from nesf.data.download import canonical_name
    from nesf.evaluation.metrics import structure_match

    by_formula = defaultdict(list)
    for crystal in training_crystals:
        by_formula[crystal.formula].append(crystal)
    vocab = set(autoencoder.vocab)

    def novel(crystal: Crystal) -> bool:
        return not any(structure_match(known, crystal)[0] for known in by_formula.get(crystal.formula, ()))

    sources, notes = {}, []
    for name in NOVEL_DATASETS:
        if canonical_name(name) == canonical_name(own_dataset):
            continue
        try:
            crystals = load_dataset(name, data_dir).crystals("test")
        except NesfError as exc:
            notes.append(f"{name}: {exc}")
            continue
        rng = np.random.default_rng(seed)
        inside, outside = [], []
        for i in rng.permutation(len(crystals)):
            crystal = crystals[int(i)]
            if not set(int(z) for z in crystal.species) <= vocab:
                continue
            fits = not [p for p in autoencoder.range.problems(crystal) if p.kind != "box"]
            group = inside if fits else outside
            if len(group) < per_source and novel(crystal):
                group.append(crystal)
            if len(inside) >= per_source and len(outside) >= per_source:
                break
        if inside or outside:
            sources[f"{name} test"] = inside + outside
        else:
            notes.append(f"{name}: no test crystal of elements this model knows that is not a training crystal")
    return sources, notes


def measure_uploads(autoencoder, crystals: list[Crystal], split: str, config=None, *, seed: int = REUPLOAD_SEED,
                    training_latents: np.ndarray | None = None, source: str = "", ci_count: int = 0,
                    novel: dict[str, list[Crystal]] | None = None, progress=None) -> tuple[dict, dict]:
    """What users get on a split and on crystals unlike the training set: (metrics by label, trust calibrations).

    Labels (`Checkpoint.with_metrics` stores them beside the dataset form's, `split[...]` so they share its paper
    column), each through the product's path (refined) and, with ", encoder only", in the paper's protocol:
    "<split>[re-uploaded]": the split's crystals through `reuploaded` (fixed `seed`) and `evaluate_uploads`;
    "<source>[novel, re-uploaded]": the crystals of each of `novel`'s sources (`novel_sources`) whose cell is in the
    model's range, the same way;
    "<split>[<kind> cells]": its crystals converted to each kind of offered cell (`cell_kind_variant`), encoded in
    that cell (frame selection among its settings), where the cell fits the model; "count" is how many were scored;
    "novel[<kind> cells]": the novel crystals whose own cell is out of range, so converted: what an offer's note
    quotes (`Autoencoder.cell_offer_quality`).
    With `ci_count` below the split's size, "<split>[re-uploaded]" also holds "ci_subset": the same figures for the
    first `ci_count` uploads alone (the same files: one generator, drawn in order), which CI reproduces quickly.
    The calibrations (`nesf.inference.trust.calibrate`), by signal and by signal + ", encoder only", are fitted on
    every upload that went through: the re-uploaded split, the novel sources and the held-out hexagonal set in
    orthohexagonal cells, each a source of the reliability table. `progress(label, values)` after each label."""
    import time

    from nesf.inference.trust import calibrate
    from nesf.model.refine import ENCODER_ONLY

    report = progress or (lambda label, values: None)
    novel = novel or {}
    metrics, calibrations = {}, {}
    pooled = {protocol: [] for protocol in ("", ENCODER_ONLY_TAG)}  # (source, UploadResult) per protocol

    def measure(label: MetricsLabel, uploads: list, name: str, **options) -> None:
        for protocol, refine in (("", None), (ENCODER_ONLY_TAG, ENCODER_ONLY)):
            started = time.monotonic()
            values, results = evaluate_uploads(autoencoder, uploads, config, training_latents=training_latents,
                                               refine=refine, **options)
            values.update({"decode_s": time.monotonic() - started, "seed": seed})
            full = str(label.protocol(encoder_only=bool(protocol)))
            metrics[full] = values
            pooled[protocol] += [(name, r) for r in results if not r.refused]
            report(full, values)

    uploads = reuploaded(crystals, seed)
    measure(MetricsLabel.reuploaded(split), uploads, f"{split}, {REUPLOADED}")
    if 0 < ci_count < len(uploads):
        metrics[str(MetricsLabel.reuploaded(split))]["ci_subset"] = evaluate_uploads(
            autoencoder, uploads[:ci_count], config, training_latents=training_latents)[0]
    out_of_range = []  # novel crystals whose own cell the model refuses: those an offered cell is for
    for name, source_crystals in novel.items():
        inside = [not [p for p in autoencoder.range.problems(c) if p.kind != "box"] for c in source_crystals]
        fits = [c for c, ok in zip(source_crystals, inside) if ok]
        out_of_range += [c for c, ok in zip(source_crystals, inside) if not ok]
        if fits:
            measure(MetricsLabel.reuploaded(name, novel=True), reuploaded(fits, seed), f"{name} (novel), {REUPLOADED}")
    hexagonal_label = None
    for kind in CELL_KINDS:
        converted = converted_cells(autoencoder, crystals, kind)
        if converted:
            measure(MetricsLabel.in_cells(split, kind), converted, f"{split}, {cell_label(kind)}")
        novel_converted = converted_cells(autoencoder, out_of_range, kind)
        if novel_converted:
            measure(MetricsLabel.in_cells(NOVEL, kind), novel_converted, f"{NOVEL}, {cell_label(kind)}")
    if str(MetricsLabel.in_cells(split, "orthohexagonal")) not in metrics:  # LCS6A's splits hold no hexagonal one
        from nesf.data.hexagonal_set import hexagonal_crystals

        converted = converted_cells(autoencoder, hexagonal_crystals(), "orthohexagonal")
        if converted:
            hexagonal_label = MetricsLabel.in_cells(HEXAGONAL_SET, "orthohexagonal")
            measure(hexagonal_label, converted, f"{HEXAGONAL_SET}, {cell_label('orthohexagonal')}")
    # the calibration set: uploads as users make them (not the split's or novel crystals in offered cells, which are
    # reported above but are not what most uploads are)
    calibration_sources = {f"{split}, {REUPLOADED}", *(f"{n} (novel), {REUPLOADED}" for n in novel)}
    if hexagonal_label:
        calibration_sources.add(f"{HEXAGONAL_SET}, {cell_label('orthohexagonal')}")
    for protocol, results in pooled.items():
        went = [(name, r) for name, r in results if name in calibration_sources]
        if not went:
            continue
        names = [name for name, _ in went]
        matched = [r.matched for _, r in went]
        label = source or f"{len(went)} uploads: " + ", ".join(
            f"{name} ({names.count(name)})" for name in dict.fromkeys(names))
        suffix = f", {protocol}" if protocol else ""
        bins = calibration_bins(len(went))
        calibrations["field_residual" + suffix] = calibrate(
            "field_residual", [r.field_residual for _, r in went], matched, label, bins, names).to_dict()
        if training_latents is not None:
            calibrations["latent_distance" + suffix] = calibrate(
                "latent_distance", [r.latent_distance for _, r in went], matched, label, bins, names).to_dict()
    return metrics, calibrations


HEXAGONAL_SET = "held-out hexagonal"  # nesf.data.hexagonal_set
CRYSTALS_PER_BIN = 60                 # calibration crystals per trust bin (at least 2 bins, at most 10)


def calibration_bins(count: int) -> int:
    return max(2, min(10, count // CRYSTALS_PER_BIN))


def converted_cells(autoencoder, crystals: list[Crystal], kind: str) -> list[Crystal]:
    """`crystals` converted to cells of `kind` (`cell_kind_variant`), those that convert and fit the model."""
    converted = []
    for crystal in crystals:
        try:
            cell = cell_kind_variant(crystal, kind)
        except NesfError:
            cell = None
        if cell is not None and not autoencoder.range.problems(cell):
            converted.append(cell)
    return converted


def measure_cell_kind(autoencoder, crystals: list[Crystal], kind: str, config=None, *, refine=None) -> dict | None:
    """`evaluate_uploads` of `crystals` converted to cells of `kind` (`converted_cells`); None where none converts
    and fits."""
    import time

    converted = converted_cells(autoencoder, crystals, kind)
    if not converted:
        return None
    started = time.monotonic()
    values, _ = evaluate_uploads(autoencoder, converted, config, refine=refine)
    values["decode_s"] = time.monotonic() - started
    return values
