"""NeSF Explorer: `streamlit run app/main.py`.

Four pages (Latent map, Reconstruct, Interpolate, Model) over one shared sidebar (checkpoint, device, dataset,
decoding preset, Retrain). Opens on the shipped checkpoint and its atlas: no download, no GPU needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run app/main.py` puts app/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.errors import shown_errors  # noqa: E402
from app.ui import sidebar  # noqa: E402
from app.views import interpolate, latent_map, model, reconstruct  # noqa: E402

st.set_page_config(page_title="NeSF Explorer", page_icon=str(Path(__file__).with_name("static") / "favicon.png"),
                   layout="wide")


def _page(module, title: str, icon: str, url: str, default: bool = False) -> st.Page:
    def body():
        ctx = st.session_state["_ctx"]
        with shown_errors(title):
            module.render(ctx)

    body.__name__ = f"page_{url}"
    return st.Page(body, title=title, icon=icon, url_path=url, default=default)


pages = {
    "map": _page(latent_map, "Latent map", ":material/scatter_plot:", "map", default=True),
    "reconstruct": _page(reconstruct, "Reconstruct", ":material/view_in_ar:", "reconstruct"),
    "interpolate": _page(interpolate, "Interpolate", ":material/timeline:", "interpolate"),
    "model": _page(model, "Model", ":material/neurology:", "model"),
}
st.session_state["_pages"] = pages
navigation = st.navigation(list(pages.values()))
st.session_state["_ctx"] = sidebar.render()
navigation.run()
