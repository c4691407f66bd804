"""Uploaded structures through the product's one path, the app's and the CLI's: read (the same limits), range check,
the cell offer policy, the setting the model reads best, the latent, then decode, per-structure metrics and the
trust figure. Each step returns a typed result that says what happened; the app and the CLI only render them. One
bad file or structure never stops a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.model.frame_select import FrameChoice

# What to do with a structure whose own cell lies outside the model's range while another valid cell of it fits
# (orthohexagonal, primitive, Niggli-reduced) and the model measured that kind of cell well enough:
# "use" it (the CLI), "ask" first (the app: `PreparedUpload.offer`, then `accept_offer`), or "never".
CellPolicy = Literal["use", "ask", "never"]
# In which setting the structure is encoded: "best", the equivalent origin and axis order this model reads best
# (uploads), or "stored", as given (dataset crystals, as the model was trained).
Setting = Literal["best", "stored"]


@dataclass(frozen=True)
class CellOffer:
    crystal: Crystal                  # the same crystal in another valid cell that fits the model
    kind: str                         # which cell: "orthohexagonal", "primitive", "Niggli-reduced", ...
    note: str                         # a sentence naming it and what this model measured for that kind of cell


@dataclass(frozen=True)
class PreparedUpload:
    source: str                       # the file's name, with " #k" for the k-th structure of a multi-structure file
    crystal: Crystal | None           # as read (the canonical cell); None when the file could not be read
    choice: FrameChoice | None        # the cell and setting encoded, with its latent; None when refused
    cell_note: str                    # "" or what other cell is used and its measured quality
    refused: str                      # "" or why this structure cannot be encoded by this model
    offer: CellOffer | None = None    # the cell that fits where its own does not (used, or to ask about)

    @property
    def accepted(self) -> bool:
        return self.choice is not None


@dataclass(frozen=True)
class Reconstruction:
    upload: PreparedUpload            # an accepted upload
    decoded: Crystal                  # its latent decoded (atoms as decoded), in the setting encoded
    metrics: dict | None              # the paper's per-structure metrics against the input as encoded; None: failed
    metrics_problem: str              # "" or why the metrics could not be computed
    trust: object                     # its `nesf.inference.trust.TrustSignal`, read before decoding


def cell_offer_note(autoencoder, cell: Crystal, choice: FrameChoice | None = None) -> str:
    """A sentence naming the offered cell, what this model measured for that kind of cell, and (with `choice`, the
    cell as encoded) this upload's own trust figure."""
    kind = cell.meta.get("cell", "alternative")
    quality = autoencoder.cell_offer_quality(kind)
    lengths = ", ".join(f"{x:.2f}" for x in cell.lengths_angstrom)
    measured = (f"{quality['measured_on']} converted to this kind of cell matched "
                f"{quality['match_rate_percent']:.0f} % of the time ({quality['count']} crystals)" if quality
                else "its quality is not measured for this model")
    own = ""
    if choice is not None:
        signal = autoencoder.trust([choice])[0]
        probability = signal.match_probability
        own = ("; this upload's own trust: " + (f"{signal.level}, {100 * probability:.0f} % expected to match"
                                                 if probability is not None else signal.level))
    return f"its {kind} cell ({cell.num_atoms} atoms, a, b, c = {lengths} A) fits this model; {measured}{own}"


def declined_note(autoencoder, declined: list[Crystal]) -> str:
    """Why the `declined` cells (`Autoencoder.cell_offers`) are not offered although they fit: their kinds' measured
    quality is too low; "" for none."""
    from nesf.inference.autoencoder import MIN_OFFER_MATCH_PERCENT

    notes = []
    for cell in declined:
        kind = cell.meta.get("cell", "alternative")
        quality = autoencoder.cell_offer_quality(kind)
        notes.append(f"its {kind} cell fits, but this model reconstructed {quality['measured_on']} in such cells "
                     f"correctly only {quality['match_rate_percent']:.0f} % of the time ({quality['count']} crystals; "
                     f"cells are offered from {MIN_OFFER_MATCH_PERCENT:.0f} %)")
    return "; ".join(dict.fromkeys(notes))


def _encode(autoencoder, crystal: Crystal, setting: Setting, refine, progress) -> FrameChoice:
    if setting == "stored":
        return autoencoder.refine(autoencoder.given_frames([crystal]), refine, progress)[0]
    return autoencoder.select_frames([crystal], refine, progress)[0]


