"""The latent map's chart: plotly.js in a Streamlit v2 component that keeps its identity (the page's key) across
reruns, so a recolor or a filter updates the drawn chart in place (`Plotly.react`).

`st.plotly_chart` with selections takes its identity from the figure: every changed figure is a new widget, and the
browser purges the drawn chart and plots a new one (`benchmarks/bench_map_scale.py` counts the remounts,
`benchmarks/bench_map_redraw.py` times both ways). Here:

- the figure travels as the JSON `st.plotly_chart` sends (`figure_json`), but the point arrays of its large traces
  (x, y, customdata, hover text: ~90 % of a 100,000-point map's JSON) travel once per browser session and dataset
  map, named by a digest of their content; a recolor or a filter then sends colors and opacities, and the page puts
  the arrays it decoded once back into the figure (plotly.js still recomputes the trace: the saving is transport and
  parsing, BENCHMARKS.md);
- the server writes each points payload once per process (`_points_payload`), found again by a fingerprint of the
  arrays;
- a map that only shows (`selections=False`: Interpolate's path, Generate's samples) sends no selection events;
- an unchanged figure is not redrawn;
- lasso, box and click selections come back once each, in `st.plotly_chart`'s event shape ({"selection": {"points":
  [{"customdata", "x", "y", ...}], "box": [{"x": [x0, x1], "y": [y0, y1]}], "lasso": [...]}}), so the page reads
  them as it read those.

plotly.js is the version the installed `plotly` package ships (the one its JSON is written for): plotly.js's own
"gl2d" partial bundle of it (core, scatter and scattergl: all the app's maps draw; committed in app/static with its
licence, 1.5 MB where the full bundle is 4.8 MB: the browser evaluates it in about a third of the time, ~0.9 s less on
a first paint here, BENCHMARKS.md), else the package's full copy, copied into the app's static folder. The page loads
it with a script tag (`static_plotly_url`); where it cannot be loaded, it is sent once per session within the
component's data. A page that lacks plotly.js or a points payload
(its cache was lost) asks for it again.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import plotly
import plotly.io
import plotly.offline
import plotly.tools
import streamlit as st
from _plotly_utils.utils import is_homogeneous_array, is_skipped_key, to_typed_array_spec

SENT_PLOTLY = "nesf.map_chart_plotly_sent"   # session state: plotly.js was sent to this session's browser
PLOTLY_INLINE = "nesf.map_chart_plotly_inline"  # session state: its page could not load the static copy
SENT_POINTS = "nesf.map_chart_points_sent"   # session state: digests of the points payloads sent to it
MODEBAR_PX = 32
POINT_ARRAYS = ("x", "y", "customdata", "text")  # a trace's arrays that stay while its coloring and filter change
CACHED_MIN_POINTS = 1000                         # traces this large send their point arrays once
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"   # app/static, served at STATIC_URL
PLOTLY_JS_VERSION = plotly.offline.get_plotlyjs_version()
FULL_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def plotly_js_file(static_dir: Path = STATIC_DIR) -> Path:
    """The plotly.js the maps load: the committed gl2d partial bundle where it is the installed package's version,
    else the package's full bundle."""
    partial = static_dir / f"plotly-gl2d-{PLOTLY_JS_VERSION}.min.js"
    return partial if partial.is_file() else FULL_PLOTLY_JS


PLOTLY_JS = plotly_js_file()
STATIC_URL = "/app/static"

# shared by the chart and `preload_plotly`: both wait on one request
LOAD_FROM_URL = r"""
function loadFromUrl(url) {  // a Promise of whether window.Plotly is there: one request a page, compiled off the
  if (!url) return Promise.resolve(false);  // main thread (an inline script compiles on it) and cached by the browser
  if (!window.__nesfPlotlyLoading) {
    window.__nesfPlotlyLoading = new Promise((resolve) => {
      const script = document.createElement('script');
      script.src = url;
      script.async = true;
      script.onload = () => resolve(Boolean(window.Plotly));
      script.onerror = () => { window.__nesfPlotlyLoading = undefined; resolve(false); };
      document.head.appendChild(script);
    });
  }
  return window.__nesfPlotlyLoading;
}
"""

