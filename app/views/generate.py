"""Generate: sample latents from a density over the model's training latents (the whole space, near a crystal, or
within the crystals selected on the map), decode them, and judge each sample: validity as CDVAE defines it,
uniqueness, novelty against the training crystals, its nearest dataset crystals. The samples appear on the map;
the valid ones export as CIF or POSCAR."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import backend, state, viewer
from app.errors import shown_errors
from app.ui import inputs, structures
from app.ui.context import AppContext
from app.ui.latent_plot import base_map_figure
from app.ui.map_chart import map_chart
from app.ui.tables import figures_column_config, shown_value
from nesf.inference.atlas import project_new
from nesf.inference.generation.density import DEFAULT_SPREAD
from nesf.inference.generation.sample import Where

DENSITIES = {"gmm": "Gaussian mixture (chosen by held-out likelihood)", "kde": "Kernel density",
             "gaussian": "One Gaussian (baseline)"}
PLACES = ["Whole latent space", "Near a crystal", "Within the map selection"]
MAX_COUNT = 2000  # LCS6A on 2 CPU cores: ~0.2 s a sample (fast decoding ~90 % of it), so ~7 minutes at most
REQUEST = "gen_request"
# the sample table's columns as shown: the id pinned, the verdicts as narrow checkboxes, short headers (the CSV keeps
# the full names), so that its twelve columns fit 1280 px
SAMPLE_COLUMNS = {
    "id": st.column_config.TextColumn("id", pinned=True),
    "num_atoms": st.column_config.NumberColumn("atoms", width="small"),
    "volume_angstrom3": st.column_config.NumberColumn("volume [Å³]", width="small", format="%.1f"),
    **{name: st.column_config.CheckboxColumn(label, width="small", help=help_text) for name, label, help_text in (
        ("structure_valid", "struct.", "Structurally valid: no two atoms closer than 0.5 Å"),
        ("composition_valid", "comp.",
         "Compositionally valid: a charge-neutral assignment of oxidation states (SMACT)"),
        ("valid", "valid", "Both rules pass"), ("unique", "unique", "Matches no earlier valid sample"),
        ("novel", "novel", "Unique, and matches no training crystal"))},
    "nearest_dataset_crystal": st.column_config.TextColumn("nearest crystal"),
    "nearest_latent_distance": st.column_config.NumberColumn("distance", width="small", format="%.2f",
                                                             help="Latent distance to the nearest dataset crystal"),
}
COVERAGE_FOR = "gen_coverage_for"


def render(ctx: AppContext) -> None:
    st.title(":material/auto_awesome: Generate")
    if ctx.checkpoint is None:
        st.warning("No checkpoint: choose one in the sidebar.")
        return
    if not ctx.checkpoint.atlas_path:
        st.warning(f"{ctx.checkpoint.name} has no atlas beside it: generation samples a density over the training "
                   "latents the atlas holds. Build one with `nesf atlas`.")
        return
    st.caption("New latent vectors drawn from a density fitted to this model's training latents, decoded like any "
               "other. Each sample is judged as CDVAE judges generated crystals: structurally valid (no two atoms "
               "closer than 0.5 Å), compositionally valid (SMACT charge balance), unique among the valid samples, "
               "and novel (no training crystal matches it).")

    cols = st.columns([1, 1, 3])
    count = int(cols[0].number_input("Samples", 1, MAX_COUNT, 24, key="gen_count"))
    seed = int(cols[1].number_input("Seed", 0, 2**31 - 1, 0, key="gen_seed"))
    method = cols[2].selectbox("Density", list(DENSITIES), format_func=DENSITIES.get, key="gen_density")
    place = st.segmented_control("Where", PLACES, default=PLACES[0], key="gen_where") or PLACES[0]
    where = _where(ctx, place)
    if where is None:
        return
    support = st.toggle("Only atom counts the training crystals have", value=True, key="gen_support",
                        help="A sample whose decoded cell holds a number of atoms no training crystal has (a "
                             "perovskite cell of 6 atoms: the decoder found one atom twice) is replaced by a new "
                             "draw. CDVAE predicts the count with a head trained on the same crystals; NeSF's "
                             "decoder has none. Off: every draw as decoded (the benchmark's raw figures).")
    if st.button("Generate", type="primary", key="gen_go", icon=":material/auto_awesome:"):
        st.session_state[REQUEST] = (method, count, seed, where, support)
    request = st.session_state.get(REQUEST)
    if request is None:
        st.info("Choose how many, from where, and press Generate.", icon=":material/touch_app:")
        return
    method, count, seed, where, support = request
    generated = None
    with shown_errors("Generating"):
        generated = backend.generate(ctx.checkpoint, method, count, seed, where, ctx.decode_mode, ctx.device,
                                     support)
    if generated is not None:
        _results(ctx, generated)


def _where(ctx: AppContext, place: str) -> Where | None:
    if place == PLACES[0]:
        return Where()
    spread = st.slider("Spread", 0.05, 1.0, DEFAULT_SPREAD, 0.05, key="gen_spread",
                       help="The width of the local draw, as a multiple of the density's covariance where it is "
                            "centred: small stays close to the chosen crystals, 1 spans their whole cluster.")
    if place == PLACES[1]:
        picked = inputs.pick_one(ctx, "gen_near", title="Centre crystal")
        if picked is None:
            return None
        if picked.index is not None and ctx.atlas is not None and ctx.atlas.latents is not None:
            latent = ctx.atlas.latents[picked.index]
        else:
            good = inputs.fitting(ctx, [picked], "gen_near")
            if not good:
                return None
            latent = backend.encode(ctx.checkpoint, [good[0].crystal], ctx.device)[0]
        return Where.near(latent, f"near {picked.source} ({picked.crystal.formula})", spread)
    rows = [r for r in state.map_selection() if ctx.atlas is not None and r < len(ctx.atlas.crystals)]
    if not rows or ctx.atlas.latents is None:
        st.info("Lasso a region on the Latent map page first; its crystals are the region sampled here.",
                icon=":material/gesture:")
        return None
    st.caption(f"{len(rows)} crystals selected on the map of {ctx.atlas.title}.")
    return Where.region(ctx.atlas.latents[rows], f"within the {len(rows)} crystals selected on the map", spread)


def _results(ctx: AppContext, generated) -> None:
    scores = generated.scores
    n = len(generated.crystals)
    st.subheader(f"{n} samples {generated.where}")
    cols = st.columns(4)
    cols[0].metric("Valid", f"{int(scores.valid.sum())} / {n}",
                   help="Structurally (all atoms ≥ 0.5 Å apart) and compositionally (SMACT) valid.")
    cols[1].metric("Unique", f"{int(scores.unique.sum())}", help="Valid samples that match no earlier sample.")
    cols[2].metric("Novel", f"{int(scores.novel.sum())}", help="Unique valid samples no training crystal matches.")
    cols[3].metric("Density", generated.density.split(":")[0], help=generated.density)
    if generated.replaced:
        st.caption(f"{generated.replaced} draw{'s' if generated.replaced > 1 else ''} replaced: their decoded cells "
                   "held an atom count no training crystal has (switch off “Only atom counts the training crystals "
                   "have” to see every draw as decoded).")

    table = pd.DataFrame(generated.table_rows())
    cautioned = table[(table["caution"] != "") & table["valid"]]
    if len(cautioned):
        st.warning(f"{len(cautioned)} of the valid samples {'is one' if len(cautioned) == 1 else 'are ones'} a "
                   "chemist would not accept: "
                   + "; ".join(sorted(set(cautioned["caution"]))) + " (column 'caution').",
                   icon=":material/science:")
    _coverage(ctx, generated)
    _map(ctx, generated, table)
    st.dataframe(table, hide_index=True, width="stretch", height=min(360, 38 + 35 * len(table)),
                 column_config=SAMPLE_COLUMNS)
    _exports(generated, table)

    labels = {i: f"{row.id} · {row.formula} · {'valid' if row.valid else 'invalid'}"
              for i, row in enumerate(table.itertuples())}
    index = st.selectbox("Show", list(labels), format_func=labels.get, key="gen_show")
    if index is None:
        return
    sample = generated.crystals[index]
    session = backend.generation_session(ctx.checkpoint, st.session_state[REQUEST][0], ctx.device)
    panels = [viewer.Panel(sample, f"Generated · {sample.formula or 'no atoms'}")]
    if generated.nearest[index]:
        nearest_id, distance = generated.nearest[index][0]
        nearest = session.atlas.crystals[session.index_of(nearest_id)]
        panels.append(viewer.Panel(nearest, f"Nearest in the dataset · {nearest_id} · {nearest.formula}"))
    supercell, style, _ = structures.viewer_options("gen", decoded_toggle=False)
    with shown_errors("3D view"):
        structures.show_scene(panels, supercell=supercell, style=style)
    near = ", ".join(f"{i} ({d:.2f})" for i, d in generated.nearest[index])
    st.caption(f"Nearest dataset crystals in latent space (distance): {near}")
    if scores.valid[index]:
        structures.downloads(sample, "gen_one")
    else:
        st.caption("Invalid samples are not offered for download.")


def _map(ctx: AppContext, generated, table: pd.DataFrame) -> None:
    atlas = ctx.atlas
    if atlas is None or atlas.latents is None:
        return
    settings = state.map_settings(atlas.map_settings)
    coords = None
    with shown_errors("The map"):
        coords = backend.map_coords(atlas, settings.method, settings.maps)
    if coords is None:
        return
    xy = project_new(atlas, generated.latents, settings.method, coords=coords)
    fig = base_map_figure(atlas, coords, hover=backend.map_hover(atlas), color_by=None, height=460)
    valid = table["valid"].to_numpy(dtype=bool)
    for mask, name, color in ((valid, "valid sample", "#2ca02c"), (~valid, "invalid sample", "#d62728")):
        if mask.any():
            fig.add_trace(go.Scatter(
                x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=name, text=table["id"][mask] + " · " +
                table["formula"][mask], hovertemplate="%{text}<extra></extra>",
                marker=dict(symbol="star", size=13, color=color, line=dict(width=1, color="black"))))
    fig.update_layout(showlegend=True)
    map_chart(fig, key="gen_map", config={"displaylogo": False}, selections=False)
    st.caption(f"Samples placed on the {'t-SNE' if settings.method == 'tsne' else 'PCA'} map of {atlas.title} "
               "(t-SNE: at the weighted mean of their nearest crystals' positions; PCA: projected exactly).")


def _exports(generated, table: pd.DataFrame) -> None:
    from nesf.data.structure_io import to_cif, to_poscar

    valid = [c for c, ok in zip(generated.crystals, generated.scores.valid) if ok and c.num_atoms]
    cols = st.columns(3)
    cols[0].download_button("Valid samples (CIF, zip)", _zip(valid, to_cif, "cif"), "generated-cif.zip",
                            mime="application/zip", key="gen_zip_cif", icon=":material/download:",
                            disabled=not valid)
    cols[1].download_button("Valid samples (POSCAR, zip)", _zip(valid, to_poscar, "vasp"), "generated-poscar.zip",
                            mime="application/zip", key="gen_zip_poscar", icon=":material/download:",
                            disabled=not valid)
    cols[2].download_button("Table (CSV)", generated.summary_csv(), "generated.csv", mime="text/csv",
                            key="gen_csv", icon=":material/download:")


def _zip(crystals, writer, extension: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for crystal in crystals:
            archive.writestr(f"{crystal.id}.{extension}", writer(crystal))
    return buffer.getvalue()


def _coverage(ctx: AppContext, generated) -> None:
    """CDVAE's generation metrics of this run against the test split, on request (fingerprints take ~0.2 s a
    sample), beside the published figures where the dataset has them."""
    from nesf.data.datasets import evaluated_dataset
    from nesf.inference.generation.published import GENERATION_LABELS, PUBLISHED_GENERATION

    method, count, seed, where, support = st.session_state[REQUEST]
    run = (method, count, seed, where.kind, where.label, where.spread, support)  # scored runs stay scored on reruns
    scored = st.session_state.get(COVERAGE_FOR) == run
    # open while its run is scored: the click's rerun (the callback sets the run first) must not fold the result away
    with st.expander("Coverage and distributions against the test split (CDVAE's metrics)",
                     icon=":material/analytics:", expanded=scored):
        st.caption("COV-R: the share of test crystals some valid sample lies near (CrystalNN structure and Magpie "
                   "composition fingerprints within the dataset's cutoffs); COV-P: the share of valid samples near "
                   "some test crystal; Wasserstein distances of density and element count to the test split. "
                   "COV-R grows with the number of samples: compare runs of equal size. SMACT 2.2.1: validity with "
                   "the oxidation states of the SMACT version CDVAE pins. Published models' columns: 10,000 samples.")
        st.button("Score these samples", key="gen_cov_go", icon=":material/analytics:",
                  on_click=lambda: st.session_state.update({COVERAGE_FOR: run}))
        if not scored:
            return
        scores = None
        with shown_errors("Scoring the samples"):
            scores = backend.generation_coverage(ctx.checkpoint, method, generated, ctx.device)
        if scores is None:
            return
        real = None
        with shown_errors("Scoring real crystals"):
            real = backend.real_coverage(ctx.checkpoint, method, scores.generated, ctx.device)
        published = PUBLISHED_GENERATION.get(evaluated_dataset(ctx.checkpoint.dataset), {})
        values = scores.to_dict()
        real_values = real.to_dict() if real is not None else {}
        rows = []
        for metric, label in GENERATION_LABELS.items():
            row = {"metric": label, f"these samples ({scores.generated})": shown_value(metric, values.get(metric))}
            if real is not None:
                row[f"real crystals ({real.generated})"] = shown_value(metric, real_values.get(metric))
            for name, figures in published.items():
                row[f"{name} (10,000)"] = shown_value(metric, figures.get(metric))
            rows.append(row)
        table = pd.DataFrame(rows)
        st.dataframe(table, hide_index=True, width="stretch", column_config=figures_column_config(table, "metric"))
        st.caption(f"Real crystals: as many training crystals, drawn at random and scored the same way: what a "
                   "generator as good as the data scores at this count (their novelty is nil by construction). "
                   f"Against the {scores.reference_size} test crystals of the atlas (cutoffs "
                   f"{scores.structure_cutoff:g} / {scores.composition_cutoff:g}); novelty against its "
                   f"{scores.training_size} training crystals.")
