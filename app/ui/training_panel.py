"""The Retrain panel: choose data and settings, start a background run, follow it live, cancel it."""

from __future__ import annotations

import time
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from app import backend, settings, state
from app.errors import describe, shown_errors
from app.training_runs import RunStatus, TrainingManager, TrainSpec
from nesf.core.config import TrainConfig

POLL_S = 1.5
PANEL_OPEN = "retrain_open"   # whether the Retrain panel is open (expander key)


def manager() -> TrainingManager:
    return TrainingManager(settings.RUNS_DIR, settings.USER_CHECKPOINT_DIR)


def format_duration(seconds) -> str:
    if seconds is None:
        return "–"
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")


def loss_figure(status: RunStatus) -> go.Figure:
    epochs = [h["epoch"] for h in status.history]
    fig = go.Figure()
    fig.add_scatter(x=epochs, y=[h.get("train_loss") for h in status.history], name="train", mode="lines")
    if any(h.get("val_loss") is not None for h in status.history):
        points = [(h["epoch"], h["val_loss"]) for h in status.history if h.get("val_loss") is not None]
        fig.add_scatter(x=[p[0] for p in points], y=[p[1] for p in points], name="val", mode="lines+markers")
    fig.update_layout(height=190, margin=dict(l=0, r=0, t=4, b=0), xaxis_title="epoch", yaxis_title="loss",
                      yaxis_type="log", legend=dict(orientation="h", y=1.15, x=0), template="plotly_white")
    return fig


def _finished_message(status: RunStatus) -> None:
    checkpoint = f" Checkpoint: `{Path(status.checkpoint).name}`." if status.checkpoint else ""
    if status.state == "done":
        st.success(f"Training run **{status.name}** finished ({status.epochs} epochs). It is now in the "
                   f"checkpoint selector.{checkpoint}", icon=":material/check_circle:")
    elif status.state == "cancelled":
        kept = _kept_checkpoint(status)
        st.warning(f"Training run **{status.name}** was cancelled at epoch {status.epoch}.{kept}",
                   icon=":material/cancel:")
    else:
        kept = _kept_checkpoint(status)
        st.error(f"Training run **{status.name}** {'failed' if status.state == 'failed' else 'stopped'} at epoch "
                 f"{status.epoch}: {status.message or 'no reason given'}.{kept}", icon=":material/error:")


def _kept_checkpoint(status: RunStatus) -> str:
    """What a run that ended early left: a selectable model, a resume state of untrained weights, or nothing."""
    from nesf.checkpoint import read_checkpoint_info
    from nesf.core.errors import NesfError

    if not status.checkpoint or not Path(status.checkpoint).is_file():
        return " It had not saved a checkpoint yet, so there is nothing to select."
    path = Path(status.checkpoint)
    try:
        trained = read_checkpoint_info(path).trained
    except NesfError as exc:
        return f" Its checkpoint `{path.name}` cannot be read ({exc}), so it is not offered."
    if trained:
        return f" Its last good checkpoint `{path.name}` is kept and selectable."
    return (f" It stopped before its first epoch finished, so its weights are untrained and `{path.name}` is not "
            f"offered as a model; it holds the steps taken, which `python -m nesf train --resume {path}` "
            f"(with the run's datasets) continues.")


def _status_body() -> None:
    runs = manager()
    watched = state.watched_run()
    active = runs.active()
    if active is None and watched:
        # the run this browser was following has ended: rerun the whole app so the checkpoint list updates
        state.run_finished(watched)
        st.rerun(scope="app")
    if active is None:
        finished = state.finished_run()
        if finished:
            try:
                _finished_message(runs.status(finished))
            except Exception as exc:  # noqa: BLE001
                st.caption(describe(exc, "Last training run"))
        return
    state.watch_run(active.run_id)
    within = (f" · step {active.step}/{active.steps_per_epoch} of epoch {active.epoch + 1}"
              if active.step and active.steps_per_epoch else "")
    st.markdown(f"**Training {active.name}** · epoch {active.epoch}/{active.epochs or '?'}{within}")
    st.progress(active.fraction, text=f"elapsed {format_duration(active.elapsed_s)} · ETA {format_duration(active.eta_s)}")
    if active.history:
        st.plotly_chart(loss_figure(active), config={"displayModeBar": False}, key="loss_curve")
    else:
        st.caption(f"First epoch: step {active.step} of {active.steps_per_epoch}…" if active.step else
                   "Preparing the data and the model for the first epoch…")
    if st.button("Cancel training", icon=":material/stop_circle:", key="cancel_training"):
        with shown_errors("Cancelling"):
            runs.cancel(active.run_id)
            st.toast("Cancelling: the run saves its last good checkpoint and stops.")


def _save_uploads(files) -> str | None:
    """Check and keep uploaded structure files for a training run; the folder they are in."""
    if not files:
        return None
    good = []
    for file in files:
        data = file.getvalue()
        backend.read_upload(data, file.name)  # raises NesfError naming the file
        good.append((file.name, data))
    folder = settings.UPLOADS_DIR / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in good:
        (folder / Path(name).name).write_bytes(data)
    return str(folder)


def render(*, dataset_names: dict[str, str], data_dir: str, taken_names: set[str]) -> None:
    runs = manager()
    active = runs.active()
    # run only while open (its form's ten widgets cost every page's first paint ~0.5 s in a browser without a
    # GPU); open at first while a run is going or has just ended
    if (active is not None or state.finished_run()) and PANEL_OPEN not in st.session_state:
        st.session_state[PANEL_OPEN] = True  # (not `expanded=`: a changed argument would make it a new widget)
    with st.expander("Retrain", icon=":material/model_training:", key=PANEL_OPEN, on_change="rerun") as panel:
        if not panel.open:
            return
        st.fragment(_status_body, run_every=POLL_S if active is not None else None)()
        if active is not None:
            st.info("One training run at a time: wait for it or cancel it to start another.", icon=":material/info:")
        with st.form("retrain_form", border=False):
            chosen = st.multiselect("Datasets", list(dataset_names), format_func=lambda n: dataset_names.get(n, n),
                                    placeholder="choose one or more" if dataset_names else "no dataset found",
                                    key="train_datasets")
            files = st.file_uploader("…or your structure files", accept_multiple_files=True, key="train_files",
                                     help="CIF, POSCAR/CONTCAR, pymatgen JSON or extxyz; split 90/5/5.")
            defaults = TrainConfig()
            cols = st.columns(2)
            epochs = cols[0].number_input("Epochs", 1, 100_000, settings.RETRAIN_EPOCHS, key="train_epochs")
            batch_size = cols[1].number_input("Batch size", 1, 4096, defaults.batch_size, key="train_batch_size")
            lr = cols[0].number_input("Learning rate", 1e-6, 1.0, defaults.learning_rate, format="%.0e", step=1e-4,
                                      key="train_lr")
            name = cols[1].text_input("Name", "my-model", key="train_name")
            submitted = st.form_submit_button("Start training", icon=":material/play_arrow:",
                                              disabled=active is not None, type="primary")
        if submitted:
            with shown_errors("Could not start training"):
                structures_dir = _save_uploads(files)
                spec = TrainSpec(name=name.strip(), datasets=tuple(chosen), structures_dir=structures_dir,
                                 epochs=int(epochs), batch_size=int(batch_size), learning_rate=float(lr),
                                 data_dir=data_dir or None)
                status = runs.start(spec, taken_names=taken_names)
                state.watch_run(status.run_id)
                st.rerun()
