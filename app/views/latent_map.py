"""Latent map: the dataset's 192-d latent vectors in 2-D (t-SNE or PCA, paper section 2.5), linked to the
structure viewer: select points to see their input and reconstruction and their latent-space neighbors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app import backend, links, state, viewer
from app.errors import shown_errors
from app.ui import inputs, structures
from app.ui.context import AppContext
from app.ui.latent_plot import (COLOR_OPTIONS, DERIVED_COLORS, available_colors, base_map_figure, continuous_colors,
                                 map_view, missing_color_note, selectable_rows)
from app.ui.map_chart import map_chart
from app.ui.tables import shown_value
from nesf.core.canonical import as_shown
from nesf.core.config import MapConfig
from nesf.inference.atlas import nearest_neighbors, project_new
from nesf.inference.map_figure import map_figure_bytes
from nesf.inference.map_filters import ELEMENT_MODES, MapFilter, matching, number_of_elements

MAX_SHOWN = 12   # selected crystals listed for viewing at once
GRID_SIZE = 9    # selected crystals seen together
RANGE_COLUMNS = {"volume_angstrom3": "Cell volume (Å³)", "num_atoms": "Atoms in the cell",
                 "spacegroup_number": "Space group number", "num_elements": "Number of elements",
                 "reconstruction_error_angstrom": "Reconstruction error (Å)"}
CATEGORY_COLUMNS = {"crystal_system": "Crystal system", "split": "Split"}
DECODE_AT = "map_decode_at"      # (method, x, y) of the last "Decode here"
BOX_CENTRE = "map_box_centre"    # (x, y) of the last box drawn on the map
GRID_OPEN = "map_grid_open"      # whether the selection's "seen together" grid is open
DECODE_OPEN = "map_decode_open"  # whether "Decode anywhere" is open
PLACE_OPEN = "map_place_open"    # whether "Place your structures on the map" is open


def _map_settings(shipped: MapConfig) -> state.MapSettings:
    """Method and t-SNE parameters, chosen before computing (a form: nothing runs while they are edited)."""
    current = state.map_settings(shipped)
    with st.popover("Map settings", icon=":material/tune:"):
        with st.form("map_settings_form", border=False):
            method = st.radio("Method", ["tsne", "pca"], index=["tsne", "pca"].index(current.method),
                              format_func={"tsne": "t-SNE", "pca": "PCA"}.get, horizontal=True)
            perplexity = st.number_input("Perplexity", 2.0, 200.0, float(current.maps.perplexity), step=5.0)
            seed = st.number_input("Seed", 0, 2**31 - 1, int(current.maps.seed))
            iterations = st.number_input("Iterations", 250, 5000, int(current.maps.iterations), step=250)
            if st.form_submit_button("Compute map", type="primary"):
                current = state.MapSettings(method, MapConfig(float(perplexity), int(seed), int(iterations)))
                state.ask_for_map(current)
    return current


def render(ctx: AppContext) -> None:
    st.title(":material/scatter_plot: Latent map")
    atlas = ctx.atlas
    if ctx.checkpoint is None or atlas is None:
        st.warning("No active dataset with latent vectors: choose a checkpoint and a dataset in the sidebar.")
        return
    if atlas.latents is None:
        st.warning(f"{atlas.title} has no latent vectors.")
        return

    top = st.columns([2, 2, 2, 3, 2])
    with top[0]:
        params = _map_settings(atlas.map_settings)
    with top[1]:
        # element fractions once per atlas (memoized); the table gains the derived number of elements
        fractions, vocabulary = backend.map_elements(atlas)
        table = atlas.table.assign(num_elements=number_of_elements(fractions))
        spec = _filters(atlas.title, table, vocabulary)
    options = available_colors(atlas.table)
    if st.session_state.get("map_color") not in (None, *options):
        links.refuse(f"coloring {st.session_state['map_color']!r} is not one of {', '.join(options)}", "map_color")
    color_by = top[2].selectbox("Color by", options, key="map_color", label_visibility="collapsed")
    query = top[3].text_input("Search", key="map_search", placeholder="highlight by id or formula, e.g. NaCl",
                              label_visibility="collapsed")
    color_values, color_label = _derived_color(ctx, atlas, color_by, table, fractions,
                                               vocabulary)

    coords = None
    with shown_errors("Computing the map"):
        coords = backend.map_coords(atlas, params.method, params.maps, recompute=state.map_recompute())
    if coords is None:
        return
    method_name = "t-SNE" if params.method == "tsne" else "PCA"
    extra = (f" · perplexity {params.maps.perplexity:g}, seed {params.maps.seed}, {params.maps.iterations} iterations"
             if params.method == "tsne" else "")
    settings = (" · each crystal in the setting that gives its structure type one origin (`nesf atlas --frames "
                "consistent`)" if atlas.frames == "consistent" else "")
    st.caption(f"{len(atlas.crystals):,} crystals of {atlas.title} · {method_name}{extra}{settings} · "
               "drag a lasso or click points to open them")

    highlight = None
    if query.strip():
        matches = atlas.find(query, limit=500)
        highlight = matches.index.to_numpy()
        top[4].caption(f"{len(highlight)} match(es)" if len(highlight) else "no match")

    missing = missing_color_note(atlas.table, color_by)
    if missing:
        st.caption(missing + ".")
    greyed = None
    if spec.active:
        greyed = ~matching(table, fractions, vocabulary, spec)
        st.caption(f"Filter: **{int((~greyed).sum()):,} shown**, {int(greyed.sum()):,} greyed")

    view = map_view(coords)  # the first view, and the crystals it leaves out: computed once a rerun
    fig = base_map_figure(atlas, coords, hover=backend.map_hover(atlas), color_by=color_by,
                          highlight=highlight, greyed=greyed, color_values=color_values, color_label=color_label,
                          view=view)
    decode_request = st.session_state.get(DECODE_AT)
    if decode_request is not None and decode_request[0] == params.method:
        fig.add_trace(go.Scatter(x=[decode_request[1]], y=[decode_request[2]], mode="markers", name="decoded here",
                                 marker=dict(symbol="x", size=16, color="#e4002b", line=dict(width=2)),
                                 hovertemplate="decoded here<extra></extra>"))
    placed = _placed_uploads(ctx, coords, params.method)
    if placed is not None:
        fig.add_trace(go.Scatter(
            x=placed["x"], y=placed["y"], mode="markers+text", text=placed["formula"], textposition="top center",
            name="uploaded", marker=dict(symbol="star", size=16, color="#ff7f0e", line=dict(width=1, color="black")),
            hovertemplate="uploaded: %{text}<extra></extra>",
        ))
    _outside_view_note(table, view)
    event = map_chart(fig, key="latent_map", config={
        "displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": "nesf-latent-map", "scale": 2}})
    selected = selectable_rows(_selected_rows(event), greyed)
    if selected:
        state.select_on_map(selected)
    box = _box_centre(event)
    if box is not None and box != st.session_state.get(BOX_CENTRE):  # a new box: its centre fills the position
        st.session_state[BOX_CENTRE] = box
        st.session_state["map_decode_x"], st.session_state["map_decode_y"] = box
        st.session_state[DECODE_OPEN] = True
    _decode_anywhere(ctx, coords, params.method)

    cols = st.columns([2, 3, 4])
    cols[0].download_button("Map coordinates (CSV)", lambda: _map_csv(atlas.table, coords), "latent_map.csv",
                            mime="text/csv", key="map_csv", icon=":material/download:")  # written on click
    selection = [r for r in state.map_selection() if r < len(atlas.crystals)]
    cols[1].download_button(
        f"Chemiscope file ({f'selection of {len(selection)}' if selection else f'all {len(atlas.crystals)}'})",
        lambda: _chemiscope(atlas, coords, params.method, selection or None), "nesf-map.json.gz",
        mime="application/gzip", key="map_chemiscope", icon=":material/download:",
        help="Opens in Chemiscope's viewer (chemiscope.org, or chemiscope.show_input in Python): the crystals, "
             "the map coordinates and the table's columns as properties.")
    figure = dict(coords=coords, greyed=greyed, highlight=highlight, title=f"{atlas.title}: {params.method}",
                  **_figure_colors(atlas, color_by, color_values, color_label, greyed))
    figures = cols[2].columns(2)
    figures[0].download_button("Map (SVG)", lambda: map_figure_bytes(fmt="svg", **figure), "nesf-map.svg",
                               mime="image/svg+xml", key="map_svg", icon=":material/download:")
    figures[1].download_button("Map (PNG, 300 dpi)", lambda: map_figure_bytes(fmt="png", **figure), "nesf-map.png",
                               mime="image/png", key="map_png", icon=":material/download:")

    rows = [r for r in state.map_selection() if r < len(atlas.crystals)]
    if rows:
        _selection_panel(ctx, rows)
    else:
        st.info("Click a point or lasso a group to see those crystals and their reconstructions.",
                icon=":material/touch_app:")


def _box_centre(event) -> tuple[float, float] | None:
    """The centre of the last box drawn on the map (an empty spot too), or None."""
    try:
        boxes = event.selection.box if event else []
    except AttributeError:
        boxes = (event or {}).get("selection", {}).get("box", [])
    for box in boxes or []:
        try:
            return float(np.mean(box["x"])), float(np.mean(box["y"]))
        except (KeyError, TypeError, ValueError):
            continue
    return None


def _decode_anywhere(ctx: AppContext, coords: np.ndarray, method: str) -> None:
    """Decode the latent at a map position: the centre of the last box drawn (box select, even on an empty spot)
    or typed coordinates."""
    atlas = ctx.atlas
    if st.session_state.get(DECODE_AT) is not None and DECODE_OPEN not in st.session_state:
        st.session_state[DECODE_OPEN] = True  # a link's decoded spot opens it
    with st.expander("Decode anywhere: what structure lives at a spot of the map?", icon=":material/my_location:",
                     key=DECODE_OPEN, on_change="rerun") as box:
        if not box.open:  # run only while open: the map's first paint draws none of it
            return
        if "map_decode_x" not in st.session_state:  # first open: the map's centre
            st.session_state["map_decode_x"], st.session_state["map_decode_y"] = (
                float(v) for v in np.round(coords.mean(axis=0), 3))
        st.caption("Draw a box (box select in the map's toolbar) around any spot, empty or not, or type a position. "
                   + ("PCA maps invert exactly." if method == "pca" else
                      "t-SNE has no inverse: the latent is interpolated from the nearest map points (switch the map "
                      "to PCA for an exact inverse)."))
        cols = st.columns([1, 1, 1], vertical_alignment="bottom")
        cols[0].number_input("x", format="%.3f", key="map_decode_x")
        cols[1].number_input("y", format="%.3f", key="map_decode_y")
        # a callback, run before the script: a click is not lost when another rerun (the map's, the expander's)
        # overtakes the run it started before that run reached this button (CI lost one so)
        cols[2].button("Decode here", key="map_decode_go", icon=":material/my_location:", on_click=_decode_request,
                       args=(method,))
        request = st.session_state.get(DECODE_AT)
        if request is None or request[0] != method:
            return
        found = None
        with shown_errors("Decoding the map position"):
            found = backend.decode_at(ctx.checkpoint, atlas, method, coords, request[1:], ctx.decode_mode,
                                      ctx.device)
        if found is None:
            return
        point, crystal = found
        shown = as_shown(crystal, as_decoded=False)
        st.markdown(f"**Decoded at ({request[1]:.3f}, {request[2]:.3f}): {shown.formula or 'no atoms'}**, "
                    f"{shown.num_atoms} atoms, {shown.volume_angstrom3:.1f} Å³")
        st.caption(f"Latent: {point.how}.")
        distance = backend.data_distance(atlas, point.latent)
        {"within the data": st.success, "at the data's edge": st.info}.get(distance.level, st.warning)(
            f"This spot is {distance.sentence()}.", icon=":material/radar:")
        with shown_errors("3D view"):
            structures.show_scene([viewer.Panel(shown, f"Decoded · {shown.formula or 'no atoms'}")])
        index, distance = nearest_neighbors(atlas, point.latent, k=5)
        neighbors = atlas.table.loc[index, ["id", "formula", "num_atoms"]].assign(latent_distance=distance)
        st.markdown("**Nearest dataset crystals in latent space**")
        st.dataframe(neighbors, hide_index=True, width="stretch", key="map_decode_neighbors",
                     column_config={"latent_distance": st.column_config.NumberColumn("latent distance",
                                                                                      format="%.3f")})
        if shown.num_atoms:
            structures.downloads(shown, "map_decode")


def _decode_request(method: str) -> None:
    st.session_state[DECODE_AT] = (method, float(st.session_state["map_decode_x"]),
                                   float(st.session_state["map_decode_y"]))


def _figure_colors(atlas, color_by: str, color_values, color_label, greyed) -> dict:
    """The paper figure's coloring: as the map shows it (log10 volumes, the space groups' Turbo scale)."""
    if color_values is not None:
        return {"values": color_values, "label": color_label, "categorical": False}
    column, label, kind = COLOR_OPTIONS[color_by]
    if kind == "categorical":
        return {"values": atlas.table[column].to_numpy(), "label": label, "categorical": True}
    shown = np.ones(len(atlas.table), dtype=bool) if greyed is None else ~np.asarray(greyed, dtype=bool)
    numbers, title, scale = continuous_colors(color_by, atlas.table[column], shown)
    return {"values": numbers, "label": title, "categorical": False, "colormap": scale.lower()}


def _chemiscope(atlas, coords: np.ndarray, method: str, rows) -> bytes:
    from nesf.inference.chemiscope_export import chemiscope_bytes

    maps = {"t-SNE" if method == "tsne" else "PCA": coords}
    maps.update({("t-SNE" if name == "tsne" else "PCA"): xy for name, xy in atlas.maps.items() if name != method})
    return chemiscope_bytes(atlas.crystals, atlas.table, maps, name=f"NeSF latent map of {atlas.title}",
                            description="Crystals placed by their NeSF latent vectors (NeSF Explorer).", rows=rows)


def _filters(name: str, table: pd.DataFrame, vocabulary: list[int]) -> MapFilter:
    """The filter popover: elements (all / any / none), ranges of the numeric columns, categories. Non-matching
    points are greyed on the map, not removed."""
    from pymatgen.core.periodic_table import Element

    spec_ranges, spec_categories = [], []
    with st.popover("Filters", icon=":material/filter_alt:"):
        symbols = {Element.from_Z(z).symbol: z for z in vocabulary}
        asked = st.session_state.get("map_filter_elements") or []
        if any(a not in symbols for a in asked):
            links.refuse(f"element(s) {', '.join(a for a in asked if a not in symbols)} not in {name}",
                         "map_filter_elements", [a for a in asked if a in symbols])
        chosen = st.multiselect("Elements", list(symbols), key="map_filter_elements")
        mode = st.radio("Crystals that contain", ELEMENT_MODES, horizontal=True, key="map_filter_mode",
                        format_func={"all": "all of them", "any": "any of them", "none": "none of them"}.get)
        bounds = st.session_state.setdefault(links.FILTER_BOUNDS, {})
        for column, label in RANGE_COLUMNS.items():
            values = pd.to_numeric(table.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
            if values.empty or values.min() == values.max():
                continue
            low, high, step = slider_bounds(values.to_numpy(dtype=float))
            cast = int if isinstance(step, int) else float
            bounds[column] = (low, high)
            links.linked_range(column, f"map_filter_{column}_{name}", low, high, cast, label, step)
            picked = st.slider(label, low, high, (low, high), step=step, key=f"map_filter_{column}_{name}")
            if tuple(picked) != (low, high):
                spec_ranges.append((column, picked[0], picked[1]))
        for column, label in CATEGORY_COLUMNS.items():
            if column in table.columns:
                options = sorted(table[column].astype(str).unique())
                links.linked_categories(column, f"map_filter_{column}_{name}", options, label)
                kept = st.multiselect(label, options, key=f"map_filter_{column}_{name}",
                                      placeholder="all")
                if kept:
                    spec_categories.append((column, tuple(kept)))
    return MapFilter(tuple(symbols[s] for s in chosen), mode or "all", tuple(spec_ranges), tuple(spec_categories))


def slider_bounds(values: np.ndarray) -> tuple:
    """(low, high, step) of a range filter's slider over `values`: whole numbers step by 1; other numbers by a
    power of ten about a 500th of their span, the ends widened onto that step's grid (a browser's slider moves only
    on its grid counted from its minimum: an end off the grid left the filter stuck at the full range)."""
    if np.allclose(values, np.round(values)):
        return int(values.min()), int(values.max()), 1
    step = 10.0 ** np.floor(np.log10((values.max() - values.min()) / 500))
    decimals = max(0, int(-np.log10(step)))
    low = round(float(np.floor(values.min() / step) * step), decimals)
    high = round(float(np.ceil(values.max() / step) * step), decimals)
    return low, high, round(float(step), decimals)


def _derived_color(ctx: AppContext, atlas, color_by: str, table: pd.DataFrame, fractions: np.ndarray,
                   vocabulary: list[int]):
    """(values, label) for a derived coloring (number of elements, an element's fraction, latent density, the
    reconstruction trust signal), else (None, None)."""
    if color_by not in DERIVED_COLORS:
        return None, None
    label = DERIVED_COLORS[color_by][0]
    if color_by == "reconstruction trust":
        with st.spinner("Reading the field residual of every crystal (once per model and dataset)…"):
            return backend.map_trust(ctx.checkpoint, atlas, ctx.device)
    if color_by == "local latent density":
        return backend.map_density(atlas), label
    if color_by == "number of elements":
        return table["num_elements"].to_numpy(), label
    from pymatgen.core.periodic_table import Element

    symbols = [Element.from_Z(z).symbol for z in vocabulary]
    asked = st.session_state.get("map_color_element")
    if asked is not None and asked not in symbols:
        links.refuse(f"color element {asked!r} is not among this dataset's {len(symbols)} elements; colored by "
                     f"{symbols[0]}", "map_color_element")
    symbol = st.selectbox("Element", symbols, key="map_color_element")
    return fractions[:, symbols.index(symbol)], f"atomic fraction of {symbol}"


def _map_csv(table: pd.DataFrame, coords: np.ndarray) -> str:
    """The table with each crystal's map coordinates."""
    export = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1]})
    return pd.concat([table.reset_index(drop=True), export], axis=1).to_csv(index=False)


