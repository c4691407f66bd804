"""Showing crystals: the linked 3D viewers, lattice/space-group tables, per-structure metrics, downloads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import viewer
from app.errors import describe
from nesf.evaluation.metrics import TABLE1_LABELS

VIEWER_HEIGHT = 360
AS_DECODED_HELP = ("Off: decoded crystals are shown and downloaded in the canonical frame, as uploads are read "
                   "(atoms wrapped into the predicted cell, periodic duplicates merged). On: the atoms where the "
                   "decoder put them, some past the cell's faces. Metrics always compare the atoms as decoded (the "
                   "paper's Table 1 errors are not periodic).")
# the paper's Table 1 metric names (nesf.evaluation.metrics, plain ASCII) with their units in symbols, for the pages
TABLE1_DISPLAY = {key: label.replace("[A]", "[Å]").replace("[deg]", "[°]") for key, label in TABLE1_LABELS.items()}


def safe_spacegroup(crystal, symprec: float = 0.1) -> tuple[int | None, str, str]:
    """(number, symbol, crystal system) at spglib tolerance `symprec` (Angstrom), or (None, "–", "–") when there are
    no atoms or spglib gives up."""
    from nesf.data.structure_io import spacegroup

    if crystal is None or crystal.num_atoms == 0:
        return None, "–", "–"
    try:
        return spacegroup(crystal, symprec)
    except Exception:  # noqa: BLE001 - symmetry is informative only
        return None, "–", "–"


def viewer_options(key: str, *, decoded_toggle: bool = True) -> tuple[tuple[int, int, int], str, bool]:
    """Supercell, drawing style and, for reconstructions, whether to show the atoms as decoded: (supercell, style,
    as_decoded). `decoded_toggle=False` leaves the last out (crystals already in the canonical frame)."""
    cols = st.columns([1, 1, 2], vertical_alignment="bottom")
    repeat = cols[0].selectbox("Supercell", ["1×1×1", "2×2×2", "3×3×3", "2×1×1", "1×2×1", "1×1×2", "2×2×1"],
                               key=f"{key}_supercell")
    style = cols[1].selectbox("Style", list(viewer.STYLES), key=f"{key}_style")
    as_decoded = decoded_toggle and cols[2].toggle("Reconstruction as decoded", value=False, key=f"{key}_as_decoded",
                                                   help=AS_DECODED_HELP)
    reps = tuple(int(x) for x in repeat.split("×"))
    return reps, style, as_decoded


def comparison_panels(original, reconstruction, key: str) -> list[viewer.Panel]:
    """Input and reconstruction side by side, or overlaid in one panel (the input as translucent spheres around the
    reconstruction's atoms, each in its own cell, both in the canonical frame), as the user picks."""
    layout = st.segmented_control("Compare", ["side by side", "overlaid"], default="side by side",
                                  key=f"{key}_layout", help="Overlaid: the input's atoms as large translucent "
                                                            "spheres, the reconstruction's solid inside them")
    recon_title = f"Reconstruction · {reconstruction.formula or 'no atoms'}"
    if layout == "overlaid":
        return [viewer.Panel(reconstruction, f"{recon_title} (solid) over the input · {original.formula} "
                                             "(translucent)", overlay=original)]
    return [viewer.Panel(original, f"Input · {original.formula}"), viewer.Panel(reconstruction, recon_title)]


def show_scene(panels: list[viewer.Panel], *, supercell=(1, 1, 1), style="ball and stick",
               height: int = VIEWER_HEIGHT, columns: int | None = None) -> None:
    """Draw crystals side by side (in rows of `columns`) in one 3D scene with a shared camera; its "Save PNG" file
    is named after the first crystal's formula and id."""
    first = panels[0].crystal if panels else None
    png_name = "-".join(str(part) for part in (getattr(first, "formula", ""), getattr(first, "id", "")) if part)
    html = viewer.scene_html(panels, height=height, supercell=supercell, style=style, columns=columns,
                             png_name=png_name or "structure")
    rows = -(-len(panels) // (columns or len(panels)))
    st.iframe(html, height=height * rows + 70)


SYMPREC_ANGSTROM = 0.1         # spglib's tolerance for the space groups shown (Materials Project's)
LOOSE_SYMPREC_ANGSTROM = 0.2   # also read on a reconstruction whose group differs at SYMPREC_ANGSTROM (decoded atoms
                               # sit a few hundredths of an Angstrom off their sites: a matching rock salt reads Amm2)
SPACE_GROUP_COLUMN = "space group"  # its tolerance in LATTICE_TABLE_CAPTION (a row label that long was cut at 1280 px)
LATTICE_TABLE_CAPTION = (f"Space groups and crystal systems by spglib at {SYMPREC_ANGSTROM:g} Å, a reconstruction's "
                         f"also at {LOOSE_SYMPREC_ANGSTROM:g} Å where that finds another.")


def _group_text(crystal, symprec: float) -> tuple[int | None, str, str]:
    number, symbol, system = safe_spacegroup(crystal, symprec)
    return number, f"{symbol} ({number})" if number else symbol, system


def lattice_table(original, reconstruction) -> pd.DataFrame:
    """Lattice parameters, volume, atom count and space group: a row per quantity, a column each for the input and the
    reconstruction (numbers to 3 decimals), so the table is two columns wide at any screen width. Space groups at
    SYMPREC_ANGSTROM; a reconstruction's also at LOOSE_SYMPREC_ANGSTROM where that finds another (named so)."""
    columns = {}
    for label, crystal in (("input", original), ("reconstruction", reconstruction)):
        number, group, system = _group_text(crystal, SYMPREC_ANGSTROM)
        if label == "reconstruction" and number is not None:
            loose_number, loose_group, loose_system = _group_text(crystal, LOOSE_SYMPREC_ANGSTROM)
            if loose_number is not None and loose_number != number:
                group += f"; {loose_group} within {LOOSE_SYMPREC_ANGSTROM:g} Å"
                system += f"; {loose_system} within {LOOSE_SYMPREC_ANGSTROM:g} Å"
        numbers = dict(zip(("a (Å)", "b (Å)", "c (Å)"), crystal.lengths_angstrom))
        numbers.update(zip(("α (°)", "β (°)", "γ (°)"), crystal.angles_degrees))
        numbers["volume (Å³)"] = crystal.volume_angstrom3
        columns[label] = {"formula": crystal.formula or "(no atoms)", "atoms": str(crystal.num_atoms),
                          **{key: f"{value:.3f}" for key, value in numbers.items()},
                          SPACE_GROUP_COLUMN: group, "crystal system": system}
    return pd.DataFrame(columns)


def per_structure_metrics(original, reconstruction) -> dict:
    from nesf.evaluation.metrics import structure_metrics

    return structure_metrics(original, reconstruction)


def metrics_row(metrics: dict) -> None:
    """The headline per-structure metrics as st.metric tiles."""
    cols = st.columns(5)
    cols[0].metric("Atoms", f"{metrics['num_atoms_true']} → {metrics['num_atoms_pred']}",
                   help="Number of atoms in the cell: input → reconstruction.")
    pos = metrics.get("position_error_actual_angstrom")
    cols[1].metric("Position error", "–" if pos is None or not np.isfinite(pos) else f"{pos:.3f} Å",
                   help="Mean distance from each input atom to the nearest reconstructed atom (actual).")
    spe = metrics.get("species_error_actual_percent")
    cols[2].metric("Species error", "–" if spe is None or not np.isfinite(spe) else f"{spe:.1f} %",
                   help="Share of input atoms whose nearest reconstructed atom has another element.")
    cols[3].metric("StructureMatcher", "match" if metrics.get("match") else "no match")
    rmsd = metrics.get("rmsd")
    cols[4].metric("RMSD", "–" if rmsd is None else f"{rmsd:.3f}",
                   help="pymatgen StructureMatcher RMS displacement (normalized by (V/N)^(1/3)), when matched.")


def downloads(crystal, key: str, *, prefix: str = "") -> None:
    from nesf.data.structure_io import download_name, to_cif, to_poscar

    if crystal.num_atoms == 0:
        st.caption("Nothing to download: no atoms were decoded.")
        return
    cols = st.columns(2)
    try:
        cif = to_cif(crystal)  # written now: a crystal pymatgen cannot write is said here, not at the click
    except Exception as exc:  # noqa: BLE001
        st.caption(describe(exc, "Export"))
        return
    cols[0].download_button("Download CIF", cif, file_name=prefix + download_name(crystal, "cif"),
                            mime="chemical/x-cif", key=f"{key}_cif", icon=":material/download:")
    # written on click: the first POSCAR of a server imports pymatgen.io.vasp (~1 s), which no page should wait for
    cols[1].download_button("Download POSCAR", lambda: to_poscar(crystal),
                            file_name=prefix + download_name(crystal, "vasp"), mime="text/plain",
                            key=f"{key}_poscar", icon=":material/download:")


TRUST_ICONS = {"high": ":material/verified:", "medium": ":material/help:", "low": ":material/report:",
               "beyond calibration": ":material/report:", "unknown": ":material/help:"}
TRUST_TITLES = {"high": "Trust: high", "medium": "Trust: medium", "low": "Trust: low",
                "beyond calibration": "Trust: beyond what was calibrated (expect it to be wrong)",
                "unknown": "Trust: not calibrated for this model"}
TRUST_BOXES = {"high": st.success, "medium": st.info, "low": st.warning, "beyond calibration": st.warning,
               "unknown": st.info}
TRUST_HELP = ("Read before decoding. Field residual: how well the model's own fields point at this crystal's atoms "
              "and name their elements (lower is better), at the latent used (refined unless the sidebar says "
              "otherwise). Latent distance: how far its latent vector lies from the nearest training crystal's. Each "
              "is calibrated on uploads: the test split and crystals unlike the training set, written as files; the "
              "share of those with a similar value whose reconstruction matched (StructureMatcher). Past the largest "
              "calibrated value no figure is given.")


def refinement_line(choice) -> str:
    """What refinement did to a `FrameChoice`'s latent, before and after (`nesf.model.refine.refinement_sentence`)."""
    from nesf.model.refine import refinement_sentence

    return refinement_sentence(getattr(choice, "refinement", None), arrow="→", angstrom="Å")


def trust_box(signal, item=None) -> None:
    """The trust signal of one reconstruction (`nesf.inference.trust.TrustSignal`), each signal with its own level,
    with how the structure was encoded (setting, cell, refinement before and after)."""
    lines = [f"- {level}: {line}" for level, line in signal.lines()]
    frame = getattr(item, "frame", None)
    if frame is not None:
        lines.append(f"- {refinement_line(frame)}")
        if frame.changed:
            lines.append(f"- encoded in another of its {frame.candidates} equivalent settings (origin, axes), the "
                         "one this model reads best; the input is shown in that setting")
    if item is not None and item.cell_note:
        lines.append(f"- cell: {item.cell_note}")
    level = signal.level
    body = f"**{TRUST_TITLES[level]}**\n" + "\n".join(lines)
    TRUST_BOXES[level](body, icon=TRUST_ICONS[level])


def trust_cell(signal) -> str:
    """A short text for tables: level and the calibrated match probability of the weaker signal."""
    if not signal.readings:
        return "not calibrated"
    probability = signal.match_probability
    if probability is None:
        return signal.level
    return f"{signal.level} ({10 * probability:.1f} in 10 matched)"