def prepare(autoencoder, crystal: Crystal, source: str, *, cells: CellPolicy = "use", setting: Setting = "best",
            refine=None, progress=None) -> PreparedUpload:
    """One structure encoded: in its best setting (`setting`), in its own cell or, where that is out of the model's
    range, in the cell offered (`cells`), its latent refined (`refine`: default the model's own;
    `nesf.model.refine.ENCODER_ONLY` for the paper's protocol; `progress(fraction, message)` while it runs).
    Refused (`refused` says why) where neither fits; with `cells="ask"` an offered cell comes back in `offer`,
    not encoded, until `accept_offer`."""
    try:
        return PreparedUpload(source, crystal, _encode(autoencoder, crystal, setting, refine, progress), "", "")
    except NesfError as exc:
        reason = str(exc)
    offers, declined = autoencoder.cell_offers(crystal) if cells != "never" else ([], [])
    if not offers:
        note = declined_note(autoencoder, declined)
        return PreparedUpload(source, crystal, None, "", reason + (f" ({note})" if note else ""))
    cell = offers[0]
    offer = CellOffer(cell, cell.meta.get("cell", "alternative"), cell_offer_note(autoencoder, cell))
    asked = PreparedUpload(source, crystal, None, "", reason, offer)
    return asked if cells == "ask" else accept_offer(autoencoder, asked, refine=refine, progress=progress)


def accept_offer(autoencoder, prepared: PreparedUpload, *, refine=None, progress=None) -> PreparedUpload:
    """`prepared` (refused, with an `offer`) encoded in the offered cell, in its best setting; `cell_note` names the
    cell, its measured quality and this upload's own trust figure."""
    if prepared.offer is None:
        raise NesfError(f"{prepared.source}: no other cell of it fits this model")
    choice = _encode(autoencoder, prepared.offer.crystal, "best", refine, progress)
    return replace(prepared, choice=choice, refused="",
                   cell_note=cell_offer_note(autoencoder, prepared.offer.crystal, choice))


def prepare_files(autoencoder, paths, *, cells: CellPolicy = "use", refine=None, progress=None
                  ) -> list[PreparedUpload]:
    """Every structure of every file, each prepared on its own (`prepare`), their latents then refined together
    (`refine`, as `prepare`); an unreadable file is one refused entry naming the problem."""
    from nesf.model.refine import ENCODER_ONLY

    prepared = [item if isinstance(item, PreparedUpload) else
                prepare(autoencoder, item[0], item[1], cells=cells, refine=ENCODER_ONLY)
                for item in _read_each(paths)]
    accepted = [i for i, item in enumerate(prepared) if item.accepted]
    refined = autoencoder.refine([prepared[i].choice for i in accepted], refine, progress) if accepted else []
    for i, choice in zip(accepted, refined):
        item = prepared[i]
        note = cell_offer_note(autoencoder, choice.crystal, choice) if item.cell_note else ""
        prepared[i] = replace(item, choice=choice, cell_note=note)
    return prepared


def _read_each(paths):
    """(crystal, source) for every structure of every file; a `PreparedUpload` refusing a file that cannot be read."""
    from nesf.data.structure_io import read_structure_file

    for path in map(Path, paths):
        try:
            crystals = read_structure_file(path)
        except (NesfError, OSError) as exc:
            yield PreparedUpload(path.name, None, None, "", str(exc))
            continue
        for k, crystal in enumerate(crystals):
            yield crystal, path.name if len(crystals) == 1 else f"{path.name} #{k + 1}"


