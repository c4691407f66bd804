"""The latent map's figure and chart payload: greyed points by style alone, and point arrays sent once.

`base_map_figure` keeps every point in one trace whatever the coloring or filter, so `split_points` names the same
points payload for all of them; re-inserting the payload gives back the figure's own JSON (round trip)."""

import json
import types

import numpy as np
from pathlib import Path
import pandas as pd
import pytest

from app.ui.latent_plot import GREY_BAND, GREYED, base_map_figure, map_hover, selectable_rows
from app.ui.map_chart import POINT_ARRAYS, figure_json, split_points

N = 1200  # above CACHED_MIN_POINTS


@pytest.fixture(scope="module")
def atlas():
    rng = np.random.default_rng(0)
    systems = np.array(["cubic", "hexagonal", "monoclinic"])
    table = pd.DataFrame({
        "id": [f"c-{i}" for i in range(N)], "formula": ["NaCl"] * N, "num_atoms": rng.integers(1, 20, N),
        "volume_angstrom3": rng.uniform(20, 200, N), "crystal_system": systems[rng.integers(0, 3, N)],
        "spacegroup_number": rng.integers(1, 231, N), "spacegroup_symbol": ["Fm-3m"] * N})
    return types.SimpleNamespace(table=table), rng.normal(size=(N, 2)).astype(np.float32)


@pytest.mark.parametrize("color_by", ["volume", "crystal system", None])
def test_greyed_points_keep_their_place_and_take_the_grey_foot_of_the_colorscale(atlas, color_by):
    table, coords = atlas
    greyed = np.arange(N) % 3 == 0
    plain = base_map_figure(table, coords, color_by=color_by).data[0]
    filtered = base_map_figure(table, coords, color_by=color_by, greyed=greyed).data
    assert len(filtered) == 1  # one trace: the points do not move
    dataset = filtered[0]
    np.testing.assert_array_equal(dataset.x, plain.x)
    np.testing.assert_array_equal(dataset.customdata, plain.customdata)
    color = np.asarray(dataset.marker.color)
    np.testing.assert_allclose(color[~greyed], np.asarray(plain.marker.color)[~greyed])
    assert (color[greyed] == dataset.marker.cmin).all() and (color[~greyed] > dataset.marker.cmin).all()
    foot = [tuple(stop) for stop in dataset.marker.colorscale[:2]]
    assert foot == [(0, GREYED), (GREY_BAND, GREYED)]  # the value greyed rows take is drawn grey
    assert set(np.asarray(dataset.marker.opacity)[greyed]) != set(np.asarray(dataset.marker.opacity)[~greyed])


def test_a_selection_leaves_greyed_points_out(atlas):
    greyed = np.zeros(N, dtype=bool)
    greyed[[3, 5]] = True
    assert selectable_rows([1, 3, 5, 7, N + 4], greyed) == [1, 7]
    assert selectable_rows([1, 3], None) == [1, 3]


def test_recolors_and_filters_share_one_points_payload_and_it_round_trips(atlas):
    table, coords = atlas
    hover = map_hover(table.table)
    figures = [base_map_figure(table, coords, hover=hover, color_by="volume"),
               base_map_figure(table, coords, hover=hover, color_by="crystal system"),
               base_map_figure(table, coords, hover=hover, color_by="atoms", greyed=np.arange(N) % 2 == 0,
                               highlight=np.arange(5))]
    parts = [split_points(figure) for figure in figures]
    assert len({digest for _, payloads in parts for digest in payloads}) == 1
    spec, payloads = parts[2]
    assert len(spec) < len(figure_json(figures[2])) / 4  # what a recolor or a filter sends
    (digest, text), = payloads.items()
    small, big = json.loads(spec)["data"][1], json.loads(spec)["data"][0]
    assert big["nesf_points"] == digest and not any(name in big for name in POINT_ARRAYS)
    assert "x" in small and "nesf_points" not in small  # 5 search rings (< CACHED_MIN_POINTS) stay inline
    big.update(json.loads(text))
    del big["nesf_points"]
    rebuilt = json.loads(spec)
    rebuilt["data"][0] = big
    assert rebuilt == json.loads(figure_json(figures[2]))