def _selected_rows(event) -> list[int]:
    try:
        points = event.selection.points if event else []
    except AttributeError:
        points = (event or {}).get("selection", {}).get("points", [])
    rows = []
    for point in points or []:
        data = point.get("customdata")
        if data is not None:  # dataset points and search rings; uploads carry none
            try:  # the row index: a number (dataset points), or first of a list
                rows.append(int(float(data[0] if isinstance(data, (list, tuple)) else data)))
            except (TypeError, ValueError, IndexError, KeyError):
                continue
    return list(dict.fromkeys(rows))


def _placed_uploads(ctx: AppContext, coords: np.ndarray, method: str):
    with st.expander("Place your structures on the map", icon=":material/add_location:", key=PLACE_OPEN,
                     on_change="rerun") as box:
        if not box.open:  # run only while open: the map's first paint draws none of it
            return None
        picked = inputs.upload_structures("map_upload", label="Structure files to place")
        if not picked:
            return None
        good = inputs.fitting(ctx, picked, "map")
        if not good:
            return None
        with shown_errors("Placing the uploads"):
            latents = np.stack([p.frame.latent for p in good])  # refined unless the sidebar says otherwise
            xy = project_new(ctx.atlas, latents, method, coords=coords)
            signals = backend.trust(ctx.checkpoint, [p.frame for p in good], ctx.device)
            rows = []
            for item, latent, (x, y), signal in zip(good, latents, xy, signals):
                index, _ = nearest_neighbors(ctx.atlas, latent, k=3)
                near = ", ".join(f"{ctx.atlas.table.at[int(i), 'id']} ({ctx.atlas.table.at[int(i), 'formula']})"
                                 for i in index)
                rows.append({"file": item.source, "formula": item.crystal.formula, "x": x, "y": y,
                             "nearest in latent space": near, "trust": structures.trust_cell(signal)})
            table = pd.DataFrame(rows)
            st.dataframe(table, hide_index=True, width="stretch")
            return table
    return None


