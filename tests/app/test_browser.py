"""The app in a real browser: `streamlit run` on 127.0.0.1, driven by Playwright with the system Chromium.

Checks the 3D viewers render offline (3Dmol.js from the app, no request leaves the machine, no console error),
the interpolation slider, selection on the latent map, and starting and cancelling a training run. Saves a
screenshot of each page to screenshots/ (git-ignored).
"""

import re
import time

import pytest

from app_helpers import CHROMIUM, CHROMIUM_ARGS, LOCAL, NACL_CIF, REPO_ROOT

SHOTS = REPO_ROOT / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # ~4 minutes in all on 2 cores


@pytest.fixture(scope="module")
def server(streamlit_server):
    return streamlit_server.url


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        )
        context = browser.new_context(viewport={"width": 1500, "height": 1100})
        outside, errors = [], []

        def route(r):
            if r.request.url.startswith(LOCAL):
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        context.on("request", lambda req: None if req.url.startswith(LOCAL) else outside.append(req.url))
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.outside, page.errors = outside, errors
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def _main(page):
    return page.locator('[data-testid="stMain"]')


def _wait_idle(page, timeout=90_000):
    """Wait until the script has finished running (no 'running' status widget)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


PAGES = {"map": "Latent map", "reconstruct": "Reconstruct", "interpolate": "Interpolate", "generate": "Generate",
         "model": "Model"}


def _goto(page, server, path):
    """Open a page through the sidebar navigation (as a user does; the app is loaded from its root once)."""
    if not page.url.startswith(server):
        page.goto(server)
        page.wait_for_selector('[data-testid="stMain"]')
        _wait_idle(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text=PAGES[path]).first.click()
    page.wait_for_function(f"() => document.querySelector('h1')?.innerText.includes({PAGES[path]!r})")
    _wait_idle(page)


def _viewer_frame(page, index=-1):
    """The last 3D viewer iframe on the page and the number of its canvases once 3Dmol.js drew them."""
    frames = page.locator('iframe[title="st.iframe"]')
    frames.last.wait_for()
    frame = frames.nth(index if index >= 0 else frames.count() - 1).element_handle().content_frame()
    frame.wait_for_selector("canvas", state="attached", timeout=30_000)
    return frame


def _shot(page, name):
    SHOTS.mkdir(exist_ok=True)
    page.wait_for_timeout(800)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_reconstruct_upload_shows_both_viewers(browser_page, server, tmp_path):
    page = browser_page
    _goto(page, server, "reconstruct")
    cif = tmp_path / "NaCl.cif"
    cif.write_text(NACL_CIF)
    _main(page).locator('input[type="file"]').first.set_input_files(str(cif))
    page.get_by_text("Position error").first.wait_for(timeout=120_000)
    _wait_idle(page)
    frame = _viewer_frame(page)
    assert frame.locator("canvas").count() >= 1
    assert frame.evaluate("typeof $3Dmol !== 'undefined'"), "3Dmol.js did not load from the app"
    titles = frame.locator('[data-testid="viewer-title"]').all_inner_texts()
    assert titles[0].startswith("Input") and titles[1].startswith("Reconstruction")
    assert frame.evaluate("document.querySelector('canvas').width") > 100
    # the structure view as a PNG: the shared canvas of both panels, as drawn (atoms colored, not blank)
    with page.expect_download() as download:
        frame.locator('[data-testid="viewer-png"]').click()
    assert download.value.suggested_filename == "NaCl-NaCl.png"
    png = tmp_path / "view.png"
    download.value.save_as(png)
    from PIL import Image

    image = Image.open(png).convert("RGB")
    canvas = frame.evaluate("[document.querySelector('canvas').width, document.querySelector('canvas').height]")
    assert list(image.size) == canvas
    colors = image.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 20, "the PNG is blank"
    _shot(page, "reconstruct")
    # at 1280 px the lattice table shows both columns whole (its space-group column scrolled sideways) and no metric
    # tile's label is cut ("Atoms (input → reco…")
    try:
        page.set_viewport_size({"width": 1280, "height": 1000})
        _wait_idle(page)
        page.wait_for_timeout(500)
        widths = page.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid="stMain"] [data-testid="stDataFrame"] .dvn-scroller')).map(s => [s.scrollWidth, s.clientWidth])""")
        heights = page.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid="stMain"] [data-testid="stDataFrame"] .dvn-scroller')).map(s => [s.scrollHeight, s.clientHeight])""")
        assert widths and all(scroll <= client + 1 for scroll, client in widths), widths
        assert all(scroll <= client + 1 for scroll, client in heights), heights  # every row of the lattice table
        labels = page.evaluate("""() => Array.from(document.querySelectorAll(
            '[data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] div'))
            .map(e => [e.innerText, e.scrollWidth, e.clientWidth])""")
        assert labels and all(scroll <= client + 1 for _, scroll, client in labels), labels
        page.locator('[data-testid="stMetric"]').first.scroll_into_view_if_needed()
        _shot(page, "reconstruct-1280-tiles")
        page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]').last.scroll_into_view_if_needed()
        _shot(page, "reconstruct-1280-lattice")
    finally:
        page.set_viewport_size({"width": 1500, "height": 1100})
    assert not page.outside, f"requests left the machine: {page.outside}"
    assert not page.errors, f"console errors: {page.errors}"


