"""Crystal -> self-contained HTML of a 3Dmol.js scene (no Streamlit here: rendering is kept apart from the UI).

One scene holds one or more panels side by side in a single 3Dmol viewer grid whose cameras are linked (rotate one,
the others follow). Each panel draws the unit cell, colors atoms by element (Jmol colors, with a legend under the
canvas), can repeat the cell (supercell) and shows element and coordinates on hover.

3Dmol.js is loaded from `js_url`, by default the copy the app serves itself (`/app/static/3Dmol-min.js`), never a
CDN: the app works offline.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass

import numpy as np
import py3Dmol

from app import elements
from app.settings import THREEDMOL_JS_URL

STYLES = ("ball and stick", "spheres")


OVERLAY_OPACITY = 0.35
WRAP_ANGSTROM = 0.1   # an atom this close below a cell's far face is drawn at its near face (see crystal_to_cif)


@dataclass(frozen=True)
class Panel:
    """One structure to draw: any object with `lattice` (3, 3) rows in Angstrom, `frac_coords` (N, 3), `species`."""

    crystal: object
    title: str = ""
    overlay: object = None   # a second structure drawn in the same panel, translucent (the input under its
                             # reconstruction), in its own cell's coordinates (both in the canonical frame)


def crystal_to_cif(crystal, name: str = "structure") -> str:
    """A minimal P1 CIF (cell parameters and fractional coordinates) that 3Dmol.js' CIF parser reads.

    Fractional coordinates are wrapped into the cell, so a reconstruction with atoms just outside the cell shows
    them inside it; an atom within WRAP_ANGSTROM below a far face (x = 0.998) is drawn at the near one (x = -0.002),
    where the input's atom on the face (x = 0) is drawn, so input and reconstruction show the same picture.
    """
    lattice = np.asarray(crystal.lattice, dtype=float)
    lengths = np.linalg.norm(lattice, axis=1)
    a, b, c = lattice

    def angle(u, v):
        return float(np.degrees(np.arccos(np.clip(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)), -1, 1))))

    alpha, beta, gamma = angle(b, c), angle(a, c), angle(a, b)
    frac = np.asarray(crystal.frac_coords, dtype=float).reshape(-1, 3)
    near_face = np.minimum(WRAP_ANGSTROM / np.maximum(lengths, 1e-9), 0.05)
    frac = frac - np.floor(frac + np.maximum(near_face, 1e-6))
    safe_name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(name)) or "structure"
    lines = [
        f"data_{safe_name}",
        "_symmetry_space_group_name_H-M 'P 1'",
        "_symmetry_Int_Tables_number 1",
        f"_cell_length_a {lengths[0]:.6f}",
        f"_cell_length_b {lengths[1]:.6f}",
        f"_cell_length_c {lengths[2]:.6f}",
        f"_cell_angle_alpha {alpha:.6f}",
        f"_cell_angle_beta {beta:.6f}",
        f"_cell_angle_gamma {gamma:.6f}",
        "loop_",
        "_atom_site_label",
        "_atom_site_type_symbol",
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
    ]
    for i, (z, (x, y, w)) in enumerate(zip(np.asarray(crystal.species).reshape(-1), frac)):
        symbol = elements.symbol(int(z))
        lines.append(f"{symbol}{i + 1} {symbol} {x:.6f} {y:.6f} {w:.6f}")
    return "\n".join(lines) + "\n"


_HOVER_JS = """function(atom, viewer, event, container) {
  if (!atom.label) {
    var text = atom.elem + '  x=' + atom.x.toFixed(2) + ' y=' + atom.y.toFixed(2) + ' z=' + atom.z.toFixed(2) + ' \u00c5';
    atom.label = viewer.addLabel(text, {position: atom, backgroundColor: '#222', backgroundOpacity: 0.85,
                                        fontColor: 'white', fontSize: 12, inFront: true});
  }
}"""
_UNHOVER_JS = """function(atom, viewer) {
  if (atom.label) { viewer.removeLabel(atom.label); delete atom.label; }
}"""


def _draw_empty_cell(view, lattice: np.ndarray, where) -> None:
    corners = [np.array([i, j, k], dtype=float) @ lattice for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    for p in range(8):
        for q in range(p + 1, 8):
            if bin(p ^ q).count("1") == 1:  # corners that differ along one axis share an edge
                start, end = corners[p], corners[q]
                view.addLine({"start": dict(zip("xyz", map(float, start))), "end": dict(zip("xyz", map(float, end))),
                              "color": "#555555"}, viewer=where)
    center = corners[7] / 2
    view.addLabel("no atoms decoded", {"position": dict(zip("xyz", map(float, center))), "fontColor": "black",
                                       "backgroundColor": "#ffe7a3", "fontSize": 13}, viewer=where)


def legend_species(crystals) -> list[int]:
    """Sorted atomic numbers present in any of `crystals`."""
    present = set()
    for crystal in crystals:
        present.update(int(z) for z in np.asarray(crystal.species).reshape(-1))
    return sorted(present)


def _legend_html(species: list[int]) -> str:
    chips = []
    for z in species:
        symbol = elements.symbol(z)
        chips.append(
            f'<span class="chip"><span class="dot" style="background:{elements.color(z)}"></span>{symbol}</span>'
        )
    return '<div class="legend" data-testid="element-legend">' + "".join(chips) + "</div>"


def _png_button(scene_id: str, png_name: str) -> str:
    """A button that downloads the scene's canvas (all panels of the grid share it) as `<png_name>.png`."""
    safe = "".join(ch if ch.isalnum() or ch in "-_()." else "_" for ch in str(png_name)) or "structure"
    script = (f"var v=window['viewer_{scene_id}'];if(!v)return;v.render();var a=document.createElement('a');"
              f"a.href=v.pngURI();a.download='{safe}.png';document.body.appendChild(a);a.click();a.remove();")
    return (f'<button type="button" class="png" data-testid="viewer-png" title="the view as shown, as a PNG image" '
            f'onclick="(function(){{{script}}})()">Save PNG</button>')