def _selection_grid(ctx: AppContext, rows: list[int]) -> None:
    """Up to GRID_SIZE selected crystals seen together: input and reconstruction of each in one scene with a shared
    camera, their per-crystal metrics, and any two sent to Interpolate in one click."""
    atlas = ctx.atlas
    shown = rows[:GRID_SIZE]
    crystals = [atlas.crystals[r] for r in shown]
    recons = None
    with shown_errors("Reconstructions"):
        recons = backend.reconstruct(ctx.checkpoint, crystals, ctx.decode_mode, ctx.device)
    if recons is None:
        return
    panels = []
    for row, crystal, recon in zip(shown, crystals, recons):
        shown_recon = as_shown(recon, as_decoded=False)
        panels += [viewer.Panel(crystal, f"{atlas.table.at[row, 'id']} · {crystal.formula}"),
                   viewer.Panel(shown_recon, f"reconstruction · {shown_recon.formula or 'no atoms'}")]
    with shown_errors("3D view"):
        structures.show_scene(panels, height=230, columns=6)
    metrics = []
    for row, crystal, recon in zip(shown, crystals, recons):
        values = structures.per_structure_metrics(crystal, recon)
        metrics.append({"id": atlas.table.at[row, "id"], "formula": crystal.formula,
                        "atoms (input → recon.)": f"{values['num_atoms_true']} → {values['num_atoms_pred']}",
                        "position error (Å)": values["position_error_actual_angstrom"],
                        "match": bool(values["match"])})
    st.dataframe(pd.DataFrame(metrics), hide_index=True, width="stretch", key="map_grid_metrics",
                 column_config={"position error (Å)": st.column_config.NumberColumn(format="%.3f")})
    labels = {r: f"{atlas.table.at[r, 'id']} · {atlas.table.at[r, 'formula']}" for r in shown}
    pair = st.multiselect("Interpolate between two of them", shown, format_func=labels.get, max_selections=2,
                          select_all=False, key="map_grid_pair")  # "Select all" of a pick of two: never
    if st.button("Interpolate", key="map_grid_interpolate", icon=":material/timeline:", disabled=len(pair) != 2):
        state.use_for_interpolation_pair(pair[0], pair[1])


