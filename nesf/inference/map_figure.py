"""The latent map as a figure for a paper: SVG (vector) or PNG at a chosen resolution (300 dpi by default), drawn
with matplotlib on the server, as the app shows it: colored by a value or a category, a filter's non-matching points
greyed underneath, highlighted points ringed."""

from __future__ import annotations

import io

import numpy as np

from nesf.core.errors import NesfError

FORMATS = ("svg", "png")
WIDTH_INCHES, HEIGHT_INCHES = 6.0, 5.0


def map_figure_bytes(coords: np.ndarray, *, values=None, label: str = "", categorical: bool = False,
                     greyed: np.ndarray | None = None, highlight=None, title: str = "", fmt: str = "svg",
                     dpi: int = 300, colormap: str = "viridis") -> bytes:
    """The map as `fmt` ("svg" or "png") bytes. `values` (N,) numbers (drawn with matplotlib's `colormap`) or
    categories (`categorical`), `greyed` (N,) bool, `highlight` row indices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if fmt not in FORMATS:
        raise NesfError(f"unknown figure format {fmt!r}; use svg or png")
    coords = np.asarray(coords, dtype=float)
    shown = np.ones(len(coords), dtype=bool) if greyed is None else ~np.asarray(greyed, dtype=bool)
    fig, ax = plt.subplots(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=dpi)
    try:
        if (~shown).any():
            ax.scatter(coords[~shown, 0], coords[~shown, 1], s=3, c="#dcdcdc", linewidths=0, rasterized=False)
        if values is None:
            ax.scatter(coords[shown, 0], coords[shown, 1], s=4, c="#7f7f7f", linewidths=0)
        elif categorical:
            values = np.asarray(values).astype(str)
            for category in sorted(set(values[shown])):
                rows = shown & (values == category)
                ax.scatter(coords[rows, 0], coords[rows, 1], s=4, linewidths=0, label=category)
            ax.legend(title=label or None, fontsize=7, title_fontsize=8, markerscale=3, frameon=False,
                      loc="center left", bbox_to_anchor=(1.0, 0.5))
        else:
            numbers = np.asarray(values, dtype=float)
            points = ax.scatter(coords[shown, 0], coords[shown, 1], s=4, c=numbers[shown], cmap=colormap,
                                linewidths=0)
            fig.colorbar(points, ax=ax, label=label, shrink=0.8)
        if highlight is not None and len(highlight):
            rows = np.asarray(highlight, dtype=int)
            ax.scatter(coords[rows, 0], coords[rows, 1], s=40, facecolors="none", edgecolors="#e4002b",
                       linewidths=1.2)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if title:
            ax.set_title(title, fontsize=9)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=None if fmt == "png" else {"Date": None})
        return buffer.getvalue()
    finally:
        plt.close(fig)
