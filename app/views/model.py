"""Model: what the active checkpoint is (data, training, Table 1 metrics, loss history) and the runs started here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.errors import shown_errors
from app.ui import training_panel
from app.ui.context import AppContext
from app.ui.structures import TABLE1_DISPLAY
from app.ui.tables import ABSENT, figures_column_config, shown_value
from nesf.checkpoint import CheckpointInfo


def render(ctx: AppContext) -> None:
    st.title(":material/neurology: Model")
    checkpoint = ctx.checkpoint
    if checkpoint is None:
        st.warning("No checkpoint found. Train one with the Retrain panel in the sidebar.")
    else:
        _checkpoint_card(ctx, checkpoint)
    _runs()


def _checkpoint_card(ctx: AppContext, checkpoint: CheckpointInfo) -> None:
    st.subheader(checkpoint.name)
    origin = "shipped with the app" if checkpoint.shipped else "trained in this app"
    st.caption(f"`{checkpoint.path.name}` · {origin} · dataset {checkpoint.dataset or '?'} · created "
               f"{checkpoint.created or '?'} · {checkpoint.epochs} epochs · running on {ctx.device_label}")
    info = checkpoint  # its metadata; loading the model below shows any problem with its weights
    with shown_errors("Loading the model"):
        info = ctx.model().info
    # the tables full width (their split and upload columns do not fit beside the chart), metric names pinned
    st.markdown("**Reconstruction metrics** (the paper's Table 1 metrics per evaluated split, beside the paper's NeSF "
                "figures for the same split; a split's refined column: each latent refined at test time)")
    table = metrics_table(checkpoint.metrics, checkpoint.dataset)
    if table is not None:
        st.dataframe(table, hide_index=True, width="stretch", column_config=figures_column_config(table, "metric"))
    else:
        st.caption("No metrics recorded in this checkpoint (`python -m nesf card CHECKPOINT` records them).")
    uploads = upload_table(checkpoint.metrics)
    if uploads is not None:
        st.markdown("**What users get** (the test split written as CIFs in a random rotation and origin and read "
                    "back as uploads, crystals of other datasets unlike the training set (novel) the same way, "
                    "and crystals converted to the other cells offered for uploads; each encoded in the setting "
                    "the model reads best, its latent refined as the app does; the encoder's latents alone below)")
        refined, encoder_only = uploads
        st.dataframe(refined, hide_index=True, width="stretch", height=38 + 35 * len(refined),  # every row
                     column_config=upload_column_config(refined))
        if encoder_only is not None:
            with st.expander(f"The same uploads, encoder only (the paper's protocol, no refinement): "
                             f"{len(encoder_only)} rows", icon=":material/table_rows:"):
                st.dataframe(encoder_only, hide_index=True, width="stretch", height=38 + 35 * len(encoder_only),
                             column_config=upload_column_config(encoder_only))
    probe = probe_table(checkpoint.metrics)
    if probe is not None:
        st.markdown("**Composition probe** (how much of the composition the latent vectors carry: fitted on the "
                    "training split's latents, scored on each split, beside the latent-free baseline)")
        st.dataframe(probe, hide_index=True, width="stretch", column_config=figures_column_config(probe, "reading"))
    cols = st.columns([3, 4])
    with cols[0]:
        sizes = info.split_sizes
        if sizes:
            st.markdown("**Data** · " + " · ".join(f"{k}: {v:,}" for k, v in sizes.items()))
        wall = info.wall_time_s
        if wall:
            st.markdown(f"**Training time** · {training_panel.format_duration(wall)}")
        source = info.init_from
        if source:  # the loss curve and training time above are this run's; say what came before it
            st.markdown(f"**Fine-tuned from** `{source.name}` · {source.epochs} epochs, "
                        f"{training_panel.format_duration(source.wall_time_s)} before this run")
        hardware = info.hardware
        if hardware:
            st.markdown(f"**Hardware** · {hardware}")
    with cols[1]:
        history = info.history
        if history:
            frame = pd.DataFrame(history)
            fig = go.Figure()
            if "train_loss" in frame:
                fig.add_scatter(x=frame["epoch"], y=frame["train_loss"], name="train", mode="lines")
            if "val_loss" in frame:
                valid = frame.dropna(subset=["val_loss"])
                fig.add_scatter(x=valid["epoch"], y=valid["val_loss"], name="validation", mode="lines+markers")
            fig.update_layout(height=300, margin=dict(l=0, r=0, t=10, b=0), xaxis_title="epoch",
                              yaxis_title="loss", yaxis_type="log", template="plotly_white")
            st.plotly_chart(fig, key="model_history")
        else:
            st.caption("No training history in this checkpoint.")
    card = checkpoint.path.with_suffix(".md")
    if card.is_file():
        with st.expander("Model card", icon=":material/description:"):
            st.markdown(card.read_text(errors="replace"))
    with st.expander("Configuration", icon=":material/settings:"):
        st.json({name: config.to_dict() if config is not None else None for name, config in (
            ("model_config", info.model_config), ("train_config", info.train_config),
            ("sampling_config", info.sampling_config), ("decode_config", info.decode_config))}, expanded=False)


def upload_table(metrics: dict) -> tuple[pd.DataFrame, pd.DataFrame | None] | None:
    """The upload-path figure sets (`nesf.inference.reupload.measure_uploads`: "test[re-uploaded]", the novel
    crystals, the offered cells), one row each after the dataset form of the split it comes from, one column per
    reading: (those with refined latents, what the app gives; those measured encoder only, the paper's protocol, or
    None), so that each fits 1280 px without sideways scrolling; None when the checkpoint has none."""
    from nesf.inference.card import is_upload_label, metrics_by_split, upload_rows

    splits = metrics_by_split(metrics)
    uploads = {label: values for label, values in splits.items() if is_upload_label(label)}
    if not uploads:
        return None

    def table(rows: dict) -> pd.DataFrame | None:
        return pd.DataFrame([{"uploads": name, "crystals": values.get("count"),
                              **{label: shown_value(key, values.get(key)) for key, (label, _) in UPLOAD_COLUMNS.items()}}
                             for name, values in rows.items()]) if rows else None

    return (table(upload_rows(splits, uploads, encoder_only=False)),
            table(upload_rows(splits, uploads, encoder_only=True)))


# the upload table's readings: short headers, so that its columns fit 1280 px without sideways scrolling, and the
# full names as the headers' tooltips
UPLOAD_COLUMNS = {
    "match_rate_percent": ("match %", TABLE1_DISPLAY["match_rate_percent"]),
    "atom_count_error_percent": ("atoms err. %", TABLE1_DISPLAY["atom_count_error_percent"]),
    "position_error_actual_angstrom": ("position err. Å", TABLE1_DISPLAY["position_error_actual_angstrom"]),
    "species_error_actual_percent": ("species err. %", TABLE1_DISPLAY["species_error_actual_percent"]),
    "refused_percent": ("refused %", "Uploads refused (outside the model's range) [%]"),
    "refine_s_per_crystal": ("refine s", "Refinement time per crystal [s]"),
}


def upload_column_config(table: pd.DataFrame) -> dict:
    """The upload table's column settings: its names pinned, its figures right-aligned, each reading's full name as its
    header's tooltip."""
    return figures_column_config(table, "uploads", dict(UPLOAD_COLUMNS.values()))