def _share_one_view(body: str, scene_id: str, panels: list[Panel], columns: int) -> str:
    """The scene's script with every panel given the view (centre and zoom) of the panel whose cell is largest, so
    input and reconstruction are drawn at one origin and one scale (each panel's own zoomTo framed its own atoms,
    so a slightly larger reconstruction looked smaller and shifted)."""
    def extent(panel):
        lattice = np.asarray(panel.crystal.lattice, dtype=float).reshape(3, 3)
        return float(np.linalg.norm(lattice.sum(axis=0)))

    largest = max(range(len(panels)), key=lambda i: extent(panels[i]))
    row, col = largest // columns, largest % columns
    grid = f"viewergrid_{scene_id}"
    script = (f"(function(g){{var v=g[{row}][{col}].getView();g.forEach(function(r){{r.forEach(function(w){{"
              f"w.setView(v);w.render();}});}});}})({grid});\n")
    end = body.rfind("});")
    return body[:end] + script + body[end:] if end >= 0 else body


# Viewer options chosen in the browser: on a software WebGL renderer (SwiftShader, llvmpipe: a browser without GPU
# acceleration) no antialiasing, whose pass renders every viewer at twice its size and compiles a 12 kB FXAA shader
# for each: 2.6 s -> 1.0-1.7 s for a two-panel scene on 2 cores (BENCHMARKS.md, "Selection to panel and first
# paint, cut"). The renderer is read once a browser tab (a throwaway WebGL context) and kept in its sessionStorage.
RENDERER_OPTIONS_JS = """<script>
function nesfViewerOptions() {
  var key = 'nesf.softwareWebGL', soft = null;
  try { soft = window.sessionStorage.getItem(key); } catch (e) {}
  if (soft === null) {
    soft = 'false';
    try {
      var gl = document.createElement('canvas').getContext('webgl');
      if (gl) {
        var info = gl.getExtension('WEBGL_debug_renderer_info');
        var name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
        soft = String(/swiftshader|llvmpipe|softpipe|software|basic render/i.test(name));
        var lose = gl.getExtension('WEBGL_lose_context');
        if (lose) lose.loseContext();
      }
    } catch (e) {}
    try { window.sessionStorage.setItem(key, soft); } catch (e) {}
  }
  return soft === 'true' ? {antialias: false} : {};
}
</script>"""
VIEWER_OPTIONS = '{backgroundColor:"white"}'


def _with_renderer_options(body: str) -> str:
    """py3Dmol's viewer (grid) creation given `nesfViewerOptions()` (RENDERER_OPTIONS_JS) beside its background."""
    if VIEWER_OPTIONS not in body:  # another py3Dmol: leave its defaults
        return body
    return RENDERER_OPTIONS_JS + body.replace(VIEWER_OPTIONS, f"Object.assign({VIEWER_OPTIONS}, nesfViewerOptions())")


