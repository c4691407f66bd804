"""Model cards measured: a checkpoint evaluated on its dataset's splits (Table 1, CDVAE's benchmark where it applies,
the composition probe, refined latents, the upload path and the trust calibration), the figures stored in the
checkpoint and its card written (`make_card`); or the card written again from the figures it stores
(`card_from_stored`). Rendering is `nesf.inference.card`'s job."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from nesf.checkpoint.labels import MetricsLabel
from nesf.core.errors import NesfError
from nesf.evaluation.metrics import table1_metrics
from nesf.evaluation.probe import composition_probe, crystal_fractions


def evaluate_split(autoencoder, crystals, decode_config, *, cdvae: bool = False) -> tuple[dict, float]:
    """Table 1 metrics of a split (and, with `cdvae`, CDVAE's reconstruction benchmark on the reconstructions in
    the canonical frame), and the decoding time in seconds."""
    started = time.monotonic()
    preds = autoencoder.reconstruct(crystals, decode_config, check_box=False)
    seconds = time.monotonic() - started
    metrics = table1_metrics(crystals, preds)
    if cdvae:
        from nesf.core.canonical import canonical_crystal
        from nesf.inference.generation.published import cdvae_reconstruction

        metrics.update(cdvae_reconstruction(crystals, [canonical_crystal(c) for c in preds]))
    return metrics, seconds


def probe_split(autoencoder, fit_crystals, eval_crystals) -> dict:
    """The composition probe (`nesf.evaluation.probe`) of a checkpoint: fitted on `fit_crystals`' latents (the training
    split), scored on `eval_crystals`'; {} when there is nothing to fit on."""
    if len(fit_crystals) < 2 or not eval_crystals:
        return {}
    fit_latents = autoencoder.encode(fit_crystals, check_box=False)
    eval_latents = autoencoder.encode(eval_crystals, check_box=False)
    return composition_probe(fit_latents, crystal_fractions(fit_crystals, autoencoder.vocab), eval_latents,
                             crystal_fractions(eval_crystals, autoencoder.vocab))


def evaluate_split_refined(autoencoder, crystals, decode_config, *, cdvae: bool = False) -> tuple[dict, float]:
    """`evaluate_split` with each crystal's latent refined (`Autoencoder.refine`, the model's own settings) in the
    setting its dataset stores it, as the paper's protocol keeps it; "refine_s_per_crystal" says what that cost."""
    started = time.monotonic()
    choices = autoencoder.refine(autoencoder.given_frames(crystals, check_box=False))
    refine_seconds = time.monotonic() - started
    preds = autoencoder.decode([c.latent for c in choices], decode_config, ids=[c.id for c in crystals])
    seconds = time.monotonic() - started
    metrics = table1_metrics(crystals, preds)
    metrics["refine_s_per_crystal"] = refine_seconds / max(len(crystals), 1)
    metrics["refine_steps_mean"] = sum(c.refinement.steps for c in choices) / max(len(choices), 1)
    metrics["refined_latent_used_percent"] = 100.0 * sum(c.refinement.used_refined for c in choices) / max(
        len(choices), 1)
    if cdvae:
        from nesf.core.canonical import canonical_crystal
        from nesf.inference.generation.published import cdvae_reconstruction

        metrics.update(cdvae_reconstruction(crystals, [canonical_crystal(c) for c in preds]))
    return metrics, seconds


