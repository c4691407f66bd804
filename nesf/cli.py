"""Command line: `python -m nesf {download,train,crossval,evaluate,reconstruct,interpolate,atlas,card} ...` (also `nesf ...`).

Every command takes --device auto|cpu|cuda and --data-dir (default: $NESF_DATA_DIR, else ./data).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from nesf.errors import NesfError

log = logging.getLogger("nesf")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu or cuda")
    parser.add_argument("--data-dir", type=Path, default=None, help="data directory (default $NESF_DATA_DIR or ./data)")


def _data_dir(args) -> Path:
    from nesf.datasets import default_data_dir

    return args.data_dir or default_data_dir()


# -- download -----------------------------------------------------------------------------------------------------
def cmd_download(args) -> int:
    from nesf.download import download

    def progress(done, total, name):
        if total and done == total:
            print(f"  {name}: {done / 1e6:.2f} MB", file=sys.stderr)

    paths = download(args.names, _data_dir(args), base_url=args.base_url, progress=progress)
    print(f"{len(paths)} files in {_data_dir(args)}")
    return 0


# -- train --------------------------------------------------------------------------------------------------------
# config field -> train option (its argparse dest); options default to None ("the recipe's value"), so each default
# lives in the config dataclasses and recipes alone
TRAIN_OPTIONS = {"epochs": "epochs", "batch_size": "batch_size", "learning_rate": "lr",
                 "lr_halving_epochs": "lr_halving_epochs", "validate_every": "validate_every",
                 "early_stopping_patience": "patience", "seed": "seed", "checkpoint_every_s": "checkpoint_every_s",
                 "mixed_precision": "mixed_precision", "compile": "compile", "lr_schedule": "lr_schedule",
                 "warmup_epochs": "warmup_epochs", "lr_final_fraction": "lr_final_fraction", "optimizer": "optimizer",
                 "weight_decay": "weight_decay", "bn_recalibration_batches": "bn_recalibration_batches",
                 "hard_crystal_fraction": "hard_crystal_fraction", "latent_noise": "latent_noise",
                 "augmentation": "augment"}
SAMPLING_OPTIONS = {"periodic_targets": "periodic_targets", "global_in_cell": "global_in_cell",
                    "local_query_fraction": "local_query_fraction", "species_query_fraction": "species_query_fraction"}
MODEL_OPTIONS = {"positional_encoding_frequencies": "positional_encoding", "composition_head": "composition_head",
                 "dropout": "dropout", "position_field_channels": "position_field_channels",
                 "species_field_channels": "species_field_channels"}


def parse_widths(text: str) -> tuple:
    """'256,128' -> (256, 128): an MLP's hidden widths from the command line."""
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return widths


def _source_field_widths(model, source, args):
    """`model` with the field widths of the checkpoint a run resumes or starts from, where the command line gives none
    (a run from a widened model needs no widths repeated)."""
    if not source:
        return model
    from dataclasses import replace

    from nesf.checkpoint import read_checkpoint_info
    from nesf.config import ModelConfig

    stored = ModelConfig.from_dict(read_checkpoint_info(Path(source)).model_config)  # metadata only, no weights
    fields = ("position_field_channels", "species_field_channels")
    return replace(model, **{name: getattr(stored, name) for name in fields if getattr(args, name) is None})


def _given(args, config, **fields_to_options):
    """`config` with the fields whose options were given on the command line (None: not given)."""
    from dataclasses import replace

    given = {field: getattr(args, option) for field, option in fields_to_options.items()
             if getattr(args, option) is not None}
    return replace(config, **given) if given else config


def _training_data(args):
    from nesf.datasets import dataset_from_crystals, load_dataset, merge_datasets
    from nesf.structure_io import read_structure_file
    from nesf.train import TrainingData

    datasets = [load_dataset(name, _data_dir(args)) for name in args.dataset]
    if args.structures_dir:
        crystals = []
        for path in sorted(Path(args.structures_dir).iterdir()):
            if path.is_file() and not path.name.startswith("."):
                crystals.extend(read_structure_file(path))
        datasets.append(dataset_from_crystals("uploaded", crystals))
    if not datasets:
        raise NesfError("nothing to train on: give --dataset NAME and/or --structures-dir DIR")
    dataset = datasets[0] if len(datasets) == 1 else merge_datasets(datasets, "+".join(d.name for d in datasets))
    data = TrainingData.from_dataset(dataset, limit=args.limit)
    return data, dataset


