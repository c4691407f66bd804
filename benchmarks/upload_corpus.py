"""What share of real-world structure files a model accepts, and why it refuses the others.

The corpus: the 288 structures of pymatgen's bundled AFLOW prototype library (Mehl et al., "The AFLOW Library of
Crystallographic Prototypes"), outside the paper's datasets, each written as a CIF in the file's own setting (as the
library stores it: orientation, origin and axes as published) and read through the app's upload path
(`nesf.data.structure_io.read_structures`, which brings each to the canonical frame) and the model's range check.
Each refusal is counted by its reason; a canonical cell past the box only is accepted where another setting fits
(frame selection); where the conventional cell is out of range, whether an orthohexagonal, primitive or Niggli
cell that fits would be offered.

    python benchmarks/upload_corpus.py [--checkpoint checkpoints/lcs6a.pt] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def corpus() -> list[tuple[str, str]]:
    """(name, CIF text) of every AFLOW prototype pymatgen ships."""
    import pymatgen.analysis.prototypes as prototypes
    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter

    path = Path(list(prototypes.__path__)[0]) / "aflow_prototypes.json.gz"
    files = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for entry in json.load(gzip.open(path, "rt")):
            structure = Structure.from_dict(entry["snl"])
            files.append((entry["tags"]["aflow"], str(CifWriter(structure))))
    return files


def reason(message: str) -> str:
    """A reader's refusal message -> its kind (ModelRange refusals carry their kind: `RangeProblem.kind`)."""
    return "disordered structure" if "disordered" in message else re.sub(r"^[^:]*: ", "", message)[:60]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints" / "lcs6a.pt")
    parser.add_argument("--json", type=Path, default=None, help="write the per-file outcomes here")
    args = parser.parse_args()

    from nesf.api import Autoencoder
    from nesf.core.errors import NesfError
    from nesf.data.structure_io import read_structures
    from nesf.model.model_range import PROBLEM_KINDS

    model = Autoencoder.from_checkpoint(args.checkpoint, "cpu")
    outcomes, reasons, offered, declined = [], collections.Counter(), collections.Counter(), collections.Counter()
    moved = 0  # accepted only in another setting than the canonical one
    slowest = 0.0
    for name, text in corpus():
        start = time.process_time()
        try:
            crystal = read_structures(text.encode(), f"{name}.cif")[0]
        except NesfError as exc:
            kind = reason(str(exc))
            reasons[kind] += 1
            outcomes.append({"name": name, "accepted": False, "reason": kind, "message": str(exc)})
            continue
        finally:
            slowest = max(slowest, time.process_time() - start)
        problems = model.range.problems(crystal)
        if not problems:
            outcomes.append({"name": name, "accepted": True, "formula": crystal.formula, "atoms": crystal.num_atoms})
            continue
        if all(p.kind == "box" for p in problems):  # another setting of the same cell may fit (frame selection)
            try:
                model.select_frames([crystal])
                moved += 1
                outcomes.append({"name": name, "accepted": True, "formula": crystal.formula,
                                 "atoms": crystal.num_atoms, "setting": "another setting fits the box"})
                continue
            except NesfError:
                pass
        kind = PROBLEM_KINDS[problems[0].kind]
        reasons[kind] += 1
        offers, declined_cells = model.cell_offers(crystal)
        if offers:
            offered[offers[0].meta["cell"]] += 1
        elif declined_cells:
            declined[declined_cells[0].meta["cell"]] += 1
        outcomes.append({"name": name, "accepted": False, "reason": kind,
                         "message": "; ".join(p.message for p in problems),
                         "offered": offers[0].meta["cell"] if offers else None,
                         "declined": declined_cells[0].meta["cell"] if declined_cells else None})
    total = len(outcomes)
    accepted = sum(o["accepted"] for o in outcomes)
    print(f"model {args.checkpoint.name}: range {model.range.summary()}")
    print(f"\n{total} AFLOW prototype CIFs: {accepted} accepted ({100 * accepted / total:.1f} %; {moved} of them in "
          f"another setting than the canonical one, which reaches past the box), "
          f"{sum(offered.values())} more with another cell offered "
          f"({100 * (accepted + sum(offered.values())) / total:.1f} % in all); slowest read {slowest:.2f} s CPU\n")
    print("| refusal reason (first named) | files |\n|---|---|")
    for kind, count in reasons.most_common():
        print(f"| {kind} | {count} |")
    if offered:
        print("\n| cell offered instead | files |\n|---|---|")
        for kind, count in offered.most_common():
            print(f"| {kind} | {count} |")
    if declined:
        print("\n| cell that fits but is not offered (measured below the offer threshold) | files |\n|---|---|")
        for kind, count in declined.most_common():
            print(f"| {kind} | {count} |")
    if args.json:
        args.json.write_text(json.dumps(outcomes, indent=1))


if __name__ == "__main__":
    main()
