"""The latent map figure (plotly): one point per crystal, colored by an attribute, with hover id/formula/SG."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go

# attribute -> (table column, label, kind)
COLOR_OPTIONS = {
    "volume": ("volume_angstrom3", "cell volume (Å³)", "continuous"),
    "atoms": ("num_atoms", "atoms in the cell", "continuous"),
    "space group": ("spacegroup_number", "space group number", "continuous"),
    "crystal system": ("crystal_system", "crystal system", "categorical"),
    "split": ("split", "split", "categorical"),
    "reconstruction error": ("reconstruction_error_angstrom", "reconstruction error (Å)", "continuous"),
}
SYSTEM_ORDER = ["triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic"]


# colorings computed from the crystals and latents (app.backend.derived_colors), not stored in the table
DERIVED_COLORS = {
    "number of elements": ("number of elements", "continuous"),
    "element fraction": ("atomic fraction of the element", "continuous"),
    "local latent density": ("local latent density (1 / mean distance to 10 nearest)", "continuous"),
    "reconstruction trust": ("expected match rate from the field residual (%)", "continuous"),
}


def available_colors(table: pd.DataFrame) -> list[str]:
    stored = [name for name, (column, _, _) in COLOR_OPTIONS.items() if column in table.columns]
    return stored + list(DERIVED_COLORS)


HOVER = "%{text}<extra></extra>"
SHOWN_OPACITY = 0.8
GREYED_OPACITY = 0.5
GREYED = "#d4d4d4"     # the color of points a filter greys
GREY_BAND = 0.002      # the foot of a greyed map's colorscale that draws them
UNCOLORED = "#b8b8b8"


def map_hover(table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """What each point carries, built once per atlas (`app.backend.map_hover`): (N,) int32 customdata, its row
    index (for selections; one number per point, since plotly.js hands a 2-D typed array's rows to selection events
    as typed arrays, which do not survive JSON), and (N,) hover text (id, formula, space group, atoms, volume)."""
    n = len(table)
    column = lambda name, default: table[name] if name in table.columns else pd.Series([default] * n)  # noqa: E731
    number = pd.to_numeric(column("spacegroup_number", 0), errors="coerce").fillna(0).astype(int)
    volume = pd.to_numeric(column("volume_angstrom3", np.nan), errors="coerce")
    text = ("<b>" + table["id"].astype(str) + "</b> " + table["formula"].astype(str) + "<br>"
            + column("spacegroup_symbol", "").astype(str) + " (" + number.astype(str) + ")<br>"
            + table["num_atoms"].astype(str) + " atoms · " + volume.map("{:.1f}".format) + " Å³").tolist()
    return np.arange(n, dtype=np.int32), text


def continuous_colors(color_by: str, values, shown: np.ndarray) -> tuple[np.ndarray, str, str]:
    """A numeric coloring as the map draws it, for the screen and the figure exports alike: (numbers, colorbar
    title, Plotly colorscale name). Volumes are drawn as log10 where every shown one is positive."""
    _, label, _ = COLOR_OPTIONS[color_by]
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
    scale = "Turbo" if color_by == "space group" else "Viridis"
    if color_by == "volume" and bool((numbers[shown] > 0).all()):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(numbers), "log10 " + label, scale
    return numbers, label, scale


def missing_color_note(table: pd.DataFrame, color_by: str | None) -> str | None:
    """Where a table coloring has no value for some crystals (drawn grey), a sentence saying how many and why; None
    where every crystal has one."""
    if color_by not in COLOR_OPTIONS or COLOR_OPTIONS[color_by][2] != "continuous":
        return None
    column, label, _ = COLOR_OPTIONS[color_by]
    if column not in table.columns:
        return None
    present = np.isfinite(pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64))
    missing = int((~present).sum())
    if not missing:
        return None
    note = f"{missing:,} of {len(table):,} crystals have no {label} and are drawn grey"
    if column == "reconstruction_error_angstrom" and "split" in table.columns:
        splits = sorted(set(table.loc[present, "split"].astype(str)))
        note += (f": the atlas measured it for the {' and '.join(splits)} split{'s' if len(splits) > 1 else ''} only "
                 f"(decoding every crystal is slow; `nesf atlas --errors all` measures all)" if splits else
                 ": the atlas measured none (`nesf atlas --errors test` or `all` measures them)")
    return note


def base_map_figure(atlas, coords: np.ndarray, *, color_by: str | None = "volume", height: int = 600,
                    highlight: np.ndarray | None = None, greyed: np.ndarray | None = None,
                    color_values: np.ndarray | None = None, color_label: str | None = None,
                    hover: tuple[np.ndarray, list[str]] | None = None, view: "MapView | None" = None) -> go.Figure:
    """The map (WebGL). Points carry customdata (their row index, for selections) and hover text (`map_hover`,
    pass the atlas's memoized one: nothing is then done point by point in Python); highlighted rows follow as
    rings. `color_values` (N,) colors by a derived quantity (labelled `color_label`) instead of a table column.
    `view`: the first view (`map_view(coords)`, computed here when not given: a page that also names the points
    outside it passes the one it computed).

    Every point is in one trace, in table order, whatever the coloring or filter: greyed rows (a filter's
    non-matching ones) differ from shown ones by style alone (a light grey and GREYED_OPACITY: `_grey_out`), so a
    recolor or a filter changes the colors and opacities and nothing else, and the map's
    chart (`app.ui.map_chart`) sends the points once. Greyed rows stay hoverable; selections leave them out
    (`selectable_rows`). The figure is built unvalidated from plain arrays (float32): a 100,000-point map in ~0.1 s."""
    table = atlas.table
    coords = np.asarray(coords, dtype=np.float32)
    customdata, text = hover if hover is not None else map_hover(table)
    shown = np.ones(len(table), dtype=bool) if greyed is None else ~np.asarray(greyed, dtype=bool)
    marker = dict(size=5, opacity=SHOWN_OPACITY)
    if color_by is None:
        numbers = np.zeros(len(table), dtype=np.float32)
        marker.update(colorscale=[[0, UNCOLORED], [1, UNCOLORED]], cmin=0, cmax=1, showscale=False)
    elif color_values is not None:
        numbers = np.asarray(color_values, dtype=np.float32)
        marker.update(colorscale="Viridis", showscale=True, **_range(numbers[shown]),
                      colorbar=dict(title=dict(text=color_label or color_by, side="right"), thickness=14))
    else:
        column, label, kind = COLOR_OPTIONS[color_by]
        values = table[column]
        if kind == "continuous":
            numbers, title, scale = continuous_colors(color_by, values, shown)
            numbers = numbers.astype(np.float32)
            marker.update(colorscale=scale, showscale=True, **_range(numbers[shown]),
                          colorbar=dict(title=dict(text=title, side="right"), thickness=14))
        else:
            names = values.astype(str)
            present = set(names[shown].unique())
            categories = [c for c in SYSTEM_ORDER if c in present] + sorted(present - set(SYSTEM_ORDER))
            numbers = names.map({c: i for i, c in enumerate(categories)}).to_numpy(dtype=np.float32)
            palette = plotly.colors.qualitative.Plotly
            n = max(1, len(categories))
            colorscale = []
            for i, _ in enumerate(categories):
                color = palette[i % len(palette)]
                colorscale += [[i / n, color], [(i + 1) / n, color]]
            marker.update(colorscale=colorscale or "Viridis", cmin=-0.5 if n == 1 else 0,
                          cmax=n if n > 1 else 0.5, showscale=True,
                          colorbar=dict(title=dict(text=label, side="right"), thickness=14,
                                        tickvals=[i + 0.5 for i in range(n)], ticktext=categories))
    if not shown.all():
        numbers = _grey_out(marker, numbers, shown)
        marker["opacity"] = np.where(shown, SHOWN_OPACITY, GREYED_OPACITY).astype(np.float32)
    marker["color"] = numbers
    traces = [dict(type="scattergl", x=coords[:, 0], y=coords[:, 1], mode="markers", marker=marker,
                   name="dataset", customdata=customdata, text=text, hovertemplate=HOVER, showlegend=False)]
    if highlight is not None and len(highlight):
        idx = np.asarray(highlight, dtype=int)
        traces.append(dict(type="scattergl", x=coords[idx, 0], y=coords[idx, 1], mode="markers",
                           name="search matches",
                           marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(width=2.5, color="#e4002b")),
                           customdata=customdata[idx], text=[text[i] for i in idx], hovertemplate=HOVER))
    layout = dict(
        height=height, margin=dict(l=0, r=0, t=10, b=0), template="plotly_white", dragmode="lasso",
        xaxis=dict(showticklabels=False, title=None, zeroline=False, showgrid=False),
        yaxis=dict(showticklabels=False, title=None, zeroline=False, showgrid=False, scaleanchor="x"),
        legend=dict(orientation="h", y=1.02, x=0), hoverlabel=dict(bgcolor="white"),
    )
    frame = view if view is not None else map_view(coords)
    if frame.ranges is not None:
        layout["xaxis"]["range"], layout["yaxis"]["range"] = (list(axis) for axis in frame.ranges)
    return go.Figure(data=traces, layout=layout, _validate=False)


@dataclass(frozen=True)
class MapView:
    """The map's first view: `ranges` ((x0, x1), (y0, y1)) framing all points but the far ones (None: plotly's own
    autorange frames them all), and `outside` the rows left out of the view."""
    ranges: tuple | None
    outside: np.ndarray


VIEW_MARGIN = 0.05  # of the framed extent, on each side


def map_view(coords: np.ndarray) -> MapView:
    """Frame the points that are not far from all others (`nesf.inference.latent_outliers.inlier_mask` on the map
    coordinates): on LCS6A's PCA map two one-atom O cells lie 350 units from the median point and a one-atom C cell
    72, where every other crystal is within 12, and framing them drew 6,002 crystals in a corner. The rows outside
    the frame are returned for the page to name."""
    from nesf.inference.latent_outliers import inlier_mask

    coords = np.asarray(coords, dtype=np.float64)
    if len(coords) < 3 or not np.isfinite(coords).all():
        return MapView(None, np.zeros(0, dtype=int))
    inside = inlier_mask(coords)
    if inside.all() or not inside.any():
        return MapView(None, np.zeros(0, dtype=int))
    low, high = coords[inside].min(axis=0), coords[inside].max(axis=0)
    pad = VIEW_MARGIN * np.maximum(high - low, 1e-9)
    low, high = low - pad, high + pad
    outside = np.flatnonzero(((coords < low) | (coords > high)).any(axis=1))
    return MapView(((float(low[0]), float(high[0])), (float(low[1]), float(high[1]))), outside)


def selectable_rows(rows: list[int], greyed: np.ndarray | None) -> list[int]:
    """The rows of a selection that a filter does not grey (greyed points are drawn, not selectable)."""
    if greyed is None:
        return rows
    greyed = np.asarray(greyed, dtype=bool)
    return [r for r in rows if 0 <= r < len(greyed) and not greyed[r]]


def _grey_out(marker: dict, numbers: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """`numbers` with the rows not `shown` set just below the shown ones' color range, and `marker`'s colorscale given
    a GREY_BAND of GREYED color at its foot for them (too thin to see on the colorbar): the greyed points are drawn
    in the same trace, light grey, whatever the coloring."""
    finite = numbers[shown][np.isfinite(numbers[shown])]
    low = float(marker.get("cmin", finite.min() if len(finite) else 0.0))
    high = float(marker.get("cmax", finite.max() if len(finite) else 1.0))
    span = high - low if high > low else 1.0
    below = low - span * GREY_BAND / (1 - GREY_BAND)
    scale = marker.get("colorscale")
    stops = plotly.colors.get_colorscale(scale) if isinstance(scale, str) else scale
    marker.update(cmin=below, cmax=high, colorscale=[[0, GREYED], [GREY_BAND, GREYED]] + [
        [GREY_BAND + (1 - GREY_BAND) * float(position), color] for position, color in stops])
    return np.where(shown, numbers, below).astype(np.float32)


def _range(numbers: np.ndarray) -> dict:
    """cmin / cmax of the shown points' finite values (none: let plotly.js choose)."""
    finite = numbers[np.isfinite(numbers)]
    return dict(cmin=float(finite.min()), cmax=float(finite.max())) if len(finite) else {}
