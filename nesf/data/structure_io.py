"""Structure files in and out: CIF, POSCAR/CONTCAR, pymatgen JSON and extended XYZ, as `Crystal` records.

Every structure read is converted to its canonical cell (`nesf.core.canonical`): the conventional standard cell, as the
paper's datasets were built (`SpacegroupAnalyzer(structure).get_conventional_standard_structure()` with pymatgen's
default symprec, 0.01, as in the official `src/dataset_generation/03_convert_to_conventional_cell.py`), in one
setting and origin whatever the file's, in the datasets' frame, coordinates wrapped into the cell. Lengths are in
Angstrom throughout.

With `nesf.core.crystal` and `nesf.core.canonical`, this module is the only place that touches pymatgen. Bad input of
any kind raises `NesfError` naming the file and the problem; pymatgen's and spglib's exceptions and warnings never
escape.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np

from nesf.core.canonical import CANONICAL_SYMPREC, canonical_frame, canonical_structure
from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.data.limits import MAX_ATOMS, MAX_FILE_BYTES

# spglib's C library prints "ssm_get_exact_positions failed" lines to stderr on hard cells; it reads this variable
# at every call. A value the user set is kept.
os.environ.setdefault("SPGLIB_WARNING", "OFF")

logger = logging.getLogger(__name__)

# Sanity limits checked before any native code (spglib crashes the process on a NaN cell): far wider than any model's
# range, they only keep garbage away from C code. The model's own range is checked later (`Autoencoder.check`).
MAX_CELL_LENGTH = 1000.0       # Angstrom
MIN_VOLUME_PER_ATOM = 1.0      # Angstrom^3 (the densest solids have ~5)
MIN_ATOM_DISTANCE = 0.5        # Angstrom, between two atoms over periodic images (H2 bonds are 0.74)
# pymatgen expands a CIF's sites by its symmetry operations in time that grows with the square of the positions it
# generates (10 random sites x 192 Fm-3m operations: 2 s; 50 sites: 25 s). A cell of max_atoms atoms at general
# positions generates max_atoms positions, one with high-symmetry sites a few times more (rock salt: 2 x 192 = 384
# for 8 atoms); a file may ask for at most this factor x max_atoms.
MAX_CIF_EXPANSION = 5
_CIF_CELL_FIELDS = ("_cell_length_a", "_cell_length_b", "_cell_length_c", "_cell_angle_alpha", "_cell_angle_beta",
                    "_cell_angle_gamma")

_EXTENSIONS = {
    ".cif": "cif", ".mcif": "cif",
    ".vasp": "poscar", ".poscar": "poscar", ".contcar": "poscar",
    ".json": "json",
    ".xyz": "extxyz", ".extxyz": "extxyz",
}

_CRYSTAL_SYSTEMS = (
    (2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
    (167, "trigonal"), (194, "hexagonal"), (230, "cubic"),
)


# ----------------------------------------------------------------------------------------------------- reading


def structure_files(paths) -> list[Path]:
    """The files among `paths`, and in each folder among them the files whose names nesf reads (CIF, POSCAR/CONTCAR,
    JSON, extxyz), sorted; a named file is taken whatever its name."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and _format_from_name(p.name))
        else:
            found.append(path)
    return found