def reconstruct(autoencoder, accepted: list[PreparedUpload], decode_config=None, *, decoded=None
                ) -> list[Reconstruction]:
    """The accepted uploads' latents decoded (`decode_config`: a `DecodeConfig`, default the model's own; or
    `decoded`, their decoded crystals where the caller kept them), each with the paper's per-structure metrics
    (`structure_metrics`: the atoms as decoded against the input in the setting encoded) and its trust figure."""
    from nesf.evaluation.metrics import structure_metrics

    if not accepted:
        return []
    refused = [item.source for item in accepted if not item.accepted]
    if refused:
        raise NesfError(f"not encoded, nothing to reconstruct: {', '.join(refused)}")
    choices = [item.choice for item in accepted]
    if decoded is None:
        decoded = autoencoder.decode([c.latent for c in choices], decode_config, ids=[c.crystal.id for c in choices])
    signals = autoencoder.trust(choices)
    results = []
    for item, pred, signal in zip(accepted, decoded, signals):
        metrics, problem = None, ""
        try:
            metrics = structure_metrics(item.choice.crystal, pred)
        except NesfError as exc:
            problem = str(exc)
        except Exception as exc:  # noqa: BLE001 - pymatgen's matcher on odd cells: said, the batch goes on
            problem = f"{type(exc).__name__}: {exc}"
        results.append(Reconstruction(item, pred, metrics, problem, signal))
    return results


def uploads_dataset(accepted: list[PreparedUpload], vocab: list[int]):
    """A dataset ("uploads", one train split) of encodable uploads, each in the cell and setting the model reads
    best, named by its source file."""
    from nesf.data.datasets import CrystalDataset

    crystals = [Crystal(item.choice.crystal.lattice, item.choice.crystal.cart_coords, item.choice.crystal.species,
                        item.source) for item in accepted]
    return CrystalDataset("uploads", {"train": crystals}, vocab, description=f"{len(crystals)} uploaded structures")


def path_end(autoencoder, spec: str, dataset=None) -> tuple[Crystal, str]:
    """One end of a latent path (`nesf interpolate`): a structure file, read and encoded in the setting (and, where
    needed, the cell) the model reads best, its latent not yet refined (both ends are refined together); or a crystal
    of `dataset` (a `Dataset`) named by its id or formula, as stored. Returns it and the note on its cell ("" where
    none). NesfError names a refused file or a name the dataset does not hold."""
    from nesf.core.search import reduced_formula_of
    from nesf.data.structure_io import read_structure_file
    from nesf.model.refine import ENCODER_ONLY

    if Path(spec).is_file():
        prepared = prepare(autoencoder, read_structure_file(Path(spec))[0], Path(spec).name, refine=ENCODER_ONLY)
        if prepared.choice is None:
            raise NesfError(prepared.refused)
        return prepared.choice.crystal, prepared.cell_note
    if dataset is None:
        raise NesfError(f"{spec}: not a file; to pick a dataset crystal by id or formula also give its dataset "
                        "(--dataset)")
    # the best hit of the dataset search, when it is the id or the formula itself (not a crystal that merely holds
    # those elements or whose id contains the text)
    hits = dataset.find(spec, limit=1)
    if not hits or not (hits[0][1].id.lower() == spec.lower() or hits[0][1].formula == reduced_formula_of(spec)):
        raise NesfError(f"{spec}: no crystal with this id or formula in dataset {dataset.name}")
    return hits[0][1], ""


def write_uploads_atlas(autoencoder, paths, out: Path, *, errors: str = "test", maps=None, refine=None
                        ) -> tuple[Path, list[PreparedUpload]]:  # maps: a MapConfig (None: its defaults)
    """An atlas of structure files (folders searched for the formats nesf reads), each prepared as an upload (the
    setting and, where needed, the cell the model reads best, the latent refined unless `refine` says otherwise);
    returns its path and every file's `PreparedUpload` (refused ones name their reason). NesfError where no file is
    found or fewer than two can be encoded."""
    import numpy as np

    from nesf.core.config import MapConfig
    from nesf.data.structure_io import structure_files
    from nesf.inference.atlas import write_atlas

    files = structure_files(paths)
    if not files:
        raise NesfError(f"no structure files in {', '.join(str(p) for p in paths)}")
    prepared = prepare_files(autoencoder, files, cells="use", refine=refine)
    accepted = [p for p in prepared if p.accepted]
    if len(accepted) < 2:
        refused = "; ".join(p.refused for p in prepared if not p.accepted)
        raise NesfError(f"{len(accepted)} of {len(prepared)} structure(s) could be encoded; a map needs at least 2"
                        + (f" ({refused})" if refused else ""))
    path = write_atlas(autoencoder, uploads_dataset(accepted, autoencoder.vocab), out, errors=errors,
                       maps=maps or MapConfig(), latents=np.stack([p.choice.latent for p in accepted]))
    return path, prepared
