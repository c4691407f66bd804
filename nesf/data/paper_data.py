"""Reader for the paper's dataset folders (`dataset_<NAME>_<split>/dataset.pkl` + `dataset_attr.json`).

The pickle holds `(cart_coords, species_idx, abc, angles_in_radians, material_id)` tuples. It is read with a
restricted unpickler that accepts the numpy globals a numpy array needs and nothing else: any other global is
refused with `NesfError`, never executed.
"""

from __future__ import annotations

import io
import json
import math
import pickle
from pathlib import Path

import numpy as np

from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.core.lattice import DATA_FRAME_TOLERANCE, frame_holding

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file)
        self._source = source

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            import numpy.core.multiarray  # noqa: F401  (both spellings resolve on numpy 1 and 2)

            return super().find_class(module, name)
        raise NesfError(f"{self._source}: refusing pickle global {module}.{name} (only numpy arrays are allowed)")


def load_restricted_pickle(path: Path):
    """Unpickle `path` allowing numpy array globals only."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(data), str(path)).load()
    except NesfError:
        raise
    except Exception as exc:  # corrupt or truncated pickle
        raise NesfError(f"{path}: not a readable dataset pickle ({type(exc).__name__}: {exc})") from exc


def crystal_from_paper_entry(entry, sidx_to_z, source: str) -> Crystal:
    """One pickle tuple -> Crystal, choosing the lattice frame (pymatgen default or VESTA) that holds its atoms."""
    try:
        cart_coords, species_idx, abc, angles_rad, material_id = entry
    except (TypeError, ValueError) as exc:
        raise NesfError(f"{source}: entry is not a (coords, species, abc, angles, id) tuple") from exc
    cart_coords = np.asarray(cart_coords, dtype=np.float64).reshape(-1, 3)
    species_idx = np.asarray(species_idx, dtype=np.int64).reshape(-1)
    if species_idx.size and (species_idx.min() < 0 or species_idx.max() >= len(sidx_to_z)):
        raise NesfError(f"{source}: {material_id}: species index outside the vocabulary of {len(sidx_to_z)}")
    angles_deg = [math.degrees(float(x)) for x in angles_rad]
    lattice = frame_holding(abc, angles_deg, cart_coords, DATA_FRAME_TOLERANCE)
    if lattice is None:
        raise NesfError(f"{source}: {material_id}: lattice parameters {list(abc)}, {angles_deg} form no cell")
    species = np.asarray(sidx_to_z, dtype=np.int64)[species_idx]
    return Crystal(lattice, cart_coords, species, str(material_id))


def read_paper_split(folder: Path) -> tuple[list[Crystal], list[int]]:
    """Crystals of one split folder and the folder's species vocabulary (index -> atomic number)."""
    folder = Path(folder)
    attr_path = folder / "dataset_attr.json"
    pkl_path = folder / "dataset.pkl"
    if not attr_path.is_file():
        raise NesfError(f"{folder}: missing dataset_attr.json")
    if not pkl_path.is_file():
        raise NesfError(f"{folder}: missing dataset.pkl")
    try:
        attr = json.loads(attr_path.read_text())
        sidx_to_z = [int(z) for z in attr["sidx_to_z"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise NesfError(f"{attr_path}: not a valid dataset_attr.json ({exc})") from exc
    entries = load_restricted_pickle(pkl_path)
    if not isinstance(entries, list):
        raise NesfError(f"{pkl_path}: expected a list of entries, got {type(entries).__name__}")
    return [crystal_from_paper_entry(e, sidx_to_z, str(pkl_path)) for e in entries], sidx_to_z