def test_latent_map_select_point_opens_structures(browser_page, server):
    page = browser_page
    _goto(page, server, "map")
    _main(page).locator(".js-plotly-plot").first.wait_for()
    _shot(page, "latent_map")
    _lasso_middle(page, 1 / 3)
    page.get_by_text("Nearest neighbors in the 192-d latent space").wait_for(timeout=120_000)
    _wait_idle(page)
    frame = _viewer_frame(page)
    assert frame.locator("canvas").count() >= 1
    assert _main(page).locator('iframe[title="st.iframe"]').count() == 1  # the grid is not drawn until opened
    # the selection seen together, opened: up to nine input / reconstruction pairs in one scene
    _main(page).get_by_text(re.compile(r"See \d of them together")).click()
    _main(page).locator('iframe[title="st.iframe"]').nth(1).wait_for(timeout=120_000)
    _wait_idle(page)
    grid = _viewer_frame(page, 0)
    titles = grid.locator('[data-testid="viewer-title"]').all_inner_texts()
    assert 4 <= len(titles) <= 18 and titles[1].startswith("reconstruction")
    _shot(page, "latent_map_selection")
    assert not page.outside, f"requests left the machine: {page.outside}"
    assert not page.errors, f"console errors: {page.errors}"


_PLOT = '[data-testid="stMain"] .js-plotly-plot'
_TAG_CHART = f"""() => {{
  const plot = document.querySelector('{_PLOT}');
  const canvases = Array.from(plot.querySelectorAll('canvas'));
  const result = [Boolean(plot.__tagged), canvases.filter(c => !c.__tagged).length];
  plot.__tagged = true;
  canvases.forEach(c => {{ c.__tagged = true; }});
  return result;
}}"""


def test_latent_map_recolor_and_filter_update_the_drawn_chart(browser_page, server):
    """A recolor or a filter redraws the map in place: the same chart element and WebGL canvases (st.plotly_chart
    mounted a new chart for every changed figure), with the new colors and the greyed points' opacities, from the
    point arrays sent once; a lasso still selects afterwards, the shown crystals only."""
    page = browser_page
    page.goto(server)  # a new session (the map is the root page): no selection yet
    main = _main(page)
    main.locator(".js-plotly-plot").first.wait_for()
    _wait_idle(page)
    page.evaluate(_TAG_CHART)
    main.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="atoms", exact=True).click()
    _wait_idle(page)
    page.wait_for_function(f"() => document.querySelector('{_PLOT}')._fullData[0].marker.colorbar.title.text "
                           "=== 'atoms in the cell'")
    assert page.evaluate(_TAG_CHART) == [True, 0], "the recolor mounted a new chart"
    filters = page.get_by_role("button", name="Filters")
    filters.click()
    box = page.locator('[data-testid="stPopoverBody"] [data-testid="stMultiSelect"] input').first
    box.fill("O")
    page.get_by_role("option", name="O", exact=True).click()  # Enter would take every match (Os, Co, Mo, ...)
    _wait_idle(page)
    page.locator("h1").first.click()  # a click outside closes the popover, off the map
    page.locator('[data-testid="stPopoverBody"]').wait_for(state="hidden")
    caption = main.get_by_text(re.compile(r"Filter: [\d,]+ shown"))
    caption.wait_for()
    shown = int(re.search(r"Filter: ([\d,]+) shown", caption.inner_text()).group(1).replace(",", ""))
    assert 0 < shown < 6005
    page.wait_for_function(f"() => ArrayBuffer.isView(document.querySelector('{_PLOT}')._fullData[0].marker"
                           ".opacity)")  # greyed points: an opacity per point
    assert page.evaluate("window.__nesfMapPoints.size") == 1, "a recolor or a filter sent the points again"
    assert page.evaluate(_TAG_CHART) == [True, 0], "the filter mounted a new chart"
    _lasso_middle(page, 1 / 3)
    selected = int(re.search(r"(\d+) selected", main.get_by_text(re.compile(r"\d+ selected")).first.inner_text())
                   .group(1))
    assert 0 < selected <= shown
    assert page.evaluate(_TAG_CHART)[0], "the selection mounted a new chart"
    _shot(page, "latent_map_filtered_selection")
    page.goto(server)  # a new session: the tests after this one start unfiltered
    page.wait_for_selector('[data-testid="stMain"]')
    _wait_idle(page)
    assert not page.outside, f"requests left the machine: {page.outside}"
    assert not page.errors, f"console errors: {page.errors}"