def open_progress_file(path: Path):
    """`path` opened to append JSON lines (line-buffered). A run killed mid-line (SIGKILL, a full disk) leaves a
    torn last line without its newline: one is added first, so the next event starts a line of its own instead of
    being glued to the torn one (and lost to every reader, which skips unparseable lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "a", buffering=1)
    try:
        with open(path, "rb") as existing:
            existing.seek(0, os.SEEK_END)
            if existing.tell():
                existing.seek(-1, os.SEEK_END)
                if existing.read(1) != b"\n":
                    stream.write("\n")
    except OSError:
        pass
    return stream


def _stop_requested():
    """A `should_stop` for long runs: SIGTERM or SIGINT asks the run to stop at its next step (it then writes its
    checkpoint) instead of killing it mid-write."""
    stop = {"requested": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__("requested", True))
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("requested", True))
    return lambda: stop["requested"]


def cmd_train(args) -> int:
    from dataclasses import replace

    from nesf.config import DecodeConfig
    from nesf.device import get_device
    from nesf.recipes import get_recipe
    from nesf.train import Trainer, init_distributed

    is_writer = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 reports progress
    events = open_progress_file(Path(args.progress_file)) if args.progress_file and is_writer else None

    def emit(event: dict) -> None:
        if not is_writer:
            return
        event = {"time": time.time(), **event}
        if events:
            events.write(json.dumps(event) + "\n")
        if event["event"] == "epoch" and not args.quiet:
            val = event.get("val_loss")
            probe = event.get("val_probe_element_set_match_percent")
            print(f"epoch {event['epoch']}/{event['epochs']} train {event['train_loss']:.4f}"
                  + (f" val {val:.4f}" if val is not None else "")
                  + (f" val element sets by nearest latent {probe:.1f} %" if probe is not None else "")
                  + f" eta {event['eta_s']:.0f} s", file=sys.stderr)

    should_stop = _stop_requested()
    out_dir = Path(args.out_dir)
    checkpoint = out_dir / f"{args.name}.pt"
    try:
        device = init_distributed(args.device) or get_device(args.device)
        data, dataset = _training_data(args)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        recipe = get_recipe(args.recipe)
        weights = _given(args, recipe.train.loss_weights, position="position_weight", species="species_weight",
                         lengths="lengths_weight", angles="angles_weight", composition="composition_weight")
        train_config = _given(args, replace(recipe.train, loss_weights=weights), **TRAIN_OPTIONS)
        sampling = _given(args, recipe.sampling, **SAMPLING_OPTIONS)
        model = _source_field_widths(_given(args, recipe.model, **MODEL_OPTIONS), args.resume or args.init_from, args)
        decode = DecodeConfig.fast() if sampling.global_in_cell else DecodeConfig()
        trainer = Trainer(data, model_config=model, train_config=train_config, sampling_config=sampling,
                          device=device, checkpoint_path=checkpoint, progress=emit, name=args.name,
                          should_stop=should_stop, decode_config=decode)
        if args.resume and args.init_from:
            raise NesfError("give --resume (continue a run) or --init-from (new run from its weights), not both")
        if args.resume:
            trainer.resume(Path(args.resume))
        elif args.init_from:
            trainer.initialize_from(Path(args.init_from))
        status = trainer.fit()
        if status == "cancelled":
            emit({"event": "cancelled", "epoch": trainer.epoch, "checkpoint": str(checkpoint),
                  "message": f"cancelled at epoch {trainer.epoch}; last checkpoint {checkpoint}"})
            return 130
        if args.atlas and trainer.rank == 0:
            _write_atlas(checkpoint, dataset, args, emit)
        emit({"event": "done", "epoch": trainer.epoch, "checkpoint": str(checkpoint),
              "message": f"trained {trainer.epoch} epochs in {trainer.wall_time_s:.0f} s"})
        return 0
    except NesfError as exc:
        emit({"event": "failed", "message": str(exc)})
        raise
    except Exception as exc:
        emit({"event": "failed", "message": f"{type(exc).__name__}: {exc}",
              "traceback": traceback.format_exc(limit=5)})
        raise


def _write_atlas(checkpoint: Path, dataset, args, emit=None) -> Path:
    from nesf.api import Autoencoder
    from nesf.atlas import build_atlas, save_atlas
    from nesf.checkpoint import atlas_path_for
    from nesf.config import MapConfig

    autoencoder = Autoencoder.from_checkpoint(checkpoint, args.device)
    pairs = dataset.all_crystals()
    crystals = [c for _, c in pairs]
    table = dataset.attributes()
    if emit:
        emit({"event": "atlas", "message": f"encoding and mapping {len(crystals)} crystals"})
    errors_for = {"none": set(), "test": {"test"}, "all": {"train", "val", "test"}}[getattr(args, "errors", "test")]
    # `train` has no map options and its --seed is None unless given: the map's defaults fill in
    maps = _given(args, MapConfig(), **{name: name for name in ("perplexity", "seed", "iterations")
                                        if hasattr(args, name)})
    atlas = build_atlas(autoencoder, crystals, table, dataset=dataset.name, reconstruction_errors_for=errors_for,
                        tsne_perplexity=maps.perplexity, seed=maps.seed, tsne_iterations=maps.iterations)
    path = Path(getattr(args, "out", None) or atlas_path_for(checkpoint))
    save_atlas(atlas, path)
    return path


# -- evaluate -----------------------------------------------------------------------------------------------------
def _decode_config(args, autoencoder):
    return autoencoder.decode_preset(args.decode)


def cmd_evaluate(args) -> int:
    from nesf.api import Autoencoder
    from nesf.card import probe_split
    from nesf.datasets import load_dataset
    from nesf.metrics import format_table1, paper_reference, table1_metrics
    from nesf.probe import format_probe

    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    dataset = load_dataset(args.dataset or autoencoder.info.dataset, _data_dir(args))
    crystals = dataset.crystals(args.split)[: args.limit or None]
    if not crystals:
        raise NesfError(f"dataset {dataset.name!r} has no {args.split!r} split")
    started = time.monotonic()
    preds = autoencoder.reconstruct(crystals, _decode_config(args, autoencoder), check_box=False)
    decode_s = time.monotonic() - started
    metrics = table1_metrics(crystals, preds, match=not args.no_match)
    probe = {} if args.no_probe else probe_split(autoencoder, dataset.crystals("train"), crystals)
    table, reference = paper_reference(dataset.name, args.split)
    if args.json:
        print(json.dumps({"dataset": dataset.name, "split": args.split, "count": len(crystals),
                          "decode": args.decode, "metrics": metrics, "probe": probe}, indent=2))
    else:
        print(f"{dataset.name} {args.split}: {len(crystals)} crystals, decoded in {decode_s:.1f} s "
              f"({args.decode} decoding, {autoencoder.device})")
        print(format_table1(metrics, reference, table))
        if probe:
            print(f"\ncomposition probe (fitted on {len(dataset.crystals('train'))} training latents):")
            print(format_probe(probe))
    return 0


# -- reconstruct / interpolate ------------------------------------------------------------------------------------
def _as_written(crystals, args) -> list:
    """Decoded crystals as the CLI writes and lists them: in the canonical frame (atoms wrapped into the predicted
    cell, periodic duplicates merged), or as decoded with --as-decoded."""
    from nesf.canonical import canonical_crystal

    return list(crystals) if args.as_decoded else [canonical_crystal(c) for c in crystals]


def _write_structures(crystals, out_dir: Path, prefix: str = "") -> list[Path]:
    from nesf.structure_io import to_cif

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for crystal in crystals:
        path = out_dir / f"{prefix}{crystal.id}.cif"
        path.write_text(to_cif(crystal))
        paths.append(path)
    return paths


def cmd_reconstruct(args) -> int:
    """Every structure that can be reconstructed is, and written; each refused one is named with its reason on
    stderr; exit status 1 when any was refused."""
    from nesf.api import Autoencoder
    from nesf.metrics import structure_metrics
    from nesf.uploads import prepare_files

    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    prepared = prepare_files(autoencoder, args.files, use_fitting_cell=not args.no_fitting_cell)
    accepted = [p for p in prepared if p.choice is not None]
    refused = [p for p in prepared if p.choice is None]
    if accepted:
        choices = [p.choice for p in accepted]
        inputs = [c.crystal for c in choices]
        preds = autoencoder.decode([c.latent for c in choices], _decode_config(args, autoencoder),
                                   ids=[c.id for c in inputs])
        written = _as_written(preds, args)
        paths = _write_structures(written, Path(args.out_dir), "recon-")
        signals = autoencoder.trust(choices)
        for item, true, pred, shown, path, trust_signal in zip(accepted, inputs, preds, written, paths, signals):
            m = structure_metrics(true, pred)  # the paper's metrics: the atoms as decoded, against the setting encoded
            print(f"{true.id}: {true.formula} ({true.num_atoms} atoms) -> {shown.formula} ({shown.num_atoms} atoms), "
                  f"position error {m['position_error_actual_angstrom']:.3f} A, match {m['match']} -> {path}")
            if item.cell_note:
                print(f"  cell: {item.cell_note}")
            if item.choice.changed:
                print(f"  setting: the model reads this crystal best with another of its {item.choice.candidates} "
                      f"equivalent origins/axis settings; the reconstruction is compared in that setting")
            for line in trust_signal.sentences():
                print(f"  trust ({trust_signal.level}): {line}")
    for item in refused:
        reason = item.refused.removeprefix(f"{item.source}: ")
        print(f"{item.source}: refused: {reason}", file=sys.stderr)
    if refused:
        print(f"{len(accepted)} of {len(prepared)} structure(s) reconstructed, {len(refused)} refused",
              file=sys.stderr)
        return 1
    return 0


def _endpoint(spec: str, args, autoencoder):
    from nesf.datasets import load_dataset
    from nesf.search import reduced_formula_of
    from nesf.structure_io import read_structure_file

    if Path(spec).is_file():  # an upload: encoded in the setting (and, where needed, the cell) the model reads best
        from nesf.uploads import prepare

        crystal = read_structure_file(Path(spec))[0]
        prepared = prepare(autoencoder, crystal, Path(spec).name)
        if prepared.choice is None:
            raise NesfError(prepared.refused)
        if prepared.cell_note:
            print(f"{Path(spec).name}: {prepared.cell_note}", file=sys.stderr)
        return prepared.choice.crystal
    if not args.dataset:
        raise NesfError(f"{spec}: not a file; to pick a dataset crystal by id or formula also give --dataset")
    # the best hit of the dataset search, when it is the id or the formula itself (not a crystal that merely holds
    # those elements or whose id contains the text)
    hits = load_dataset(args.dataset, _data_dir(args)).find(spec, limit=1)
    if not hits or not (hits[0][1].id.lower() == spec.lower() or hits[0][1].formula == reduced_formula_of(spec)):
        raise NesfError(f"{spec}: no crystal with this id or formula in dataset {args.dataset}")
    return hits[0][1]


def cmd_interpolate(args) -> int:
    from nesf.api import Autoencoder
    from nesf.structure_io import spacegroup, to_extxyz

    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    start, end = _endpoint(args.start, args, autoencoder), _endpoint(args.end, args, autoencoder)
    _, path = autoencoder.interpolate(start, end, args.steps, args.method, _decode_config(args, autoencoder))
    path = _as_written(path, args)
    out_dir = Path(args.out_dir)
    _write_structures(path, out_dir)
    (out_dir / "path.extxyz").write_text(to_extxyz(path))
    for i, crystal in enumerate(path):
        number, symbol, _ = spacegroup(crystal) if crystal.num_atoms else (0, "-", "")
        print(f"step {i:>3}: {crystal.formula or '(empty)':<12} {crystal.num_atoms:>3} atoms  {symbol:<10} "
              f"{crystal.volume_angstrom3:8.2f} A^3")
    return 0


def cmd_atlas(args) -> int:
    from nesf.api import Autoencoder
    from nesf.datasets import load_dataset

    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    if args.uploads:
        return _upload_atlas(args, autoencoder)
    dataset = load_dataset(args.dataset or autoencoder.info.dataset, _data_dir(args))
    path = _write_atlas(Path(args.checkpoint), dataset, args)
    print(f"atlas of {len(dataset)} crystals -> {path}")
    return 0


def _upload_atlas(args, autoencoder) -> int:
    """`atlas --uploads`: an atlas of structure files (folders are searched for the formats nesf reads), each in
    the setting the model reads best; refused ones are named, the rest mapped; exit status 1 when any was refused."""
    from nesf.crystal import Crystal
    from nesf.datasets import CrystalDataset
    from nesf.structure_io import structure_files
    from nesf.uploads import prepare_files

    files = structure_files(args.uploads)
    if not files:
        raise NesfError(f"no structure files in {', '.join(str(p) for p in args.uploads)}")
    prepared = prepare_files(autoencoder, files, use_fitting_cell=True)
    accepted = [p for p in prepared if p.choice is not None]
    for item in prepared:
        if item.choice is None:
            print(f"{item.source}: refused: {item.refused.removeprefix(f'{item.source}: ')}", file=sys.stderr)
    if len(accepted) < 2:
        raise NesfError(f"{len(accepted)} of {len(prepared)} structure(s) could be encoded; a map needs at least 2")
    crystals = []
    for item in accepted:
        crystal = item.choice.crystal
        crystals.append(Crystal(crystal.lattice, crystal.cart_coords, crystal.species, item.source))
    dataset = CrystalDataset("uploads", {"train": crystals}, autoencoder.vocab,
                             description=f"{len(crystals)} uploaded structures")
    if not args.out:
        args.out = Path(args.checkpoint).with_name(Path(args.checkpoint).stem + ".uploads.atlas.pt")
    path = _write_atlas(Path(args.checkpoint), dataset, args)
    print(f"atlas of {len(crystals)} uploaded structures -> {path}")
    refused = len(prepared) - len(accepted)
    if refused:
        print(f"{len(accepted)} of {len(prepared)} structure(s) mapped, {refused} refused", file=sys.stderr)
        return 1
    return 0


def cmd_card(args) -> int:
    from nesf.api import Autoencoder
    from nesf.card import evaluate_split, probe_split, record_metrics
    from nesf.datasets import load_dataset
    from nesf.download import CDVAE_DATASETS

    if args.stored:
        return _card_from_stored_metrics(args)
    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    dataset = load_dataset(args.dataset or autoencoder.info.dataset, _data_dir(args))
    config = _decode_config(args, autoencoder)
    metrics = {}
    for split in args.splits:
        crystals = dataset.crystals(split)
        for label, subset in ((split, crystals), (f"{split}[:{args.ci_count}]", crystals[: args.ci_count])):
            if not subset or label in metrics or (label != split and args.ci_count >= len(crystals)):
                continue
            values, seconds = evaluate_split(autoencoder, subset, config, cdvae=dataset.name in CDVAE_DATASETS)
            probe = probe_split(autoencoder, dataset.crystals("train"), subset) if split != "train" else {}
            metrics[label] = {**values, **probe, "count": len(subset), "decode_s": seconds, "decode": args.decode}
            print(f"{label}: {values}")
    if "test" in args.splits and args.uploads:
        from nesf.reupload import measure_uploads

        training = dataset.crystals("train")
        latents = autoencoder.encode(training, check_box=False) if training else None
        uploads, trust = measure_uploads(autoencoder, dataset.crystals("test"), "test", config,
                                         training_latents=latents)
        for label, values in uploads.items():
            values.update({"decode": args.decode})
            print(f"{label}: {values}")
        metrics.update(uploads)
        if trust:
            metrics["trust"] = trust
    record_metrics(Path(args.checkpoint), metrics)
    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)  # the file as rewritten
    card = _write_card(args, autoencoder, dataset.name, args.splits, args.decode, metrics)
    print(f"metrics stored in {args.checkpoint}; card {card}")
    return 0


def _write_card(args, autoencoder, dataset_name: str, splits, decode_name: str, metrics: dict) -> Path:
    from nesf.card import write_card

    command = (f"python -m nesf card {args.checkpoint} --dataset {dataset_name} --splits {' '.join(splits)} "
               f"--decode {decode_name} --device cpu")
    return write_card(Path(args.checkpoint), autoencoder, metrics, decode_name=decode_name, command=command,
                      notes=Path(args.notes).read_text() if args.notes else "")


def _card_from_stored_metrics(args) -> int:
    """`card --stored`: the card again from the metrics the checkpoint holds; nothing evaluated, the file untouched."""
    from nesf.api import Autoencoder
    from nesf.card import metrics_by_split
    from nesf.config import CHECKPOINT_PRESET

    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    metrics = metrics_by_split(autoencoder.info.metrics)
    if not metrics:
        raise NesfError(f"{args.checkpoint}: no stored metrics; run `python -m nesf card {args.checkpoint}` to "
                        "evaluate it")
    splits = [label for label in metrics if "[" not in label]
    decode_name = next(iter(metrics.values())).get("decode", CHECKPOINT_PRESET)
    card = _write_card(args, autoencoder, args.dataset or autoencoder.info.dataset or "?", splits, decode_name,
                       metrics)
    print(f"card {card} from the metrics stored in {args.checkpoint} ({', '.join(metrics)})")
    return 0


# -- generate / score-generated ------------------------------------------------------------------------------------
def cmd_generate(args) -> int:
    from nesf.api import Autoencoder
    from nesf.generation.density import DEFAULT_SPREAD
    from nesf.generation.sample import Where, check_count
    from nesf.generation.workflow import GenerationSession, write_generated
    from nesf.structure_io import read_structure_file

    check_count(args.count)
    if args.near and args.region:
        raise NesfError("give --near or --region, not both")
    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    session = GenerationSession.open(autoencoder, args.density, args.density_seed)
    spread = DEFAULT_SPREAD if args.spread is None else args.spread
    if args.near and Path(args.near).is_file():
        where = session.near_crystal(read_structure_file(Path(args.near))[0], Path(args.near).name, spread)
    elif args.near:
        where = session.near(args.near, spread)
    elif args.region:
        ids = (Path(args.region[1:]).read_text().split() if args.region.startswith("@")
               else [i.strip() for i in args.region.split(",") if i.strip()])
        where = session.region(ids, spread)
    else:
        where = Where()
    generated = session.run(args.count, args.seed, where, _decode_config(args, autoencoder))
    paths = write_generated(generated, args.out_dir, valid_only=args.valid_only)
    scores = generated.scores
    print(f"{len(generated.crystals)} crystals from {session.density.label}, {generated.where}, seed {args.seed}: "
          f"{int(scores.valid.sum())} valid, {int(scores.unique.sum())} unique, {int(scores.novel.sum())} novel; "
          f"{len(paths)} CIFs and summary.csv -> {args.out_dir}")
    return 0


def cmd_score_generated(args) -> int:
    from nesf.datasets import default_cache_dir, load_dataset
    from nesf.generation.published import format_generation_table
    from nesf.generation.scores import coverage_cutoffs, score_generated
    from nesf.generation.workflow import read_generated, unreadable_placeholder

    crystals, problems = read_generated(args.files)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not crystals and not problems:
        raise NesfError("no structure files to score")
    dataset = load_dataset(args.dataset, _data_dir(args))
    reference = dataset.crystals(args.reference_split)
    if not reference:
        raise NesfError(f"dataset {dataset.name!r} has no {args.reference_split!r} split to compare with")
    training = dataset.crystals("train") + dataset.crystals("val")
    crystals += [unreadable_placeholder(i) for i in range(len(problems))]
    scores, _ = score_generated(crystals, reference, training, cutoffs=coverage_cutoffs(dataset.name),
                                cache_dir=default_cache_dir(_data_dir(args)))
    if args.json:
        print(json.dumps({"dataset": dataset.name, "reference_split": args.reference_split,
                          "unreadable": problems, "scores": scores.to_dict()}, indent=2))
    else:
        print(f"{scores.generated} generated crystals ({len(problems)} unreadable, counted invalid) against "
              f"{dataset.name} {args.reference_split} ({len(reference)}) and its {len(training)} training crystals; "
              f"coverage cutoffs {scores.structure_cutoff} / {scores.composition_cutoff}")
        print(format_generation_table(scores.to_dict(), dataset.name))
    return 0


# -- slim -------------------------------------------------------------------------------------------------------
def cmd_slim(args) -> int:
    from nesf.checkpoint import load_checkpoint, save_checkpoint
    from nesf.run_state import slim_run_state

    if args.out.resolve() == args.checkpoint.resolve():
        raise NesfError("--out must differ from the checkpoint: the full state stays as it is")
    payload = load_checkpoint(args.checkpoint)  # its errors name the file
    try:
        slim = slim_run_state(payload, moments=args.moments, rewarm_steps=args.rewarm_steps, weights=args.weights)
    except NesfError as exc:
        raise NesfError(f"{args.checkpoint}: {exc}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(slim, args.out)
    full_mb, slim_mb = args.checkpoint.stat().st_size / 1e6, args.out.stat().st_size / 1e6
    print(f"{args.out}: {slim_mb:.1f} MB (from {full_mb:.1f} MB; moments: {args.moments}, weights: {args.weights}); "
          f"continue with `train ... --resume {args.out}` and the run's other options")
    return 0


# -- ship ---------------------------------------------------------------------------------------------------------
def cmd_ship(args) -> int:
    from nesf.checkpoint import load_checkpoint, save_checkpoint
    from nesf.ship import shipped_payload

    payload = load_checkpoint(args.checkpoint)  # any problem: NesfError naming the file
    name = args.name or args.out.stem
    try:
        shipped = shipped_payload(payload, name=name, weights=args.weights)
    except NesfError as exc:
        raise NesfError(f"{args.checkpoint}: {exc}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(shipped, args.out)
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB ({name}, weights {args.weights}); next: "
          f"`python -m nesf card {args.out} --splits val test` and `python -m nesf atlas {args.out}`")
    return 0


# -- refit-lattice ------------------------------------------------------------------------------------------------
def cmd_refit_lattice(args) -> int:
    from nesf.api import Autoencoder
    from nesf.batch import CrystalTensors
    from nesf.checkpoint import load_checkpoint, save_checkpoint
    from nesf.datasets import load_dataset
    from nesf.lattice_refit import LatticeRefitConfig, refit_lattice_heads

    if args.out.resolve() == args.checkpoint.resolve():
        raise NesfError("--out must differ from the checkpoint: the checkpoint stays as it is")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config = LatticeRefitConfig(epochs=args.epochs, length_learning_rate=args.length_lr,
                                angle_learning_rate=args.angle_lr, seed=args.seed)
    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    payload = load_checkpoint(args.checkpoint)
    dataset = load_dataset(args.dataset or autoencoder.info.dataset, _data_dir(args))
    train, val = dataset.crystals("train"), dataset.crystals("val")
    if not train or not val:
        raise NesfError(f"dataset {dataset.name!r} needs a train and a val split for a lattice refit "
                        f"(has {len(train)} train, {len(val)} val crystals)")
    if args.augment != "none":  # the heads see every variant's latent, as the augmented training did
        from nesf.augment import variant_pool

        train = variant_pool(train, args.augment, autoencoder.range).crystals
        val = variant_pool(val, args.augment, autoencoder.range).crystals
    result = refit_lattice_heads(autoencoder.model, CrystalTensors(train, autoencoder.vocab, autoencoder.device),
                                 CrystalTensors(val, autoencoder.vocab, autoencoder.device), config)
    payload["model_state"] = {key: value.detach().cpu() for key, value in autoencoder.model.state_dict().items()}
    payload["lattice_refit"] = {"config": config.to_dict(), "result": result.to_dict(), "dataset": dataset.name,
                                "augmentation": args.augment, "crystals": {"train": len(train), "val": len(val)}}
    payload.pop("metrics", None)  # measured with the old heads: `nesf card` measures the new ones
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(payload, args.out)
    before, after = result.val_before, result.val_after
    verdict = "; ".join(f"{name} head: " + (f"epoch {epoch}" if epoch else "no epoch beat the original, kept")
                        for name, epoch in (("length", result.length_epoch), ("angle", result.angle_epoch)))
    print(f"{args.out}: val lattice error {before.length_angstrom:.4f} A / {before.angle_degrees:.3f} deg -> "
          f"{after.length_angstrom:.4f} A / {after.angle_degrees:.3f} deg ({verdict}; {result.seconds:.0f} s); "
          f"run `python -m nesf card {args.out}` for its Table 1 metrics")
    return 0


# -- crossval -----------------------------------------------------------------------------------------------------
def cmd_crossval(args) -> int:
    from nesf.crossval import Crossval, CrossvalConfig, format_table, parse_folds, read_results, write_table

    config = CrossvalConfig(family=args.family, folds=parse_folds(args.folds), recipe=args.recipe, epochs=args.epochs,
                            bn_recalibration_batches=args.bn_recalibration_batches, decode=args.decode,
                            limit=args.limit, train_only=args.train_only, compile=args.compile)
    events = open_progress_file(Path(args.progress_file)) if args.progress_file else None

    def emit(event: dict) -> None:
        event = {"time": time.time(), **event}
        if events:
            events.write(json.dumps(event) + "\n")
        if event["event"] in ("fold", "fold_done") and not args.quiet:
            print(event["message"], file=sys.stderr)

    should_stop = _stop_requested()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    status = "done"
    if not args.table_only:
        status = Crossval(config, args.out_dir, data_dir=_data_dir(args), device=args.device, progress=emit,
                          should_stop=should_stop).run()
    path = write_table(args.out_dir, config)
    print(format_table(read_results(args.out_dir), config.family))
    print(f"table: {path}")
    return 130 if status == "cancelled" else 0


# -- parser -------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from nesf.config import CHECKPOINT_PRESET, DECODE_PRESETS, MapConfig
    from nesf.lattice_refit import LatticeRefitConfig
    from nesf.run_state import DEFAULT_REWARM_STEPS, MOMENT_POLICIES, WEIGHT_DTYPES
    from nesf.ship import STORED_WEIGHTS

    maps = MapConfig()

    parser = argparse.ArgumentParser(prog="nesf", description="Neural Structure Fields: train, evaluate, explore.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("download", help="fetch dataset files into the data directory (HTTPS, checksummed)")
    p.add_argument("names", nargs="+", help="lim_l6, ICSG3D, YBCO13_fold0..19, perov_5, carbon_24")
    p.add_argument("--base-url", default=None, help="mirror to download from instead of GitHub")
    _common(p)
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("train", help="train a model (resumable; under torchrun it trains with DDP)")
    p.add_argument("--dataset", action="append", default=[], help="dataset name (repeatable)")
    p.add_argument("--structures-dir", type=Path, default=None, help="folder of structure files to train on too")
    p.add_argument("--recipe", default="paper", help="named recipe to start from (nesf.recipes; default: paper); "
                                                      "the options below override its fields")
    p.add_argument("--epochs", type=int, default=None, help="paper: 3200")
    p.add_argument("--batch-size", type=int, default=None, help="paper: 128")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (paper: 1e-3)")
    p.add_argument("--lr-halving-epochs", type=int, default=None, help="step schedule (paper: 640)")
    p.add_argument("--validate-every", type=int, default=None, help="epochs between validations (default 10)")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs (0: off)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--limit", type=int, default=0, help="train on the first N crystals only (0: all)")
    p.add_argument("--name", default="model")
    p.add_argument("--out-dir", type=Path, default=Path("checkpoints/user"))
    p.add_argument("--resume", type=Path, default=None, help="checkpoint to resume from")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from this checkpoint's weights with a new optimizer and schedule (fine-tuning)")
    p.add_argument("--progress-file", type=Path, default=None, help="append JSON-lines progress events here")
    p.add_argument("--checkpoint-every-s", type=float, default=None, help="seconds between checkpoints (120)")
    p.add_argument("--mixed-precision", action="store_true", default=None, help="bf16 autocast (CUDA)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the field MLPs (CPU or CUDA)")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="do not, whatever the recipe says")
    p.add_argument("--positional-encoding", type=int, default=None, help="sin/cos query encoding frequencies (0: off)")
    p.add_argument("--periodic-targets", action="store_true", default=None, help="nearest atom over periodic images")
    p.add_argument("--global-in-cell", action="store_true", default=None,
                   help="global queries only in each crystal's cell")
    levers = p.add_argument_group("recipe levers (defaults: the paper's; see TrainConfig, LossWeights, SamplingConfig)")
    levers.add_argument("--position-weight", type=float, default=None, help="position-field loss weight (paper 10)")
    levers.add_argument("--species-weight", type=float, default=None, help="species-field loss weight (paper 0.1)")
    levers.add_argument("--lengths-weight", type=float, default=None,
                        help="lattice-length loss weight (paper 1; MSE in Angstrom^2)")
    levers.add_argument("--angles-weight", type=float, default=None,
                        help="lattice-angle loss weight (paper 1; MSE in radians^2, so ~1e-4 of the loss at 0.5 deg)")
    levers.add_argument("--composition-head", action="store_true", default=None,
                        help="auxiliary head: element fractions from the latent (not used in decoding)")
    levers.add_argument("--composition-weight", type=float, default=None, help="its loss weight (default 1)")
    levers.add_argument("--dropout", type=float, default=None,
                        help="encoder dropout probability (paper 0.3); it holds no weights: --init-from may change it")
    levers.add_argument("--position-field-channels", type=parse_widths, default=None, metavar="W1,W2,...",
                        help="hidden widths of the position field (paper 256,128,128,128,128,128,128,128); --init-from "
                             "a narrower model of the same depth widens it, keeping its function")
    levers.add_argument("--species-field-channels", type=parse_widths, default=None, metavar="W1,W2,...",
                        help="hidden widths of the species field (paper 256,128); widened the same way")
    levers.add_argument("--local-query-fraction", type=float, default=None,
                        help="share of each atom's 64 local position queries drawn per step (default 1)")
    levers.add_argument("--species-query-fraction", type=float, default=None,
                        help="share of each atom's 216 species queries drawn per step (default 1)")
    levers.add_argument("--lr-schedule", choices=["step", "cosine"], default=None,
                        help="step: halve every --lr-halving-epochs (paper); cosine: warm-up then cosine to the end")
    levers.add_argument("--warmup-epochs", type=float, default=None, help="cosine schedule's linear warm-up")
    levers.add_argument("--lr-final-fraction", type=float, default=None, help="cosine schedule's final lr / peak")
    levers.add_argument("--optimizer", choices=["adam", "adamw"], default=None)
    levers.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay")
    levers.add_argument("--bn-recalibration-batches", type=int, default=None,
                        help="re-estimate BatchNorm statistics over N batches after the last epoch")
    levers.add_argument("--hard-crystal-fraction", type=float, default=None,
                        help="share of each epoch's crystals drawn again in proportion to their latest position loss "
                             "(nesf.hard_crystals; default 0, a plain shuffle)")
    levers.add_argument("--latent-noise", type=float, default=None,
                        help="training only: Gaussian noise on each latent before the decoders, as a share of that "
                             "latent dimension's std over the batch (default 0)")
    levers.add_argument("--augment", choices=["none", "frames", "frames+cells"], default=None,
                        help="each epoch, draw each training crystal as one of its equivalent settings (frames) and "
                             "also its primitive, Niggli and orthohexagonal cells (frames+cells) where they fit "
                             "(nesf.augment; default none)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-atlas", dest="atlas", action="store_false", help="skip writing the atlas at the end")
    p.add_argument("--errors", choices=["none", "test", "all"], default="test")
    p.add_argument("--quiet", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_train)

    decode_help = "paper: the paper's decoding; fast: particles in the predicted cell + early stop; checkpoint: its own"
    decode_choices = [*DECODE_PRESETS, CHECKPOINT_PRESET]
    p = sub.add_parser("evaluate", help="Table 1 metrics of a checkpoint on a split")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--dataset", default=None, help="default: the checkpoint's dataset")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--decode", default=CHECKPOINT_PRESET, choices=decode_choices, help=decode_help)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--no-match", action="store_true", help="skip StructureMatcher")
    p.add_argument("--no-probe", action="store_true", help="skip the composition probe (it encodes the train split)")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("reconstruct", help="structure files in, reconstructed CIFs out")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--out-dir", type=Path, default=Path("reconstructed"))
    p.add_argument("--decode", default=CHECKPOINT_PRESET, choices=decode_choices, help=decode_help)
    _common(p)
    p.add_argument("--as-decoded", action="store_true",
                   help="write the atoms as decoded (not wrapped into the cell, periodic duplicates kept)")
    p.add_argument("--no-fitting-cell", action="store_true",
                   help="refuse a structure whose cell is out of the model's range instead of using another cell of "
                        "it that fits (orthohexagonal, primitive, Niggli)")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("interpolate", help="decode a latent path between two structures")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("start", help="structure file, or a crystal id or formula with --dataset")
    p.add_argument("end")
    p.add_argument("--dataset", default=None)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--method", default="linear", choices=["linear", "spherical"])
    p.add_argument("--out-dir", type=Path, default=Path("interpolation"))
    p.add_argument("--decode", default=CHECKPOINT_PRESET, choices=decode_choices, help=decode_help)
    _common(p)
    p.add_argument("--as-decoded", action="store_true",
                   help="write the atoms as decoded (not wrapped into the cell, periodic duplicates kept)")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("atlas", help="encode a dataset and write latents, attributes and 2-D maps for the app")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--dataset", default=None)
    p.add_argument("--out", type=Path, default=None, help="default: <checkpoint>.atlas.pt")
    p.add_argument("--perplexity", type=float, default=maps.perplexity)
    p.add_argument("--seed", type=int, default=maps.seed)
    p.add_argument("--iterations", type=int, default=maps.iterations)
    p.add_argument("--errors", choices=["none", "test", "all"], default="test",
                   help="which splits get a reconstruction error (decodes them)")
    p.add_argument("--uploads", nargs="+", type=Path, default=None,
                   help="map these structure files or folders instead of a dataset (each in the setting the model "
                        "reads best; refused ones are named); default --out: <checkpoint>.uploads.atlas.pt")
    _common(p)
    p.set_defaults(func=cmd_atlas)
    p = sub.add_parser("generate", help="sample new crystals from a density over the model's training latents")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="sampling seed (the same seed gives the same crystals)")
    p.add_argument("--density", default="gmm", choices=["gmm", "kde", "gaussian"],
                   help="gmm: Gaussian mixture chosen by held-out likelihood; kde; gaussian: one Gaussian")
    p.add_argument("--density-seed", type=int, default=0, help="seed of the density's held-out split and fit")
    p.add_argument("--near", default=None, help="sample near this atlas crystal id, or this structure file")
    p.add_argument("--region", default=None, help="sample within these atlas crystals: id,id,... or @file of ids")
    p.add_argument("--spread", type=float, default=None,
                   help="local sampling width, a multiple of the density's covariance there (default 0.3)")
    p.add_argument("--out-dir", type=Path, default=Path("generated"))
    p.add_argument("--valid-only", action="store_true", help="write CIFs of the valid crystals only")
    p.add_argument("--decode", default=CHECKPOINT_PRESET, choices=decode_choices, help=decode_help)
    _common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("score-generated", help="validity, coverage, uniqueness and novelty of generated structures "
                                               "(CDVAE's metrics)")
    p.add_argument("files", nargs="+", type=Path, help="structure files or folders of them")
    p.add_argument("--dataset", required=True, help="coverage against its test split, novelty against its training")
    p.add_argument("--reference-split", default="test", choices=["val", "test"])
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_score_generated)

    p = sub.add_parser("crossval", help="train and score every fold of a dataset (the paper's YBCO-like protocol), "
                                        "resumable, writing a table")
    p.add_argument("family", help="fold family: YBCO13 (datasets YBCO13_fold0..19)")
    p.add_argument("--folds", default="0-19", help="fold numbers, e.g. 0-19 or 0,5,10 (default 0-19)")
    p.add_argument("--recipe", default="cpu", help="named recipe (nesf.recipes; default cpu)")
    p.add_argument("--epochs", type=int, default=1000, help="per fold (default 1000)")
    p.add_argument("--bn-recalibration-batches", type=int, default=30)
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the field MLPs")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="do not, whatever the recipe says")
    p.add_argument("--decode", default=CHECKPOINT_PRESET, choices=decode_choices, help=decode_help)
    p.add_argument("--limit", type=int, default=0, help="first N crystals of each split only (tiny runs)")
    p.add_argument("--out-dir", type=Path, default=Path("runs/crossval"))
    p.add_argument("--train-only", action="store_true", help="train the folds, score none")
    p.add_argument("--table-only", action="store_true", help="rewrite the table from the folds scored, train none")
    p.add_argument("--progress-file", type=Path, default=None, help="append JSON-lines progress events here")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--quiet", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_crossval)

    p = sub.add_parser("slim", help="write a run's resume checkpoint small enough to commit (nesf.run_state)")
    p.add_argument("checkpoint", type=Path, help="a training run's resume checkpoint")
    p.add_argument("--out", type=Path, required=True, help="where the slim state goes")
    p.add_argument("--moments", choices=MOMENT_POLICIES, default="drop",
                   help="Adam's moments dropped (default; the learning rate is re-warmed on resume) or kept in "
                        "bfloat16")
    p.add_argument("--rewarm-steps", type=int, default=DEFAULT_REWARM_STEPS,
                   help="with --moments drop: steps over which the learning rate ramps back up")
    p.add_argument("--weights", choices=tuple(WEIGHT_DTYPES), default="fp16",
                   help="the weights' precision in the slim state (default fp16: half the size of fp32; the run "
                        "resumes in fp32)")
    _common(p)
    p.set_defaults(func=cmd_slim)

    p = sub.add_parser("ship", help="write a trained model as it ships in checkpoints/: no training state, "
                                    "named, weights in fp32 or fp16 (nesf.ship)")
    p.add_argument("checkpoint", type=Path, help="a trained model (a run's checkpoint or a refit)")
    p.add_argument("--out", type=Path, required=True, help="the shipped file, e.g. checkpoints/lcs6a.pt")
    p.add_argument("--name", default=None, help="the model's name (default: --out's file stem)")
    p.add_argument("--weights", choices=STORED_WEIGHTS, default="fp32",
                   help="stored precision: fp16 halves the file (the lattice heads stay fp32; the model computes "
                        "in fp32 either way)")
    _common(p)
    p.set_defaults(func=cmd_ship)

    p = sub.add_parser("refit-lattice", help="refit a model's lattice heads on its frozen encoder (nesf.lattice_refit)"
                                             " and write the result to a new checkpoint")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True, help="where to write the refitted checkpoint (not the input)")
    p.add_argument("--dataset", default=None, help="train and val splits to use (default: the checkpoint's dataset)")
    p.add_argument("--epochs", type=int, default=LatticeRefitConfig.epochs)
    p.add_argument("--length-lr", type=float, default=LatticeRefitConfig.length_learning_rate,
                   help="length head's Adam peak, cosine to zero")
    p.add_argument("--angle-lr", type=float, default=LatticeRefitConfig.angle_learning_rate,
                   help="angle head's Adam peak, cosine to zero")
    p.add_argument("--seed", type=int, default=LatticeRefitConfig.seed)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--augment", choices=["none", "frames", "frames+cells"], default="none",
                   help="fit and choose the heads on every variant of the train and val crystals (nesf.augment), "
                        "as a model trained with --augment sees them; default: as stored")
    _common(p)
    p.set_defaults(func=cmd_refit_lattice)

    p = sub.add_parser("card", help="evaluate a checkpoint, store its metrics inside it and write its model card")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--dataset", default=None)
    p.add_argument("--splits", nargs="+", default=["test"])
    p.add_argument("--no-uploads", dest="uploads", action="store_false",
                   help="skip the upload-path figures (test re-uploaded, offered cells) and the trust calibration")
    p.add_argument("--ci-count", type=int, default=64, help="also evaluate the first N of each split (CI check)")
    p.add_argument("--decode", default=CHECKPOINT_PRESET, choices=decode_choices, help=decode_help)
    p.add_argument("--notes", type=Path, default=None, help="markdown file appended to the card")
    p.add_argument("--stored", action="store_true",
                   help="write the card from the metrics the checkpoint already holds (no evaluation; the checkpoint "
                        "file is left as it is)")
    _common(p)
    p.set_defaults(func=cmd_card)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except NesfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