def read_structure_file(path, *, max_bytes: int = MAX_FILE_BYTES, max_atoms: int = MAX_ATOMS) -> list[Crystal]:
    """Crystals (conventional standard cells) in the structure file at `path`; see `read_structures`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise NesfError(f"{path.name}: file is {size:,} bytes, over the limit of {max_bytes:,} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise NesfError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    return read_structures(data, path.name, max_bytes=max_bytes, max_atoms=max_atoms)


def read_structures(data: bytes, filename: str, *, max_bytes: int = MAX_FILE_BYTES,
                    max_atoms: int = MAX_ATOMS) -> list[Crystal]:
    """Parse the bytes of one structure file into crystals, each in its conventional standard cell.

    The format comes from the file name (`.cif`, `.vasp`/`POSCAR`/`CONTCAR`, `.json`, `.xyz`/`.extxyz`), else from
    the content. A file may hold several structures (CIF blocks, JSON list, extxyz frames); their ids are the file
    stem plus `_<index>`, a single structure's id is the stem. `max_bytes` bounds the file size, `max_atoms` the
    number of atoms of each structure (before and after the cell conversion).
    """
    name = Path(str(filename)).name or "upload"
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise NesfError(f"{name}: expected the file's bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) == 0:
        raise NesfError(f"{name}: the file is empty")
    if len(data) > max_bytes:
        raise NesfError(f"{name}: file is {len(data):,} bytes, over the limit of {max_bytes:,} bytes")
    if b"\x00" in data:
        raise NesfError(f"{name}: binary file (contains NUL bytes), not a text structure file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NesfError(f"{name}: not UTF-8 text (binary file?): bad byte at offset {exc.start}") from exc
    if not text.strip():
        raise NesfError(f"{name}: the file holds only whitespace")

    fmt = _format_from_name(name) or _sniff_format(text)
    if fmt is None:
        raise NesfError(
            f"{name}: unknown structure format (extension {Path(name).suffix or 'none'!r}; "
            f"content is not CIF, POSCAR, pymatgen JSON or extended XYZ)"
        )
    structures = _parse(text, fmt, name, max_atoms)
    if not structures:
        raise NesfError(f"{name}: no structure found in the {fmt} file")

    stem = Path(name).stem or name
    crystals = []
    for index, structure in enumerate(structures):
        crystal_id = stem if len(structures) == 1 else f"{stem}_{index}"
        label = name if len(structures) == 1 else f"{name} (structure {index})"
        crystals.append(_to_conventional_crystal(structure, crystal_id, label, max_atoms))
    return crystals


def _format_from_name(name: str) -> str | None:
    upper = name.upper()
    if upper.startswith(("POSCAR", "CONTCAR")) or upper.endswith(("POSCAR", "CONTCAR")):
        return "poscar"
    return _EXTENSIONS.get(Path(name).suffix.lower())


def _sniff_format(text: str) -> str | None:
    head = text.lstrip()
    if head[:1] in "{[":
        return "json"
    if re.search(r"^\s*data_", text, re.MULTILINE) and "_cell_length_a" in text:
        return "cif"
    lines = text.strip().splitlines()
    if len(lines) >= 2 and lines[0].strip().isdigit() and "lattice=" in lines[1].lower():
        return "extxyz"
    if len(lines) >= 6:
        try:
            float(lines[1].split()[0])
            for line in lines[2:5]:
                values = [float(x) for x in line.split()[:3]]
                if len(values) != 3:
                    raise ValueError
            return "poscar"
        except (ValueError, IndexError):
            pass
    return None


def _parse(text: str, fmt: str, name: str, max_atoms: int = 500) -> list:
    """pymatgen Structures of `text` in format `fmt`; every failure becomes NesfError naming `name`."""
    parser = {"cif": _parse_cif, "poscar": _parse_poscar, "json": _parse_json, "extxyz": _parse_extxyz}[fmt]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            structures = parser(text, name, max_atoms) if fmt == "cif" else parser(text, name)
        except NesfError:
            raise
        except Exception as exc:  # pymatgen raises many types on bad text
            raise NesfError(f"{name}: not a readable {fmt} file ({_short(exc)})") from exc
    if not structures and caught:
        raise NesfError(f"{name}: no structure could be read from the {fmt} file ({_short(caught[0].message)})")
    return structures


def _short(exc, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


_CIF_TOKEN = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|\S+")


def _cif_loop_rows(text: str, tag_prefixes: tuple[str, ...]) -> int:
    """Rows of the largest `loop_` whose tags start with one of `tag_prefixes` (values counted, not lines)."""
    largest = 0
    for block in re.split(r"(?im)^\s*loop_\s*$", text)[1:]:
        tags, values = [], 0
        for line in block.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if stripped.startswith("_") and not values:
                tags.append(stripped.split()[0].lower())
                continue
            if stripped.startswith(("_", "loop_", "data_")) or stripped.lower().startswith("data_"):
                break
            values += len(_CIF_TOKEN.findall(stripped))
        if tags and any(tag.startswith(tag_prefixes) for tag in tags):
            largest = max(largest, values // len(tags))
    return largest


def _check_cif_size(text: str, name: str, max_atoms: int) -> None:
    """Refuse, before pymatgen expands it, a CIF listing more sites than `max_atoms` or asking for more than
    MAX_CIF_EXPANSION x max_atoms positions (sites x symmetry operations) per data block."""
    for block in re.split(r"(?im)^\s*data_", text)[1:] or [text]:
        sites = _cif_loop_rows(block, ("_atom_site_fract", "_atom_site_cartn", "_atom_site_label",
                                       "_atom_site_type"))
        operations = max(1, _cif_loop_rows(block, ("_symmetry_equiv_pos", "_space_group_symop")))
        if sites > max_atoms:
            raise NesfError(f"{name}: lists {sites} atom sites, more than the limit of {max_atoms} atoms")
        if sites * operations > MAX_CIF_EXPANSION * max_atoms:
            raise NesfError(f"{name}: {sites} sites x {operations} symmetry operations would expand to up to "
                            f"{sites * operations:,} atoms, far over the limit of {max_atoms}")


def _parse_cif(text: str, name: str, max_atoms: int) -> list:
    from io import StringIO

    from pymatgen.io.cif import CifParser

    if not re.search(r"^\s*data_", text, re.MULTILINE):
        raise NesfError(f"{name}: not a CIF file (no data_ block)")
    _check_cif_cell_fields(text, name)
    _check_cif_size(text, name, max_atoms)
    parser = CifParser(StringIO(text), check_cif=False)
    structures = parser.parse_structures(primitive=False, on_error="warn")
    if not structures:
        disorder = any("occupanc" in w.lower() for w in getattr(parser, "warnings", []))
        if disorder:
            raise NesfError(f"{name}: disordered structure (occupancies that do not sum to one per site)")
    return structures


def _check_cif_cell_fields(text: str, name: str) -> None:
    """Refuse cell parameters that are not finite, positive lengths and angles strictly between 0 and 180 degrees,
    naming the field (pymatgen would build a NaN or mirrored cell from them); refuse six that make no cell."""
    values = {}
    for field in _CIF_CELL_FIELDS:
        for match in re.finditer(rf"^\s*{field}\s+(\S+)", text, re.MULTILINE | re.IGNORECASE):
            raw = match.group(1)
            try:
                value = float(re.sub(r"\(\d+\)$", "", raw))  # CIF standard uncertainty: 4.123(4)
            except ValueError:
                continue  # pymatgen reports what it cannot read
            unit = "A" if "length" in field else "deg"
            if not np.isfinite(value):
                raise NesfError(f"{name}: {field} is {raw}, not a finite number")
            if "length" in field and not 0 < value <= MAX_CELL_LENGTH:
                raise NesfError(f"{name}: {field} = {raw} {unit}; a cell length must lie in (0, {MAX_CELL_LENGTH:g}] A")
            if "angle" in field and not 0 < value < 180:
                raise NesfError(f"{name}: {field} = {raw} {unit}; a cell angle must lie strictly between 0 and 180")
            values[field] = value
    if len(values) == 6:
        a, b, c, *angles = (values[field] for field in _CIF_CELL_FIELDS)
        cos_a, cos_b, cos_g = np.cos(np.radians(angles))
        shape = 1 - cos_a ** 2 - cos_b ** 2 - cos_g ** 2 + 2 * cos_a * cos_b * cos_g
        if shape <= 1e-6:
            raise NesfError(f"{name}: cell angles ({', '.join(f'{x:g}' for x in angles)}) deg do not form a cell "
                            f"(each must be less than the sum of the other two, and all three less than 360)")
        if a * b * c * np.sqrt(shape) < MIN_VOLUME_PER_ATOM:
            raise NesfError(f"{name}: cell volume {a * b * c * np.sqrt(shape):.3g} A^3 from a, b, c = {a:g}, {b:g}, "
                            f"{c:g} A is below {MIN_VOLUME_PER_ATOM:g} A^3: not a crystal cell")


def _check_cell(structure, label: str) -> None:
    """Refuse a structure whose cell or coordinates would make spglib crash or hang: non-finite numbers, lengths
    beyond MAX_CELL_LENGTH, a (near) flat cell, overlapping atoms. Runs before any native code sees it."""
    matrix = np.asarray(structure.lattice.matrix, dtype=np.float64)
    if not np.all(np.isfinite(matrix)):
        raise NesfError(f"{label}: the cell holds non-finite numbers (lattice {np.round(matrix, 3).tolist()})")
    lengths = np.linalg.norm(matrix, axis=1)
    if np.any(lengths > MAX_CELL_LENGTH) or np.any(lengths <= 0):
        shown = ", ".join(f"{x:.4g}" for x in lengths)
        raise NesfError(f"{label}: cell lengths ({shown}) A; each must lie in (0, {MAX_CELL_LENGTH:g}] A")
    frac = np.asarray(structure.frac_coords, dtype=np.float64)
    if not np.all(np.isfinite(frac)):
        raise NesfError(f"{label}: atomic coordinates hold non-finite numbers")
    volume = abs(float(np.linalg.det(matrix)))
    if volume < MIN_VOLUME_PER_ATOM * len(structure):
        raise NesfError(f"{label}: cell volume {volume:.3g} A^3 for {len(structure)} atoms, below "
                        f"{MIN_VOLUME_PER_ATOM:g} A^3 per atom (a flat or collapsed cell)")
    if len(structure) > 1:
        distances = structure.distance_matrix  # periodic, with the nearest image
        np.fill_diagonal(distances, np.inf)
        i, j = np.unravel_index(np.argmin(distances), distances.shape)
        if distances[i, j] < MIN_ATOM_DISTANCE:
            raise NesfError(f"{label}: atoms {i + 1} ({structure[i].specie}) and {j + 1} ({structure[j].specie}) are "
                            f"{distances[i, j]:.2f} A apart, closer than {MIN_ATOM_DISTANCE} A (overlapping sites)")


def _parse_poscar(text: str, name: str) -> list:
    from pymatgen.io.vasp import Poscar

    return [Poscar.from_str(text, read_velocities=False).structure]


def _parse_json(text: str, name: str) -> list:
    from pymatgen.core import Structure

    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NesfError(f"{name}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    items = obj if isinstance(obj, list) else [obj]
    structures = []
    for index, item in enumerate(items):
        if isinstance(item, dict) and "structure" in item and "lattice" not in item:
            item = item["structure"]
        if not (isinstance(item, dict) and "lattice" in item and "sites" in item):
            raise NesfError(f"{name}: JSON item {index} is not a pymatgen Structure dict (needs 'lattice' and 'sites')")
        structures.append(Structure.from_dict(item))
    return structures


_KEY_VALUE = re.compile(r'(\w+)\s*=\s*("[^"]*"|\'[^\']*\'|\{[^}]*\}|\S+)')


def _parse_extxyz(text: str, name: str) -> list:
    """Extended XYZ frames (periodic: each needs Lattice="ax ay az bx by bz cx cy cz", rows in Angstrom)."""
    from pymatgen.core import Lattice, Structure

    lines = text.splitlines()
    structures = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        frame = len(structures)
        try:
            count = int(lines[i].split()[0])
        except (ValueError, IndexError) as exc:
            raise NesfError(
                f"{name}: frame {frame}: line {i + 1} should hold the atom count, got {lines[i]!r:.60}") from exc
        if count < 1:
            raise NesfError(f"{name}: frame {frame}: atom count {count} (line {i + 1})")
        if i + 1 >= len(lines):
            raise NesfError(f"{name}: frame {frame}: file ends before its {count} atoms")
        info = {k.lower(): v.strip("\"'{}") for k, v in _KEY_VALUE.findall(lines[i + 1])}
        if "lattice" not in info:
            raise NesfError(f"{name}: frame {frame}: no Lattice=\"...\" in the comment line (a crystal needs its cell)")
        try:
            lattice = np.array([float(x) for x in info["lattice"].replace(",", " ").split()]).reshape(3, 3)
        except ValueError as exc:
            raise NesfError(f"{name}: frame {frame}: Lattice needs 9 numbers, got {info['lattice']!r:.80}") from exc
        species_col, pos_col = _extxyz_columns(info.get("properties", "species:S:1:pos:R:3"), name, frame)
        atom_lines = lines[i + 2 : i + 2 + count]
        if len(atom_lines) < count:
            raise NesfError(f"{name}: frame {frame}: file ends before its {count} atoms")
        symbols, coords = [], []
        for j, line in enumerate(atom_lines):
            fields = line.split()
            try:
                symbols.append(fields[species_col])
                coords.append([float(x) for x in fields[pos_col : pos_col + 3]])
            except (ValueError, IndexError) as exc:
                raise NesfError(f"{name}: frame {frame}: bad atom line {i + 3 + j}: {line!r:.80}") from exc
            if len(coords[-1]) != 3:
                raise NesfError(f"{name}: frame {frame}: bad atom line {i + 3 + j}: {line!r:.80}")
        species = [int(s) if s.isdigit() else s for s in symbols]
        structures.append(Structure(Lattice(lattice), species, coords, coords_are_cartesian=True))
        i += 2 + count
    return structures


def _extxyz_columns(properties: str, name: str, frame: int) -> tuple[int, int]:
    """Column indices of the species and of the first position component in an extxyz Properties string."""
    parts = properties.split(":")
    if len(parts) % 3:
        raise NesfError(f"{name}: frame {frame}: malformed Properties={properties!r}")
    column, species_col, pos_col = 0, None, None
    for key, _kind, width in zip(parts[0::3], parts[1::3], parts[2::3]):
        if key.lower() in ("species", "symbols", "element", "z") and species_col is None:
            species_col = column
        if key.lower() in ("pos", "positions") and pos_col is None:
            pos_col = column
        column += int(width)
    if species_col is None or pos_col is None:
        raise NesfError(f"{name}: frame {frame}: Properties={properties!r} lacks species or pos columns")
    return species_col, pos_col


def _to_conventional_crystal(structure, crystal_id: str, label: str, max_atoms: int) -> Crystal:
    if not structure.is_ordered:
        raise NesfError(f"{label}: disordered structure (partial occupancies); NeSF needs one element per site")
    if len(structure) == 0:
        raise NesfError(f"{label}: the structure has no atoms")
    if len(structure) > max_atoms:
        raise NesfError(f"{label}: {len(structure)} atoms, more than the limit of {max_atoms}")
    if any(getattr(site.specie, "Z", 0) < 1 for site in structure):
        raise NesfError(f"{label}: a site holds a dummy species, not an element")
    _check_cell(structure, label)
    conventional, cell = canonical_structure(structure), "conventional standard"
    if conventional is None:
        conventional, cell = _as_given_in_canonical_frame(structure), "as given (symmetry analysis failed)"
        logger.warning("%s: symmetry analysis failed; keeping the cell as given", label)
    if len(conventional) > max_atoms:
        raise NesfError(
            f"{label}: {len(conventional)} atoms in the conventional cell, more than the limit of {max_atoms}")
    try:
        crystal = Crystal.from_structure(conventional, id=crystal_id)
    except NesfError as exc:
        raise NesfError(f"{label}: {exc}") from exc
    crystal.meta.update({"source": label, "cell": cell})
    return crystal


def _as_given_in_canonical_frame(structure):
    """The cell as given, rebuilt in the canonical frame (parameters, wrapped coordinates, duplicates merged)."""
    from pymatgen.core import Lattice, Structure

    lattice, frac, species = canonical_frame(structure.lattice.matrix, structure.frac_coords,
                                             np.array([site.specie.Z for site in structure]))
    return Structure(Lattice(lattice), species.tolist(), frac)


def alternative_cells(crystal: Crystal) -> list[Crystal]:
    """Other valid cells of the same crystal, smallest first, each in the canonical frame: the primitive standard
    cell and its Niggli-reduced form (where they differ from the conventional one). For a model whose range the
    conventional cell exceeds; `crystal.meta["cell"]` names each."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    found: list[Crystal] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            primitive = SpacegroupAnalyzer(crystal.to_structure(), symprec=CANONICAL_SYMPREC
                                           ).get_primitive_standard_structure()
            cells = [("primitive standard", primitive), ("Niggli-reduced primitive", primitive.get_reduced_structure())]
        except Exception:  # spglib or the reduction gave up: no alternative
            return found
    for label, structure in cells:
        lattice, frac, species = canonical_frame(structure.lattice.matrix, structure.frac_coords,
                                                 np.array([site.specie.Z for site in structure]))
        alternative = Crystal.from_frac(lattice, frac, species, crystal.id)
        if any(np.allclose(alternative.lattice, other.lattice, atol=1e-4) for other in [crystal, *found]):
            continue  # the same cell as the conventional one or as an alternative already listed
        alternative.meta.update({**crystal.meta, "cell": label})
        found.append(alternative)
    return found


