"""The latent map at scale in a real browser: first paint, recolor and filter latency, server memory (issue 25).

Starts `streamlit run app/main.py` on a checkpoint folder (`benchmarks/atlas_100k.py` writes one holding a
100,000-crystal atlas) and drives it with Playwright and the system Chromium (headless, software WebGL):

- cold: the first page load of a fresh server (the atlas read and its latents recomputed by the model);
- first paint, warm: a new browser context opening the map (what each new user sees once the server has the atlas);
  timed from navigation until the plot holds its points, and until the script run has finished;
- recolor: "Color by" set to another attribute, timed from the click on the option (its menu opened beforehand) until
  the plot's colorbar reads it (the change drawn), and until the run has finished;
- filter: an element filter (crystals containing O), timed from the click on the option O until the greyed points are
  drawn, and until the run has finished;
- selection to panel: a small lasso around the map's middle, timed from the mouse's release until the selection
  panel shows its crystals' 3D view (the viewer's canvas drawn), and until the run has finished;
- memory: the server process's resident set (VmRSS) and its peak (VmHWM) after all of the above;
- remounts: whether each recolor and filter drew into a new chart element (the plot's DOM node replaced) and how many
  of its WebGL canvases are new: `st.plotly_chart` with selections derived the chart's identity from its figure, so a
  changed figure mounted a new chart; `app.ui.map_chart` updates the drawn one (`bench_map_redraw.py` times both).

Each warm figure is the median of `--repeats` tries; every try prints. `--trace DIR` also records a Chrome trace of
one recolor and one filter (DIR/recolor.json, DIR/filter.json; open them in chrome://tracing or Perfetto) and prints
where their seconds went: the busy time of the browser's threads (the page's main thread: messages, JavaScript,
plotly.js; the GPU process's main thread: WebGL drawing), which run side by side.

    python benchmarks/bench_map_scale.py --checkpoint-dir /tmp/atlas100k [--trace /tmp/map-trace]
    python benchmarks/bench_map_scale.py --checkpoint-dir checkpoints --beside-training   # the shipped atlas

`--beside-training` runs a one-thread `nesf train` (LCS6A, the `cpu` recipe) beside the server for the whole
measurement, as a user retraining from the sidebar while browsing would (needs the data directory).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "app"))
from app_helpers import CHROMIUM, CHROMIUM_ARGS, start_streamlit  # noqa: E402

PLOT = '[data-testid="stMain"] .js-plotly-plot'
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
# (the plot element is the one tagged before the change, WebGL canvases in it drawn anew); tags what is drawn now
REMOUNTS = f"""() => {{
  const plot = document.querySelector('{PLOT}');
  const canvases = plot ? Array.from(plot.querySelectorAll('canvas')) : [];
  const result = [Boolean(plot && plot.__tagged), canvases.filter(c => !c.__tagged).length];
  if (plot) plot.__tagged = true;
  canvases.forEach(c => {{ c.__tagged = true; }});
  return result;
}}"""


DRAWN = "p._fullData.some(t => (t.x || []).length > 0)"
# greyed points: an opacity per point (one trace), or their own trace (the app before app.ui.map_chart)
FILTERED = "(ArrayBuffer.isView(p._fullData[0].marker.opacity) || p._fullData.length >= 2)"


def colored_by(label: str) -> str:
    """A `_drawn` condition: the map's colorbar reads `label`."""
    return f"(p._fullData[0].marker.colorbar || {{}}).title?.text === {label!r}"


def _drawn(page, condition: str = DRAWN) -> None:
    """Wait until the map's plot (`p`) meets `condition`, a JavaScript expression."""
    page.wait_for_function(f"() => {{ const p = document.querySelector('{PLOT}'); return Boolean(p && p._fullData "
                           f"&& {condition}); }}", timeout=300_000)


def _idle(page) -> None:
    page.wait_for_timeout(200)
    page.wait_for_function(IDLE, timeout=300_000)


