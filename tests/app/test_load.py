"""Load: 10 browser sessions at once on one `streamlit run` server of the shipped checkpoint.

Every session (its own Chromium context, all driven by one asyncio Playwright) uploads its own CIF on the
Reconstruct page and waits for the reconstruction, then opens the Interpolate page through the sidebar, picks its
own pair of atlas crystals and waits for the decoded path. The inputs differ between sessions, so the server really
computes 10 reconstructions and 10 interpolations at the same time (no session is served another's cached result).

Memory: the server's resident set size (RSS) is read after one warm-up session (model, atlas, imports and the
pages' first run are then loaded: what every server pays once), sampled during the load, and read after it.
- After the first wave it may be at most LOAD_GROWTH_MB over the warm-up figure: 40 MB per session for what a
  session leaves behind (its session state, uploaded file and download buttons' files: well under 1 MB; Streamlit
  keeps a closed session for server.disconnectedSessionTTL, 120 s) and for the allocator's arenas, which keep part
  of the high-water mark of 10 decodes running at once in 10 threads (the app trims them after every run; measured
  +190 and +145 MB on 2 cores, +280 MB before the trim). A per-session copy of the atlas or of a model exceeds it.
- A second wave of 10 new sessions (`NESF_LOAD_WAVES=2`) may add at most WAVE_GROWTH_MB more (measured +18 and
  +60 MB): the memory of a server
  whose caches are bounded reaches a plateau, while one that keeps something per computation (an unbounded cache,
  a leak of ~10 MB a session or more) grows with every wave and fails.
- The peak during a wave may be at most PEAK_GROWTH_MB over the warm-up figure. Each decode holds ~100 MB of
  particle and activation tensors while it runs; the server runs two model computations at once and queues the rest
  (app.backend.COMPUTE_GATE). Measured +613 MB with that gate, on 2 cores, with the shipped 8 x 256 position field;
  without it all 10 decoded at once and the peak reached +846 MB here and +1022 MB on CI (with the paper-width
  field, +390 to +590 MB).

`pytest -s` prints the per-session times and the RSS figures.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from pathlib import Path

import pytest

from app_helpers import CHROMIUM, CHROMIUM_ARGS, NACL_CIF

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSIONS = int(os.environ.get("NESF_LOAD_SESSIONS", "10"))  # fewer: a quick check of one session's path
# waves of SESSIONS sessions; the second checks the plateau (no growth per session) and doubles the test's 3.5
# minutes on 2 cores, so the suite runs one and `NESF_LOAD_WAVES=2` runs both (BENCHMARKS.md has a two-wave run)
WAVES = int(os.environ.get("NESF_LOAD_WAVES", "1"))
# one session's reconstruction and interpolation, 10 running at once on 2 CPU cores: about 200 s on an idle 2-core
# machine (most of it the 10 browser contexts' rendering; the server's CPU is ~95 s a wave); NESF_LOAD_TIMEOUT_S
# widens it on a machine busy with other work
SESSION_TIMEOUT_S = float(os.environ.get("NESF_LOAD_TIMEOUT_S", "420"))
LOAD_GROWTH_MB = 400           # RSS after 10 concurrent sessions, over RSS after one warm-up session
WAVE_GROWTH_MB = 100           # RSS after a second wave of 10 sessions, over RSS after the first
PEAK_GROWTH_MB = 1000          # peak RSS during a wave, over RSS after the warm-up session


def rss_mb(pid: int) -> float:
    """Resident set size of process `pid` in MB (psutil when installed, else /proc/<pid>/status)."""
    try:
        import psutil
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS in /proc/{pid}/status") from None
    return psutil.Process(pid).memory_info().rss / 2**20


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far; NaN where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """The peak RSS of a process, sampled every 0.2 s in a thread while in the `with` block."""

    def __init__(self, pid: int):
        self.pid, self.peak = pid, rss_mb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


def nacl_cif(a: float) -> str:
    """The rock-salt NaCl cell with lattice constant `a` (Angstrom): a distinct input for every session."""
    return re.sub(r"(_cell_length_[abc]) 5.64", rf"\1 {a:.3f}", NACL_CIF)


def interpolation_pairs(app_env, count: int) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """`count` pairs ((id, formula), (id, formula)) of crystals of the default checkpoint's atlas, all formulas
    different, each id found first by the app's search (so the page's first match is that crystal)."""
    from nesf.checkpoint import list_checkpoints
    from nesf.core.search import search
    from nesf.inference.atlas import load_atlas

    directory = Path(app_env["NESF_CHECKPOINT_DIR"])
    shipped = [c for c in list_checkpoints([directory], shipped_directory=directory) if c.atlas_path]
    # the checkpoint the app opens on (app.settings.DEFAULT_CHECKPOINT), else the first shipped one
    shipped.sort(key=lambda c: (c.path.name != os.environ.get("NESF_DEFAULT_CHECKPOINT", "lcs6a.pt"), c.name))
    table = load_atlas(Path(shipped[0].atlas_path)).table.reset_index(drop=True)
    ids, formulas = list(table["id"]), list(table["formula"])
    picked, seen = [], set()
    for i, (crystal_id, formula) in enumerate(zip(ids, formulas)):
        if formula in seen or not re.fullmatch(r"[A-Za-z0-9()]+", formula):
            continue
        found = search(ids, formulas, crystal_id, limit=1)
        if len(found) and found[0] == i:
            picked.append((crystal_id, formula))
            seen.add(formula)
        if len(picked) == 2 * count:
            break
    assert len(picked) == 2 * count, "the atlas has too few distinct crystals for the load test"
    return [(picked[2 * k], picked[2 * k + 1]) for k in range(count)]


async def _wait_idle(page, timeout_ms: int):
    """Until the script has finished running (no 'running' status widget)."""
    await page.wait_for_timeout(300)
    await page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                                 timeout=timeout_ms)


CHOICE_ATTEMPTS = 3


async def _choose(page, search_box, shown, crystal_id: str, timeout_ms: int) -> int:
    """Type `crystal_id` into a search box and press Enter, until `shown` (a locator of what the page shows once
    that crystal is chosen) is on the page.

    Seen in two full-suite runs on an idle 2-core machine (stops 9 and 10; other runs passed): one session whose
    interpolation never came, waiting out its whole timeout while its nine neighbours finished in ~190 s. Typing into
    one box while the script reruns for the other can be lost in the browser; a user would see the old text in the box
    and type again, and so does this (up to CHOICE_ATTEMPTS times). A choice the page never shows still fails the
    session, with the page's text.
    Returns how many times it typed (1: the first time took)."""
    deadline = time.monotonic() + timeout_ms / 1000
    typed = 0
    while time.monotonic() < deadline:
        if await search_box.input_value() != crystal_id:
            if typed == CHOICE_ATTEMPTS:
                break
            await search_box.fill(crystal_id)
            await search_box.press("Enter")
            typed += 1
            await _wait_idle(page, timeout_ms)
        if await shown.count():
            return typed
        await page.wait_for_timeout(1000)
    raise AssertionError(f"{crystal_id} typed {typed} times and never shown chosen; the page says: "
                         + (await page.locator('[data-testid="stMain"]').inner_text())[:1500])


async def one_session(browser, url: str, index: int, cif: Path, pair, timeout_ms: int) -> dict:
    """Reconstruct `cif`, then interpolate `pair`, in a new browser context; the seconds each took."""
    (src_id, src_formula), (dst_id, dst_formula) = pair
    context = await browser.new_context(viewport={"width": 1000, "height": 700})  # fewer pixels to render
    page = await context.new_page()
    page.set_default_timeout(timeout_ms)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    times = {}
    try:
        start = time.monotonic()
        await page.goto(f"{url}/reconstruct")
        main = page.locator('[data-testid="stMain"]')
        await main.locator('input[type="file"]').first.set_input_files(str(cif))
        # the result: the metrics of the reconstruction of this session's file, and its 3D view
        await main.get_by_text(f"{cif.name} · NaCl").first.wait_for()
        await main.get_by_text("Position error").first.wait_for()
        await main.get_by_text(re.compile(r"^8 → \d+$")).first.wait_for()
        await _wait_idle(page, timeout_ms)
        frame = await main.locator('iframe[title="st.iframe"]').last.element_handle()
        frame = await frame.content_frame()
        await frame.wait_for_selector('[data-testid="viewer-title"]', state="attached")
        titles = await frame.locator('[data-testid="viewer-title"]').all_inner_texts()
        assert titles[0].startswith("Input · NaCl"), titles
        assert re.fullmatch(r"Reconstruction · [A-Z][A-Za-z0-9()]*", titles[1]), titles  # a formula, not "no atoms"
        times["reconstruct_s"] = time.monotonic() - start
        times["reconstruction"] = titles[1].removeprefix("Reconstruction · ")

        start = time.monotonic()
        await page.locator('[data-testid="stSidebarNav"] a', has_text="Interpolate").first.click()
        await page.wait_for_function("() => document.querySelector('h1')?.innerText.includes('Interpolate')")
        await _wait_idle(page, timeout_ms)
        inputs = main.locator('input[aria-label$="id or formula"]')
        # the result: the path's headline (source → destination: the formulas of every step), its step table
        headline = main.get_by_text(f"{src_formula} → {dst_formula}").first
        times["typed"] = (await _choose(page, inputs.nth(0), main.get_by_text(f"{src_formula} → ").first, src_id,
                                        timeout_ms)
                          + await _choose(page, inputs.nth(1), headline, dst_id, timeout_ms))
        await main.get_by_text(re.compile(r"Step \d+ / 9")).first.wait_for()
        await main.locator('[data-testid="stDataFrame"]').first.wait_for()
        await _wait_idle(page, timeout_ms)
        times["interpolate_s"] = time.monotonic() - start
        times["path"] = (await main.locator("p", has_text=f"{src_formula} → {dst_formula}").first.inner_text())
    finally:
        times["errors"] = errors
        await context.close()
    return times


async def run_sessions(url: str, jobs: list[tuple[int, Path, tuple]], timeout_s: float) -> list[dict]:
    """`jobs` as concurrent sessions of one Chromium; each result, or the exception it ended with."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            async def timed(index, cif, pair):
                start = time.monotonic()
                result = await asyncio.wait_for(
                    one_session(browser, url, index, cif, pair, int(timeout_s * 1000)), timeout_s)
                return {"session": index, "total_s": time.monotonic() - start, **result}

            return await asyncio.gather(*(timed(*job) for job in jobs), return_exceptions=True)
        finally:
            await browser.close()