def test_the_cell_volume_range_filter_filters(browser_page, server):
    """Moving the cell-volume slider's upper end greys the larger cells (its ends were off its step's grid, and a
    browser's slider then never sent a new range: the count and the map stayed)."""
    page = browser_page
    page.goto(server)
    main = _main(page)
    main.locator(".js-plotly-plot").first.wait_for()
    _wait_idle(page)
    page.get_by_role("button", name="Filters").click()
    volume = page.locator('[data-testid="stPopoverBody"] [data-testid="stSlider"]').first
    volume.get_by_text("Cell volume").wait_for()
    upper = volume.get_by_role("slider").nth(1)
    upper.focus()
    for _ in range(50):
        page.keyboard.press("ArrowLeft")
    caption = main.get_by_text(re.compile(r"Filter: [\d,]+ shown"))
    caption.wait_for(timeout=60_000)
    shown, greyed = (int(x.replace(",", "")) for x in re.findall(r"([\d,]+) (?:shown|greyed)", caption.inner_text()))
    assert 0 < greyed < 6005 and shown + greyed == 6005
    page.goto(server)  # a new session: the tests after this one start unfiltered
    page.wait_for_selector('[data-testid="stMain"]')
    _wait_idle(page)
    assert not page.errors, f"console errors: {page.errors}"


def _lasso_middle(page, half_size: float = 1 / 4):
    """A lasso around the middle of the map (half its side `half_size` of the map's), and wait for the selection."""
    plot = _main(page).locator(".js-plotly-plot").first
    plot.wait_for()
    box = plot.locator(".nsewdrag").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    w, h = box["width"] * half_size, box["height"] * half_size
    page.mouse.move(cx - w, cy - h)
    page.mouse.down()
    for x, y in ((cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h), (cx - w, cy - h)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    _main(page).get_by_text(re.compile(r"\d+ selected")).wait_for(timeout=60_000)
    _wait_idle(page)


def _generate(page, main):
    main.get_by_label("Samples").fill("6")
    main.get_by_label("Samples").press("Enter")
    _wait_idle(page)
    main.get_by_role("button", name="Generate").click()
    main.get_by_text(re.compile(r"^6 samples ")).first.wait_for(timeout=240_000)
    _wait_idle(page)


def test_generate_in_a_lasso_region_and_near_a_crystal(browser_page, server, tmp_path):
    page = browser_page
    _goto(page, server, "map")
    _lasso_middle(page)
    _goto(page, server, "generate")
    main = _main(page)
    main.get_by_text("Within the map selection").click()
    _wait_idle(page)
    _generate(page, main)
    main.get_by_text(re.compile(r"within the \d+ crystals selected on the map")).first.wait_for()
    assert main.get_by_text("Valid").first.is_visible() and main.get_by_text("Novel").first.is_visible()
    main.locator(".js-plotly-plot").first.wait_for()  # the samples on the map (plotly.js may still be loading)
    main.get_by_text(re.compile("Samples placed on the")).wait_for()
    frame = _viewer_frame(page)
    assert frame.locator("canvas").count() >= 1
    with page.expect_download() as download:
        main.get_by_role("button", name="Table (CSV)").click()
    csv_path = tmp_path / "generated.csv"
    download.value.save_as(csv_path)
    assert csv_path.read_text().splitlines()[0].startswith("id,formula,num_atoms")
    if main.get_by_role("button", name="Valid samples (CIF, zip)").is_enabled():
        with page.expect_download() as download:
            main.get_by_role("button", name="Valid samples (CIF, zip)").click()
        zipped = tmp_path / "generated.zip"
        download.value.save_as(zipped)
        import zipfile
        assert all(n.endswith(".cif") for n in zipfile.ZipFile(zipped).namelist())
    _shot(page, "generate_region")

    main.get_by_text("Near a crystal").click()
    _wait_idle(page)
    centre = main.locator('input[aria-label="Centre crystal: id or formula"]')
    centre.fill("NaCl")
    centre.press("Enter")
    _wait_idle(page)
    main.get_by_role("button", name="Generate").click()
    main.get_by_text(re.compile(r"^6 samples near .*\(NaCl\)")).first.wait_for(timeout=240_000)
    _wait_idle(page)
    _shot(page, "generate_near")
    assert not page.outside, f"requests left the machine: {page.outside}"
    assert not page.errors, f"console errors: {page.errors}"


def test_decode_anywhere_from_a_box_on_the_pca_map(browser_page, server):
    page = browser_page
    _goto(page, server, "map")
    main = _main(page)
    main.get_by_role("button", name="Map settings").click()
    page.get_by_text("PCA", exact=True).click()
    page.get_by_role("button", name="Compute map").click()
    _wait_idle(page)
    page.keyboard.press("Escape")
    plot = main.locator(".js-plotly-plot").first
    plot.hover()
    plot.locator('[data-title="Box Select"]').first.click()
    box = plot.locator(".nsewdrag").first.bounding_box()
    # a small box near the top-left corner: an empty spot of the map
    x0, y0 = box["x"] + box["width"] * 0.03, box["y"] + box["height"] * 0.03
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 25, y0 + 25, steps=6)
    page.mouse.up()
    _wait_idle(page)
    x_input = main.get_by_label("x", exact=True)  # a new box opens "Decode anywhere" at its centre
    x_input.wait_for()
    _wait_idle(page)  # the box's rerun may start after _wait_idle's first look: its panel still being drawn
    _click_until(page, main.get_by_role("button", name="Decode here"), main.get_by_text(re.compile(r"Decoded at \(")))
    _wait_idle(page)
    main.get_by_text("exact inverse of the PCA map", exact=False).first.wait_for()
    main.get_by_text("Nearest dataset crystals in latent space").wait_for()
    _shot(page, "decode_anywhere")
    assert not page.outside, f"requests left the machine: {page.outside}"
    assert not page.errors, f"console errors: {page.errors}"