# ----------------------------------------------------------------------------------------------------- writing


def to_cif(crystal: Crystal) -> str:
    """CIF text (P1, the cell as it is) of `crystal`."""
    from pymatgen.io.cif import CifWriter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return str(CifWriter(crystal.to_structure()))


def to_poscar(crystal: Crystal) -> str:
    """VASP POSCAR text of `crystal` (its id is the comment line)."""
    from pymatgen.io.vasp import Poscar

    comment = (crystal.id or crystal.formula).replace("\n", " ")
    return Poscar(crystal.to_structure(), comment=comment).get_str()


def to_json(crystal: Crystal) -> str:
    """pymatgen `Structure.as_dict()` JSON text of `crystal`."""
    return json.dumps(crystal.to_structure().as_dict())


def to_extxyz(crystals: list[Crystal]) -> str:
    """One extended-XYZ trajectory with a frame per crystal (Lattice rows and Cartesian positions in Angstrom)."""
    from pymatgen.core import Element

    if isinstance(crystals, Crystal):
        crystals = [crystals]
    out = []
    for crystal in crystals:
        lattice = " ".join(f"{x:.10f}" for x in crystal.lattice.reshape(-1))
        name = re.sub(r"[\"'\s=]", "_", crystal.id) if crystal.id else ""
        comment = f'Lattice="{lattice}" Properties=species:S:1:pos:R:3 pbc="T T T"'
        if name:
            comment += f' name="{name}"'
        out.append(str(crystal.num_atoms))
        out.append(comment)
        for z, (x, y, w) in zip(crystal.species, crystal.cart_coords):
            out.append(f"{Element.from_Z(int(z)).symbol:<3s} {x:16.10f} {y:16.10f} {w:16.10f}")
    return "\n".join(out) + "\n"