def test_a_changed_point_or_hover_text_names_a_new_payload(atlas):
    """The points payload is kept per process by a fingerprint of the arrays: any change to a coordinate, a row index
    or a hover string must name (and send) a new one, never a kept one."""
    table, coords = atlas
    customdata, text = map_hover(table.table)
    digest = lambda coords, hover: next(iter(split_points(  # noqa: E731
        base_map_figure(table, coords, hover=hover))[1]))
    reference = digest(coords, (customdata, text))
    assert digest(coords.copy(), (customdata.copy(), list(text))) == reference  # equal content: the kept payload
    moved = coords.copy()
    moved[7, 1] += 1e-3
    renamed = list(text)
    renamed[N - 1] = renamed[N - 1].replace("c-", "d-")
    renumbered = customdata.copy()
    renumbered[[0, 1]] = renumbered[[1, 0]]
    changed = {digest(moved, (customdata, text)), digest(coords, (customdata, renamed)),
               digest(coords, (renumbered, text))}
    assert reference not in changed and len(changed) == 3


def test_the_interpolation_and_generation_maps_reuse_the_latent_maps_points_payload(atlas):
    """Interpolate and Generate draw the dataset uncolored under their own traces (a path, samples with string hover
    data): the same points payload as the Latent map's, so a browser that drew one map gets only the small spec."""
    import plotly.graph_objects as go

    table, coords = atlas
    hover = map_hover(table.table)
    latent_map = split_points(base_map_figure(table, coords, hover=hover, color_by="volume"))
    path_map = base_map_figure(table, coords, hover=hover, color_by=None, height=420)
    path_map.add_trace(go.Scatter(x=np.arange(5.0), y=np.arange(5.0), mode="lines+markers+text",
                                  text=[str(i) for i in range(5)], customdata=pd.Series(["NaCl", "KCl"] * 2 + ["LiF"]),
                                  hovertemplate="step %{text}: %{customdata}<extra></extra>"))
    spec, payloads = split_points(path_map)
    assert payloads.keys() == latent_map[1].keys()
    path = json.loads(spec)["data"][1]
    assert path["customdata"] == ["NaCl", "KCl", "NaCl", "KCl", "LiF"] and path["text"][4] == "4"


@pytest.mark.parametrize("color_by, colormap", [("volume", "viridis"), ("space group", "turbo")])
def test_figure_exports_color_as_the_screen_does(atlas, color_by, colormap):
    """The SVG/PNG export draws the screen's numbers and scale: log10 volumes, Turbo space groups."""
    from app.views.latent_map import _figure_colors

    table, coords = atlas
    screen = base_map_figure(table, coords, color_by=color_by).data[0].marker
    exported = _figure_colors(table, color_by, None, None, None)
    np.testing.assert_allclose(np.asarray(exported["values"], dtype=np.float32), np.asarray(screen.color), rtol=1e-6)
    assert exported["label"] == screen.colorbar.title.text and exported["colormap"] == colormap
    if color_by == "volume":
        assert exported["label"].startswith("log10 ")


def test_a_coloring_missing_for_some_crystals_says_how_many_and_why(atlas):
    from app.ui.latent_plot import missing_color_note

    table = atlas[0].table
    assert missing_color_note(table, "volume") is None
    errors = np.where(np.arange(N) < 100, 0.1, np.nan)
    split = np.where(np.arange(N) < 100, "test", "train")
    with_errors = table.assign(reconstruction_error_angstrom=errors, split=split)
    assert missing_color_note(with_errors, "reconstruction error") == (
        f"1,100 of {N:,} crystals have no reconstruction error (Å) and are drawn grey: the atlas measured it for the "
        "test split only (decoding every crystal is slow; `nesf atlas --errors all` measures all)")


