"""Session state, typed: everything one browser session keeps between reruns and hands from page to page.

The values the app keeps itself live under namespaced keys ("nesf.<name>") and are read and written only through
the functions here. Widgets keep their own keys (`key=` of a widget is its state); the few that one page sets for
another (the Interpolate page's endpoints, its step slider) are written here too, so no page reaches into another's.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from nesf.core.config import MapConfig

_PREFIX = "nesf."
PAGES = _PREFIX + "pages"                  # {"map" | "reconstruct" | "interpolate" | "model": st.Page}
CONTEXT = _PREFIX + "context"              # the AppContext the sidebar made on this run
MAP_SETTINGS = _PREFIX + "map_settings"    # MapSettings the map was last computed with
MAP_RECOMPUTE = _PREFIX + "map_recompute"  # compute the map even when its settings are the shipped map's
MAP_SELECTION = _PREFIX + "map_selection"  # rows of the active atlas selected on the map
WATCHED_RUN = _PREFIX + "watched_run"      # id of the training run this session follows
FINISHED_RUN = _PREFIX + "finished_run"    # id of the run that ended while followed (its message is shown)
PLAYING = _PREFIX + "interp_playing"       # the Interpolate page's walker is playing

INTERP_STEP = "interp_step"                # the Interpolate page's step slider (a widget key)


def _get(key: str, default=None):
    return st.session_state.get(key, default)


def _set(key: str, value) -> None:
    st.session_state[key] = value


# -- navigation ---------------------------------------------------------------------------------------------------
def set_pages(pages: dict) -> None:
    _set(PAGES, pages)


def switch_page(name: str) -> None:
    st.switch_page(_get(PAGES)[name])


def set_context(context) -> None:
    _set(CONTEXT, context)


def context():
    """The AppContext of this run (set by app/main.py before the page runs)."""
    return _get(CONTEXT)


def keep_choice(key: str, options: list, default=None) -> None:
    """Make the widget state `key` one of `options` (the first, or `default`, when it is not)."""
    if _get(key) not in options:
        _set(key, default if default is not None else options[0])


def set_default(key: str, value) -> None:
    """Give the widget state `key` a first value (a text box's initial text)."""
    if key not in st.session_state:
        _set(key, value)


ATLAS_OPTION = "__atlas__"  # prefix of the sidebar's option for a checkpoint's own atlas ("__atlas__:<path>")


# -- latent map ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MapSettings:
    """How the latent map is drawn: "tsne" or "pca", and the map's settings."""

    method: str = "tsne"
    maps: MapConfig = MapConfig()


def map_settings(shipped: MapConfig) -> MapSettings:
    """The map's settings: those last asked for, else those of the atlas's own t-SNE map (`shipped`)."""
    current = _get(MAP_SETTINGS)
    if current is None:
        current = MapSettings(maps=shipped)
        _set(MAP_SETTINGS, current)
    return current


def ask_for_map(settings: MapSettings) -> None:
    """The map is to be computed with `settings` (t-SNE is recomputed even with the shipped map's settings)."""
    _set(MAP_SETTINGS, settings)
    _set(MAP_RECOMPUTE, settings.method == "tsne")


def map_recompute() -> bool:
    return bool(_get(MAP_RECOMPUTE, False))


def map_method() -> str:
    """"tsne" or "pca": the method of the map last drawn (the Interpolate page draws its path on the same)."""
    current = _get(MAP_SETTINGS)
    return current.method if current is not None else MapSettings.method


def map_selection() -> list[int]:
    return list(_get(MAP_SELECTION) or [])


def select_on_map(rows: list[int]) -> None:
    _set(MAP_SELECTION, [int(r) for r in rows])


def _set_interpolation_end(end: str, row: int) -> None:
    if end not in ("src", "dst"):
        raise ValueError(f"interpolation end {end!r}: use 'src' or 'dst'")
    _set(f"interp_{end}_from", "Map selection")
    _set(f"interp_{end}_mapsel", int(row))


def use_for_interpolation(end: str, row: int) -> None:
    """Open the Interpolate page with map row `row` as its "src" (source) or "dst" (destination)."""
    _set_interpolation_end(end, row)
    switch_page("interpolate")


def use_for_interpolation_pair(source_row: int, destination_row: int) -> None:
    """Open the Interpolate page between map rows `source_row` and `destination_row`."""
    _set_interpolation_end("src", source_row)
    _set_interpolation_end("dst", destination_row)
    switch_page("interpolate")


# -- interpolation walker -----------------------------------------------------------------------------------------
def walker_step(steps: int) -> int:
    """The step the walker shows, kept within 0..steps-1."""
    if _get(INTERP_STEP, 0) >= steps:
        _set(INTERP_STEP, 0)
    return int(_get(INTERP_STEP, 0))


def advance_walker(steps: int) -> None:
    _set(INTERP_STEP, (int(_get(INTERP_STEP, 0)) + 1) % steps)


def playing() -> bool:
    return bool(_get(PLAYING, False))


def toggle_playing() -> None:
    _set(PLAYING, not playing())


# -- training runs ------------------------------------------------------------------------------------------------
def watched_run() -> str | None:
    return _get(WATCHED_RUN)


def finished_run() -> str | None:
    return _get(FINISHED_RUN)


def watch_run(run_id: str | None) -> None:
    """Follow `run_id` (None: follow none); a newly followed run clears the last finished one."""
    _set(WATCHED_RUN, run_id)
    if run_id is not None:
        _set(FINISHED_RUN, None)


def run_finished(run_id: str) -> None:
    _set(WATCHED_RUN, None)
    _set(FINISHED_RUN, run_id)
