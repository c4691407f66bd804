"""A latent map as a Chemiscope input file (chemiscope.org; `chemiscope` on PyPI): the crystals with their cells,
the t-SNE and PCA coordinates and every column of the map's table as structure properties, so the map opens in
Chemiscope's own linked map-and-structure viewer. Written with `chemiscope.write_input` (gzip JSON when the name
ends in .gz) and read back by `chemiscope.show_input`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from nesf.core.errors import NesfError

NUMERIC_KINDS = "biuf"


def _structure(crystal) -> dict:
    from pymatgen.core.periodic_table import Element

    cart = np.asarray(crystal.cart_coords, dtype=float)
    return {"size": int(crystal.num_atoms), "names": [Element.from_Z(int(z)).symbol for z in crystal.species],
            "x": cart[:, 0].tolist(), "y": cart[:, 1].tolist(), "z": cart[:, 2].tolist(),
            "cell": np.asarray(crystal.lattice, dtype=float).reshape(-1).tolist()}


def chemiscope_input(crystals, table: pd.DataFrame, maps: dict[str, np.ndarray], *, name: str,
                     description: str = "", rows=None) -> dict:
    """The Chemiscope input (a dict) of `crystals` with `table`'s columns and `maps` ({"t-SNE": (N, 2), ...}) as
    properties; `rows` picks a subset (a selection), in that order."""
    import chemiscope

    rows = np.arange(len(crystals)) if rows is None else np.asarray(list(rows), dtype=int)
    if not len(rows):
        raise NesfError("nothing to export: no crystals selected")
    table = table.reset_index(drop=True).iloc[rows]
    properties = {}
    for label, coords in maps.items():
        coords = np.asarray(coords, dtype=float)[rows]
        for axis in range(coords.shape[1]):
            properties[f"{label} {axis + 1}"] = {"target": "structure", "values": coords[:, axis].tolist()}
    for column in table.columns:
        values = table[column]
        if values.dtype.kind in NUMERIC_KINDS:
            numbers = values.to_numpy(dtype=float)
            if not np.isfinite(numbers).any():
                continue
            # NaN where not computed: Chemiscope reads Python's bare NaN tokens as missing values (never a -1 that
            # would sit on the color scale beside real values)
            entry = {"target": "structure", "values": numbers.tolist()}
            if not np.isfinite(numbers).all():
                entry["description"] = "NaN (missing) where not computed"
            properties[column] = entry
        else:
            properties[column] = {"target": "structure", "values": values.astype(str).tolist()}
    first_map = next(iter(maps), None)
    settings = {}
    if first_map is not None:
        settings = {"map": {"x": {"property": f"{first_map} 1"}, "y": {"property": f"{first_map} 2"}}}
        if "volume_angstrom3" in properties:
            settings["map"]["color"] = {"property": "volume_angstrom3"}
    return chemiscope.create_input(structures=[_structure(crystals[i]) for i in rows],
                                   metadata={"name": name, "description": description}, properties=properties,
                                   settings=settings)


def write_chemiscope(path, crystals, table: pd.DataFrame, maps: dict[str, np.ndarray], *, name: str,
                     description: str = "", rows=None) -> Path:
    """Write the Chemiscope input of a map to `path` (`.json` or `.json.gz`)."""
    import chemiscope

    data = chemiscope_input(crystals, table, maps, name=name, description=description, rows=rows)
    path = Path(path)
    chemiscope.write_input(str(path), structures=data["structures"], metadata=data["meta"],
                           properties=data["properties"], settings=data.get("settings"))
    return path


def chemiscope_bytes(crystals, table: pd.DataFrame, maps: dict[str, np.ndarray], *, name: str,
                     description: str = "", rows=None) -> bytes:
    """The gzip JSON file's bytes (for a download)."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_chemiscope(Path(folder) / "map.json.gz", crystals, table, maps, name=name,
                                description=description, rows=rows)
        return path.read_bytes()
