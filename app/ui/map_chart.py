"""The latent map's chart: plotly.js in a Streamlit v2 component that keeps its identity (the page's key) across
reruns, so a recolor or a filter updates the drawn chart in place (`Plotly.react`).

`st.plotly_chart` with selections takes its identity from the figure: every changed figure is a new widget, and the
browser purges the drawn chart and plots a new one, often twice (`benchmarks/bench_map_scale.py` counts the remounts,
`benchmarks/bench_map_redraw.py` times both ways). Here the figure travels as the same JSON `st.plotly_chart` sends,
an unchanged figure is not redrawn, and lasso, box and click selections come back once each, in `st.plotly_chart`'s
event shape ({"selection": {"points": [{"customdata", "x", "y", ...}], "box": [{"x": [x0, x1], "y": [y0, y1]}],
"lasso": [...]}}), so the page reads them as it read those.

plotly.js is the copy the installed `plotly` package ships (the version its JSON is written for), sent to the browser
once per session within the component's data; the component asks for it again if a page lost it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import plotly
import plotly.io
import plotly.tools
import streamlit as st

SENT = "nesf.map_chart_plotly_sent"  # session state: plotly.js was sent to this session's browser
MODEBAR_PX = 32
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"

JS = r"""
function loadPlotly(source) {
  if (window.Plotly) return true;
  if (!source) return false;
  const script = document.createElement('script');
  script.textContent = source;  // the UMD bundle defines window.Plotly
  document.head.appendChild(script);
  return Boolean(window.Plotly);
}

function pointOf(point) {
  return {curve_number: point.curveNumber, point_number: point.pointNumber, point_index: point.pointIndex,
          x: point.x, y: point.y, customdata: point.customdata === undefined ? null : point.customdata};
}

function selectionOf(event) {
  const selection = {points: [], box: [], lasso: []};
  if (!event) return selection;
  selection.points = (event.points || []).map(pointOf);
  if (event.range && event.range.x) selection.box.push({x: Array.from(event.range.x), y: Array.from(event.range.y)});
  if (event.lassoPoints && event.lassoPoints.x) {
    selection.lasso.push({x: Array.from(event.lassoPoints.x), y: Array.from(event.lassoPoints.y)});
  }
  return selection;
}

export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  const plot = parentElement.querySelector('.nesf-map-chart');
  if (!loadPlotly(data.plotly)) {
    setTriggerValue('needs_plotly', true);
    return;
  }
  const cleanup = () => {  // on unmount: the chart's WebGL contexts and listeners go with it
    window.Plotly.purge(plot);
    plot.__nesfSpec = undefined;
    plot.__nesfWired = false;
  };
  if (plot.__nesfSpec === data.spec) return cleanup;  // a rerun that left the figure as it was: nothing to redraw
  plot.__nesfSpec = data.spec;
  const figure = JSON.parse(data.spec);
  figure.layout.uirevision = 'nesf-map';  // zoom and pan survive updates
  plot.style.height = `${figure.layout.height || 600}px`;
  window.Plotly.react(plot, figure.data, figure.layout, Object.assign({responsive: true}, data.config)).then(() => {
    if (plot.__nesfWired) return;
    plot.__nesfWired = true;
    plot.on('plotly_selected', (event) => { if (event) setTriggerValue('selection', {selection: selectionOf(event)}); });
    plot.on('plotly_click', (event) => setTriggerValue('selection', {selection: selectionOf(event)}));
  });
  return cleanup;
}
"""

HTML = '<div class="nesf-map-chart" style="width: 100%"></div>'


@functools.cache
def _component():
    return st.components.v2.component("nesf.map_chart", html=HTML, js=JS, isolate_styles=False)


@functools.cache
def _plotly_source() -> str:
    return PLOTLY_JS.read_text(encoding="utf-8")


def figure_json(figure) -> str:
    """The figure's JSON as the chart sends it (and as `st.plotly_chart` writes it): unvalidated, numpy arrays as
    typed arrays."""
    return plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(figure, True), validate=False)


def map_chart(figure, *, key: str, config: dict | None = None) -> dict | None:
    """Draw `figure` (a plotly Figure) as the chart `key`, updated in place on later reruns. Returns the selection
    event of this rerun ({"selection": {...}}, as `st.plotly_chart` returns it), or None."""
    margin = figure.layout.margin
    if (margin.t or 0) < MODEBAR_PX:  # room for plotly's own toolbar above the plot (st.plotly_chart draws its own)
        figure.update_layout(margin=dict(t=MODEBAR_PX))
    data = {"spec": figure_json(figure), "config": config or {}}
    if not st.session_state.get(SENT):
        data["plotly"] = _plotly_source()
        st.session_state[SENT] = True
    result = _component()(key=key, data=data, on_selection_change=lambda: None,
                          on_needs_plotly_change=lambda: st.session_state.pop(SENT, None))
    return getattr(result, "selection", None)
