"""Model cards: evaluate a checkpoint on its dataset's splits, store the metrics in the checkpoint, write a `.md`."""

from __future__ import annotations

import time
from pathlib import Path

from nesf.checkpoint import load_checkpoint, save_checkpoint
from nesf.metrics import TABLE1_LABELS, paper_reference, table1_metrics
from nesf.probe import PROBE_KEYS, composition_probe, crystal_fractions


def metrics_by_split(metrics: dict | None) -> dict[str, dict]:
    """A checkpoint's stored metrics per split label ({"test": {...}, "test[:64]": {...}}, as `record_metrics`
    writes them); a flat dict of numbers (a checkpoint from before model cards) counts as one split, "held out"."""
    metrics = metrics or {}
    nested = {label: values for label, values in metrics.items() if isinstance(values, dict)}
    if nested:
        return nested
    flat = {key: value for key, value in metrics.items() if isinstance(value, (int, float))}
    return {"held out": flat} if flat else {}


def headline_metrics(metrics: dict | None) -> tuple[str, dict] | None:
    """The split a checkpoint is summarised by: the full test split, else validation, else the first recorded."""
    splits = metrics_by_split(metrics)
    for label in ("test", "val", *splits):
        if label in splits:
            return label, splits[label]
    return None


def evaluate_split(autoencoder, crystals, decode_config) -> tuple[dict, float]:
    started = time.monotonic()
    preds = autoencoder.reconstruct(crystals, decode_config, check_box=False)
    seconds = time.monotonic() - started
    return table1_metrics(crystals, preds), seconds


def probe_split(autoencoder, fit_crystals, eval_crystals) -> dict:
    """The composition probe (`nesf.probe`) of a checkpoint: fitted on `fit_crystals`' latents (the training split),
    scored on `eval_crystals`'; {} when there is nothing to fit on."""
    if len(fit_crystals) < 2 or not eval_crystals:
        return {}
    fit_latents = autoencoder.encode(fit_crystals, check_box=False)
    eval_latents = autoencoder.encode(eval_crystals, check_box=False)
    return composition_probe(fit_latents, crystal_fractions(fit_crystals, autoencoder.vocab), eval_latents,
                             crystal_fractions(eval_crystals, autoencoder.vocab))


def record_metrics(path: Path, metrics: dict) -> None:
    """Store `metrics` ({"test": {...}, ...}) inside the checkpoint file, atomically."""
    payload = load_checkpoint(path)
    payload["metrics"] = {**payload.get("metrics", {}), **metrics}
    save_checkpoint(payload, path)


def _init_from_line(source: dict | None) -> list[str]:
    if not source:
        return []
    cpu = f", {float(source['cpu_time_s']) / 3600:.2f} CPU core-hours" if source.get("cpu_time_s") else ""
    widened = ""
    if source.get("widened_query_encoding"):
        widened += (f"; a sin/cos query encoding of {source['widened_query_encoding']} frequencies added, its new "
                    f"inputs starting at zero weight")
    for name, widths in (source.get("widened_field_channels") or {}).items():
        widened += (f"; {name.removesuffix('_channels').replace('_', ' ')} widened from hidden widths "
                    f"{tuple(widths)}, the new units starting with zero outgoing weights")
    return [f"- Started from the weights of `{source.get('name')}` ({source.get('epochs')} epochs, "
            f"{float(source.get('wall_time_s') or 0) / 3600:.2f} h{cpu}, its own sources included; sha256 "
            f"{str(source.get('sha256'))[:12]}...), with a new optimizer and learning-rate schedule{widened}"]


def _lattice_refit_line(refit: dict | None) -> list[str]:
    if not refit:
        return []
    result, config = refit.get("result", {}), refit.get("config", {})
    chosen = ", ".join(f"{name} head " + (f"from epoch {result.get(key)}" if result.get(key) else "kept as trained")
                       for name, key in (("length", "length_epoch"), ("angle", "angle_epoch")))
    before, after = result.get("val_before", {}), result.get("val_after", {})
    return [f"- Lattice heads refitted on the frozen encoder's eval-mode latents of `{refit.get('dataset')}` train "
            f"(`nesf refit-lattice`, {config.get('epochs')} epochs, {float(result.get('seconds', 0)):.0f} s; "
            f"{chosen}, chosen on validation): validation lattice error "
            f"{before.get('length_angstrom', 0):.4f} A / {before.get('angle_degrees', 0):.3f} deg -> "
            f"{after.get('length_angstrom', 0):.4f} A / {after.get('angle_degrees', 0):.3f} deg; encoder and fields "
            f"unchanged"]


def _stored_weights_line(stored: str) -> list[str]:
    if stored != "fp16":
        return []
    return ["- Weights stored in fp16 to halve the file (`nesf ship --weights fp16`), the lattice heads in fp32; the "
            "model computes in fp32, and the metrics below are this file's"]


def write_card(path: Path, autoencoder, metrics: dict, *, decode_name: str, command: str, notes: str = "") -> Path:
    info = autoencoder.info
    lines = [f"# {info.name} — NeSF model card", "",
             f"- Dataset: `{info.dataset}`; split sizes {info.split_sizes}",
             f"- Trained: {info.epoch} epochs, {info.wall_time_s / 3600:.2f} h wall time"
             + (f" ({info.cpu_time_s / 3600:.2f} CPU core-hours)" if info.cpu_time_s else "")
             + f" on {info.hardware or None}; created {info.created}",
             *_init_from_line(info.init_from),
             *_lattice_refit_line(info.lattice_refit),
             *_stored_weights_line(info.stored_weights),
             f"- Model config: `{info.model_config}`",
             f"- Train config: `{info.train_config}`",
             f"- Sampling config: `{info.sampling_config}`",
             f"- Decoding used below: {decode_name} (`{info.decode_config}`)",
             (f"- Best validation loss: {info.best_val_loss}"
              if (info.train_config or {}).get("keep_best_by_validation", True) else
              f"- Weights: the last epoch's, not chosen on validation (lowest validation loss seen: "
              f"{info.best_val_loss})"), "",
             "## Range: the cells this model was trained on (uploads outside it are refused, naming the excess)", "",
             "| quantity | range |", "|---|---|",
             *[f"| {key} | {value} |" for key, value in autoencoder.range.summary().items()], ""]
    for split, values in metrics.items():
        table, reference = paper_reference(info.dataset, split)
        lines += [f"## Metrics: {split} ({values.get('count')} crystals, decoded in {values.get('decode_s', 0):.0f} s)",
                  "", f"| metric | ours | paper (NeSF, {table}: {split}) |", "|---|---|---|"]
        for key, label in TABLE1_LABELS.items():
            if key in values:
                lines.append(f"| {label} | {values[key]:.4f} | {reference.get(key, '—')} |")
        lines.append("")
        if any(key in values for key in PROBE_KEYS):
            lines += [f"Composition probe (fitted on the training split's latents, scored on {split}):", "",
                      "| reading | value |", "|---|---|"]
            lines += [f"| {label} | {values[key]:.4f} |" for key, label in PROBE_KEYS.items() if key in values]
            lines.append("")
    lines += ["## Reproduce", "", "```bash", command, "```", ""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    card = Path(path).with_suffix(".md")
    card.write_text("\n".join(lines))
    return card
