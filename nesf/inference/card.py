"""Model cards rendered: a checkpoint's stored figures as a `.md` beside it (`write_card`), and the readers of those
figures the pages share. Measuring them is `nesf.inference.card_measure`'s job."""

from __future__ import annotations

from pathlib import Path

from nesf.checkpoint import LatticeRefitRecord, SourceRecord
from nesf.checkpoint.labels import TRUST, MetricsLabel, figure_labels
from nesf.evaluation.metrics import TABLE1_LABELS, paper_reference
from nesf.evaluation.probe import PROBE_KEYS


def metrics_by_split(metrics: dict | None) -> dict[str, dict]:
    """A checkpoint's stored figures per label ({"test": {...}, "test[:64]": {...}}, as `Checkpoint.with_metrics`
    stores them; `nesf.checkpoint.labels.figure_labels`, keyed by the labels' text)."""
    return {str(label): values for label, values in figure_labels(metrics).items()}


def headline_metrics(metrics: dict | None) -> tuple[str, dict] | None:
    """The split a checkpoint is summarised by: the full test split, else validation, else the first recorded."""
    splits = metrics_by_split(metrics)
    for label in ("test", "val", *splits):
        if label in splits:
            return label, splits[label]
    return None


def _cdvae_section(dataset: str, splits: dict) -> list[str]:
    """CDVAE's reconstruction benchmark beside the published models, for the splits that hold it."""
    from nesf.inference.generation.published import PUBLISHED_RECONSTRUCTION

    measured = {label: values for label, values in splits.items()
                if "cdvae_match_rate_percent" in values and MetricsLabel.parse(label).is_split}  # not CI subsets
    if not measured:
        return []
    published = PUBLISHED_RECONSTRUCTION.get(dataset, {})
    names = [f"ours ({label}, {values.get('count')})" for label, values in measured.items()]
    lines = ["## CDVAE's reconstruction benchmark", "",
             "A reconstruction counts where it is valid (no two atoms closer than 0.5 A, SMACT charge-neutral) and "
             "StructureMatcher (stol 0.5, ltol 0.3, angle_tol 10) matches it to the input; RMSE is the mean over "
             "matches, normalised by (V/N)^(1/3), as CDVAE's `compute_metrics.py`."
             + (" The published models trained on the 11,356-crystal train split; ours on the val split (less 4 % "
                "held out for model selection), as the card's split sizes say." if published else ""), "",
             "| metric | " + " | ".join([*names, *published]) + " |", "|---|" + "---|" * (len(names) + len(published))]
    for key, label, published_key in (("cdvae_match_rate_percent", "Match rate [%]", "match_rate_percent"),
                                      ("cdvae_rmse", "RMSE", "rmse"),
                                      ("match_rate_percent", "Match rate, validity not required [%]", None),
                                      ("cdvae_inputs_valid_percent", "Inputs that are valid themselves [%]", None)):
        if not all(key in values for values in measured.values()):
            continue
        cells = [f"{values[key]:.2f}" if key.endswith("_percent") else f"{values[key]:.4f}"  # as CDVAE publishes
                 for values in measured.values()]
        cells += [f"{model[published_key]}" if published_key else "—" for model in published.values()]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if all("cdvae_inputs_valid_percent" in values for values in measured.values()):
        lines += ["", "The benchmark asks the reconstruction to be valid, and some inputs are not valid themselves (SMACT "
                  "finds no charge-neutral oxidation states for them with the installed SMACT's oxidation-state "
                  "table): their share caps the match rate of a perfect model. The match rate without the validity "
                  "requirement is the one comparable across SMACT versions."]
    return [*lines, ""]


def is_upload_label(label: str) -> bool:
    """A stored label of upload-path figures (`nesf.inference.reupload.measure_uploads`): "test[re-uploaded]",
    "test[primitive standard cells]", ...; not a split, a CI subset ("test[:64]") or a split's refined figures."""
    return MetricsLabel.parse(label).is_upload