# the selection table's headers in words, with units (the atlas's column names stay in the CSV and Chemiscope exports)
SELECTION_COLUMNS = {
    "num_atoms": st.column_config.NumberColumn("atoms"),
    "volume_angstrom3": st.column_config.NumberColumn("volume (Å³)", format="%.1f"),
    "spacegroup_number": st.column_config.NumberColumn("space group", format="%d"),
    "spacegroup_symbol": st.column_config.TextColumn("symbol"),
    "crystal_system": st.column_config.TextColumn("crystal system"),
    "reconstruction_error_angstrom": st.column_config.TextColumn(
        "recon. error (Å)", help="Position error of its reconstruction, measured when the atlas was built: the "
                                "test split's crystals only unless the atlas was built with `--errors all`"),
}


def selection_table(table: pd.DataFrame) -> pd.DataFrame:
    """The selected crystals' rows as the panel shows them: a reconstruction error that was not measured reads
    ABSENT ("–"), not "None"."""
    shown = table.copy()
    if "reconstruction_error_angstrom" in shown:
        shown["reconstruction_error_angstrom"] = [  # text: one column type for numbers and ABSENT
            str(shown_value("reconstruction_error_angstrom", v)) for v in shown["reconstruction_error_angstrom"]]
    return shown


def _selection_panel(ctx: AppContext, rows: list[int]) -> None:
    atlas = ctx.atlas
    st.subheader(f"{len(rows)} selected")
    st.dataframe(selection_table(atlas.table.loc[rows]), hide_index=True, width="stretch",
                 height=min(300, 38 + 35 * len(rows)), column_config=SELECTION_COLUMNS)
    if len(rows) > 1:
        # drawn only while open (its nine reconstructions and eighteen 3D viewers cost seconds a selection); the
        # user's choice stays for the next selection
        with st.expander(f"See {min(len(rows), GRID_SIZE)} of them together", icon=":material/grid_view:",
                         key=GRID_OPEN, on_change="rerun") as grid:
            if grid.open:
                _selection_grid(ctx, rows)
    shown_rows = rows[:MAX_SHOWN]
    if len(rows) > MAX_SHOWN:
        st.caption(f"The first {MAX_SHOWN} can be opened below.")
    labels = {r: f"{atlas.table.at[r, 'id']} · {atlas.table.at[r, 'formula']}" for r in shown_rows}
    row = st.selectbox("Open", shown_rows, format_func=labels.get, key="map_open")
    crystal = atlas.crystals[row]
    recon = None
    with shown_errors("Reconstruction"):
        recon = backend.reconstruct(ctx.checkpoint, [crystal], ctx.decode_mode, ctx.device)[0]
    if recon is None:
        return
    supercell, style, as_decoded = structures.viewer_options("map")
    shown = as_shown(recon, as_decoded=as_decoded)
    with shown_errors("3D view"):
        structures.show_scene(structures.comparison_panels(crystal, shown, "map"), supercell=supercell, style=style)
    with shown_errors("Metrics"):
        structures.metrics_row(structures.per_structure_metrics(crystal, recon))
    st.markdown("**Reconstruction as a file**")
    structures.downloads(shown, "map_recon", prefix="recon-")

    st.markdown("**Nearest neighbors in the 192-d latent space**")
    index, distance = nearest_neighbors(atlas, atlas.latents[row], k=6)
    neighbors = atlas.table.loc[index, ["id", "formula", "num_atoms"] +
                                     [c for c in ("spacegroup_symbol", "crystal_system") if c in atlas.table]]
    neighbors = neighbors.assign(latent_distance=distance)
    neighbors = neighbors[neighbors.index != row].head(5)
    st.dataframe(neighbors, hide_index=True, width="stretch",
                 column_config={"latent_distance": st.column_config.NumberColumn("latent distance", format="%.3f")})
    cols = st.columns(2)
    if cols[0].button("Use as interpolation source", key="map_to_src", icon=":material/start:"):
        state.use_for_interpolation("src", row)
    if cols[1].button("Use as interpolation destination", key="map_to_dst", icon=":material/flag:"):
        state.use_for_interpolation("dst", row)


def _outside_view_note(table, view) -> None:
    """Name the crystals the map's first view (`app.ui.latent_plot.map_view`) leaves out: far from all others."""
    outside = view.outside
    if not len(outside):
        return
    names = ", ".join(f"{table['id'].iloc[i]} ({table['formula'].iloc[i]})" for i in outside[:5])
    more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
    st.caption(f"{len(outside)} crystal{'s lie' if len(outside) > 1 else ' lies'} outside this view, far from all "
               f"others: {names}{more}. The chart's Autoscale button shows {'them' if len(outside) > 1 else 'it'}.")