def scene_html(
    panels: list[Panel],
    *,
    height: int = 380,
    supercell: tuple[int, int, int] = (1, 1, 1),
    style: str = "ball and stick",
    js_url: str = THREEDMOL_JS_URL,
    columns: int | None = None,
    png_name: str = "structure",
) -> str:
    """HTML (a div, scripts, a legend and a "Save PNG" button) drawing `panels` side by side with one shared camera.

    height: canvas height in pixels (of each row); supercell: repeats of the cell along a, b, c (1..4 each);
    style: one of STYLES; columns: panels per row (default: all in one row), the rest in further rows of one grid
    with the same shared camera, each title over its panel; png_name: file name (without .png) of the button's
    download, the scene as shown (current camera, canvas resolution times the screen's pixel ratio).
    """
    if not panels:
        raise ValueError("scene_html needs at least one panel")
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    reps = tuple(int(n) for n in supercell)
    if len(reps) != 3 or any(n < 1 or n > 4 for n in reps):
        raise ValueError(f"supercell repeats must be three integers in 1..4, got {supercell!r}")

    columns = len(panels) if columns is None else max(1, min(int(columns), len(panels)))
    rows = -(-len(panels) // columns)
    view = py3Dmol.view(width="100%", height=height * rows, viewergrid=(rows, columns), linked=True, js=js_url)
    for index, panel in enumerate(panels):
        where = (index // columns, index % columns)
        col = index
        crystal = panel.crystal
        if np.asarray(crystal.species).size == 0:
            # 3Dmol.js cannot parse a CIF without atoms: draw the cell edges and say so
            _draw_empty_cell(view, np.asarray(crystal.lattice, dtype=float), where)
            view.zoomTo(viewer=where)
            continue
        view.addModel(crystal_to_cif(crystal, getattr(crystal, "id", "") or f"panel{col}"), "cif", viewer=where)
        if panel.overlay is not None and np.asarray(panel.overlay.species).size:
            view.addModel(crystal_to_cif(panel.overlay, "overlay"), "cif", viewer=where)
        for z in legend_species([crystal] + ([panel.overlay] if panel.overlay is not None else [])):
            color = elements.color(z)
            if style == "spheres":
                atom_style = {"sphere": {"scale": 0.45, "color": color}}
            else:
                atom_style = {"sphere": {"scale": 0.28, "color": color}, "stick": {"radius": 0.12, "color": color}}
            view.setStyle({"model": 0, "elem": elements.symbol(z)}, atom_style, viewer=where)
            if panel.overlay is not None:  # the other structure: larger, translucent spheres around the solid ones
                view.setStyle({"model": 1, "elem": elements.symbol(z)},
                              {"sphere": {"scale": 0.5, "color": color, "opacity": OVERLAY_OPACITY}}, viewer=where)
        view.addUnitCell(0, {"box": {"color": "#555555"}, "alabel": "a", "blabel": "b", "clabel": "c",
                             "astyle": {"color": "#d62728"}, "bstyle": {"color": "#2ca02c"},
                             "cstyle": {"color": "#1f77b4"}}, viewer=where)
        if reps != (1, 1, 1):
            for model in (0, 1) if panel.overlay is not None else (0,):
                view.replicateUnitCell(reps[0], reps[1], reps[2], model, True, viewer=where)
        view.setHoverable({}, True, _HOVER_JS, _UNHOVER_JS, viewer=where)
        view.zoomTo(viewer=where)
    body = _share_one_view(view.write_html(), view.uniqueid, panels, columns)
    body = _with_renderer_options(body)
    # py3Dmol names the scene after the clock; a name from the content keeps the HTML identical across reruns,
    # so Streamlit does not rebuild the iframe (and reset the camera) when nothing changed.
    stable = "s" + hashlib.sha1((body.replace(view.uniqueid, "") + repr((height, reps, style))).encode()).hexdigest()[:16]
    body = body.replace(view.uniqueid, stable)
    titles = "".join(
        f'<div class="title" data-testid="viewer-title">{html.escape(p.title)}</div>' for p in panels
    )
    legend = _legend_html(legend_species([p.crystal for p in panels]))
    legend = f"<div class='footer'>{legend}{_png_button(stable, png_name)}</div>"
    style_css = (
        "<style>body{margin:0;font-family:'Source Sans Pro',sans-serif;font-size:14px;color:#31333F}"
        ".titles{display:flex}.title{flex:1;text-align:center;font-weight:600;padding:2px 0}"
        ".legend{display:flex;flex-wrap:wrap;gap:10px;padding:6px 4px}"
        ".chip{display:inline-flex;align-items:center;gap:4px}"
        ".dot{width:13px;height:13px;border-radius:50%;border:1px solid #888;display:inline-block}"
        ".footer{display:flex;justify-content:space-between;align-items:center}"
        ".png{font:inherit;font-size:13px;padding:2px 10px;border:1px solid #ccc;border-radius:6px;background:white;"
        "cursor:pointer;white-space:nowrap}</style>"
    )
    if rows == 1:
        return f"{style_css}<div class='titles'>{titles}</div>{body}{legend}"
    overlay = (f"<div style='position:absolute;inset:0;display:grid;pointer-events:none;"
               f"grid-template-columns:repeat({columns},1fr);grid-template-rows:repeat({rows},1fr)'>"
               + titles.replace('class="title"', 'class="title" style="align-self:start;font-size:12px"') + "</div>")
    return f"{style_css}<div style='position:relative'>{body}{overlay}</div>{legend}"

