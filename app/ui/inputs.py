"""Getting crystals in: uploads (one or many files) and picks from the active dataset by id or formula."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from app import backend, settings, state
from app.errors import describe
from app.ui.context import AppContext
from nesf.inference.uploads import PreparedUpload


@dataclass(frozen=True)
class Picked:
    """A crystal the user chose, with where it came from (file name or dataset row)."""

    crystal: object
    source: str
    index: int | None = None   # row in the active atlas, when picked from it
    upload: PreparedUpload | None = None  # once fitted: the library's prepared upload, accepted (its `choice`: the
                                          # cell and setting encoded, the latent refined or the encoder's)

    @property
    def frame(self):
        """The `FrameChoice` it is encoded with (nesf.model.frame_select), once fitted."""
        return None if self.upload is None else self.upload.choice

    @property
    def cell_note(self) -> str:
        """For an upload in another cell than its own: which, and its measured quality."""
        return "" if self.upload is None else self.upload.cell_note


def upload_structures(key: str, *, multiple: bool = True, label: str = "Structure files") -> list[Picked]:
    """A file uploader; every file's crystals, with a clear message for each file that cannot be read."""
    files = st.file_uploader(
        label, accept_multiple_files=multiple, key=key,
        help=f"CIF, POSCAR/CONTCAR, pymatgen JSON or extxyz; up to {settings.MAX_UPLOAD_MB:g} MB and "
             f"{settings.MAX_ATOMS} atoms per structure.",
    )
    if files is None:
        return []
    files = files if isinstance(files, list) else [files]
    if len(files) > settings.MAX_FILES:
        st.warning(f"{len(files)} files: only the first {settings.MAX_FILES} are read.")
        files = files[: settings.MAX_FILES]
    picked = []
    for file in files:
        try:
            crystals = backend.read_upload(file.getvalue(), file.name)
        except Exception as exc:  # noqa: BLE001 - every bad file gets its message, the others go on
            st.error(describe(exc), icon=":material/error:")
            continue
        for i, crystal in enumerate(crystals):
            source = file.name if len(crystals) == 1 else f"{file.name} #{i + 1}"
            picked.append(Picked(crystal, source))
    return picked


EXAMPLES = {  # name: (space group, cubic or hexagonal lattice parameters in Angstrom, species, fractional sites)
    "NaCl (rock salt)": ("Fm-3m", (5.64,), ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]]),
    "GaAs (zincblende)": ("F-43m", (5.65,), ["Ga", "As"], [[0, 0, 0], [.25, .25, .25]]),
    "CsCl": ("Pm-3m", (4.12,), ["Cs", "Cl"], [[0, 0, 0], [.5, .5, .5]]),
    "SrTiO3 (perovskite)": ("Pm-3m", (3.905,), ["Sr", "Ti", "O"], [[0, 0, 0], [.5, .5, .5], [.5, .5, 0]]),
    "Cu (fcc)": ("Fm-3m", (3.61,), ["Cu"], [[0, 0, 0]]),
    "Mg (hcp)": ("P6_3/mmc", (3.21, 5.21), ["Mg"], [[1 / 3, 2 / 3, 0.25]]),
}


@st.cache_data(show_spinner=False, max_entries=len(EXAMPLES))
def _example_cif(name: str) -> bytes:
    from pymatgen.core import Lattice, Structure

    group, parameters, species, sites = EXAMPLES[name]
    lattice = Lattice.cubic(*parameters) if len(parameters) == 1 else Lattice.hexagonal(*parameters)
    return Structure.from_spacegroup(group, lattice, species, sites).to(fmt="cif").encode()


def _example_in_reach(ctx: AppContext, name: str) -> list[tuple]:
    """The example's crystals as the active model reads them, each with the kind of cell it was moved to ("" where
    it fits as built): in the cell the model offers where the built one is out of its range (an hcp metal's
    orthohexagonal cell, where the checkpoint measured that kind well enough); empty where neither."""
    net = ctx.model()
    crystals = backend.read_upload(_example_cif(name), f"{name.split()[0]}.cif")
    reached = []
    for crystal in crystals:
        if not net.range.problems(crystal):
            reached.append((crystal, ""))
            continue
        offered, _ = backend.cell_offers(ctx.checkpoint, crystal, ctx.device)
        if not offered:
            return []
        reached.append((offered[0], offered[0].meta.get("cell", "another")))
    return reached


def accepted_examples(ctx: AppContext) -> list[str]:
    """The EXAMPLES the active model accepts, as built or in a cell it offers: the app offers no example it would
    refuse."""
    accepted = []
    for name in EXAMPLES:
        try:
            if _example_in_reach(ctx, name):
                accepted.append(name)
        except Exception:  # noqa: BLE001 - an example that fails to build is not offered
            continue
    return accepted