def test_range_filter_sliders_have_their_ends_on_their_step():
    """A browser's slider moves on a grid counted from its minimum: ends off the grid left the filter stuck."""
    from app.views.latent_map import slider_bounds

    low, high, step = slider_bounds(np.array([5.602384346861014, 80.0, 215.89223392707808]))
    assert (low, high, step) == (5.6, 215.9, 0.1)
    assert slider_bounds(np.array([0.0123, 1.8611])) == (0.012, 1.862, 0.001)
    assert slider_bounds(np.array([1.0, 28.0])) == (1, 28, 1)
    for value in (low, high):
        assert abs(value / step - round(value / step)) < 1e-9


@pytest.mark.browser
def test_a_chart_unmounted_while_plotly_draws_raises_nothing():
    """The chart's script in Chromium with a Plotly whose draw finishes only after the chart was unmounted (a page
    switch overtaking a draw on a busy server): wiring the selection events then must not call `.on` of the purged
    element (it raised "plot.on is not a function" in two browser tests under load), and the purge waits for the
    draw (plotly.js threw "e.emit is not a function" when purged under `Plotly.react`)."""
    from playwright.sync_api import sync_playwright

    from app.ui.map_chart import JS
    from app_helpers import CHROMIUM, CHROMIUM_ARGS, need_browser

    need_browser()
    harness = """async (js) => {
      const module = await import(URL.createObjectURL(new Blob([js], {type: 'text/javascript'})));
      let finishDraw;
      window.Plotly = {react: () => new Promise((resolve) => { finishDraw = resolve; }),
                       purge: (element) => { delete element.on; }};
      const parent = document.createElement('div');
      parent.innerHTML = '<div class="nesf-map-chart"></div>';
      document.body.appendChild(parent);
      const wired = [];
      parent.firstChild.on = (name) => wired.push(name);
      const spec = JSON.stringify({data: [], layout: {}});
      const mount = () => module.default({data: {spec, points: {}, config: {}, selectable: true, plotly: null},
                                          parentElement: parent, setTriggerValue: () => {}});
      const cleanup = mount();
      cleanup();          // unmounted while drawing: purged only once the draw is done (plotly.js threw under it)
      const purgedAtOnce = !parent.firstChild.on;
      finishDraw();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const unmounted = {wired: wired.length, purgedAtOnce, purgedAfterTheDraw: !parent.firstChild.on};
      parent.firstChild.on = (name) => wired.push(name);
      mount();            // a chart that stays mounted is wired as before
      finishDraw();
      await new Promise((resolve) => setTimeout(resolve, 50));
      return [unmounted, wired];
    }"""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto("about:blank")
            unmounted, wired = page.evaluate(harness, JS)
        finally:
            browser.close()
    assert errors == [] and unmounted == {"wired": 0, "purgedAtOnce": False, "purgedAfterTheDraw": True}
    assert wired == ["plotly_selected", "plotly_click"]


def test_the_first_view_frames_all_but_the_far_points(atlas):
    """Two points 200 units out (as LCS6A's one-atom O cells on its PCA map) are left out of the first view, which
    frames the rest with a margin; a map without far points keeps plotly's own autorange."""
    from app.ui.latent_plot import VIEW_MARGIN, map_view

    table, coords = atlas
    assert map_view(coords).ranges is None and len(map_view(coords).outside) == 0
    far = coords.copy()
    far[[5, 9]] = [[-200.0, -210.0], [-199.0, -205.0]]
    view = map_view(far)
    assert view.outside.tolist() == [5, 9]
    (x0, x1), (y0, y1) = view.ranges
    rest = np.delete(far, [5, 9], axis=0)
    width = rest[:, 0].max() - rest[:, 0].min()
    assert x0 == pytest.approx(rest[:, 0].min() - VIEW_MARGIN * width, rel=1e-5) and x1 > rest[:, 0].max()
    assert y0 < rest[:, 1].min() and y1 > rest[:, 1].max()
    layout = base_map_figure(table, far, color_by=None).layout
    assert tuple(layout.xaxis.range) == pytest.approx((x0, x1)) and tuple(layout.yaxis.range) == pytest.approx((y0, y1))