def _memory_mb(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _open_map(browser, url: str) -> tuple[object, float, float]:
    """A new context opening the map: (page, seconds to the points drawn, seconds to the run finished)."""
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(300_000)
    started = time.perf_counter()
    page.goto(url)
    _drawn(page)
    painted = time.perf_counter() - started
    _idle(page)
    seconds = time.perf_counter() - started
    page.evaluate(REMOUNTS)
    return page, painted, seconds


def _timed(page, change, condition: str, remounts: list | None = None) -> tuple[float, float]:
    """Carries out `change` (`_recolor` or `_filter_oxygen`): opens its menu untimed, then times from the click
    that makes the change: (seconds until the map meets `condition`, the change drawn; seconds until the run has also
    finished, of which 0.2 s is a fixed wait for a run to begin). Appends to `remounts` whether the chart was
    mounted anew and how many of its WebGL canvases are new."""
    choose = change(page)
    started = time.perf_counter()
    choose()
    _drawn(page, condition)
    drawn = time.perf_counter() - started
    _idle(page)
    seconds = time.perf_counter() - started
    page.wait_for_timeout(500)  # a second mount follows the first draw's points within this
    kept, created = page.evaluate(REMOUNTS)
    if remounts is not None:
        remounts.append((not kept, created))
    return drawn, seconds


def _recolor(option: str):
    """A change to "Color by" `option`: opens the menu, returns the click on the option."""
    def change(page):
        page.locator('[data-testid="stMain"] [data-testid="stSelectbox"]').first.click()
        return page.get_by_role("option", name=option, exact=True).click
    return change


def _filter_oxygen(page):
    """The element filter "contains O": opens the Filters popover and types O, returns the click on the option."""
    page.get_by_role("button", name="Filters").click()
    box = page.locator('[data-testid="stPopoverBody"] [data-testid="stMultiSelect"] input').first
    box.fill("O")
    return page.get_by_role("option", name="O", exact=True).click  # Enter would take every match (Os, Co, Mo, Ho, ...)


TRACE_CATEGORIES = ["devtools.timeline", "v8.execute", "blink", "gpu", "cc", "toplevel"]
THREADS = {"CrRendererMain": "page main thread", "CrGpuMain": "GPU process main thread",
           "ThreadPoolForegroundWorker": "worker threads (GC, ANGLE)"}


def _select_middle(page) -> tuple[float, float]:
    """A small lasso around the map's middle: (seconds from the release until the selection panel's 3D view is
    drawn, seconds until the run has also finished)."""
    plot = page.locator(PLOT).first
    box = plot.locator(".nsewdrag").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    w, h = box["width"] / 16, box["height"] / 16
    page.mouse.move(cx - w, cy - h)
    page.mouse.down()
    for x, y in ((cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h), (cx - w, cy - h)):
        page.mouse.move(x, y, steps=6)
    started = time.perf_counter()
    page.mouse.up()
    page.get_by_text("Nearest neighbors in the 192-d latent space").wait_for(timeout=300_000)
    frame = page.locator('[data-testid="stMain"] iframe[title="st.iframe"]').last.element_handle().content_frame()
    frame.locator("canvas").first.wait_for(timeout=300_000)
    shown = time.perf_counter() - started
    _idle(page)
    return shown, time.perf_counter() - started


def _start_training(work: Path):
    """A one-thread LCS6A training run in the background (killed by the caller)."""
    import subprocess

    return subprocess.Popen([sys.executable, "-m", "nesf", "train", "--dataset", "lim_l6", "--recipe", "cpu",
                             "--epochs", "1000", "--threads", "1", "--out-dir", str(work / "train"), "--name", "bg"],
                            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def thread_busy_s(trace_path: Path) -> tuple[float, dict[str, float]]:
    """(the trace's span in s, busy seconds per thread of THREADS): the summed durations of each thread's outermost
    task events (ThreadControllerImpl::RunTask; ThreadPool_RunTask for the workers)."""
    events = json.loads(trace_path.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    timed = [e for e in events if e.get("ph") == "X" and "dur" in e]
    span = (max(e["ts"] + e["dur"] for e in timed) - min(e["ts"] for e in timed)) / 1e6
    busy = collections.defaultdict(float)
    for e in timed:
        thread = names.get((e["pid"], e["tid"]), "")
        if thread in THREADS and e["name"] in ("ThreadControllerImpl::RunTask", "ThreadPool_RunTask"):
            busy[THREADS[thread]] += e["dur"] / 1e6
    return span, dict(busy)


def _traced(browser, page, change, condition: str, path: Path) -> tuple[float, float]:
    browser.start_tracing(page=page, path=str(path), categories=TRACE_CATEGORIES)
    try:
        return _timed(page, change, condition)
    finally:
        browser.stop_tracing()


def _pair(times: tuple[float, float]) -> str:
    return f"{times[0]:.2f} s (run done {times[1]:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-dir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trace", type=Path, default=None, help="folder for Chrome traces of a recolor and a filter")
    parser.add_argument("--beside-training", action="store_true", help="a one-thread training run beside the server")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    log = Path("/tmp") / f"bench_map_scale_{os.getpid()}" / "streamlit.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc, url = start_streamlit({"NESF_CHECKPOINT_DIR": str(args.checkpoint_dir),
                                 "NESF_USER_DIR": str(log.parent / "user")}, log)
    training = _start_training(log.parent) if args.beside_training else None
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            page, painted, idle = _open_map(browser, url)
            count = page.evaluate(f"() => document.querySelector('{PLOT}')._fullData"
                                  f".reduce((n, t) => n + (t.x || []).length, 0)")
            print(f"cold (fresh server, atlas loaded and encoded): points drawn {painted:.2f} s, run done {idle:.2f} s;"
                  f" {count} points on the map", flush=True)
            page.context.close()
            paints, idles, recolors, filters, selections, remounts = [], [], [], [], [], []
            for attempt in range(args.repeats):
                page, painted, idle = _open_map(browser, url)
                paints.append(painted)
                idles.append(idle)
                recolors.append(_timed(page, _recolor("atoms"), colored_by("atoms in the cell"), remounts))
                recolors.append(_timed(page, _recolor("crystal system"), colored_by("crystal system"), remounts))
                filters.append(_timed(page, _filter_oxygen, FILTERED, remounts))
                page.reload()
                _drawn(page)
                _idle(page)
                selections.append(_select_middle(page))
                mounts = ", ".join(f"{'new chart' if new else 'same chart'} ({created} new WebGL canvases)"
                                   for new, created in remounts[-3:])
                print(f"try {attempt + 1}: first paint {painted:.2f} s (run done {idle:.2f} s), recolor "
                      f"{_pair(recolors[-2])} / {_pair(recolors[-1])}, filter {_pair(filters[-1])}, selection to "
                      f"panel {_pair(selections[-1])}; {mounts}",
                      flush=True)
                page.context.close()
            if args.trace is not None:
                args.trace.mkdir(parents=True, exist_ok=True)
                page, _, _ = _open_map(browser, url)
                for name, change, condition in (("recolor", _recolor("atoms"), colored_by("atoms in the cell")),
                                                ("filter", _filter_oxygen, FILTERED)):
                    drawn, seconds = _traced(browser, page, change, condition, args.trace / f"{name}.json")
                    span, busy = thread_busy_s(args.trace / f"{name}.json")
                    print(f"traced {name}: drawn {drawn:.2f} s, run done {seconds:.2f} s (trace spans {span:.2f} s);"
                          " busy: " + ", ".join(f"{thread} {s:.2f} s" for thread, s in busy.items()), flush=True)
                page.context.close()
            browser.close()
        rss, peak = _memory_mb(proc.pid)
        median = statistics.median
        drawn = lambda changes: median(d for d, _ in changes)  # noqa: E731
        done = lambda changes: median(s for _, s in changes)  # noqa: E731
        print(f"warm, median of {args.repeats}: first paint {median(paints):.2f} s (target <= 3 s; run done "
              f"{median(idles):.2f} s), from the click to the change drawn (target <= 1 s) / to the run done: "
              f"recolor {drawn(recolors):.2f} / {done(recolors):.2f} s, filter {drawn(filters):.2f} / "
              f"{done(filters):.2f} s, selection to panel {drawn(selections):.2f} / {done(selections):.2f} s "
              f"(target <= 5 s){'; beside a one-thread training run' if training else ''}; "
              f"server memory {rss:.0f} MB now, {peak:.0f} MB peak (target <= 1536 MB); "
              f"{sum(new for new, _ in remounts)} of {len(remounts)} recolors and filters mounted a new chart")
    finally:
        proc.terminate()
        proc.wait(10)
        if training is not None:
            training.kill()


if __name__ == "__main__":
    main()
