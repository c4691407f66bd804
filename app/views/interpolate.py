"""Interpolate: walk the latent space from a source crystal to a destination, decoding every step
(the paper's Figures 5-6: ZnS -> CdS, MgO -> NaCl)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import backend, settings, state, viewer
from app.errors import shown_errors
from app.ui import inputs, structures
from app.ui.context import AppContext
from app.ui.latent_plot import base_map_figure
from app.ui.map_chart import map_chart
from nesf.core.canonical import as_shown
from nesf.inference.atlas import nearest_neighbors, project_new


def step_table(ctx: AppContext, latents: np.ndarray, crystals: list) -> pd.DataFrame:
    """One row per step: formula, atoms, space group, volume and the nearest dataset crystal in latent space."""
    rows = []
    steps = len(crystals)
    for i, (latent, crystal) in enumerate(zip(latents, crystals)):
        number, symbol, _ = structures.safe_spacegroup(crystal)
        row = {"step": i, "t": i / max(1, steps - 1), "formula": crystal.formula or "(no atoms)",
               "atoms": crystal.num_atoms, "space group": f"{symbol} ({number})" if number else symbol,
               "volume (Å³)": crystal.volume_angstrom3}
        if ctx.atlas is not None and ctx.atlas.latents is not None:
            index, distance = nearest_neighbors(ctx.atlas, latent, k=1)
            table = ctx.atlas.table
            row["nearest in dataset"] = f"{table.at[int(index[0]), 'id']} ({table.at[int(index[0]), 'formula']})"
            row["latent distance"] = float(distance[0])
        rows.append(row)
    return pd.DataFrame(rows)


def export_zip(crystals: list, names: list[str]) -> bytes:
    from nesf.data.structure_io import to_cif

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, crystal in zip(names, crystals):
            archive.writestr(name, to_cif(crystal))
    return buffer.getvalue()


PAPER_PAIR = (("ZnS", "F-43m"), ("CdS", "F-43m"))  # Fig. 5: zincblende ZnS -> zincblende CdS


def _default_ends(atlas) -> tuple[str, str]:
    """The paper's Fig. 5 pair, zincblende ZnS -> zincblende CdS, by id where the dataset holds both (LCS6A also holds
    rock-salt CdS, which a formula search would find first); else its first and last crystal."""
    if atlas is None or len(atlas.table) < 2:
        return "ZnS", "CdS"
    table = atlas.table
    ids = []
    for formula, symbol in PAPER_PAIR:
        rows = table[(table["formula"] == formula) & (table["spacegroup_symbol"] == symbol)]
        ids.append(str(rows["id"].iloc[0]) if len(rows) else None)
    if all(ids):
        return ids[0], ids[1]
    return str(table["id"].iloc[0]), str(table["id"].iloc[-1])


def render(ctx: AppContext) -> None:
    st.title(":material/timeline: Interpolate")
    st.caption("Decode evenly spaced points on the path between two crystals' latent vectors (paper, section 2.4).")
    if ctx.checkpoint is None:
        st.warning("No checkpoint: nothing to interpolate with.")
        return
    left, right = st.columns(2)
    first, last = _default_ends(ctx.atlas)
    with left:
        source = inputs.pick_one(ctx, "interp_src", title="Source", default_query=first)
    with right:
        destination = inputs.pick_one(ctx, "interp_dst", title="Destination", default_query=last)
    cols = st.columns([2, 2, 3])
    steps = cols[0].slider("Steps", 2, settings.MAX_INTERPOLATION_STEPS, 10, key="interp_steps",
                           help="Number of decoded structures, source and destination included.")
    method = cols[1].radio("Interpolation", ["linear", "spherical"], horizontal=True, key="interp_method")
    as_decoded = cols[2].toggle("Steps as decoded", value=False, key="interp_as_decoded",
                                help=structures.AS_DECODED_HELP)
    if source is None or destination is None:
        st.info("Choose a source and a destination.", icon=":material/info:")
        return

    ends = inputs.fitting(ctx, [source, destination], "interp")
    if len(ends) < 2:
        return
    source, destination = ends
    named = [("Source", source), ("Destination", destination)]  # each with its latent (refined unless switched off)
    with shown_errors("Trust signal"):
        signals = backend.trust(ctx.checkpoint, [end.frame for _, end in named], ctx.device)
        for column, (label, end), signal in zip(st.columns(len(named)), named, signals):
            with column:
                st.caption(f"{label}: {end.source}")
                structures.trust_box(signal, end)
    latents = crystals = None
    with st.spinner(f"Decoding {steps} steps…"), shown_errors("Interpolation"):
        latents, crystals = backend.interpolate(ctx.checkpoint, source.frame.latent, destination.frame.latent, steps,
                                                method, ctx.decode_mode, ctx.device)
    if crystals is None:
        return
    crystals = [as_shown(c, as_decoded=as_decoded) for c in crystals]

    table = step_table(ctx, latents, crystals)
    path_text = " → ".join(dict.fromkeys(table["formula"]))
    st.markdown(f"**{source.crystal.formula} → {destination.crystal.formula}** ({method}): {path_text}")
    _walker(ctx, table, crystals)

    st.dataframe(table, hide_index=True, width="stretch",
                 column_config={"t": st.column_config.NumberColumn(format="%.2f"),
                                "volume (Å³)": st.column_config.NumberColumn(format="%.1f"),
                                "latent distance": st.column_config.NumberColumn(format="%.3f")})

    if ctx.atlas is not None and ctx.atlas.latents is not None:
        with shown_errors("Path on the latent map"):
            _path_on_map(ctx, latents, table)

    names = [f"step{i:02d}-{c.formula or 'empty'}.cif" for i, c in enumerate(crystals)]
    base = f"{source.crystal.formula}-to-{destination.crystal.formula}-{method}"
    with shown_errors("Export"):
        from nesf.data.structure_io import to_extxyz

        cols = st.columns(2)
        cols[0].download_button("Path as CIFs (zip)", export_zip(crystals, names), f"{base}.zip",
                                mime="application/zip", key="interp_zip", icon=":material/folder_zip:")
        nonempty = [c for c in crystals if c.num_atoms]
        cols[1].download_button("Path as extxyz trajectory", to_extxyz(nonempty), f"{base}.extxyz",
                                mime="chemical/x-extxyz", key="interp_xyz", icon=":material/download:")


def _walker(ctx: AppContext, table: pd.DataFrame, crystals: list) -> None:
    """Slider (and play button) over the steps, with the decoded structure in 3D; a fragment, so moving the
    slider redraws only this part."""
    steps = len(crystals)
    state.walker_step(steps)
    playing = state.playing()

    def body():
        if state.playing():
            state.advance_walker(steps)
        cols = st.columns([1, 6])
        label = "Pause" if state.playing() else "Play"
        if cols[0].button(label, icon=":material/pause:" if label == "Pause" else ":material/play_arrow:",
                          key="interp_play"):
            state.toggle_playing()
            st.rerun()
        step = cols[1].slider("Step", 0, steps - 1, key=state.INTERP_STEP)
        row = table.iloc[step]
        st.markdown(f"Step **{step}** / {steps - 1} · **{row['formula']}** · {row['atoms']} atoms · "
                    f"{row['space group']} · {row['volume (Å³)']:.1f} Å³"
                    + (f" · nearest in dataset: {row['nearest in dataset']}" if "nearest in dataset" in row else ""))
        crystal = crystals[step]
        if crystal.num_atoms == 0:
            st.warning("No atoms decoded at this step.", icon=":material/warning:")
        with shown_errors("3D view"):
            structures.show_scene([viewer.Panel(crystal, f"Step {step} · {crystal.formula or 'no atoms'}")],
                                  height=340)

    st.fragment(body, run_every=1.2 if playing else None)()


def _path_on_map(ctx: AppContext, latents: np.ndarray, table: pd.DataFrame) -> None:
    method = state.map_method()
    atlas = ctx.atlas
    coords = atlas.maps.get(method)
    if coords is None:
        coords = atlas.maps.get("pca") if atlas.maps else None
        method = "pca"
    if coords is None:
        st.caption("The active dataset has no map yet: open the Latent map page to compute one.")
        return
    path = project_new(atlas, latents, method, coords=coords)
    fig = base_map_figure(atlas, coords, hover=backend.map_hover(atlas), color_by=None, height=420)
    fig.add_trace(go.Scatter(
        x=path[:, 0], y=path[:, 1], mode="lines+markers+text", name="path",
        text=[str(i) for i in range(len(path))], textposition="top center",
        marker=dict(size=9, color=np.arange(len(path)), colorscale="Plasma", line=dict(width=1, color="black")),
        line=dict(color="black", width=2), customdata=table["formula"],
        hovertemplate="step %{text}: %{customdata}<extra></extra>",
    ))
    st.markdown(f"**The path on the latent map** ({'t-SNE' if method == 'tsne' else 'PCA'}; steps placed "
                f"{'exactly' if method == 'pca' else 'by their nearest dataset crystals in latent space'})")
    map_chart(fig, key="interp_map", config={"displaylogo": False}, selections=False)