JS = r"""
const CACHE_SIZE = 4;  // points payloads kept per page (a dataset's maps: t-SNE, PCA)

function loadInline(source) {  // plotly.js sent within the component's data (the app's static copy is missing)
  if (window.Plotly) return true;
  if (!source) return false;
  const script = document.createElement('script');
  script.textContent = source;  // the UMD bundle defines window.Plotly
  document.head.appendChild(script);
  return Boolean(window.Plotly);
}

${LOAD_FROM_URL}
const TYPED = {f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array,
               u4: Uint32Array, u2: Uint16Array, u1: Uint8Array};

function decoded(value) {  // plotly's {dtype, bdata} (base64) as a typed array, decoded once
  if (!value || typeof value.bdata !== 'string' || !TYPED[value.dtype] || value.shape) return value;
  const bytes = Uint8Array.from(atob(value.bdata), (c) => c.charCodeAt(0));
  return new TYPED[value.dtype](bytes.buffer);
}

function cachePoints(payloads) {
  const cache = window.__nesfMapPoints || (window.__nesfMapPoints = new Map());
  for (const [digest, text] of Object.entries(payloads || {})) {
    const arrays = JSON.parse(text);
    for (const name of Object.keys(arrays)) arrays[name] = decoded(arrays[name]);
    cache.delete(digest);
    cache.set(digest, arrays);
    while (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value);
  }
  return cache;
}

function withPoints(figure, cache) {  // false when a payload is missing
  for (const trace of figure.data) {
    if (!trace.nesf_points) continue;
    const arrays = cache.get(trace.nesf_points);
    if (!arrays) return false;
    Object.assign(trace, arrays);
    delete trace.nesf_points;
  }
  return true;
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
  let mounted = true;
  plot.__nesfUnmounted = false;
  const cleanup = () => {  // on unmount: the chart's WebGL contexts and listeners go with it, once a draw in
    mounted = false;        // flight has finished (purged under it, plotly.js threw "e.emit is not a function")
    plot.__nesfUnmounted = true;
    const purge = () => {
      if (!plot.__nesfUnmounted) return;  // mounted again meanwhile: it is drawn, keep it
      if (window.Plotly) window.Plotly.purge(plot);
      plot.__nesfSpec = undefined;
      plot.__nesfWired = false;
    };
    Promise.resolve(plot.__nesfDrawing).then(purge, purge);
  };
  if (window.Plotly || data.plotly) {
    if (!loadInline(data.plotly)) {
      setTriggerValue('needs_plotly', true);
      return;
    }
    draw(component, plot);
    return cleanup;
  }
  loadFromUrl(data.plotly_url).then((loaded) => {
    if (!loaded) setTriggerValue('needs_plotly', true);  // the server sends it inline then
    else if (mounted) draw(component, plot);
  });
  return cleanup;
}

function draw(component, plot) {
  const {data, setTriggerValue} = component;
  const cache = cachePoints(data.points);
  if (plot.__nesfSpec === data.spec) return;  // a rerun that left the figure as it was: nothing to redraw
  const figure = JSON.parse(data.spec);
  if (!withPoints(figure, cache)) {
    setTriggerValue('needs_points', true);
    return;
  }
  plot.__nesfSpec = data.spec;
  figure.layout.uirevision = 'nesf-map';  // zoom and pan survive updates
  plot.style.height = `${figure.layout.height || 600}px`;
  plot.__nesfDrawing = window.Plotly.react(plot, figure.data, figure.layout,
                                           Object.assign({responsive: true}, data.config)).then(() => {
    // the chart may have been unmounted (purged) while Plotly drew: a purged element has no .on (seen as
    // "plot.on is not a function" when a busy server let a page switch overtake the draw)
    if (plot.__nesfWired || plot.__nesfUnmounted || !data.selectable || typeof plot.on !== 'function') return;
    plot.__nesfWired = true;
    plot.on('plotly_selected', (event) => {
      if (event) setTriggerValue('selection', {selection: selectionOf(event)});
    });
    plot.on('plotly_click', (event) => setTriggerValue('selection', {selection: selectionOf(event)}));
  });
}
"""