UPLOAD_COLUMNS = {"match_rate_percent": "match [%]", "atom_count_error_percent": "atom count error [%]",
                  "position_error_actual_angstrom": "position error, actual [A]",
                  "species_error_actual_percent": "species error, actual [%]", "refused_percent": "refused [%]",
                  "refine_s_per_crystal": "refinement [s/crystal]"}


def ordered_uploads(uploads: dict) -> dict:
    """Upload-path figures in reading order: each set of uploads (refined) directly followed by its encoder-only
    twin, sets in the order they were measured."""
    ordered = {}
    for label, values in uploads.items():
        ordered.setdefault(MetricsLabel.parse(label).protocol(encoder_only=False), {})[label] = values
    return {label: values for group in ordered.values() for label, values in group.items()}


def upload_rows(splits: dict, uploads: dict, *, encoder_only: bool | None = None) -> dict:
    """{row name: values} of the "what users get" table: each split's dataset form (encoder only) before its first
    upload figures, then the upload figures in reading order (`ordered_uploads`), named "test, re-uploaded"; with
    `encoder_only` False those with refined latents only, True those measured encoder only alone (named without
    the protocol their table states)."""
    rows = {}
    for label, values in ordered_uploads(uploads).items():
        parsed = MetricsLabel.parse(label)
        if encoder_only is not None and parsed.encoder_only != encoder_only:
            continue
        if not encoder_only and parsed.base in splits and f"{parsed.base}, as stored (encoder only)" not in rows:
            rows[f"{parsed.base}, as stored (encoder only)"] = splits[parsed.base]
        rows[parsed.protocol(encoder_only=False).row_name if encoder_only else parsed.row_name] = values
    return rows


def _cell(value, key: str = "") -> str:
    """A number at the precision it is measured to: percentages to 0.1, Angstrom to 0.001, seconds to 0.01."""
    if not isinstance(value, (int, float)):
        return "—"
    if key.endswith("_percent"):
        return f"{value:.1f}"
    if key.endswith("_angstrom") or key.endswith("_degrees"):
        return f"{value:.3f}"
    if key.endswith("_s_per_crystal") or key.endswith("_s"):
        return f"{value:.2f}"
    return f"{value:.3g}"


def _upload_section(splits: dict, uploads: dict, trust: dict) -> list[str]:
    """The card's "what users get" table, one row per set of uploads (refined, then in the paper's encoder-only
    protocol), then the trust calibrations with their reliability per source."""
    if not uploads:
        return []
    from nesf.inference.reupload import ENCODER_ONLY_TAG

    first = next(iter(uploads.values()))
    lines = ["## What users get: uploads through the app's path", "",
             f"Each structure written as a P1 CIF after a random rotation and origin shift (seed {first.get('seed', 0)}) "
             "and read back as an upload (re-uploaded), or converted to the other cells the app offers for uploads "
             "outside the model's range, then encoded in the setting the model reads best (frame selection), its "
             "latent refined (the product's default; rows marked encoder only: the paper's protocol, no refinement), "
             "decoded and compared with it. A refused upload (outside the model's range) counts as a miss in the "
             "match rate. Novel: test crystals of other datasets that are no training crystal of this model (a reduced "
             "formula nowhere in its training split, or a structure StructureMatcher matches to none of that "
             "formula's training crystals), as a user's own new material would be. The hexagonal crystals are the "
             "held-out set of `nesf.data.hexagonal_set`.", "",
             "| uploads | crystals | " + " | ".join(UPLOAD_COLUMNS.values()) + " |",
             "|---|---|" + "---|" * len(UPLOAD_COLUMNS)]
    for name, values in upload_rows(splits, uploads).items():
        lines.append(f"| {name} | {values.get('count', '—')} | "
                     + " | ".join(_cell(values.get(key), key) for key in UPLOAD_COLUMNS) + " |")
    lines.append("")
    lines += _trust_lines(trust, ENCODER_ONLY_TAG)
    return lines