def _report(label: str, results: list) -> None:
    print(f"\n{label}")
    for r in results:
        if isinstance(r, BaseException):
            print(f"  FAILED: {type(r).__name__}: {str(r)[:300]}")
        else:
            print(f"  session {r['session']:2d}: reconstruct {r['reconstruct_s']:6.1f} s "
                  f"(NaCl → {r['reconstruction']}), interpolate {r['interpolate_s']:6.1f} s, "
                  f"total {r['total_s']:6.1f} s, ids typed {r['typed']} times (2: none lost) · {r['path'][:60]}")


def test_ten_sessions_reconstruct_and_interpolate_with_bounded_memory(streamlit_server, app_env, tmp_path):
    pid, url = streamlit_server.proc.pid, streamlit_server.url
    pairs = interpolation_pairs(app_env, 2 * SESSIONS + 1)
    cifs = []
    for i in range(2 * SESSIONS + 1):
        cifs.append(tmp_path / f"NaCl-{i:02d}.cif")
        cifs[-1].write_text(nacl_cif(5.30 + 0.03 * i))
    rss_start, cpu_start = rss_mb(pid), cpu_s(pid)

    # warm-up: one session loads the model, the atlas and the pages' imports (paid once per server)
    t0 = time.monotonic()
    warm = asyncio.run(run_sessions(url, [(2 * SESSIONS, cifs[-1], pairs[-1])], SESSION_TIMEOUT_S))
    _report(f"warm-up session ({time.monotonic() - t0:.1f} s wall, server CPU {cpu_s(pid) - cpu_start:.1f} s)",
            warm)
    assert not isinstance(warm[0], BaseException), f"the warm-up session failed: {warm[0]!r}"
    rss_warm = rss_mb(pid)

    waves = []
    for wave in range(WAVES):
        jobs = [(i, cifs[i], pairs[i]) for i in range(wave * SESSIONS, (wave + 1) * SESSIONS)]
        t0, cpu0 = time.monotonic(), cpu_s(pid)
        with RssSampler(pid) as sampler:
            results = asyncio.run(run_sessions(url, jobs, SESSION_TIMEOUT_S))
        wall = time.monotonic() - t0
        time.sleep(1.0)
        waves.append({"results": results, "wall": wall, "peak": sampler.peak, "after": rss_mb(pid)})
        _report(f"wave {wave + 1}: {SESSIONS} sessions at once, {wall:.1f} s wall, server CPU "
                f"{cpu_s(pid) - cpu0:.1f} s; server RSS peak {sampler.peak:.0f} MB, after {waves[-1]['after']:.0f} MB",
                results)
        failed = [r for r in results if isinstance(r, BaseException)]
        assert not failed, (f"{len(failed)} of {SESSIONS} sessions did not finish: {failed[0]!r}\n"
                            + streamlit_server.log.read_text()[-3000:])

    print(f"\nserver RSS: {rss_start:.0f} MB at start, {rss_warm:.0f} MB after the warm-up session; "
          + "; ".join(f"wave {i + 1} peak {w['peak']:.0f} MB, after {w['after']:.0f} MB" for i, w in enumerate(waves)))
    errors = [e for w in waves for r in w["results"] for e in r["errors"]]
    assert not errors, f"page errors: {errors[:5]}"
    growth = waves[0]["after"] - rss_warm
    assert growth < LOAD_GROWTH_MB, (f"10 sessions grew the server's RSS by {growth:.0f} MB "
                                     f"(bound {LOAD_GROWTH_MB} MB)")
    peak = max(w["peak"] for w in waves) - rss_warm
    assert peak < PEAK_GROWTH_MB, f"the server's RSS peaked {peak:.0f} MB over its warm-up figure"
    if len(waves) < 2:
        return
    again = waves[1]["after"] - waves[0]["after"]
    assert again < WAVE_GROWTH_MB, (f"a second wave of 10 sessions grew the server's RSS by {again:.0f} MB more "
                                    f"(bound {WAVE_GROWTH_MB} MB): memory grows with every session")
