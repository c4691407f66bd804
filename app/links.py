"""Deep links: the URL's query string holds a view (checkpoint, dataset, decoding; the map's method, coloring,
search, element, range and category filters, element of the element-fraction coloring and selected crystals; the interpolation's ends, steps and method), so a link opened in a
fresh browser shows the same view. Uploaded structures are not part of a link.

`apply_link` runs once per browser session, before the widgets are drawn, and turns the link into widget state;
a parameter that is unknown or stale (a checkpoint that is gone, a crystal id not in the dataset) is left out with a
message naming it, and the rest of the view opens. `link_query` builds the query string of the current view.
"""

from __future__ import annotations

import math

from urllib.parse import urlencode

import streamlit as st

from app import state
from nesf.core.config import MapConfig

APPLIED = "nesf.link_applied"
PROBLEMS = "nesf.link_problems"
PROBLEM_AREA = "nesf.link_problem_area"   # the container at the top of the page the link's warnings go to
PENDING_SELECTION = "nesf.link_selection"   # crystal ids of the link, resolved once the dataset is loaded
PENDING_DATASET = "nesf.link_dataset"
ATLAS = "atlas"
MAX_SELECTED_IN_LINK = 60
PENDING_FILTERS = "nesf.link_filters"     # column -> (low, high) or category list, resolved by the map's filters
FILTER_BOUNDS = "nesf.map_filter_bounds"  # column -> (low, high) of the active dataset, recorded by the map page
# link parameter -> map table column: ranges "low~high", categories "a,b"
RANGE_PARAMS = {"vol": "volume_angstrom3", "atoms": "num_atoms", "sg": "spacegroup_number", "nel": "num_elements",
                "err": "reconstruction_error_angstrom"}
CATEGORY_PARAMS = {"sys": "crystal_system", "split": "split"}
MAP_METHODS = ("tsne", "pca")
INTERPOLATIONS = ("linear", "spherical")
DECODE_MODES = ("fast", "paper", "checkpoint")


def _problem(message: str) -> None:
    st.session_state.setdefault(PROBLEMS, []).append(message)


def apply_link(checkpoints) -> None:
    """Turn the link's parameters into widget state (once per session). `checkpoints`: the CheckpointInfo found."""
    if st.session_state.get(APPLIED):
        return
    st.session_state[APPLIED] = True
    params = {key: st.query_params.get(key) for key in st.query_params}
    if not params:
        return
    by_name = {c.path.stem: str(c.path) for c in checkpoints}
    if "ckpt" in params:
        if params["ckpt"] in by_name:
            st.session_state["checkpoint"] = by_name[params["ckpt"]]
        else:
            _problem(f"checkpoint {params['ckpt']!r} is not here (found: {', '.join(by_name) or 'none'}); "
                     f"opened the default one")
    if "data" in params:
        st.session_state[PENDING_DATASET] = params["data"]
    _choice(params, "decode", DECODE_MODES, "decode_mode", "decoding")
    if "method" in params:
        if params["method"] in MAP_METHODS:
            current = state.map_settings(MapConfig())
            from dataclasses import replace

            state.ask_for_map(replace(current, method=params["method"]))
            st.session_state[state.MAP_RECOMPUTE] = False  # the shipped map where it is the same
        else:
            _problem(f"map method {params['method']!r} is not one of {', '.join(MAP_METHODS)}")
    for key, widget in (("color", "map_color"), ("q", "map_search")):
        if params.get(key):
            st.session_state[widget] = params[key]
    if params.get("el"):
        st.session_state["map_filter_elements"] = [s for s in params["el"].split(",") if s]
        _choice(params, "elmode", ("all", "any", "none"), "map_filter_mode", "element filter")
    if params.get("colorel"):
        st.session_state["map_color_element"] = params["colorel"]
    _pending_filters(params)
    if params.get("sel"):
        st.session_state[PENDING_SELECTION] = [s for s in params["sel"].split(",") if s]
    for end in ("src", "dst"):
        if params.get(end):
            st.session_state[f"interp_{end}_from"] = "Dataset"
            st.session_state[f"interp_{end}_query"] = params[end]
    if "steps" in params:
        try:
            from app import settings

            st.session_state["interp_steps"] = min(max(2, int(params["steps"])), settings.MAX_INTERPOLATION_STEPS)
        except ValueError:
            _problem(f"steps {params['steps']!r} is not a whole number")
    _choice(params, "interp", INTERPOLATIONS, "interp_method", "interpolation")


