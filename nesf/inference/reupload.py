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
    field_residual: float           # the chosen setting's FrameScore.score (NaN when refused)
    latent_distance: float          # to the nearest training latent (NaN when refused or none given)
    frame_changed: bool             # frame selection chose another setting than the upload's


def evaluate_uploads(autoencoder, uploads: list[Crystal | None], config=None, *, select_frame: bool = True,
                     training_latents: np.ndarray | None = None) -> tuple[dict, list[UploadResult]]:
    """Table 1 metrics and match rate of `uploads` (None: refused by the upload path) through the product's path,
    each compared with the setting it was encoded in; a refused upload counts as a miss in the match rate and is
    left out of the other metrics. Returns (metrics with "refused_percent" and "frame_changed_percent", one
    `UploadResult` per upload)."""
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
        crystals = [uploads[i] for i in accepted]
        choices = (autoencoder.select_frames(crystals) if select_frame else autoencoder.given_frames(crystals))
        encoded = [c.crystal for c in choices]
        latents = np.stack([c.latent for c in choices])
        preds = autoencoder.decode(latents, config, ids=[c.id for c in encoded])
        metrics = table1_metrics(encoded, preds, match=False)
        distances = (nearest_distances(latents, training_latents)[0] if training_latents is not None
                     else np.full(len(accepted), np.nan))
        for i, choice, pred, distance in zip(accepted, choices, preds, distances):
            results[i] = UploadResult(choice.crystal.id, "", structure_match(choice.crystal, pred)[0],
                                      choice.score.score, float(distance), choice.changed)
    ordered = [results[i] for i in range(len(uploads))]
    count = max(len(ordered), 1)
    metrics["match_rate_percent"] = 100.0 * sum(r.matched for r in ordered) / count
    metrics["refused_percent"] = 100.0 * sum(bool(r.refused) for r in ordered) / count
    metrics["frame_changed_percent"] = 100.0 * sum(r.frame_changed for r in ordered) / max(len(accepted), 1)
    metrics["count"] = len(ordered)
    return metrics, ordered


REUPLOADED = "re-uploaded"


def cell_label(kind: str) -> str:
    return f"{kind} cells"


def measure_uploads(autoencoder, crystals: list[Crystal], split: str, config=None, *, seed: int = REUPLOAD_SEED,
                    training_latents: np.ndarray | None = None, source: str = "", ci_count: int = 0
                    ) -> tuple[dict, dict]:
    """What users get on a split: (metrics by label, trust calibrations by signal).

    Labels (`Checkpoint.with_metrics` stores them beside the dataset form's, `split[...]` so they share its paper
    column):
    "<split>[re-uploaded]": the split's crystals through `reuploaded` (fixed `seed`) and `evaluate_uploads`;
    "<split>[<kind> cells]": its crystals converted to each kind of offered cell (`cell_kind_variant`), encoded in
    that cell (frame selection among its settings), where the cell fits the model; "count" is how many were scored.
    With `ci_count` below the split's size, "<split>[re-uploaded]" also holds "ci_subset": the same figures for the
    first `ci_count` uploads alone (the same files: one generator, drawn in order), which CI reproduces quickly.
    The calibrations (`nesf.inference.trust.calibrate`) are fitted on the re-uploaded crystals that went through."""
    import time

    from nesf.inference.trust import calibrate

    metrics, calibrations = {}, {}
    started = time.monotonic()
    uploads = reuploaded(crystals, seed)
    values, results = evaluate_uploads(autoencoder, uploads, config, training_latents=training_latents)
    values["decode_s"] = time.monotonic() - started
    values["seed"] = seed
    if 0 < ci_count < len(uploads):
        values["ci_subset"] = evaluate_uploads(autoencoder, uploads[:ci_count], config,
                                               training_latents=training_latents)[0]
    metrics[f"{split}[{REUPLOADED}]"] = values
    went = [r for r in results if not r.refused]
    label = source or f"{split}, {REUPLOADED} (seed {seed}), {len(went)} crystals"
    if went:
        matched = [r.matched for r in went]
        calibrations["field_residual"] = calibrate("field_residual", [r.field_residual for r in went], matched,
                                                   label).to_dict()
        if training_latents is not None:
            calibrations["latent_distance"] = calibrate("latent_distance", [r.latent_distance for r in went],
                                                        matched, label).to_dict()
    for kind in CELL_KINDS:
        values = measure_cell_kind(autoencoder, crystals, kind, config)
        if values is not None:
            metrics[f"{split}[{cell_label(kind)}]"] = values
    if f"{split}[{cell_label('orthohexagonal')}]" not in metrics:  # LCS6A's splits hold no hexagonal crystal
        from nesf.data.hexagonal_set import hexagonal_crystals

        values = measure_cell_kind(autoencoder, hexagonal_crystals(), "orthohexagonal", config)
        if values is not None:
            metrics[f"{HEXAGONAL_SET}[{cell_label('orthohexagonal')}]"] = values
    return metrics, calibrations


HEXAGONAL_SET = "held-out hexagonal"  # nesf.data.hexagonal_set


def measure_cell_kind(autoencoder, crystals: list[Crystal], kind: str, config=None) -> dict | None:
    """`evaluate_uploads` of `crystals` converted to cells of `kind` (`cell_kind_variant`), those that fit the
    model; None where none converts and fits."""
    import time

    converted = []
    for crystal in crystals:
        try:
            cell = cell_kind_variant(crystal, kind)
        except NesfError:
            cell = None
        if cell is not None and not autoencoder.range.problems(cell):
            converted.append(cell)
    if not converted:
        return None
    started = time.monotonic()
    values, _ = evaluate_uploads(autoencoder, converted, config)
    values["decode_s"] = time.monotonic() - started
    return values