def test_the_model_pages_tables_fit_1280_px_without_sideways_scrolling(browser_page, server):
    """At 1280 px every table of the Model page shows all its columns (they scrolled sideways: the CI subsets, the
    encoder-only rows and the probe beside the loss chart); at 1500 px too."""
    page = browser_page
    try:
        for width in (1280, 1500):
            page.set_viewport_size({"width": width, "height": 1000})
            _goto(page, server, "model")
            page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stMain\"] "
                                   "[data-testid=\"stDataFrame\"] .dvn-scroller').length >= 3", timeout=120_000)
            _wait_idle(page)
            page.wait_for_timeout(500)
            widths = page.evaluate("""() => Array.from(document.querySelectorAll(
                '[data-testid="stMain"] [data-testid="stDataFrame"] .dvn-scroller'))
                .map(s => [s.scrollWidth, s.clientWidth])""")
            assert len(widths) >= 3 and all(scroll <= client + 1 for scroll, client in widths), (width, widths)
            _shot(page, f"model-{width}")
            page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]').nth(1).scroll_into_view_if_needed()
            _shot(page, f"model-{width}-uploads")
    finally:
        page.set_viewport_size({"width": 1500, "height": 1100})
    assert not page.errors, f"console errors: {page.errors}"


def _click_until(page, button, shown, timeout_ms=120_000, tries=3):
    """Click `button` until `shown` appears: a click that lands while Streamlit redraws the block holding the
    button can be lost in a headless browser (no rerun reached the server: CI lost one so, one run in ~6 here);
    a user clicks again, so does this, at most `tries` times."""
    for attempt in range(tries):
        button.click()
        try:
            shown.first.wait_for(timeout=timeout_ms if attempt == tries - 1 else 20_000)
            return
        except Exception:  # noqa: BLE001 - not yet: click again (the last try's timeout propagates)
            if attempt == tries - 1:
                raise
            _wait_idle(page)


def _copied_link(page) -> str:
    sidebar = page.locator('section[data-testid="stSidebar"]')
    sidebar.get_by_role("button", name="Copy link").click()
    code = page.locator('[data-testid="stCode"] code').filter(has_text="?").first
    code.wait_for()
    link = code.inner_text().strip()
    page.keyboard.press("Escape")
    return link


