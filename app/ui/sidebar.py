"""The sidebar every page shares: checkpoint, device, dataset, decoding preset and the Retrain panel."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import backend, links, settings, state
from app.errors import shown_errors
from app.ui import training_panel
from app.ui.context import AppContext
from nesf.checkpoint import CheckpointInfo

DATASET_OF = "nesf.dataset_of"  # the checkpoint the active dataset was chosen for
HEADLINE_METRICS = (
    ("match_rate_percent", "match rate", "{:.1f} %"),
    ("position_error_actual_angstrom", "position error", "{:.3f} Å"),
    ("atom_count_error_percent", "atom count error", "{:.1f} %"),
    ("species_error_actual_percent", "species error", "{:.1f} %"),
)


def _device_label(device: str) -> str:
    import torch

    if device == "cpu" or not torch.cuda.is_available():
        return "CPU"
    return f"CUDA ({torch.cuda.get_device_name(0)})"


def headline_metrics(metrics: dict) -> str:
    from nesf.inference.card import headline_metrics as headline

    found = headline(metrics)
    if found is None:
        return "no metrics recorded"
    split, values = found
    parts = [f"{label} {fmt.format(values[key])}" for key, label, fmt in HEADLINE_METRICS
             if isinstance(values.get(key), (int, float))]
    return f"{split}: " + " · ".join(parts) if parts else "no metrics recorded"


DECODE_LABELS = {"fast": "fast (interactive)", "paper": "paper settings", "checkpoint": "checkpoint's own"}


def render() -> AppContext:
    """Draw the sidebar and return what it selected."""
    sb = st.sidebar
    sb.markdown("### :material/hub: NeSF Explorer")

    # -- checkpoint ----------------------------------------------------------------------------------------------
    found: list[CheckpointInfo] = []
    with shown_errors("Listing checkpoints", container=sb):
        found = backend.checkpoints()
    links.apply_link(found)
    checkpoint = None
    if not found:
        sb.error(f"No checkpoint found in {settings.CHECKPOINT_DIR}. Train one with the Retrain panel below.")
    else:
        by_path = {str(c.path): c for c in found}
        state.keep_choice("checkpoint", list(by_path))
        path = sb.selectbox("Checkpoint", list(by_path), key="checkpoint", format_func=lambda p: by_path[p].label,
                            help="Shipped checkpoints live in checkpoints/, the ones trained here in checkpoints/user/.")
        checkpoint = by_path[path]
        sb.caption(f"{checkpoint.epochs} epochs · {headline_metrics(checkpoint.metrics)}")

    # -- device ------------------------------------------------------------------------------------------------
    device = "auto"
    device_label = _device_label(device)
    sb.caption(f":material/memory: Device: **{device_label}**")

    # -- dataset -----------------------------------------------------------------------------------------------
    from nesf.data.datasets import default_data_dir

    state.set_default("data_dir", str(default_data_dir()))
    data_dir = sb.text_input("Data directory", key="data_dir",
                             help="Where the datasets are (NESF_DATA_DIR). The latent atlas of the checkpoint "
                                  "needs no data directory.")
    names: dict[str, str] = {}
    with shown_errors("Looking for datasets", container=sb):
        names = backend.available_datasets(data_dir)
    if data_dir and not Path(data_dir).is_dir():
        sb.caption(f":material/info: No folder {data_dir}; the checkpoint's atlas is the only dataset.")

    atlas = None
    atlas_name = None
    if checkpoint is not None and checkpoint.atlas_path:
        atlas_name = f"{checkpoint.dataset or 'dataset'} (atlas of the checkpoint)"
    # the atlas option names its checkpoint: the browser's selectbox keeps an option's label while its value stays,
    # so one value for every checkpoint's atlas would go on showing the previous model's dataset
    atlas_choice = f"{state.ATLAS_OPTION}:{checkpoint.path}" if atlas_name else None
    options = ([atlas_choice] if atlas_name else []) + list(names)
    labels = {atlas_choice: atlas_name, **names}
    if options:
        if checkpoint is not None and st.session_state.get(DATASET_OF) != str(checkpoint.path):
            # a checkpoint just chosen opens on its own atlas, else on the dataset it was trained on (not on the
            # previous model's choice: re-encoding a dataset costs minutes, and another dataset may hold elements
            # this model does not know); a link's dataset, applied next, still wins
            st.session_state[DATASET_OF] = str(checkpoint.path)
            own = atlas_choice or (checkpoint.dataset if checkpoint.dataset in options else None)
            if own is not None:
                state.keep_choice("dataset_choice", [own])
        links.resolve_dataset(options, atlas_choice)
        state.keep_choice("dataset_choice", options)
        choice = sb.selectbox("Active dataset", options, key="dataset_choice", format_func=lambda n: labels[n])
        if checkpoint is not None:
            with shown_errors(f"Loading dataset {labels[choice]}", container=sb):
                if choice == atlas_choice:
                    atlas = backend.checkpoint_atlas(checkpoint, device)
                else:
                    atlas = backend.dataset_atlas(choice, data_dir, checkpoint, device)
        if atlas is not None:
            sb.caption(f"{len(atlas.crystals):,} crystals")
            links.resolve_selection(atlas)
    else:
        sb.warning("No dataset: the data directory holds none and the checkpoint has no atlas.")

    decode_mode = sb.radio("Decoding", list(DECODE_LABELS), key="decode_mode", horizontal=True,
                           format_func=DECODE_LABELS.get,
                           help="Fast: particles only in the predicted cell, on a 0.8 Å grid, converged particles "
                                "stop early. Paper: the full particle grid of the paper (slower). Checkpoint's own: "
                                "the decoding the checkpoint was trained for (what the command line uses).")

    refine = sb.toggle("Refine latents", value=True, key="refine_latents",
                       help="On: each structure you upload or pick gets its latent refined at test time (up to 50 "
                            "steps of Adam on the decoders' own loss at its atoms, the weights frozen; the encoder's "
                            "latent is kept where that does not lower the field residual). Off: the encoder's latent "
                            "alone, the paper's protocol. The Model page shows what each gives.")

    # -- retrain -----------------------------------------------------------------------------------------------
    taken = {c.name for c in found} | {c.path.stem for c in found}
    with sb:
        training_panel.render(dataset_names=names, data_dir=data_dir, taken_names=taken)

    return AppContext(checkpoint=checkpoint, device=device, device_label=device_label, decode_mode=decode_mode,
                      data_dir=data_dir, atlas=atlas, refine=refine)
