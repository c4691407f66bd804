"""Runs a page body with the context the sidebar made, showing any error in the page."""

import streamlit as st

from app.errors import shown_errors


def run_page(module, title: str) -> None:
    ctx = st.session_state["_ctx"]
    with shown_errors(title):
        module.render(ctx)