def measure_card_metrics(autoencoder, dataset, splits, decode_name: str, *, ci_count: int = 64,
                         uploads: bool = True, data_dir=None, novel_per_source: int | None = None,
                         progress: Callable[[str, dict], None] | None = None) -> dict:
    """What `nesf card` stores: per split of `splits` (and its first `ci_count` crystals, "test[:64]", where that is
    fewer) the Table 1 metrics (CDVAE's benchmark too on its datasets), the composition probe, the count and the
    decoding time; for the test split the same with refined latents ("test[refined]", beside the paper's
    encoder-only protocol); with `uploads` and a test split, the upload-path figures and the trust calibrations
    (`nesf.inference.reupload.measure_uploads`), on the test split and on crystals unlike the training set found in
    `data_dir` (`novel_sources`, `novel_per_source` from each in range and as many out of it; 0: none).
    `progress(label, values)` after each label is measured."""
    from nesf.data.download import CDVAE_DATASETS

    report = progress or (lambda label, values: None)
    config = autoencoder.decode_preset(decode_name)
    cdvae = dataset.name in CDVAE_DATASETS
    metrics = {}
    for split in splits:
        crystals = dataset.crystals(split)
        for label, subset in ((split, crystals), (str(MetricsLabel.ci_subset(split, ci_count)), crystals[:ci_count])):
            if not subset or label in metrics or (label != split and ci_count >= len(crystals)):
                continue
            values, seconds = evaluate_split(autoencoder, subset, config, cdvae=cdvae)
            probe = probe_split(autoencoder, dataset.crystals("train"), subset) if split != "train" else {}
            metrics[label] = {**values, **probe, "count": len(subset), "decode_s": seconds, "decode": decode_name}
            report(label, values)
        if split == "test" and crystals:
            values, seconds = evaluate_split_refined(autoencoder, crystals, config, cdvae=cdvae)
            metrics[str(MetricsLabel.refined(split))] = {**values, "count": len(crystals), "decode_s": seconds,
                                             "decode": decode_name}
            report(str(MetricsLabel.refined(split)), values)
    if "test" in splits and uploads:
        from nesf.inference.reupload import NOVEL_PER_SOURCE, measure_uploads, novel_sources

        training = dataset.crystals("train")
        latents = autoencoder.encode(training, check_box=False) if training else None
        per_source = NOVEL_PER_SOURCE if novel_per_source is None else novel_per_source
        novel = novel_sources(autoencoder, training, dataset.name, data_dir, per_source=per_source)[0] if (
            per_source > 0) else {}
        measured, trust = measure_uploads(autoencoder, dataset.crystals("test"), "test", config,
                                          training_latents=latents, ci_count=ci_count, novel=novel,
                                          progress=report)
        for values in measured.values():
            values.update({"decode": decode_name})
        metrics.update(measured)
        if trust:
            metrics["trust"] = trust
    return metrics


def make_card(checkpoint: Path, dataset, splits, decode_name: str, *, device: str = "auto", ci_count: int = 64,
              uploads: bool = True, data_dir=None, novel_per_source: int | None = None, notes: str = "",
              progress: Callable[[str, dict], None] | None = None) -> Path:
    """Measure `checkpoint` on `dataset` (`measure_card_metrics`), store the figures in the file and write its card
    beside it; returns the card's path."""
    from nesf.checkpoint import Checkpoint
    from nesf.inference.autoencoder import Autoencoder
    from nesf.inference.card import card_command, write_card

    autoencoder = Autoencoder.from_checkpoint(checkpoint, device)
    metrics = measure_card_metrics(autoencoder, dataset, splits, decode_name, ci_count=ci_count, uploads=uploads,
                                   data_dir=data_dir, novel_per_source=novel_per_source, progress=progress)
    Checkpoint.load(checkpoint).with_metrics(metrics).save(checkpoint)
    autoencoder = Autoencoder.from_checkpoint(checkpoint, device)  # the file as rewritten
    return write_card(Path(checkpoint), autoencoder, metrics, decode_name=decode_name,
                      command=card_command(checkpoint, dataset.name, splits, decode_name), notes=notes)


def card_from_stored(checkpoint: Path, dataset_name: str | None = None, *, device: str = "auto",
                     notes: str = "") -> tuple[Path, list[str]]:
    """The card written again from the figures `checkpoint` stores (nothing evaluated, the file untouched); returns
    the card's path and the labels it was written from. NesfError where the file stores none."""
    from nesf.core.config import CHECKPOINT_PRESET
    from nesf.inference.autoencoder import Autoencoder
    from nesf.inference.card import card_command, metrics_by_split, write_card

    autoencoder = Autoencoder.from_checkpoint(checkpoint, device)
    metrics = metrics_by_split(autoencoder.info.metrics)
    if not metrics:
        raise NesfError(f"{checkpoint}: no stored metrics; run `python -m nesf card {checkpoint}` to evaluate it")
    splits = [label for label in metrics if MetricsLabel.parse(label).is_split]
    decode_name = next(iter(metrics.values())).get("decode", CHECKPOINT_PRESET)
    dataset = dataset_name or autoencoder.info.dataset or "?"
    card = write_card(Path(checkpoint), autoencoder, metrics, decode_name=decode_name,
                      command=card_command(checkpoint, dataset, splits, decode_name), notes=notes)
    return card, list(metrics)
