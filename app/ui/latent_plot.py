"""The latent map figure (plotly): one point per crystal, colored by an attribute, with hover id/formula/SG."""

from __future__ import annotations

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


def base_map_figure(collection, coords: np.ndarray, *, color_by: str | None = "volume", height: int = 600,
                    highlight: np.ndarray | None = None, greyed: np.ndarray | None = None,
                    color_values: np.ndarray | None = None, color_label: str | None = None) -> go.Figure:
    """The map. Points carry customdata (row index first, for selections); greyed rows (a filter's non-matching
    ones) are drawn first in grey without customdata, so they cannot be selected; highlighted rows follow as rings.
    `color_values` (N,) colors by a derived quantity (labelled `color_label`) instead of a table column."""
    table = collection.table
    coords = np.asarray(coords)
    hover = (
        "<b>%{customdata[1]}</b> %{customdata[2]}<br>%{customdata[3]}"
        "<br>%{customdata[4]} atoms · %{customdata[5]:.1f} Å³<extra></extra>"
    )
    sg = table.get("spacegroup_symbol", pd.Series([""] * len(table))).astype(str)
    sg_number = table.get("spacegroup_number", pd.Series([0] * len(table)))
    customdata = np.column_stack([
        np.arange(len(table)), table["id"].astype(str), table["formula"].astype(str),
        [f"{s} ({n})" for s, n in zip(sg, sg_number)], table["num_atoms"],
        table.get("volume_angstrom3", pd.Series([np.nan] * len(table))),
    ])
    shown = np.ones(len(table), dtype=bool) if greyed is None else ~np.asarray(greyed, dtype=bool)
    marker = dict(size=5, opacity=0.8)
    if color_by is None:
        marker.update(color="#b8b8b8")
    elif color_values is not None:
        numbers = np.asarray(color_values, dtype=float)[shown]
        marker.update(color=numbers, colorscale="Viridis", showscale=True,
                      colorbar=dict(title=dict(text=color_label or color_by, side="right"), thickness=14))
    else:
        column, label, kind = COLOR_OPTIONS[color_by]
        values = table[column][shown]
        if kind == "continuous":
            numbers = pd.to_numeric(values, errors="coerce")
            scale = "Viridis" if color_by != "space group" else "Turbo"
            use_log = color_by == "volume" and (numbers > 0).all()
            marker.update(color=np.log10(numbers) if use_log else numbers, colorscale=scale, showscale=True,
                          colorbar=dict(title=dict(text=("log10 " if use_log else "") + label, side="right"),
                                        thickness=14))
        else:
            categories = [c for c in SYSTEM_ORDER if c in set(values)] + sorted(set(values.astype(str)) - set(SYSTEM_ORDER))
            codes = values.astype(str).map({c: i for i, c in enumerate(categories)}).to_numpy(dtype=float)
            palette = plotly.colors.qualitative.Plotly
            n = max(1, len(categories))
            colorscale = []
            for i, _ in enumerate(categories):
                color = palette[i % len(palette)]
                colorscale += [[i / n, color], [(i + 1) / n, color]]
            marker.update(color=codes, colorscale=colorscale or "Viridis", cmin=-0.5 if n == 1 else 0,
                          cmax=n if n > 1 else 0.5, showscale=True,
                          colorbar=dict(title=dict(text=label, side="right"), thickness=14,
                                        tickvals=[i + 0.5 for i in range(n)], ticktext=categories))
    fig = go.Figure()
    if not shown.all():
        fig.add_trace(go.Scattergl(x=coords[~shown, 0], y=coords[~shown, 1], mode="markers", name="filtered out",
                                   marker=dict(size=4, color="#dcdcdc", opacity=0.6), hoverinfo="skip",
                                   showlegend=False))
    fig.add_trace(go.Scattergl(x=coords[shown, 0], y=coords[shown, 1], mode="markers", marker=marker, name="dataset",
                               customdata=customdata[shown], hovertemplate=hover, showlegend=False))
    if highlight is not None and len(highlight):
        idx = np.asarray(highlight, dtype=int)
        fig.add_trace(go.Scattergl(
            x=coords[idx, 0], y=coords[idx, 1], mode="markers", name="search matches",
            marker=dict(size=13, color="rgba(0,0,0,0)", line=dict(width=2.5, color="#e4002b")),
            customdata=customdata[idx], hovertemplate=hover,
        ))
    fig.update_layout(
        height=height, margin=dict(l=0, r=0, t=10, b=0), template="plotly_white", dragmode="lasso",
        xaxis=dict(showticklabels=False, title=None, zeroline=False, showgrid=False),
        yaxis=dict(showticklabels=False, title=None, zeroline=False, showgrid=False, scaleanchor="x"),
        legend=dict(orientation="h", y=1.02, x=0), hoverlabel=dict(bgcolor="white"),
    )
    return fig
