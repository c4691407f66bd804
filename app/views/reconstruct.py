"""Reconstruct: upload structures or pick them from the dataset; see input and reconstruction side by side."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import backend
from app.errors import shown_errors
from app.ui import inputs, structures
from app.ui.context import AppContext
from app.ui.structures import TABLE1_DISPLAY
from nesf.core.canonical import as_shown


def render(ctx: AppContext) -> None:
    st.title(":material/view_in_ar: Reconstruct")
    st.caption("Encode a crystal to a 192-d latent vector and decode it back with the neural structure field.")
    if ctx.checkpoint is None:
        st.warning("No checkpoint: nothing to reconstruct with.")
        return
    upload_tab, dataset_tab = st.tabs([":material/upload_file: Upload", ":material/search: From the dataset"])
    with upload_tab:
        picked = inputs.upload_structures("recon_upload")
        picked += inputs.example_structures(ctx, "recon")
    with dataset_tab:
        picked += inputs.dataset_search(ctx, "recon_dataset")
    if not picked:
        st.info("Upload one or more structure files, or search the dataset, to see their reconstructions.",
                icon=":material/info:")
        return

    good = inputs.fitting(ctx, picked, "recon")
    if not good:
        return
    with st.spinner(f"Reconstructing {len(good)} structure(s)…"), shown_errors("Reconstruction"):
        reconstructions = backend.reconstruct_uploads(ctx.checkpoint, [p.upload for p in good], ctx.decode_mode,
                                                      ctx.device)
    if not reconstructions:
        return
    results = [r.decoded for r in reconstructions]
    metrics = [r.metrics for r in reconstructions]
    signals = [r.trust for r in reconstructions]
    for item, r in zip(good, reconstructions):
        if r.metrics_problem:
            st.error(f"Metrics of {item.source}: {r.metrics_problem}", icon=":material/error:")

    if len(good) > 1:
        _batch_summary(good, results, metrics, signals)

    supercell, style, as_decoded = structures.viewer_options("recon")
    labels = [f"{p.source} · {p.crystal.formula}" for p in good]
    if len(good) > 1:
        shown = st.selectbox("Structure", range(len(good)), format_func=labels.__getitem__, key="recon_show")
    else:
        shown = 0
    item, m = good[shown], metrics[shown]
    recon = as_shown(results[shown], as_decoded=as_decoded)
    st.subheader(labels[shown])
    with shown_errors("3D view"):
        structures.show_scene(structures.comparison_panels(item.crystal, recon, "recon"), supercell=supercell,
                              style=style)
    if recon.num_atoms == 0:
        st.warning("The decoder found no atoms for this structure.", icon=":material/warning:")
    structures.trust_box(signals[shown], item)
    if m is not None:
        structures.metrics_row(m)
    lattice = structures.lattice_table(item.crystal, recon)
    st.dataframe(lattice, width="stretch", height=38 + 35 * len(lattice))  # every row
    st.caption(structures.LATTICE_TABLE_CAPTION)
    st.markdown("**Download the reconstruction**")
    structures.downloads(recon, f"recon_dl_{shown}", prefix="recon-")


def _batch_summary(good, results, metrics, signals) -> None:
    from nesf.evaluation.metrics import table1_metrics

    st.subheader(f"Batch of {len(good)} structures")
    rows = []
    for item, recon, m, signal in zip(good, results, metrics, signals):
        row = {"source": item.source, "formula": item.crystal.formula, "reconstruction": recon.formula,
               "trust": structures.trust_cell(signal)}
        if m is not None:
            row.update({"atoms": m["num_atoms_true"], "atoms (recon.)": m["num_atoms_pred"],
                        "position error (Å)": m["position_error_actual_angstrom"],
                        "species error (%)": m["species_error_actual_percent"],
                        "match": m["match"], "rmsd": m["rmsd"]})
        rows.append(row)
    per_structure = pd.DataFrame(rows)
    st.dataframe(per_structure, width="stretch", hide_index=True)
    with shown_errors("Table 1 metrics"):
        summary = table1_metrics([p.crystal for p in good], results)
        table = pd.DataFrame(
            [{"metric": TABLE1_DISPLAY.get(k, k), "value": v} for k, v in summary.items()]
        )
        st.dataframe(table, hide_index=True, width="content")
        cols = st.columns(2)
        cols[0].download_button("Table 1 metrics (CSV)", table.to_csv(index=False), "table1_metrics.csv",
                                mime="text/csv", key="recon_table1_csv", icon=":material/download:")
        cols[1].download_button("Per-structure metrics (CSV)", per_structure.to_csv(index=False),
                                "per_structure_metrics.csv", mime="text/csv", key="recon_rows_csv",
                                icon=":material/download:")
