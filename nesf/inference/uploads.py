"""Uploaded structure files through the product's path, file by file: read, range check, the cell that fits, the
setting the model reads best, and why any one was refused. The CLI's `reconstruct` uses this; one bad file never
stops a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nesf.core.crystal import Crystal
from nesf.core.errors import NesfError
from nesf.model.frame_select import FrameChoice


@dataclass(frozen=True)
class PreparedUpload:
    source: str                       # the file's name, with " #k" for the k-th structure of a multi-structure file
    crystal: Crystal | None           # as read (the canonical cell); None when the file could not be read
    choice: FrameChoice | None        # the cell and setting encoded, with its latent; None when refused
    cell_note: str                    # "" or what other cell is used and its measured quality
    refused: str                      # "" or why this structure cannot be encoded by this model


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


def prepare(autoencoder, crystal: Crystal, source: str, *, use_fitting_cell: bool = True, refine=None,
            progress=None) -> PreparedUpload:
    """One structure: its best setting, in its own cell or (`use_fitting_cell`) in the offered cell that fits, its
    latent refined (`refine`: default the model's own; `nesf.model.refine.ENCODER_ONLY` for the paper's protocol;
    `progress(fraction, message)` while it runs)."""
    try:
        return PreparedUpload(source, crystal, autoencoder.select_frames([crystal], refine, progress)[0], "", "")
    except NesfError as exc:
        reason = str(exc)
    offers, declined = autoencoder.cell_offers(crystal) if use_fitting_cell else ([], [])
    if not offers:
        note = declined_note(autoencoder, declined)
        return PreparedUpload(source, crystal, None, "", reason + (f" ({note})" if note else ""))
    alternative = offers[0]
    choice = autoencoder.select_frames([alternative], refine, progress)[0]
    return PreparedUpload(source, crystal, choice, cell_offer_note(autoencoder, alternative, choice), "")


def prepare_files(autoencoder, paths, *, use_fitting_cell: bool = True, refine=None, progress=None
                  ) -> list[PreparedUpload]:
    """Every structure of every file, each prepared on its own (`prepare`), their latents then refined together
    (`refine`, as `prepare`); an unreadable file is one refused entry naming the problem."""
    from dataclasses import replace

    prepared = _prepare_each(autoencoder, paths, use_fitting_cell)
    accepted = [i for i, item in enumerate(prepared) if item.choice is not None]
    refined = autoencoder.refine([prepared[i].choice for i in accepted], refine, progress) if accepted else []
    for i, choice in zip(accepted, refined):
        item = prepared[i]
        note = cell_offer_note(autoencoder, choice.crystal, choice) if item.cell_note else ""
        prepared[i] = replace(item, choice=choice, cell_note=note)
    return prepared


def _prepare_each(autoencoder, paths, use_fitting_cell: bool) -> list[PreparedUpload]:
    from nesf.data.structure_io import read_structure_file
    from nesf.model.refine import ENCODER_ONLY

    prepared = []
    for path in paths:
        path = Path(path)
        try:
            crystals = read_structure_file(path)
        except (NesfError, OSError) as exc:
            prepared.append(PreparedUpload(path.name, None, None, "", str(exc)))
            continue
        for k, crystal in enumerate(crystals):
            source = path.name if len(crystals) == 1 else f"{path.name} #{k + 1}"
            prepared.append(prepare(autoencoder, crystal, source, use_fitting_cell=use_fitting_cell,
                                    refine=ENCODER_ONLY))
    return prepared


def uploads_dataset(accepted: list[PreparedUpload], vocab: list[int]):
    """A dataset ("uploads", one train split) of encodable uploads, each in the cell and setting the model reads
    best, named by its source file."""
    from nesf.data.datasets import CrystalDataset

    crystals = [Crystal(item.choice.crystal.lattice, item.choice.crystal.cart_coords, item.choice.crystal.species,
                        item.source) for item in accepted]
    return CrystalDataset("uploads", {"train": crystals}, vocab, description=f"{len(crystals)} uploaded structures")