def _offers_lines(autoencoder) -> list[str]:
    """Which kinds of cell the app offers to uploads outside the model's range, and why each is or is not offered."""
    from nesf.inference.autoencoder import MIN_OFFER_MATCH_PERCENT
    from nesf.inference.reupload import CELL_KINDS

    lines = []
    for kind in CELL_KINDS:
        quality = autoencoder.cell_offer_quality(kind)
        if quality is None:
            lines.append(f"- {kind} cells: not measured, offered without a figure")
            continue
        rate = quality["match_rate_percent"]
        verdict = "offered" if rate >= MIN_OFFER_MATCH_PERCENT else "not offered: the upload is refused, naming why"
        lines.append(f"- {kind} cells: {quality['measured_on']} in such cells matched {rate:.1f} % "
                     f"({quality['count']} crystals, refined latents); {verdict}")
    if not lines:
        return []
    return [f"## Offered cells (from {MIN_OFFER_MATCH_PERCENT:.0f} % on crystals unlike the training set)", "",
            "Where an upload's own cell is outside the model's range but another cell of the same crystal fits, the "
            "app offers that cell (the CLI uses it) only for kinds this model reconstructs well enough. A hexagonal "
            "crystal's 120-degree cell lies outside the range of a model trained on no such cell; its orthohexagonal "
            "cell (a, sqrt(3) a, c) is then the only way in.", "", *lines, ""]


def _trust_lines(trust: dict, encoder_tag: str) -> list[str]:
    """Each stored calibration: its bins, then (where it has them) its reliability per source, out of fold."""
    from nesf.inference.trust import SIGNALS, TrustCalibration

    lines = []
    for key, stored in trust.items():
        calibration = TrustCalibration.from_dict(stored)
        protocol = "encoder's latents" if key.endswith(encoder_tag) else "refined latents"
        shown = "" if calibration.informative else (
            " Out of fold, it does not beat always guessing the base rate (on all uploads, or within 0.02 of it on "
            "every source of 30 crystals or more): the app shows this value without a probability.")
        lines += [f"Trust calibration, {SIGNALS.get(calibration.signal, calibration.signal)}, {protocol} "
                  f"({calibration.source}).{shown}", "",
                  "| value | matched | crystals |", "|---|---|---|"]
        edges = calibration.upper_edges
        for i, (rate, count) in enumerate(zip(calibration.match_rates, calibration.counts)):
            bounds = (f"<= {edges[0]:.3g}" if i == 0 else f"{edges[i - 1]:.3g} to {edges[i]:.3g}")
            lines.append(f"| {bounds} | {100 * rate:.0f} % | {count} |")
        if calibration.max_value != float("inf"):
            lines.append(f"| > {calibration.max_value:.3g} | beyond calibration: no figure | 0 |")
        lines.append("")
        if calibration.reliability:
            lines += ["Reliability (each half of the uploads read with the calibration of the other half):", "",
                      "| source | crystals | matched | predicted | Brier score | Brier, base rate |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {r.source} | {r.count} | {100 * r.matched_rate:.1f} % | {100 * r.predicted_rate:.1f} % | "
                      f"{r.brier:.3f} | {r.base_rate_brier:.3f} |" for r in calibration.reliability]
            lines.append("")
    return lines