JS = JS.replace("${LOAD_FROM_URL}", LOAD_FROM_URL)
PRELOAD_JS = LOAD_FROM_URL + """
export default function (component) {
  if (!window.Plotly) loadFromUrl(component.data.url);
}
"""
HTML = '<div class="nesf-map-chart" style="width: 100%"></div>'


@functools.cache
def _component():
    return st.components.v2.component("nesf.map_chart", html=HTML, js=JS, isolate_styles=False)


def _send_plotly_inline() -> None:
    """The page has no plotly.js (its static copy failed to load, or the inline copy was lost): send it inline."""
    st.session_state.pop(SENT_PLOTLY, None)
    st.session_state[PLOTLY_INLINE] = True


@functools.cache
def static_plotly_url() -> str | None:
    """The URL of plotly.js in the app's static folder (served by `server.enableStaticServing`): the committed partial
    bundle, else the installed `plotly` package's full copy, copied there on first use (named by its version, ignored
    by git), or None where that folder cannot be written (the chart then sends plotly.js inline). A page loads it with a script tag: the browser
    fetches it while the page builds, compiles it off its main thread and caches it, where inline it was sent
    through the session's websocket and compiled on the main thread (~0.6 s of a first paint, BENCHMARKS.md)."""
    if PLOTLY_JS.parent == STATIC_DIR:  # the committed partial bundle, served as it is
        return f"{STATIC_URL}/{PLOTLY_JS.name}"
    target = STATIC_DIR / f"plotly-{plotly.__version__}.min.js"
    try:
        if not target.is_file() or target.stat().st_size != PLOTLY_JS.stat().st_size:
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            shutil.copyfile(PLOTLY_JS, partial)
            os.replace(partial, target)
    except OSError:
        return None
    return f"{STATIC_URL}/{target.name}"


def _plotly_url() -> str | None:
    """The static copy's URL for this session's page, or None where it must get plotly.js inline."""
    return None if st.session_state.get(PLOTLY_INLINE) else static_plotly_url()


@functools.cache
def _preloader():
    return st.components.v2.component("nesf.plotly_preload", html="", js=PRELOAD_JS, isolate_styles=False)


def preload_plotly() -> None:
    """Start loading plotly.js at the top of a page that will show a map (app/main.py, before the sidebar): the
    browser fetches and compiles it while it builds the page, not after the chart's turn comes."""
    url = _plotly_url()
    if url is not None:
        with st.sidebar:
            _preloader()(key="plotly_preload", data={"url": url})


@functools.cache
def _plotly_source() -> str:
    return PLOTLY_JS.read_text(encoding="utf-8")


def figure_json(figure) -> str:
    """The figure's JSON as `st.plotly_chart` writes it: unvalidated, numpy arrays as typed arrays. The chart itself
    sends `split_points`'s JSON (the same content, checked by tests); this is the reference, and the benchmarks'
    measure of what `st.plotly_chart` sent."""
    return plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(figure, True), validate=False)


def split_points(figure) -> tuple[str, dict[str, str]]:
    """(the figure's JSON without the point arrays of its traces of CACHED_MIN_POINTS points or more, {digest: JSON
    of those arrays}); each such trace names its payload by `nesf_points`, a digest of the arrays' content.

    The figure's JSON is what `figure_json` writes, built from plotly's own trace and layout dicts without its deep
    copy (`to_plotly_json` deep-copies every hover string: 0.2 s at 100,000 points); a points payload is serialized
    once per distinct point set (`_points_payload`)."""
    traces, payloads = [], {}
    for trace in figure._data:  # noqa: SLF001 -- plotly's trace dicts, which to_plotly_json deep-copies
        trace = dict(trace)
        if _length(trace.get("x")) >= CACHED_MIN_POINTS:
            digest, text = _points_payload({name: trace.pop(name) for name in POINT_ARRAYS if name in trace})
            trace["nesf_points"] = digest
            payloads[digest] = text
        traces.append(_json_ready(trace))
    spec = {"data": traces, "layout": _json_ready(figure._layout)}  # noqa: SLF001
    return _dumps(spec), payloads


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), default=_plain)


