"""Reading cost of the canonical frame: `nesf.core.canonical.canonical_structure` per structure (spglib's conventional
cell, the smallest equivalent setting, the datasets' frame), on pymatgen's bundled AFLOW prototypes and the first
rows of CDVAE's perov_5 and carbon_24 val CSVs. With `--against REV`, the same structures also go through
`nesf/core/canonical.py` as it was at git revision REV, in the same process, interleaved per set; the output gives both
times, their ratio, and how many cells differ (they must not, for a pure speed change).

    python benchmarks/bench_canonical.py [--rows 300] [--against HEAD~1] [--data-dir DATA]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def structure_sets(data_dir: Path, rows: int) -> dict[str, list]:
    import pandas as pd
    import pymatgen.analysis.prototypes as prototypes
    from pymatgen.core import Structure

    path = Path(list(prototypes.__path__)[0]) / "aflow_prototypes.json.gz"
    aflow = [Structure.from_dict(entry["snl"]) for entry in json.load(gzip.open(path, "rt"))]
    sets = {"AFLOW prototypes": [s for s in aflow if s.is_ordered]}
    for name in ("perov_5", "carbon_24"):
        csv = data_dir / name / "val.csv"
        if csv.is_file():
            sets[f"{name} val"] = [Structure.from_str(cif, fmt="cif") for cif in pd.read_csv(csv)["cif"][:rows]]
    return sets


def module_at(revision: str):
    source = subprocess.run(["git", "show", f"{revision}:nesf/core/canonical.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    folder = Path(tempfile.mkdtemp())
    (folder / "canonical_at_revision.py").write_text(source)
    spec = importlib.util.spec_from_file_location("canonical_at_revision", folder / "canonical_at_revision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def time_per_structure(function, structures) -> tuple[float, list]:
    started = time.perf_counter()
    cells = [function(s) for s in structures]
    return (time.perf_counter() - started) / len(structures) * 1e3, cells


def same_cell(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return (len(a) == len(b) and [s.Z for s in a.species] == [s.Z for s in b.species]
            and np.allclose(a.lattice.matrix, b.lattice.matrix) and np.allclose(a.frac_coords, b.frac_coords))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300, help="rows of each CDVAE val CSV")
    parser.add_argument("--against", default=None, help="a git revision whose nesf/core/canonical.py to time beside")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("NESF_DATA_DIR", ROOT / "data")))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from nesf.core.canonical import canonical_structure

    other = module_at(args.against) if args.against else None
    print(f"canonical_structure, ms per structure (CPU, {os.cpu_count()} cores)")
    header = "| structures | count | now |" + (f" at {args.against} | ratio | cells differing |" if other else "")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name, structures in structure_sets(args.data_dir, args.rows).items():
        now_ms, now_cells = time_per_structure(canonical_structure, structures)
        row = f"| {name} | {len(structures)} | {now_ms:.1f} |"
        if other:
            then_ms, then_cells = time_per_structure(other.canonical_structure, structures)
            differing = sum(not same_cell(a, b) for a, b in zip(now_cells, then_cells))
            row += f" {then_ms:.1f} | {then_ms / now_ms:.2f}x | {differing} |"
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