def _refined_section(info, metrics: dict) -> list[str]:
    """Each split measured both ways: the paper's protocol (encoder only) beside refined latents."""
    lines = []
    for split, values in metrics.items():
        refined = metrics.get(str(MetricsLabel.refined(split)))
        if not MetricsLabel.parse(split).is_split or refined is None:
            continue
        table, reference = paper_reference(info.dataset, split)
        lines += [f"## {split}: encoder only (the paper's protocol) and refined", "",
                  "Refined: each crystal's latent optimised against the decoders' own loss at its own atoms and cell "
                  f"(`nesf.model.refine`; {refined.get('refine_steps_mean', 0):.1f} steps on average, the refined "
                  f"latent kept for {refined.get('refined_latent_used_percent', 0):.0f} % of crystals, "
                  f"{refined.get('refine_s_per_crystal', 0):.2f} s per crystal on this machine). It reads the input, "
                  "as any test-time fit does: a protocol of its own beside the paper's, not in place of it.", "",
                  f"| metric | encoder only ({values.get('count')}) | refined ({refined.get('count')}) | "
                  f"paper (NeSF, {table}: {split}) |", "|---|---|---|---|"]
        for key, label in TABLE1_LABELS.items():
            if key in values or key in refined:
                lines.append(f"| {label} | {_cell(values.get(key), key)} | {_cell(refined.get(key), key)} | "
                             f"{reference.get(key, '—')} |")
        for key, label in (("cdvae_match_rate_percent", "CDVAE match rate (valid reconstructions) [%]"),
                           ("match_rate_percent", "CDVAE match rate, validity not required [%]")):
            if key in values and key in refined and key not in TABLE1_LABELS:
                lines.append(f"| {label} | {_cell(values[key], key)} | {_cell(refined[key], key)} | — |")
        lines.append("")
    return lines


def _init_from_line(source: SourceRecord | None) -> list[str]:
    if source is None:
        return []
    cpu = f", {source.cpu_time_s / 3600:.2f} CPU core-hours" if source.cpu_time_s else ""
    widened = ""
    if source.widened_query_encoding:
        widened += (f"; a sin/cos query encoding of {source.widened_query_encoding} frequencies added, its new "
                    f"inputs starting at zero weight")
    for name, widths in (source.widened_field_channels or {}).items():
        widened += (f"; {name.removesuffix('_channels').replace('_', ' ')} widened from hidden widths "
                    f"{tuple(widths)}, the new units starting with zero outgoing weights")
    return [f"- Started from the weights of `{source.name}` ({source.epochs} epochs, "
            f"{source.wall_time_s / 3600:.2f} h{cpu}, its own sources included; sha256 "
            f"{source.sha256[:12]}...), with a new optimizer and learning-rate schedule{widened}"]


def _lattice_refit_line(refit: LatticeRefitRecord | None) -> list[str]:
    if refit is None:
        return []
    chosen = ", ".join(f"{name} head " + (f"from epoch {epoch}" if epoch else "kept as trained")
                       for name, epoch in (("length", refit.length_epoch), ("angle", refit.angle_epoch)))
    before, after = refit.val_before, refit.val_after
    augmented = (f" and its variants (`--augment {refit.augmentation}`, {refit.crystals.get('train')} crystals)"
                 if refit.augmentation != "none" else "")
    return [f"- Lattice heads refitted on the frozen encoder's eval-mode latents of `{refit.dataset}` train"
            f"{augmented} "
            f"(`nesf refit-lattice`, {refit.epochs} epochs, {refit.seconds:.0f} s; "
            f"{chosen}, chosen on validation): validation lattice error "
            f"{before.length_angstrom:.4f} A / {before.angle_degrees:.3f} deg -> "
            f"{after.length_angstrom:.4f} A / {after.angle_degrees:.3f} deg; encoder and fields unchanged"]


def _stored_weights_line(stored: str) -> list[str]:
    if stored != "fp16":
        return []
    return ["- Weights stored in fp16 to halve the file (`nesf ship --weights fp16`), the lattice heads in fp32; the "
            "model computes in fp32, and the metrics below are this file's"]