def _pending_filters(params: dict) -> None:
    """The link's range and category filters, kept until the map page knows the dataset's columns."""
    pending = {}
    for key, column in RANGE_PARAMS.items():
        if params.get(key):
            try:
                low, high = (float(v) for v in params[key].split("~"))
            except ValueError:
                _problem(f"filter {key}={params[key]!r} is not a range low~high (e.g. {key}=20~80)")
                continue
            pending[column] = (min(low, high), max(low, high))
    for key, column in CATEGORY_PARAMS.items():
        if params.get(key):
            pending[column] = [v for v in params[key].split(",") if v]
    if pending:
        st.session_state[PENDING_FILTERS] = pending


def linked_range(column: str, widget: str, low, high, cast, label: str, step=None) -> None:
    """Set the range filter `widget` of `column` (bounds `low`..`high` on a grid of `step`, called `label` on the
    page) to the link's range, clamped to the bounds and widened onto the grid; a range outside them is refused with
    a message in the page's words."""
    wanted = st.session_state.get(PENDING_FILTERS, {}).pop(column, None)
    if wanted is None:
        return
    lo, hi = max(wanted[0], low), min(wanted[1], high)
    if lo > hi:
        refuse(f"the {label} filter's range {wanted[0]:g} to {wanted[1]:g} lies outside this dataset's {low:g} to "
               f"{high:g}", widget)
        return
    if step:
        lo, hi = low + math.floor((lo - low) / step + 1e-9) * step, low + math.ceil((hi - low) / step - 1e-9) * step
        decimals = max(0, -math.floor(math.log10(step)))
        lo, hi = round(min(lo, high), decimals), round(min(hi, high), decimals)
    st.session_state[widget] = (cast(lo), cast(hi))


def linked_categories(column: str, widget: str, options: list[str], label: str) -> None:
    """Set the category filter `widget` (called `label` on the page) to the link's categories that `options` holds;
    the others are named."""
    wanted = st.session_state.get(PENDING_FILTERS, {}).pop(column, None)
    if wanted is None:
        return
    unknown = [v for v in wanted if v not in options]
    if unknown:
        refuse(f"{label.lower()} {', '.join(unknown)} not in this dataset", widget,
               [v for v in wanted if v in options])
    else:
        st.session_state[widget] = wanted


def _choice(params: dict, key: str, allowed, widget: str, what: str) -> None:
    if key not in params:
        return
    if params[key] in allowed:
        st.session_state[widget] = params[key]
    else:
        _problem(f"{what} {params[key]!r} is not one of {', '.join(allowed)}")


def resolve_dataset(options: list[str], atlas_choice: str) -> None:
    """Apply the link's dataset once the sidebar knows the dataset options."""
    wanted = st.session_state.pop(PENDING_DATASET, None)
    if wanted is None:
        return
    value = atlas_choice if wanted == ATLAS else wanted
    if value in options:
        st.session_state["dataset_choice"] = value
    else:
        _problem(f"dataset {wanted!r} is not available here; opened {'the atlas' if options else 'none'}")


def resolve_selection(atlas) -> None:
    """Apply the link's selected crystal ids once the active dataset is loaded."""
    wanted = st.session_state.pop(PENDING_SELECTION, None)
    if not wanted or atlas is None:
        return
    ids = atlas.table["id"].astype(str).tolist()
    row_of = {crystal_id: row for row, crystal_id in enumerate(ids)}
    rows = [row_of[i] for i in wanted if i in row_of]
    missing = [i for i in wanted if i not in row_of]
    if missing:
        _problem(f"crystal id(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} not in "
                 f"{atlas.title}; selected the others")
    if rows:
        state.select_on_map(rows)


def refuse(message: str, widget: str, fallback=None) -> None:
    """A linked value a page cannot use: say so (now, at the top of the page, even where the widget sits in a closed
    popover) and reset the widget to `fallback` (None: its default)."""
    _warn(message, st.session_state.get(PROBLEM_AREA))
    if fallback is None:
        st.session_state.pop(widget, None)
    else:
        st.session_state[widget] = fallback


