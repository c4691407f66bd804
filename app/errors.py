"""Show errors in the page, never a traceback.

`NesfError` (bad input: its message is written for the user) is shown as it is. Any other exception becomes a short
message with its type; the traceback goes to the server log only.
"""

from __future__ import annotations

import contextlib
import logging

import streamlit as st

from nesf.core.errors import NesfError

log = logging.getLogger("nesf.app")


def describe(exc: BaseException, what: str = "") -> str:
    """The message a user sees for `exc`."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, NesfError):
        return f"{prefix}{exc}"
    if isinstance(exc, MemoryError):
        return f"{prefix}out of memory (the input is too large for this machine)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text[:300]
    return f"{prefix}unexpected error ({type(exc).__name__}){': ' + text if text else ''}"


@contextlib.contextmanager
def shown_errors(what: str = "", *, container=None):
    """Run a block; on an exception show it with `st.error` (in `container` if given) and carry on.

    Use as `with shown_errors("Reading file.cif"): ...`. Streamlit's own control-flow exceptions (rerun, stop)
    pass through.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the point is to catch everything
        if type(exc).__module__.startswith("streamlit"):
            raise
        if not isinstance(exc, NesfError):
            log.exception("unexpected error in the app (%s)", what)
        (container or st).error(describe(exc, what), icon=":material/error:")