def _readings_table(first: str, keys: dict, columns: dict) -> pd.DataFrame:
    """One row per reading of `keys` ({key: label}), one column per entry of `columns` ({name: values}), its
    crystal count in the header where it has one."""
    rows = []
    for key, label in keys.items():
        row = {first: label}
        for name, values in columns.items():
            row[f"{name} ({values['count']})" if "count" in values else name] = shown_value(key, values.get(key))
        rows.append(row)
    return pd.DataFrame(rows)


def metrics_table(metrics: dict, dataset: str) -> pd.DataFrame | None:
    """One row per metric, one column per evaluated split (crystal count in the header), then the paper's NeSF figures
    for each of those splits (Table 1 for test, Tables S1 / S2 for train / val), where the paper reports them. The
    upload-path figures have their own table (`upload_table`); a card's CI subsets ("test[:64]") stay in its card."""
    from nesf.checkpoint.labels import MetricsLabel
    from nesf.evaluation.metrics import paper_reference
    from nesf.inference.card import metrics_by_split

    labels = {MetricsLabel.parse(label): values for label, values in metrics_by_split(metrics).items()}
    splits = {label: values for label, values in labels.items()
              if not label.is_upload and not label.is_ci_subset}  # a card's CI subsets ("test[:64]"): in its card
    if not splits:
        return None
    bases = dict.fromkeys(label.base for label in splits)  # "test[refined]" is test's
    papers = {base: paper_reference(dataset, base) for base in bases if base in ("train", "val", "test")}
    rows = []
    for key, label in TABLE1_DISPLAY.items():
        row = {"metric": label}
        for split, values in splits.items():
            name = split.row_name  # "test[refined]": "test, refined", the test split, latents refined
            header = f"{name} ({values['count']})" if "count" in values else name
            row[header] = shown_value(key, values.get(key))
        for split, (table, paper) in papers.items():
            if paper:
                published = paper.get(key)  # as the paper prints it
                row[f"paper, {split} ({table})"] = ABSENT if published is None else published
        rows.append(row)
    return pd.DataFrame(rows)


def probe_table(metrics: dict) -> pd.DataFrame | None:
    """One row per composition-probe reading, one column per split that has it; None when no split has one."""
    from nesf.checkpoint.labels import MetricsLabel
    from nesf.evaluation.probe import PROBE_KEYS
    from nesf.inference.card import metrics_by_split

    splits = {split: values for split, values in metrics_by_split(metrics).items()
              if any(key in values for key in PROBE_KEYS) and not MetricsLabel.parse(split).is_ci_subset}  # in the card
    if not splits:
        return None
    return _readings_table("reading", PROBE_KEYS, splits)


def _runs() -> None:
    st.subheader("Training runs started here")
    # A fragment that polls while a run is active, so this table keeps pace with the sidebar's progress bar.
    live = training_panel.manager().active() is not None
    st.fragment(_runs_table, run_every=training_panel.POLL_S if live else None)()


def _runs_table() -> None:
    runs = training_panel.manager().runs()
    if not runs:
        st.caption("None yet: use Retrain in the sidebar.")
        return
    rows = [{"name": r.name, "state": r.state, "epoch": f"{r.epoch}/{r.epochs}",
             "elapsed": training_panel.format_duration(r.elapsed_s), "checkpoint": Path(r.checkpoint).name
             if r.checkpoint else "", "message": r.message} for r in runs]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
