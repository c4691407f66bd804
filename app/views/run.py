"""Runs a page body with the context the sidebar made, showing any error in the page."""

from app import state
from app.errors import shown_errors


def run_page(module, title: str) -> None:
    ctx = state.context()
    with shown_errors(title):
        module.render(ctx)