def test_plotly_js_is_served_from_the_apps_static_folder_or_sent_inline_where_it_cannot_be(tmp_path, monkeypatch):
    from app.ui import map_chart

    monkeypatch.setattr(map_chart, "STATIC_DIR", tmp_path)
    map_chart.static_plotly_url.cache_clear()
    try:
        url = map_chart.static_plotly_url()
        copy = tmp_path / url.rsplit("/", 1)[1]
        assert url.startswith("/app/static/plotly-") and copy.read_bytes() == map_chart.PLOTLY_JS.read_bytes()
        assert [p.name for p in tmp_path.iterdir()] == [copy.name]          # no partial copy left behind
        monkeypatch.setattr(map_chart, "STATIC_DIR", tmp_path / "a-file" / "static")
        (tmp_path / "a-file").write_text("not a folder")
        map_chart.static_plotly_url.cache_clear()
        assert map_chart.static_plotly_url() is None                       # unwritable: the chart sends it inline
    finally:
        map_chart.static_plotly_url.cache_clear()


def test_the_maps_load_plotly_js_own_partial_bundle_of_the_installed_version(tmp_path):
    """The gl2d bundle (scatter, scattergl: every map's traces) of the plotly.js version the installed package writes
    JSON for, served as committed; without it (another plotly installed), the package's full bundle."""
    import plotly
    from app.ui import map_chart

    partial = map_chart.STATIC_DIR / f"plotly-gl2d-{map_chart.PLOTLY_JS_VERSION}.min.js"
    if partial.is_file():
        header = partial.read_text(encoding="utf-8")[:200]
        assert f"plotly.js (gl2d - minified) v{map_chart.PLOTLY_JS_VERSION}" in header
        assert map_chart.plotly_js_file() == partial == map_chart.PLOTLY_JS
        assert map_chart.static_plotly_url() == f"/app/static/{partial.name}"
        assert (map_chart.STATIC_DIR / "plotly-LICENSE.txt").read_text().startswith("MIT License")
    assert map_chart.plotly_js_file(tmp_path) == Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@pytest.mark.browser
def test_the_chart_loads_plotly_from_its_url_once_and_asks_for_it_inline_when_that_fails():
    """The chart's script in Chromium without plotly.js: two charts mounted at once load the URL once and draw
    when it has loaded; a URL that fails asks the server for plotly.js inline (`needs_plotly`), draws nothing."""
    from playwright.sync_api import sync_playwright

    from app.ui.map_chart import JS
    from app_helpers import CHROMIUM, CHROMIUM_ARGS, need_browser

    need_browser()
    harness = """async ([js, url]) => {
      const module = await import(URL.createObjectURL(new Blob([js], {type: 'text/javascript'})));
      const triggers = [];
      const mount = () => {
        const parent = document.createElement('div');
        parent.innerHTML = '<div class="nesf-map-chart"></div>';
        document.body.appendChild(parent);
        const spec = JSON.stringify({data: [], layout: {}});
        module.default({data: {spec, points: {}, config: {}, selectable: false, plotly_url: url},
                        parentElement: parent, setTriggerValue: (name, value) => triggers.push(name)});
      };
      mount();
      mount();
      await new Promise((resolve) => setTimeout(resolve, 500));
      return [triggers, window.__requests || 0, window.Plotly ? window.Plotly.drawn : null];
    }"""
    fake_plotly = ("window.__requests = (window.__requests || 0) + 1; window.Plotly = {drawn: 0, purge: () => {}, "
                   "react: () => { window.Plotly.drawn += 1; return Promise.resolve(); }};")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            found = {}
            for name, status in (("served", 200), ("missing", 404)):
                page = browser.new_page()
                def serve(route, request, status=status):
                    if request.url.endswith("/page"):
                        route.fulfill(status=200, content_type="text/html", body="<html></html>")
                    else:
                        route.fulfill(status=status, content_type="text/javascript",
                                      body=fake_plotly if status == 200 else "")
                page.route("http://nesf.test/**", serve)
                page.goto("http://nesf.test/page")
                found[name] = page.evaluate(harness, [JS, "http://nesf.test/app/static/plotly.min.js"])
                page.close()
        finally:
            browser.close()
    assert found["served"] == [[], 1, 2]                     # one request, both charts drawn
    assert found["missing"] == [["needs_plotly", "needs_plotly"], 0, None]
