"""Mutated structure files through the upload path (read -> check against a model -> reconstruct), one per line of
output, for `tests/test_fuzz.py`, which runs this in a child process so that a native crash shows as a failure.

    python -m tests.fuzz.uploads --count 1000 --seed 0 --checkpoint checkpoints/lcs6a.pt --out results.jsonl

Each output line: {"index", "mutation", "name", "status": "read" | "refused" | "error", "message", "seconds"};
"refused" is a NesfError (a message for the user), "error" any other exception (a bug). A "start" line with the
index is written and flushed before each file, so the parent can name the file that took the process down.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

EXTREME = ["nan", "NaN", "inf", "-inf", "1e300", "-1e300", "1e-300", "0", "-0", "1e30", "99999999999999999999",
           "-4", "1e-9", "0.0000001", "3.5e38", "1.8e308"]
MAX_ATOMS = 500
MAX_BYTES = 5_000_000


def seed_files() -> list[tuple[str, bytes]]:
    """Valid files of every supported format, built in code."""
    from pymatgen.core import Lattice, Structure

    from nesf.core.crystal import Crystal
    from nesf.data.structure_io import to_cif, to_extxyz, to_json, to_poscar

    rocksalt = Crystal.from_frac(Lattice.cubic(4.21).matrix, [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5],
                                                             [.5, 0, 0], [0, .5, 0], [0, 0, .5], [.5, .5, .5]],
                                 [12] * 4 + [8] * 4, "MgO")
    zno = Crystal.from_frac(Lattice.hexagonal(3.25, 5.21).matrix, [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, .5],
                                                                  [1 / 3, 2 / 3, .382], [2 / 3, 1 / 3, .882]],
                            [30, 30, 8, 8], "ZnO")
    symmetric = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]])
    from pymatgen.io.cif import CifWriter

    return [("MgO.cif", to_cif(rocksalt).encode()), ("ZnO.cif", to_cif(zno).encode()),
            ("NaCl_sym.cif", str(CifWriter(symmetric, symprec=0.1)).encode()),
            ("POSCAR", to_poscar(zno).encode()), ("MgO.json", to_json(rocksalt).encode()),
            ("ZnO.extxyz", to_extxyz([zno]).encode())]


def _numbers(text: str) -> list[re.Match]:
    return list(re.finditer(r"(?<![\w.])-?\d+\.?\d*(?:[eE][-+]?\d+)?", text))


def mutate(rng: random.Random, name: str, data: bytes) -> tuple[str, str, bytes]:
    """(mutation, file name, bytes): one random corruption of a valid file."""
    text = data.decode()
    kind = rng.choice(["truncate", "flip_bytes", "extreme_number", "extreme_cell", "duplicate_atoms", "many_atoms",
                       "wrong_format", "delete_line", "garbage_line", "swap_numbers", "random_bytes", "empty_fields"])
    lines = text.splitlines(keepends=True)
    if kind == "truncate":
        return kind, name, data[: rng.randrange(len(data))]
    if kind == "flip_bytes":
        buffer = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buffer[rng.randrange(len(buffer))] = rng.randrange(256)
        return kind, name, bytes(buffer)
    if kind in ("extreme_number", "swap_numbers"):
        numbers = _numbers(text)
        if not numbers:
            return kind, name, data
        for _ in range(rng.randint(1, 3)):
            match = rng.choice(numbers)
            value = rng.choice(EXTREME) if kind == "extreme_number" else rng.choice(numbers).group(0)
            text = text[:match.start()] + value + text[match.end():]
            numbers = _numbers(text)
        return kind, name, text.encode()
    if kind == "extreme_cell":
        value = rng.choice(["0", "1e-5", "1e5", "nan", "180", "179.9999", "0.0001", "-90"])
        text = re.sub(r"(_cell_(length|angle)_\w+\s+)\S+", lambda m: m.group(1) + value if rng.random() < 0.5
                      else m.group(0), text)
        text = re.sub(r'(Lattice=")([^"]*)', lambda m: m.group(1) + " ".join(value for _ in range(9)), text)
        if name == "POSCAR" and len(lines) > 2:
            lines[1] = value + "\n"
            text = "".join(lines)
        return kind, name, text.encode()
    if kind == "duplicate_atoms" and len(lines) > 3:
        index = rng.randrange(len(lines) // 2, len(lines))
        lines[index:index] = [lines[index]] * rng.randint(1, 4)
        return kind, name, "".join(lines).encode()
    if kind == "many_atoms" and len(lines) > 3:
        index = len(lines) - 1
        copies = rng.choice([50, 600, 5000])
        extra = []
        for i in range(copies):  # jittered copies of an atom line: many distinct atoms
            extra.append(re.sub(r"0\.\d+", lambda m: f"{rng.random():.6f}", lines[index]))
        lines[index:index] = extra
        return kind, name, "".join(lines).encode()[:MAX_BYTES + 10]
    if kind == "wrong_format":
        other = rng.choice(["x.cif", "POSCAR", "x.json", "x.extxyz", "x.vasp", "x.txt", "noext"])
        return kind, other, data
    if kind == "delete_line" and lines:
        del lines[rng.randrange(len(lines))]
        return kind, name, "".join(lines).encode()
    if kind == "garbage_line":
        junk = rng.choice(["loop_\n", "_atom_site_fract_x\n", "data_\n", "{\n", "]]\n", "0 0 0\n", "Na 1e400 0 0\n",
                           "_symmetry_space_group_name_H-M 'P 6/m m m'\n", "_space_group_symop_operation_xyz\n",
                           "'x+1/0, y, z'\n", "999999999\n", "Lattice=\"1 0 0 0 1 0 0 0 0\"\n"])
        lines.insert(rng.randrange(len(lines) + 1), junk)
        return kind, name, "".join(lines).encode()
    if kind == "random_bytes":
        return kind, name, bytes(rng.randrange(256) for _ in range(rng.randint(1, 2000)))
    return "empty_fields", name, re.sub(r"(?<=\s)-?\d+\.\d+", "?", text, count=rng.randint(1, 5)).encode()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=str(ROOT / "checkpoints" / "lcs6a.pt"))
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from nesf.api import Autoencoder
    from nesf.core.errors import NesfError
    from nesf.data.structure_io import read_structures

    model = Autoencoder.from_checkpoint(args.checkpoint, "cpu")
    fast = model.decode_preset("fast") if hasattr(model, "decode_preset") else None
    seeds = seed_files()
    rng = random.Random(args.seed)
    with open(args.out, "w", buffering=1) as out:
        for index in range(args.count):
            seed_name, seed_data = seeds[index % len(seeds)]
            mutation, name, data = mutate(rng, seed_name, seed_data)
            out.write(json.dumps({"start": index, "mutation": mutation, "name": name}) + "\n")
            started = time.monotonic()
            status, message = "read", ""
            try:
                crystals = read_structures(data, name, max_bytes=MAX_BYTES, max_atoms=MAX_ATOMS)
                for crystal in crystals:
                    model.check(crystal)
                model.reconstruct(crystals, fast)
                message = ", ".join(c.formula for c in crystals)
            except NesfError as exc:
                status, message = "refused", str(exc)
            except Exception as exc:  # noqa: BLE001 - what the test looks for
                status, message = "error", f"unexpected error ({type(exc).__name__}): {exc}"
            out.write(json.dumps({"index": index, "mutation": mutation, "name": name, "status": status,
                                  "message": message[:500], "seconds": time.monotonic() - started}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
