"""What plotly.js spends redrawing the latent map when a filter or a coloring changes (issue 25), in one run.

The app re-sends the whole figure on each rerun. `st.plotly_chart` with selections took the chart's identity from
the figure, so every recolor or filter mounted a new chart (a fresh plot and WebGL canvases: `bench_map_scale.py`
counts the remounts); `app.ui.map_chart` keeps one chart and updates it. This benchmark builds the app's figures
(`app.ui.latent_plot.base_map_figure`) for an atlas, serializes them as the chart does (`figure_json`), and in
headless Chromium (software WebGL, as in `bench_map_scale.py`) times each change from the map colored by volume:

- remount: the drawn plot purged and a new one drawn in a fresh element (what `st.plotly_chart` did);
- in place: `Plotly.react` on the drawn plot with the whole figure parsed anew;
- in place, points kept: the figure without its point arrays (`app.ui.map_chart.split_points`), which the page
  decoded once before and puts back (the same objects each time), as `app.ui.map_chart` does;

for a recolor (atom count; crystal system) and for a filter greying a fixed random half of the points, drawn as the
app draws it (one trace, greyed points by style) and, for comparison, as it drew it before (greyed points moved into a
trace of their own underneath; built here).

Each redraw is timed from the spec's JSON text to the pixels read back from the WebGL canvas (JSON.parse, plotting,
drawing), the median of `--repeats` tries. Ratios are the point; the absolute seconds are those of a software
rasterizer on this machine's CPU.

    python benchmarks/bench_map_redraw.py --atlas /tmp/atlas100k/lcs6a.atlas.pt
"""

from __future__ import annotations

import argparse
import statistics
import sys
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "app"))

import numpy as np  # noqa: E402

from app.ui.latent_plot import base_map_figure, map_hover  # noqa: E402
from app.ui.map_chart import PLOTLY_JS, figure_json, split_points  # noqa: E402
from app_helpers import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from nesf.inference.atlas import load_atlas  # noqa: E402

REDRAW = """async ([spec, mode]) => {
  const started = performance.now();
  const figure = JSON.parse(spec);
  for (const trace of figure.data) {  // the map chart's points payload, decoded once beforehand
    if (trace.nesf_points) { Object.assign(trace, window.__points); delete trace.nesf_points; }
  }
  let plot = document.getElementById('plot');
  if (mode === 'remount') {
    Plotly.purge(plot);
    const fresh = document.createElement('div');
    fresh.style.cssText = plot.style.cssText;
    plot.replaceWith(fresh);
    fresh.id = 'plot';
    plot = fresh;
  }
  await Plotly.react(plot, figure.data, figure.layout);
  await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  for (const canvas of plot.querySelectorAll('canvas')) {  // wait for the rasterizer: read a pixel back
    const gl = canvas.getContext('webgl');
    if (gl) gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4));
  }
  return [(performance.now() - started) / 1000,
          plot._fullData.map(t => (t.x || []).length)];
}"""
KEEP_POINTS = """(payload) => {
  const TYPED = {f8: Float64Array, f4: Float32Array, i4: Int32Array};
  const arrays = JSON.parse(payload);
  for (const [name, value] of Object.entries(arrays)) {
    if (value && value.bdata) {
      arrays[name] = new TYPED[value.dtype](Uint8Array.from(atob(value.bdata), (c) => c.charCodeAt(0)).buffer);
    }
  }
  window.__points = arrays;
}"""
MODES = ("remount", "in place", "in place, points kept")


def two_trace_filter(figure, greyed: np.ndarray) -> dict:
    """The unfiltered figure (a `base_map_figure`) filtered as the app drew it before: greyed rows in a grey trace
    of their own, without customdata or hover, underneath the shown rows' trace."""
    dataset = figure.data[0]
    shown = ~greyed
    marker = dict(size=5, opacity=0.8, color=np.asarray(dataset.marker.color)[shown],
                  colorscale=dataset.marker.colorscale, cmin=dataset.marker.cmin, cmax=dataset.marker.cmax,
                  showscale=True, colorbar=dataset.marker.colorbar.to_plotly_json())
    x, y = np.asarray(dataset.x), np.asarray(dataset.y)
    grey = dict(type="scattergl", x=x[greyed], y=y[greyed], mode="markers",
                marker=dict(size=4, color="#dcdcdc", opacity=0.6), hoverinfo="skip", showlegend=False)
    rest = dict(type="scattergl", x=x[shown], y=y[shown], mode="markers", marker=marker, name="dataset",
                customdata=np.asarray(dataset.customdata)[shown],
                text=[t for t, keep in zip(dataset.text, shown) if keep], hovertemplate=dataset.hovertemplate,
                showlegend=False)
    return dict(data=[grey, rest, *figure.data[1:]], layout=figure.layout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atlas", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    atlas = load_atlas(args.atlas)   # without its model: table, crystals and maps
    collection = types.SimpleNamespace(table=atlas.table)
    hover = map_hover(atlas.table)
    greyed = np.random.default_rng(0).random(len(atlas.table)) < 0.5
    build = lambda **options: base_map_figure(collection, atlas.tsne, hover=hover, **options)  # noqa: E731
    figures = {"volume": build(color_by="volume"), "recolor (atoms)": build(color_by="atoms"),
               "recolor (crystal system)": build(color_by="crystal system"),
               "filter, one trace (the app)": build(color_by="volume", greyed=greyed)}
    full = {name: figure_json(figure) for name, figure in figures.items()}
    full["filter, two traces (before)"] = figure_json(two_trace_filter(figures["volume"], greyed))
    split = {name: split_points(figure) for name, figure in figures.items()}
    payloads = {digest: text for _, parts in split.values() for digest, text in parts.items()}
    assert len(payloads) == 1, "a recolor or a filter changed the point arrays"
    print(f"{len(atlas.table)} points, {int(greyed.sum())} greyed; figure JSON: "
          + ", ".join(f"{name} {len(spec) / 1e6:.1f} MB" for name, spec in full.items())
          + f"; without the points payload ({len(next(iter(payloads.values()))) / 1e6:.1f} MB, sent once): "
          + ", ".join(f"{name} {len(spec) / 1e6:.2f} MB" for name, (spec, _) in split.items()), flush=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.set_content('<div id="plot" style="width:1400px;height:600px"></div>')
        page.add_script_tag(path=str(PLOTLY_JS))
        page.evaluate(KEEP_POINTS, next(iter(payloads.values())))
        seconds, _ = page.evaluate(REDRAW, [full["volume"], "in place"])
        print(f"first draw (volume): {seconds:.2f} s", flush=True)
        timings = {(name, mode): [] for name in full if name != "volume" for mode in MODES
                   if name in split or mode != "in place, points kept"}
        for attempt in range(args.repeats):
            for name, mode in timings:
                kept = mode == "in place, points kept"
                page.evaluate(REDRAW, [split["volume"][0] if kept else full["volume"], "in place"])
                seconds, points = page.evaluate(REDRAW, [split[name][0] if kept else full[name], mode])
                timings[name, mode].append(seconds)
                print(f"try {attempt + 1}, {name}, {mode}: {seconds:.2f} s (points per trace {points})", flush=True)
        browser.close()
    reference = statistics.median(timings["recolor (atoms)", "in place"])
    print(f"median of {args.repeats} (x: against a recolor in place):")
    for (name, mode), seconds in timings.items():
        print(f"  {name}, {mode}: {statistics.median(seconds):.2f} s ({statistics.median(seconds) / reference:.2f}x)")


if __name__ == "__main__":
    main()
