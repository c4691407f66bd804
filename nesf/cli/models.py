"""Commands on a trained model: `nesf evaluate`, `card`, `slim`, `ship` and `refit-lattice`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from nesf.cli.common import data_dir, given, set_threads
from nesf.core.errors import NesfError
from nesf.training.options import DECODE, THREADS, config_option


def cmd_evaluate(args) -> int:
    from nesf.data.datasets import load_dataset
    from nesf.evaluation.metrics import format_table1, paper_reference, table1_metrics
    from nesf.evaluation.probe import format_probe
    from nesf.inference.autoencoder import Autoencoder
    from nesf.inference.card_measure import probe_split

    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    dataset = load_dataset(args.dataset or autoencoder.info.dataset, data_dir(args))
    crystals = dataset.crystals(args.split)[: args.limit or None]
    if not crystals:
        raise NesfError(f"dataset {dataset.name!r} has no {args.split!r} split")
    started = time.monotonic()
    preds = autoencoder.reconstruct(crystals, autoencoder.decode_preset(args.decode), check_box=False)
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


def register_evaluate(sub, common) -> None:
    p = sub.add_parser("evaluate", parents=[common], help="Table 1 metrics of a checkpoint on a split")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--dataset", default=None, help="default: the checkpoint's dataset")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    DECODE.add_to(p)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--no-match", action="store_true", help="skip StructureMatcher")
    p.add_argument("--no-probe", action="store_true", help="skip the composition probe (it encodes the train split)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)


def cmd_card(args) -> int:
    from nesf.inference.card_measure import card_from_stored, make_card

    notes = Path(args.notes).read_text() if args.notes else ""
    if args.stored:
        card, labels = card_from_stored(args.checkpoint, args.dataset, device=args.device, notes=notes)
        print(f"card {card} from the metrics stored in {args.checkpoint} ({', '.join(labels)})")
        return 0
    from nesf.data.datasets import load_dataset
    from nesf.checkpoint import read_checkpoint_info

    dataset = load_dataset(args.dataset or read_checkpoint_info(args.checkpoint).dataset, data_dir(args))
    card = make_card(args.checkpoint, dataset, args.splits, args.decode, device=args.device, ci_count=args.ci_count,
                     uploads=args.uploads, data_dir=data_dir(args), novel_per_source=args.novel, notes=notes,
                     progress=lambda label, values: print(f"{label}: {values}"))
    print(f"metrics stored in {args.checkpoint}; card {card}")
    return 0


def cmd_slim(args) -> int:
    from nesf.checkpoint import Checkpoint
    from nesf.checkpoint.run_state import slim_run_state

    if args.out.resolve() == args.checkpoint.resolve():
        raise NesfError("--out must differ from the checkpoint: the full state stays as it is")
    checkpoint = Checkpoint.load(args.checkpoint)  # its errors name the file
    try:
        slim = slim_run_state(checkpoint, moments=args.moments, rewarm_steps=args.rewarm_steps, weights=args.weights)
    except NesfError as exc:
        raise NesfError(f"{args.checkpoint}: {exc}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    slim.save(args.out)
    full_mb, slim_mb = args.checkpoint.stat().st_size / 1e6, args.out.stat().st_size / 1e6
    print(f"{args.out}: {slim_mb:.1f} MB (from {full_mb:.1f} MB; moments: {args.moments}, weights: {args.weights}); "
          f"continue with `train ... --resume {args.out}` and the run's other options")
    return 0


def cmd_ship(args) -> int:
    from nesf.checkpoint import Checkpoint
    from nesf.checkpoint.ship import shipped

    checkpoint = Checkpoint.load(args.checkpoint)  # any problem: NesfError naming the file
    name = args.name or args.out.stem
    try:
        result = shipped(checkpoint, name=name, weights=args.weights)
    except NesfError as exc:
        raise NesfError(f"{args.checkpoint}: {exc}") from None
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result.save(args.out)
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.1f} MB ({name}, weights {args.weights}); next: "
          f"`python -m nesf card {args.out} --splits val test` and `python -m nesf atlas {args.out}`")
    return 0


def cmd_refit_lattice(args) -> int:
    from nesf.checkpoint import read_checkpoint_info
    from nesf.data.datasets import load_dataset
    from nesf.training.lattice_refit import LatticeRefitConfig, refit_checkpoint

    if args.out.resolve() == args.checkpoint.resolve():
        raise NesfError("--out must differ from the checkpoint: the checkpoint stays as it is")
    set_threads(args)
    config = given(args, LatticeRefitConfig(), "epochs", "length_learning_rate", "angle_learning_rate", "seed")
    dataset = load_dataset(args.dataset or read_checkpoint_info(args.checkpoint).dataset, data_dir(args))
    refitted, result = refit_checkpoint(args.checkpoint, dataset, config, augmentation=args.augment,
                                        device=args.device)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    refitted.save(args.out)
    before, after = result.val_before, result.val_after
    verdict = "; ".join(f"{name} head: " + (f"epoch {epoch}" if epoch else "no epoch beat the original, kept")
                        for name, epoch in (("length", result.length_epoch), ("angle", result.angle_epoch)))
    print(f"{args.out}: val lattice error {before.length_angstrom:.4f} A / {before.angle_degrees:.3f} deg -> "
          f"{after.length_angstrom:.4f} A / {after.angle_degrees:.3f} deg ({verdict}; {result.seconds:.0f} s); "
          f"run `python -m nesf card {args.out}` for its Table 1 metrics")
    return 0


def register(sub, common) -> None:
    from nesf.inference.reupload import NOVEL_PER_SOURCE

    from nesf.checkpoint.run_state import DEFAULT_REWARM_STEPS, MOMENT_POLICIES, WEIGHT_DTYPES
    from nesf.checkpoint.ship import STORED_WEIGHTS
    from nesf.core.config import AUGMENTATIONS
    from nesf.training.lattice_refit import LatticeRefitConfig

    p = sub.add_parser("slim", parents=[common], help="write a run's resume checkpoint small enough to commit "
                                                      "(nesf.checkpoint.run_state)")
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
    p.set_defaults(func=cmd_slim)

    p = sub.add_parser("ship", parents=[common], help="write a trained model as it ships in checkpoints/: no "
                                                      "training state, named, weights in fp32 or fp16 "
                                                      "(nesf.checkpoint.ship)")
    p.add_argument("checkpoint", type=Path, help="a trained model (a run's checkpoint or a refit)")
    p.add_argument("--out", type=Path, required=True, help="the shipped file, e.g. checkpoints/lcs6a.pt")
    p.add_argument("--name", default=None, help="the model's name (default: --out's file stem)")
    p.add_argument("--weights", choices=STORED_WEIGHTS, default="fp32",
                   help="stored precision: fp16 halves the file (the lattice heads stay fp32; the model computes "
                        "in fp32 either way)")
    p.set_defaults(func=cmd_ship)

    p = sub.add_parser("refit-lattice", parents=[common], help="refit a model's lattice heads on its frozen encoder "
                                                               "(nesf.training.lattice_refit) and write the result to "
                                                               "a new checkpoint")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, required=True, help="where to write the refitted checkpoint (not the input)")
    p.add_argument("--dataset", default=None, help="train and val splits to use (default: the checkpoint's dataset)")
    for field, flag, text in (("epochs", "--epochs", ""),
                              ("length_learning_rate", "--length-lr", "length head's Adam peak, cosine to zero"),
                              ("angle_learning_rate", "--angle-lr", "angle head's Adam peak, cosine to zero"),
                              ("seed", "--seed", "")):
        config_option(LatticeRefitConfig, field, flag, text, dest=field).add_to(p)
    THREADS.add_to(p)
    p.add_argument("--augment", choices=AUGMENTATIONS, default="none",
                   help="fit and choose the heads on every variant of the train and val crystals "
                        "(nesf.training.augment), as a model trained with --augment sees them; default: as stored")
    p.set_defaults(func=cmd_refit_lattice)

    p = sub.add_parser("card", parents=[common], help="evaluate a checkpoint, store its metrics inside it and write "
                                                      "its model card")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--dataset", default=None)
    p.add_argument("--splits", nargs="+", default=["test"])
    p.add_argument("--no-uploads", dest="uploads", action="store_false",
                   help="skip the upload-path figures (test re-uploaded, offered cells) and the trust calibration")
    p.add_argument("--ci-count", type=int, default=64, help="also evaluate the first N of each split (CI check)")
    p.add_argument("--novel", type=int, default=NOVEL_PER_SOURCE, metavar="N",
                   help="crystals unlike the training set taken from each other dataset's test split in the data "
                        "directory, in range and out of it, for the upload figures and the trust calibration "
                        f"(default {NOVEL_PER_SOURCE}; 0: none)")
    DECODE.add_to(p)
    p.add_argument("--notes", type=Path, default=None, help="markdown file appended to the card")
    p.add_argument("--stored", action="store_true",
                   help="write the card from the metrics the checkpoint already holds (no evaluation; the checkpoint "
                        "file is left as it is)")
    p.set_defaults(func=cmd_card)