def download_name(crystal: Crystal, ext: str) -> str:
    """A file name like Crystal Toolkit's, "{formula}-{space group symbol without slashes}.{ext}"."""
    _, symbol, _ = spacegroup(crystal)
    stem = f"{crystal.formula or 'structure'}-{symbol.replace('/', '')}"
    stem = re.sub(r"[^A-Za-z0-9_.\-]+", "_", stem).strip("._") or "structure"
    ext = re.sub(r"[^A-Za-z0-9]+", "", str(ext)) or "txt"
    return f"{stem}.{ext}"


# ----------------------------------------------------------------------------------------------------- symmetry


def crystal_system(number: int) -> str:
    """Crystal system name of International Tables space group `number` (1..230)."""
    for last, system in _CRYSTAL_SYSTEMS:
        if 1 <= number <= last:
            return system
    raise NesfError(f"space group number must lie in 1..230, got {number}")


def spacegroup(crystal: Crystal, symprec: float = 0.1) -> tuple[int, str, str]:
    """(number, Hermann-Mauguin symbol, crystal system) from spglib with tolerance `symprec` in Angstrom.

    Returns (1, "P1", "triclinic") where spglib finds nothing (empty or degenerate cells).
    """
    import spglib

    fallback = (1, "P1", "triclinic")
    if crystal.num_atoms == 0:
        return fallback
    cell = (crystal.lattice, crystal.frac_coords, crystal.species)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
        if dataset is None:
            return fallback
        number = int(dataset.number)
        return number, str(dataset.international), crystal_system(number)
    except Exception:  # spglib errors on garbage input
        return fallback
