"""NeSF Explorer: `streamlit run app/main.py`.

Five pages (Latent map, Reconstruct, Interpolate, Generate, Model) over one shared sidebar (checkpoint, device, dataset,
decoding preset, Retrain). Opens on the shipped checkpoint and its atlas: no download, no GPU needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import links, memo, state  # noqa: E402
from app.ui import map_chart, sidebar  # noqa: E402

st.set_page_config(page_title="NeSF Explorer", page_icon=str(Path(__file__).with_name("static") / "favicon.png"),
                   layout="wide")


PAGE_DIR = Path(__file__).resolve().parent / "views"
pages = {
    "map": st.Page(PAGE_DIR / "page_map.py", title="Latent map", icon=":material/scatter_plot:", url_path="map",
                   default=True),
    "reconstruct": st.Page(PAGE_DIR / "page_reconstruct.py", title="Reconstruct", icon=":material/view_in_ar:",
                           url_path="reconstruct"),
    "interpolate": st.Page(PAGE_DIR / "page_interpolate.py", title="Interpolate", icon=":material/timeline:",
                           url_path="interpolate"),
    "generate": st.Page(PAGE_DIR / "page_generate.py", title="Generate", icon=":material/auto_awesome:",
                        url_path="generate"),
    "model": st.Page(PAGE_DIR / "page_model.py", title="Model", icon=":material/neurology:", url_path="model"),
}
state.set_pages(pages)
navigation = st.navigation(list(pages.values()))
MAP_PAGES = ("map", "interpolate", "generate")
try:
    if (navigation.url_path or "map") in MAP_PAGES:
        map_chart.preload_plotly()
    context = sidebar.render()
    state.set_context(context)
    links.show_problems()
    link_area = st.sidebar.empty()
    links.copy_link_control(navigation.url_path or "map", context, link_area)  # there while the page runs
    navigation.run()
    # written again after the page ran, so the link holds what this run's page did (a new map method, a selection)
    links.copy_link_control(navigation.url_path or "map", context, link_area)
finally:
    memo.release_memory()  # what this run freed goes back to the system, not to this thread's arena