def show_problems() -> None:
    """The link's problems found so far, at the top of the page; later ones (`refuse`) join them there."""
    area = st.session_state[PROBLEM_AREA] = st.container()
    for message in st.session_state.pop(PROBLEMS, []):
        _warn(message, area)


def _warn(message: str, area=None) -> None:
    # "~" would strike text through in Markdown; backticks would show code
    text = message.replace("~", "\\~").replace("`", "'")
    (area or st).warning(f"Link: {text}.", icon=":material/link_off:")


def link_query(page: str, ctx) -> dict:
    """The query parameters of the current view of `page` ("map", "interpolate", ...)."""
    ss = st.session_state
    params = {}
    if ctx.checkpoint is not None:
        params["ckpt"] = ctx.checkpoint.path.stem
    choice = ss.get("dataset_choice")
    if choice:
        params["data"] = ATLAS if choice.startswith(state.ATLAS_OPTION) else choice
    params["decode"] = ctx.decode_mode
    if page == "map":
        params["method"] = state.map_method()
        for key, widget in (("color", "map_color"), ("q", "map_search")):
            if ss.get(widget):
                params[key] = ss[widget]
        if ss.get("map_filter_elements"):
            params["el"] = ",".join(ss["map_filter_elements"])
            params["elmode"] = ss.get("map_filter_mode") or "all"
        if ss.get("map_color") == "element fraction" and ss.get("map_color_element"):
            params["colorel"] = ss["map_color_element"]
        params.update(_filter_params(ctx))
        rows = state.map_selection()
        if rows and ctx.atlas is not None:
            ids = ctx.atlas.table["id"].astype(str)
            params["sel"] = ",".join(ids.iloc[r] for r in rows[:MAX_SELECTED_IN_LINK] if r < len(ids))
    if page == "interpolate":
        for end in ("src", "dst"):
            crystal_id = _endpoint_id(end, ctx)
            if crystal_id:
                params[end] = crystal_id
        for key, widget in (("steps", "interp_steps"), ("interp", "interp_method")):
            if ss.get(widget) is not None:
                params[key] = ss[widget]
    return params


def _filter_params(ctx) -> dict:
    """The map's active range filters (those narrower than the dataset's bounds) and category filters."""
    if ctx.atlas is None:
        return {}
    ss, params = st.session_state, {}
    bounds = ss.get(FILTER_BOUNDS, {})
    pending = ss.get(PENDING_FILTERS, {})  # a link's filters not yet applied by the page (its first run)
    for key, column in RANGE_PARAMS.items():
        value = pending.get(column) or ss.get(f"map_filter_{column}_{ctx.atlas.title}")
        if value is not None and (column in pending or column in bounds and tuple(value) != tuple(bounds[column])):
            params[key] = f"{value[0]:g}~{value[1]:g}"
    for key, column in CATEGORY_PARAMS.items():
        kept = pending.get(column) or ss.get(f"map_filter_{column}_{ctx.atlas.title}")
        if kept:
            params[key] = ",".join(kept)
    return params


def _endpoint_id(end: str, ctx) -> str | None:
    ss = st.session_state
    source = ss.get(f"interp_{end}_from")
    if source == "Map selection" and ctx.atlas is not None and ss.get(f"interp_{end}_mapsel") is not None:
        return str(ctx.atlas.table["id"].iloc[int(ss[f"interp_{end}_mapsel"])])
    if source in (None, "Dataset") and ss.get(f"interp_{end}_query"):
        return str(ss[f"interp_{end}_query"])
    return None


def copy_link_control(page: str, ctx, area=None) -> None:
    """The "Copy link" popover (in `area`, default the sidebar): the URL of this view (st.code has a copy button).
    Written after the page has run, so it holds what the page did in this run."""
    query = urlencode(link_query(page, ctx))
    base = (st.context.url or "").split("?")[0] if hasattr(st.context, "url") else ""
    with (area or st.sidebar).popover("Copy link", icon=":material/link:"):
        st.code(f"{base}?{query}", language=None, wrap_lines=True)
        st.caption("Opens this view in any browser. Uploaded structures are not part of a link.")
