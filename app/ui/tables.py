"""Figures in the app's tables: each at the precision it is measured to, and a mark for one that is absent."""

from __future__ import annotations


ABSENT = "–"  # a figure not measured (or not reported by the paper), rather than the table's "None"


def shown_value(key: str, value):
    """A stored figure at the precision it is measured to (percentages 0.1, Angstrom and degrees 0.001, seconds
    0.01, other readings 3 significant digits), so no cell reads 0.000000000000006; ABSENT where there is none."""
    if value is None or (isinstance(value, float) and value != value):
        return ABSENT
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    if key.endswith("_percent"):
        return round(float(value), 1)
    if key.endswith(("_angstrom", "_degrees")):
        return round(float(value), 3)
    if key.endswith(("_s", "_s_per_crystal")):
        return round(float(value), 2)
    return float(f"{float(value):.3g}")


def figures_column_config(table, first: str, tooltips: dict | None = None) -> dict:
    """A figures table's column settings: its `first` column (the names) pinned, every other column right-aligned as
    numbers are (a column holding an ABSENT mark beside numbers is text to the table, which would align it left), with
    `tooltips` ({column: full name}) as header tooltips."""
    import streamlit as st

    tooltips = tooltips or {}
    return {first: st.column_config.TextColumn(pinned=True),
            **{column: st.column_config.Column(column, help=tooltips.get(column), alignment="right")
               for column in table.columns if column != first}}