def example_structures(ctx: AppContext, key: str) -> list[Picked]:
    """One-click examples the active model accepts (`accepted_examples`), read as uploads are (so they go through
    the same checks and frame selection)."""
    offered = accepted_examples(ctx)
    if not offered:
        return []
    chosen = st.pills("Or try an example", offered, selection_mode="multi", key=f"{key}_examples")
    picked = []
    for name in chosen or []:
        try:
            crystals = _example_in_reach(ctx, name)
        except Exception as exc:  # noqa: BLE001 - an example that fails to build is reported, not raised
            st.error(describe(exc, name), icon=":material/error:")
            continue
        for crystal, cell in crystals:
            picked.append(Picked(crystal, f"{name}, {cell} cell" if cell else name))
    return picked


def _row_label(row) -> str:
    sg = row.get("spacegroup_symbol", "")
    return f"{row['id']} · {row['formula']} · {row['num_atoms']} atoms" + (f" · {sg}" if sg else "")


def dataset_search(ctx: AppContext, key: str, *, multiple: bool = True, default_query: str = "",
                   label: str = "Search the dataset by id or formula") -> list[Picked]:
    """Search box + choice among the matches in the active dataset."""
    atlas = ctx.atlas
    if atlas is None:
        st.info("No active dataset: choose one in the sidebar.", icon=":material/info:")
        return []
    query = st.text_input(label, value=default_query, key=f"{key}_query", placeholder="e.g. mp-1265 or NaCl")
    if not query.strip():
        return []
    matches = atlas.find(query)
    if matches.empty:
        st.warning(f"No crystal in {atlas.title} has an id or formula matching {query!r}.")
        return []
    options = list(matches.index)
    labels = {i: _row_label(matches.loc[i]) for i in options}
    if multiple:
        chosen = st.multiselect(f"{len(options)} match(es)", options, default=options[:1], key=f"{key}_pick",
                                format_func=labels.get)
    else:
        one = st.selectbox(f"{len(options)} match(es)", options, key=f"{key}_pick", format_func=labels.get)
        chosen = [one] if one is not None else []
    return [Picked(atlas.crystals[i], f"{atlas.table.at[i, 'id']}", int(i)) for i in chosen]


def pick_one(ctx: AppContext, key: str, *, title: str, default_query: str = "") -> Picked | None:
    """One crystal from the dataset (search), the map selection, or an upload."""
    sources = ["Dataset", "Map selection", "Upload"]
    where = st.segmented_control(title, sources, default="Dataset", key=f"{key}_from")
    if where == "Upload":
        found = upload_structures(f"{key}_upload", multiple=False, label=f"{title}: structure file")
        return found[0] if found else None
    if where == "Map selection":
        selected = state.map_selection()
        if ctx.atlas is None or not selected:
            st.caption("Select points on the Latent map page first.")
            return None
        options = [i for i in selected if i < len(ctx.atlas.crystals)]
        i = st.selectbox(f"{title} (from the map)", options, key=f"{key}_mapsel",
                         format_func=lambda i: _row_label(ctx.atlas.table.loc[i]))
        return Picked(ctx.atlas.crystals[i], str(ctx.atlas.table.at[i, "id"]), int(i)) if i is not None else None
    found = dataset_search(ctx, key, multiple=False, default_query=default_query, label=f"{title}: id or formula")
    return found[0] if found else None


def fitting(ctx: AppContext, picked: list[Picked], key: str) -> list[Picked]:
    """The picked crystals the model can represent, through the library's one upload path
    (`nesf.inference.uploads.prepare`): uploads in the setting the model reads best (another equally standard origin
    or axis order of the same cell), dataset crystals as stored. Each one outside the model's range gets the
    library's message naming what is out of range; where another valid cell of the same crystal fits
    (orthohexagonal, primitive or Niggli-reduced) and the model reconstructs that kind of cell well enough, a toggle
    offers it, stating the measured quality, and the crystal goes on in that cell once the user accepts."""
    good = []
    for i, item in enumerate(picked):
        try:
            prepared = backend.prepare_upload(ctx.checkpoint, item.crystal, item.source, stored=item.index is not None,
                                              refine=ctx.refine, device=ctx.device)
            if prepared.offer is not None and not prepared.accepted:
                st.warning(f"{item.source}: {prepared.refused}", icon=":material/warning:")
                if not st.toggle(f"Use it instead: {prepared.offer.note}", key=f"{key}_alt_{i}_{item.source}"):
                    continue
                prepared = backend.accept_offer(ctx.checkpoint, prepared, refine=ctx.refine, device=ctx.device)
        except Exception as exc:  # noqa: BLE001 - each crystal gets its message, the others go on
            st.error(describe(exc, item.source), icon=":material/error:")
            continue
        if not prepared.accepted:
            st.error(f"{item.source}: {prepared.refused}", icon=":material/error:")
            continue
        if prepared.offer is not None:  # shown and compared in the cell and setting encoded
            good.append(Picked(prepared.choice.crystal, f"{item.source} ({prepared.offer.kind} cell)", item.index,
                               prepared))
        else:
            good.append(Picked(item.crystal if item.index is not None else prepared.choice.crystal, item.source,
                               item.index, prepared))
    return good