def _plain(value):
    """What `json` cannot write itself: numpy arrays plotly keeps as they are (strings: object dtype) and scalars."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _json_ready(value):
    """`value` as plotly's `to_plotly_json` gives it (`convert_to_base64`: arrays held by a dict as typed-array specs),
    its dicts and lists of containers copied, lists of scalars (hover text) shared, not copied."""
    if isinstance(value, dict):
        return {key: (item if is_skipped_key(key) else to_typed_array_spec(item) if is_homogeneous_array(item)
                      else _json_ready(item)) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (dict, list, tuple)):
        return [_json_ready(item) for item in value]
    return value


_PAYLOADS: collections.OrderedDict = collections.OrderedDict()  # point-set fingerprint -> (digest, JSON), per process
_PAYLOADS_LOCK = threading.Lock()
PAYLOADS_KEPT = 4


def _points_payload(arrays: dict) -> tuple[str, str]:
    """(digest, JSON) of a trace's point arrays, written once per distinct point set and process: every session's
    reruns of one map (each recolor and filter) find it by a fingerprint of the arrays' bytes and strings."""
    key = _fingerprint(arrays)
    with _PAYLOADS_LOCK:
        if key is not None and key in _PAYLOADS:
            _PAYLOADS.move_to_end(key)
            return _PAYLOADS[key]
    text = _dumps(_json_ready(arrays))
    found = (hashlib.blake2b(text.encode(), digest_size=12).hexdigest(), text)
    if key is not None:
        with _PAYLOADS_LOCK:
            _PAYLOADS[key] = found
            while len(_PAYLOADS) > PAYLOADS_KEPT:
                _PAYLOADS.popitem(last=False)
    return found


def _fingerprint(arrays: dict):
    """A key naming the arrays' content, or None when an array holds something unhashable: numeric arrays by a digest
    of their bytes, lists and string arrays by the hash of their items (never by object addresses)."""
    parts = []
    for name, value in arrays.items():
        if is_homogeneous_array(value):
            value = np.ascontiguousarray(value)
            if value.dtype != object:
                parts.append((name, str(value.dtype), value.shape,
                              hashlib.blake2b(value.tobytes(), digest_size=16).digest()))
                continue
            value = value.tolist()
        if not isinstance(value, (list, tuple)):
            return None
        try:
            parts.append((name, len(value), hash(tuple(value))))
        except TypeError:
            return None
    return tuple(parts)


def _length(values) -> int:
    if isinstance(values, dict) and "bdata" in values:  # plotly's typed array: 3 base64 characters per 4 bytes
        item_bytes = int(values.get("dtype", "f8")[1:] or 8)
        return len(values["bdata"]) * 3 // 4 // item_bytes
    return len(values) if isinstance(values, (list, tuple)) or is_homogeneous_array(values) else 0


def map_chart(figure, *, key: str, config: dict | None = None, selections: bool = True) -> dict | None:
    """Draw `figure` (a plotly Figure) as the chart `key`, updated in place on later reruns. Returns the selection
    event of this rerun ({"selection": {...}}, as `st.plotly_chart` returns it), or None; `selections=False` for a
    map that only shows (its lasso and clicks start no rerun)."""
    margin = figure.layout.margin
    if (margin.t or 0) < MODEBAR_PX:  # room for plotly's own toolbar above the plot (st.plotly_chart draws its own)
        figure.update_layout(margin=dict(t=MODEBAR_PX))
    spec, payloads = split_points(figure)
    sent = st.session_state.setdefault(SENT_POINTS, set())
    data = {"spec": spec, "config": config or {}, "selectable": selections,
            "points": {digest: text for digest, text in payloads.items() if digest not in sent}}
    sent.update(payloads)
    url = _plotly_url()
    if url is not None:
        data["plotly_url"] = url
    elif not st.session_state.get(SENT_PLOTLY):
        data["plotly"] = _plotly_source()
        st.session_state[SENT_PLOTLY] = True
    result = _component()(key=key, data=data, on_selection_change=lambda: None,
                          on_needs_plotly_change=_send_plotly_inline,
                          on_needs_points_change=lambda: st.session_state.pop(SENT_POINTS, None))
    return getattr(result, "selection", None)
