"""Reconstruction metrics exactly as section 2.3 and the official `evaluate.py`, plus StructureMatcher.

Per crystal: distances between actual and detected atoms in Cartesian space (no periodic images, as the paper).
Over a dataset: the error in number of atoms is the % of crystals whose atom count differs; position and species
errors are pooled over all atoms of all crystals (actual: over true atoms; detected: over detected atoms); lattice
errors are mean absolute errors over all three lengths (Angstrom) and angles (degrees).
StructureMatcher uses CDVAE's settings (stol 0.5, ltol 0.3, angle_tol 10).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from nesf.core.crystal import Crystal

MATCHER_SETTINGS = {"stol": 0.5, "ltol": 0.3, "angle_tol": 10.0}


def _atom_errors(true: Crystal, pred: Crystal) -> dict:
    n_true, n_pred = true.num_atoms, pred.num_atoms
    if n_true and n_pred:
        distances = np.linalg.norm(true.cart_coords[:, None, :] - pred.cart_coords[None, :, :], axis=-1)
        actual = distances.min(axis=1)  # per true atom, to the nearest detected
        detected = distances.min(axis=0)  # per detected atom, to the nearest true
        species_actual = true.species == pred.species[distances.argmin(axis=1)]
        species_detected = pred.species == true.species[distances.argmin(axis=0)]
    else:
        actual = np.full(n_true, np.inf)
        detected = np.full(n_pred, np.inf)
        species_actual = np.zeros(n_true, dtype=bool)
        species_detected = np.zeros(n_pred, dtype=bool)
    return {"actual": actual, "detected": detected, "species_actual": species_actual,
            "species_detected": species_detected,
            "length_errors": np.abs(true.lengths_angstrom - pred.lengths_angstrom),
            "angle_errors": np.abs(true.angles_degrees - pred.angles_degrees)}


def structure_match(true: Crystal, pred: Crystal) -> tuple[bool, float | None]:
    """(matched, RMSD normalised as pymatgen's get_rms_dist) with CDVAE's StructureMatcher settings."""
    if pred.num_atoms == 0 or true.num_atoms == 0:
        return False, None
    try:
        from pymatgen.core.structure_matcher import StructureMatcher
    except ImportError:  # pymatgen before the move to pymatgen-core
        from pymatgen.analysis.structure_matcher import StructureMatcher

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            rms = StructureMatcher(**MATCHER_SETTINGS).get_rms_dist(true.to_structure(), pred.to_structure())
        except Exception:  # degenerate predicted cells make spglib/matcher fail: count as no match
            return False, None
    if rms is None:
        return False, None
    return True, float(rms[0])


def structure_metrics(true: Crystal, pred: Crystal, *, match: bool = True) -> dict:
    """Per-structure metrics for one input/reconstruction pair."""
    errors = _atom_errors(true, pred)
    matched, rmsd = structure_match(true, pred) if match else (False, None)
    mean = lambda values: float(np.mean(values)) if len(values) else math.nan  # noqa: E731
    return {
        "num_atoms_true": true.num_atoms,
        "num_atoms_pred": pred.num_atoms,
        "atom_count_correct": true.num_atoms == pred.num_atoms,
        "position_error_actual_angstrom": mean(errors["actual"]),
        "position_error_detected_angstrom": mean(errors["detected"]),
        "species_error_actual_percent": 100.0 * (1.0 - mean(errors["species_actual"])) if true.num_atoms else math.nan,
        "species_error_detected_percent": (100.0 * (1.0 - mean(errors["species_detected"]))
                                           if pred.num_atoms else math.nan),
        "lattice_length_error_angstrom": mean(errors["length_errors"]),
        "lattice_angle_error_degrees": mean(errors["angle_errors"]),
        "match": matched,
        "rmsd": rmsd,
    }


TABLE1_LABELS = {
    "atom_count_error_percent": "Error in number of atoms [%]",
    "position_error_actual_angstrom": "Position error (actual) [A]",
    "position_error_detected_angstrom": "Position error (detected) [A]",
    "species_error_actual_percent": "Species error (actual) [%]",
    "species_error_detected_percent": "Species error (detected) [%]",
    "lattice_length_error_angstrom": "Lattice length error [A]",
    "lattice_angle_error_degrees": "Lattice angle error [deg]",
    "match_rate_percent": "StructureMatcher match rate [%]",
    "match_rmsd": "StructureMatcher RMSD (matched)",
}
TABLE1_KEYS = tuple(TABLE1_LABELS)[:7]  # the paper's seven, in its order


def table1_metrics(trues: list[Crystal], preds: list[Crystal], *, match: bool = True) -> dict:
    """The seven Table 1 metrics over a dataset, plus StructureMatcher match rate and mean RMSD of matches."""
    if len(trues) != len(preds) or not trues:
        raise ValueError(f"need equal, non-empty lists of inputs and reconstructions ({len(trues)} vs {len(preds)})")
    per = [_atom_errors(t, p) for t, p in zip(trues, preds)]
    pooled = lambda key: np.concatenate([e[key] for e in per]) if per else np.zeros(0)  # noqa: E731
    mean = lambda values: float(np.mean(values)) if len(values) else math.nan  # noqa: E731
    result = {
        "atom_count_error_percent": 100.0 * mean([t.num_atoms != p.num_atoms for t, p in zip(trues, preds)]),
        "position_error_actual_angstrom": mean(pooled("actual")),
        "position_error_detected_angstrom": mean(pooled("detected")),
        "species_error_actual_percent": 100.0 * (1.0 - mean(pooled("species_actual"))),
        "species_error_detected_percent": 100.0 * (1.0 - mean(pooled("species_detected"))),
        "lattice_length_error_angstrom": mean(pooled("length_errors")),
        "lattice_angle_error_degrees": mean(pooled("angle_errors")),
    }
    if match:
        matches = [structure_match(t, p) for t, p in zip(trues, preds)]
        rmsds = [r for ok, r in matches if ok and r is not None]
        result["match_rate_percent"] = 100.0 * mean([ok for ok, _ in matches])
        result["match_rmsd"] = mean(rmsds)
    return result


def format_table1(metrics: dict, reference: dict | None = None, table: str = "Table 1") -> str:
    """Plain-text table of the metrics (and the paper's figures from `table`, when given)."""
    lines = []
    for key, label in TABLE1_LABELS.items():
        if key not in metrics:
            continue
        row = f"{label:<36} {metrics[key]:>10.4f}"
        if reference and key in reference:
            row += f"   (paper {reference[key]}, {table})"
        lines.append(row)
    return "\n".join(lines)


def _paper_row(atoms, actual, detected, species_actual, species_detected, length, angle) -> dict:
    return dict(zip(TABLE1_KEYS, (atoms, actual, detected, species_actual, species_detected, length, angle)))


# The paper's NeSF figures per dataset and split (LCS6A and ICSG3D: means over its 10 seeds; YBCO-like: over its 20
# folds): Table 1 is the test split, Tables S1 and S2 (Supplementary Note 1) the training and validation splits. The
# same splits as ours (the official files).
PAPER_TABLE1 = {
    "lim_l6": _paper_row(6.35, 0.1161, 0.1632, 14.78, 16.11, 0.05, 0.19),
    "YBCO13": _paper_row(12.00, 0.2631, 0.2448, 14.78, 19.89, 0.25, 2.91),
    "ICSG3D": _paper_row(0.53, 0.0308, 0.0359, 4.31, 4.36, 0.27, 0.37),
}
PAPER_TABLE_S1 = {
    "lim_l6": _paper_row(6.71, 0.1172, 0.0754, 2.70, 0.94, 0.03, 0.08),
    "YBCO13": _paper_row(0.00, 0.0532, 0.0532, 0.13, 0.13, 0.06, 1.25),
    "ICSG3D": _paper_row(0.61, 0.0308, 0.0237, 0.39, 0.22, 0.02, 0.00),
}
PAPER_TABLE_S2 = {
    "lim_l6": _paper_row(6.33, 0.1503, 0.1083, 13.22, 12.22, 0.05, 0.15),
    "YBCO13": _paper_row(14.00, 0.2935, 0.2995, 21.15, 20.72, 0.34, 3.75),
    "ICSG3D": _paper_row(0.85, 0.0334, 0.0294, 3.75, 3.65, 0.02, 0.00),
}
PAPER_TABLES = {"test": ("Table 1", PAPER_TABLE1), "val": ("Table S2", PAPER_TABLE_S2),
                "train": ("Table S1", PAPER_TABLE_S1)}


def paper_reference(dataset: str, split: str = "test") -> tuple[str, dict]:
    """The paper's NeSF figures for a dataset's split ("train", "val"; any other name: test): (table
    name, {metric key: value}), the values empty for a dataset the paper does not report (a YBCO13 fold's figures are
    the paper's fold means; a dataset with additions to its train split alone, as lim_l6+hex_prototypes, gets its
    base's)."""
    from nesf.data.datasets import evaluated_dataset

    table, values = PAPER_TABLES.get(split, PAPER_TABLES["test"])
    return table, dict(values.get(evaluated_dataset(dataset).split("_fold")[0], {}))