def _significant(value) -> str:
    """A reading to 3 significant digits, trailing zeros kept (99.0, 0.0479, 4.65; "—" where there is none)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    return f"{value:#.3g}".rstrip(".")


def _config_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_config_value(v) for v in value) if value else "—"
    if isinstance(value, float):
        return f"{value:g}"
    return f"`{value}`" if isinstance(value, str) else str(value)


def _config_section(info) -> list[str]:
    """The configs the model was built, trained and decoded with, one table each (a nested config's fields named
    `loss_weights.position`)."""
    lines = ["## Configuration", ""]
    for title, config in (("Model", info.model_config), ("Training", info.train_config),
                          ("Query sampling", info.sampling_config), ("Decoding", info.decode_config)):
        if config is None:
            continue
        rows = []
        for field, value in config.to_dict().items():
            if isinstance(value, dict):
                rows += [(f"{field}.{inner}", inner_value) for inner, inner_value in value.items()]
            else:
                rows.append((field, value))
        lines += [f"{title}:", "", "| field | value |", "|---|---|",
                  *[f"| {field} | {_config_value(value)} |" for field, value in rows], ""]
    return lines


def card_command(checkpoint: Path, dataset: str, splits, decode_name: str) -> str:
    """The `nesf card` command that measures a card's figures again (its "Reproduce" section)."""
    from nesf.data.datasets import evaluated_dataset

    # the dataset whose splits the card measures (lim_l6+hex_prototypes is measured on lim_l6's)
    return (f"python -m nesf card {checkpoint} --dataset {evaluated_dataset(dataset) or dataset} "
            f"--splits {' '.join(splits)} --decode {decode_name} --device cpu")


def write_card(path: Path, autoencoder, metrics: dict, *, decode_name: str, command: str, notes: str = "") -> Path:
    info = autoencoder.info
    lines = [f"# {info.name} — NeSF model card", "",
             f"- Dataset: `{info.dataset}`; split sizes "
             + ", ".join(f"{split} {size:,}" for split, size in (info.split_sizes or {}).items()),
             f"- Trained: {info.epoch} epochs, {info.wall_time_s / 3600:.2f} h wall time"
             + (f" ({info.cpu_time_s / 3600:.2f} CPU core-hours)" if info.cpu_time_s else "")
             + f" on {info.hardware or None}; created {info.created}",
             *_init_from_line(info.init_from),
             *_lattice_refit_line(info.lattice_refit),
             *_stored_weights_line(info.stored_weights),
             f"- Decoding used below: {decode_name} (its settings under Configuration, at the end)",
             (f"- Best validation loss: {_significant(info.best_val_loss)}"
              if info.train_config is None or info.train_config.keep_best_by_validation else
              f"- Weights: the last epoch's, not chosen on validation (lowest validation loss seen: "
              f"{_significant(info.best_val_loss)})"), "",
             "## Range: the cells this model was trained on (uploads outside it are refused, naming the excess)", "",
             "| quantity | range |", "|---|---|",
             *[f"| {key} | {value} |" for key, value in autoencoder.range.summary().items()], ""]
    uploads = {label: values for label, values in metrics.items() if is_upload_label(label)}
    metrics = {label: values for label, values in metrics.items() if label not in uploads and label != TRUST}
    for split, values in metrics.items():
        if MetricsLabel.parse(split).is_refined:
            continue
        table, reference = paper_reference(info.dataset, MetricsLabel.parse(split).base)
        lines += [f"## Metrics: {split} ({values.get('count')} crystals, decoded in {values.get('decode_s', 0):.0f} s)",
                  "", f"| metric | ours | paper (NeSF, {table}: {split}) |", "|---|---|---|"]
        for key, label in TABLE1_LABELS.items():
            if key in values:
                lines.append(f"| {label} | {_significant(values[key])} | {reference.get(key, '—')} |")
        lines.append("")
        if any(key in values for key in PROBE_KEYS):
            lines += [f"Composition probe (fitted on the training split's latents, scored on {split}):", "",
                      "| reading | value |", "|---|---|"]
            lines += [f"| {label} | {_significant(values[key])} |" for key, label in PROBE_KEYS.items() if key in values]
            lines.append("")
    lines += _refined_section(info, metrics)
    lines += _cdvae_section(info.dataset, {k: v for k, v in metrics.items() if not MetricsLabel.parse(k).is_refined})
    lines += _upload_section(metrics, uploads, (info.metrics or {}).get("trust") or {})
    if uploads:
        lines += _offers_lines(autoencoder)
    lines += _config_section(info)
    lines += ["## Reproduce", "", "```bash", command, "```", ""]
    if notes:
        lines += ["## Notes", "", notes, ""]
    card = Path(path).with_suffix(".md")
    card.write_text("\n".join(lines))
    return card