def test_a_copied_link_reproduces_the_view_in_a_new_browser(browser_page, server):
    page = browser_page
    page.goto(f"{server}/?method=pca&color=crystal+system&q=NaCl&el=O&elmode=none")  # the map is the root page
    page.wait_for_selector('[data-testid="stMain"]')
    _wait_idle(page)
    _main(page).get_by_text(re.compile(r"Filter: .* shown")).wait_for(timeout=60_000)
    link = _copied_link(page)
    assert link.startswith(server) and "method=pca" in link and "q=NaCl" in link
    fresh = page.context.browser.new_context(viewport={"width": 1500, "height": 1100})
    try:
        other = fresh.new_page()
        other.set_default_timeout(60_000)
        other.goto(link)
        other.wait_for_selector('[data-testid="stMain"]')
        _wait_idle(other)
        main = _main(other)
        main.get_by_text(re.compile(r"crystals of .* · PCA")).wait_for()
        _shot(other, "deep_link_opened")
        assert main.get_by_placeholder("highlight by id or formula, e.g. NaCl").input_value() == "NaCl"
        main.get_by_text(re.compile(r"Filter: .* shown")).wait_for()
        assert main.get_by_text("crystal system").first.is_visible()
        # the Interpolate page's ends and steps travel too
        other.goto(f"{server}/interpolate?ckpt=lcs6a&src=mp-22862&dst=mp-1265&steps=5")
        _wait_idle(other)
        _main(other).get_by_text(re.compile(r"Step \d+ / 4")).first.wait_for(timeout=180_000)  # steps 0..4
        interp_link = _copied_link(other)
        assert "src=mp-22862" in interp_link and "dst=mp-1265" in interp_link and "steps=5" in interp_link
    finally:
        fresh.close()
    _shot(page, "deep_link")
    assert not page.outside, f"requests left the machine: {page.outside}"


def test_interpolation_slider_moves(browser_page, server):
    page = browser_page
    _goto(page, server, "interpolate")
    main = _main(page)
    # search the first crystal of the atlas for both ends (always present), then change the destination
    inputs = main.locator('input[aria-label$="id or formula"]')
    inputs.nth(0).fill("Cu")
    inputs.nth(0).press("Enter")
    _wait_idle(page)
    inputs.nth(1).fill("O")
    inputs.nth(1).press("Enter")
    main.get_by_text(re.compile(r"Step \d+ / \d+")).first.wait_for(timeout=180_000)
    _wait_idle(page)
    slider = main.locator('input[aria-label="Step"]')
    assert slider.get_attribute("aria-valuetext") == "0"
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        """() => document.querySelector('[data-testid="stMain"] input[aria-label="Step"]')
                 ?.getAttribute('aria-valuetext') === '2'""", timeout=30_000)
    _wait_idle(page)
    main.get_by_text(re.compile(r"^Step 2 / \d+")).first.wait_for(timeout=30_000)
    frame = _viewer_frame(page, 0)
    assert frame.locator("canvas").count() >= 1
    # the path on the latent map (app.ui.map_chart): the dataset's points under the path's steps
    page.wait_for_function(f"""() => {{ const p = document.querySelector('{_PLOT}');
        return Boolean(p && p._fullData && p._fullData.length === 2 && p._fullData[1].name === 'path'
                       && p._fullData[0].x.length > 100 && p._fullData[1].x.length > 2); }}""", timeout=60_000)
    _shot(page, "interpolate")
    assert not page.outside, f"requests left the machine: {page.outside}"
    assert not page.errors, f"console errors: {page.errors}"


def test_start_and_cancel_training(browser_page, server):
    page = browser_page
    _goto(page, server, "model")
    _shot(page, "model")
    sidebar = page.locator('section[data-testid="stSidebar"]')
    sidebar.get_by_text("Retrain").click()
    name = sidebar.get_by_label("Name")
    name.fill(f"browser-{int(time.time())}")
    cif = REPO_ROOT / "screenshots" / "train-NaCl.cif"
    cif.parent.mkdir(exist_ok=True)
    cif.write_text(NACL_CIF)
    sidebar.locator('input[type="file"]').set_input_files([str(cif)])
    page.wait_for_timeout(500)
    sidebar.get_by_role("button", name="Start training").click()
    sidebar.get_by_text(re.compile(r"Training browser-\d+")).wait_for(timeout=30_000)
    sidebar.get_by_text(re.compile(r"epoch [1-9]\d*/")).wait_for(timeout=30_000)
    _shot(page, "training_running")
    sidebar.get_by_role("button", name="Cancel training").click()
    sidebar.get_by_text("was cancelled").wait_for(timeout=30_000)
    _shot(page, "training_cancelled")
    assert not page.outside, f"requests left the machine: {page.outside}"
    assert not page.errors, f"console errors: {page.errors}"
