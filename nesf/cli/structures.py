"""Commands on structures and datasets: `nesf download`, `reconstruct`, `interpolate`, `atlas`, `generate` and
`score-generated`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nesf.cli.common import data_dir, given
from nesf.core.errors import NesfError
from nesf.training.options import DECODE, ENCODER_ONLY, ERRORS, config_option

AS_DECODED_HELP = "write the atoms as decoded (not wrapped into the cell, periodic duplicates kept)"


def cmd_download(args) -> int:
    from nesf.data.download import download

    def progress(fraction, message):
        if fraction >= 1.0:
            print(f"  {message}", file=sys.stderr)

    paths = download(args.names, data_dir(args), base_url=args.base_url, progress=progress)
    print(f"{len(paths)} files in {data_dir(args)}")
    return 0


def register_download(sub, common) -> None:
    p = sub.add_parser("download", parents=[common], help="fetch dataset files into the data directory (HTTPS, "
                                                          "checksummed)")
    p.add_argument("names", nargs="+", help="lim_l6, ICSG3D, YBCO13_fold0..19, perov_5, carbon_24")
    p.add_argument("--base-url", default=None, help="mirror to download from instead of GitHub")
    p.set_defaults(func=cmd_download)


def _write_structures(crystals, out_dir: Path, prefix: str = "") -> list[Path]:
    from nesf.data.structure_io import to_cif

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for crystal in crystals:
        path = out_dir / f"{prefix}{crystal.id}.cif"
        path.write_text(to_cif(crystal))
        paths.append(path)
    return paths


def _refine_config(args):
    """The refinement `--encoder-only` asks for: None (the model's own refinement) or ENCODER_ONLY."""
    from nesf.model.refine import ENCODER_ONLY as PAPER_PROTOCOL

    return PAPER_PROTOCOL if getattr(args, "encoder_only", False) else None


def _print_refused(prepared) -> None:
    for item in prepared:
        if not item.accepted:
            print(f"{item.source}: refused: {item.refused.removeprefix(f'{item.source}: ')}", file=sys.stderr)


def cmd_reconstruct(args) -> int:
    """Every structure that can be reconstructed is, and written; each refused one is named with its reason on
    stderr; exit status 1 when any was refused."""
    from nesf.core.canonical import as_shown
    from nesf.inference.autoencoder import Autoencoder
    from nesf.inference.uploads import prepare_files, reconstruct
    from nesf.model.refine import refinement_sentence

    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    prepared = prepare_files(autoencoder, args.files, cells="never" if args.no_fitting_cell else "use",
                             refine=_refine_config(args))
    accepted = [p for p in prepared if p.accepted]
    results = reconstruct(autoencoder, accepted, autoencoder.decode_preset(args.decode))
    written = [as_shown(r.decoded, as_decoded=args.as_decoded) for r in results]
    for result, shown, path in zip(results, written, _write_structures(written, Path(args.out_dir), "recon-")):
        item, true, m = result.upload, result.upload.choice.crystal, result.metrics
        scores = (f"position error {m['position_error_actual_angstrom']:.3f} A, match {m['match']}" if m
                  else f"metrics failed ({result.metrics_problem})")
        print(f"{true.id}: {true.formula} ({true.num_atoms} atoms) -> {shown.formula} ({shown.num_atoms} atoms), "
              f"{scores} -> {path}")
        if item.cell_note:
            print(f"  cell: {item.cell_note}")
        if item.choice.changed:
            print(f"  setting: the model reads this crystal best with another of its {item.choice.candidates} "
                  f"equivalent origins/axis settings; the reconstruction is compared in that setting")
        print(f"  latent: {refinement_sentence(item.choice.refinement)}")
        for level, line in result.trust.lines():
            print(f"  trust ({level}): {line}")
    _print_refused(prepared)
    refused = len(prepared) - len(accepted)
    if refused:
        print(f"{len(accepted)} of {len(prepared)} structure(s) reconstructed, {refused} refused", file=sys.stderr)
        return 1
    return 0


def cmd_interpolate(args) -> int:
    """Decode a latent path between two structures (files, each in the setting and cell the model reads best, or
    dataset crystals by id or formula, as stored), their latents refined unless `--encoder-only`."""
    from nesf.core.canonical import as_shown
    from nesf.data.datasets import load_dataset
    from nesf.data.structure_io import spacegroup, to_extxyz
    from nesf.inference.autoencoder import Autoencoder
    from nesf.inference.uploads import path_end
    from nesf.model.refine import refinement_sentence

    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    dataset = load_dataset(args.dataset, data_dir(args)) if args.dataset else None
    ends = []
    for spec in (args.start, args.end):
        crystal, note = path_end(autoencoder, spec, dataset)
        ends.append(crystal)
        if note:
            print(f"{Path(spec).name}: {note}", file=sys.stderr)
    start, end = autoencoder.refine(autoencoder.given_frames(ends), _refine_config(args))  # in their settings
    for label, choice in (("start", start), ("end", end)):
        print(f"{label}: {choice.crystal.id or choice.crystal.formula}: {refinement_sentence(choice.refinement)}",
              file=sys.stderr)
    _, path = autoencoder.interpolate(start.latent, end.latent, args.steps, args.method,
                                      autoencoder.decode_preset(args.decode))
    path = [as_shown(c, as_decoded=args.as_decoded) for c in path]
    out_dir = Path(args.out_dir)
    _write_structures(path, out_dir)
    (out_dir / "path.extxyz").write_text(to_extxyz(path))
    for i, crystal in enumerate(path):
        number, symbol, _ = spacegroup(crystal) if crystal.num_atoms else (0, "-", "")
        print(f"step {i:>3}: {crystal.formula or '(empty)':<12} {crystal.num_atoms:>3} atoms  {symbol:<10} "
              f"{crystal.volume_angstrom3:8.2f} A^3")
    return 0


def cmd_atlas(args) -> int:
    """An atlas of a dataset, or with --uploads of structure files (folders are searched for the formats nesf reads),
    each in the setting the model reads best; refused ones are named, the rest mapped; exit status 1 when any was
    refused."""
    from nesf.checkpoint import atlas_path_for
    from nesf.core.config import MapConfig
    from nesf.data.datasets import load_dataset
    from nesf.inference.atlas import write_atlas
    from nesf.inference.autoencoder import Autoencoder

    if args.uploads and args.frames != "stored":
        raise NesfError(f"--frames {args.frames} maps a dataset's crystals; uploads are mapped each in the setting "
                        "the model reads best")
    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    maps = given(args, MapConfig(), "perplexity", "seed", "iterations")
    if not args.uploads:
        dataset = load_dataset(args.dataset or autoencoder.info.dataset, data_dir(args))
        path = write_atlas(autoencoder, dataset, args.out or atlas_path_for(args.checkpoint), errors=args.errors,
                           maps=maps, frames=args.frames)
        print(f"atlas of {len(dataset)} crystals -> {path}")
        return 0
    from nesf.inference.uploads import write_uploads_atlas

    out = args.out or Path(args.checkpoint).with_name(Path(args.checkpoint).stem + ".uploads.atlas.pt")
    path, prepared = write_uploads_atlas(autoencoder, args.uploads, out, errors=args.errors, maps=maps,
                                         refine=_refine_config(args))
    _print_refused(prepared)
    accepted = sum(p.accepted for p in prepared)
    print(f"atlas of {accepted} uploaded structures -> {path}")
    if accepted < len(prepared):
        print(f"{accepted} of {len(prepared)} structure(s) mapped, {len(prepared) - accepted} refused", file=sys.stderr)
        return 1
    return 0


def cmd_generate(args) -> int:
    from nesf.inference.autoencoder import Autoencoder
    from nesf.inference.generation.sample import check_count
    from nesf.inference.generation.workflow import GenerationSession, write_generated

    check_count(args.count)
    autoencoder = Autoencoder.from_checkpoint(args.checkpoint, args.device)
    session = GenerationSession.open(autoencoder, args.density, args.density_seed)
    region = args.region and (Path(args.region[1:]).read_text().split() if args.region.startswith("@")
                              else [i.strip() for i in args.region.split(",") if i.strip()])
    where = session.where(near=args.near, region=region, spread=args.spread, temperature=args.temperature)
    generated = session.run(args.count, args.seed, where, autoencoder.decode_preset(args.decode),
                            support=not args.any_atom_count)
    paths = write_generated(generated, args.out_dir, valid_only=args.valid_only)
    scores = generated.scores
    print(f"{len(generated.crystals)} crystals from {session.density.label}, {generated.where}, seed {args.seed}: "
          f"{int(scores.valid.sum())} valid, {int(scores.unique.sum())} unique, {int(scores.novel.sum())} novel; "
          f"{len(paths)} CIFs and summary.csv -> {args.out_dir}"
          + (f"; {generated.replaced} draws replaced (an atom count no training crystal has)" if generated.replaced
             else ""))
    return 0


def cmd_score_generated(args) -> int:
    from nesf.data.datasets import default_cache_dir, load_dataset
    from nesf.inference.generation.published import format_generation_table
    from nesf.inference.generation.scores import coverage_cutoffs, score_generated
    from nesf.inference.generation.workflow import read_generated, unreadable_placeholder

    crystals, problems = read_generated(args.files)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not crystals and not problems:
        raise NesfError("no structure files to score")
    dataset = load_dataset(args.dataset, data_dir(args))
    reference = dataset.crystals(args.reference_split)
    if not reference:
        raise NesfError(f"dataset {dataset.name!r} has no {args.reference_split!r} split to compare with")
    training = dataset.crystals("train") + dataset.crystals("val")
    crystals += [unreadable_placeholder(i) for i in range(len(problems))]
    scores, _ = score_generated(crystals, reference, training, cutoffs=coverage_cutoffs(dataset.name),
                                cache_dir=default_cache_dir(data_dir(args)))
    if args.json:
        print(json.dumps({"dataset": dataset.name, "reference_split": args.reference_split,
                          "unreadable": problems, "scores": scores.to_dict()}, indent=2))
    else:
        print(f"{scores.generated} generated crystals ({len(problems)} unreadable, counted invalid) against "
              f"{dataset.name} {args.reference_split} ({len(reference)}) and its {len(training)} training crystals; "
              f"coverage cutoffs {scores.structure_cutoff} / {scores.composition_cutoff}")
        print(format_generation_table(scores.to_dict(), dataset.name))
    return 0


def register(sub, common) -> None:
    from nesf.core.config import MapConfig
    from nesf.inference.generation.density import DEFAULT_SPREAD

    p = sub.add_parser("reconstruct", parents=[common], help="structure files in, reconstructed CIFs out")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--out-dir", type=Path, default=Path("reconstructed"))
    DECODE.add_to(p)
    ENCODER_ONLY.add_to(p)
    p.add_argument("--as-decoded", action="store_true", help=AS_DECODED_HELP)
    p.add_argument("--no-fitting-cell", action="store_true",
                   help="refuse a structure whose cell is out of the model's range instead of using another cell of "
                        "it that fits (orthohexagonal, primitive, Niggli)")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("interpolate", parents=[common], help="decode a latent path between two structures")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("start", help="structure file, or a crystal id or formula with --dataset")
    p.add_argument("end")
    p.add_argument("--dataset", default=None)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--method", default="linear", choices=["linear", "spherical"])
    p.add_argument("--out-dir", type=Path, default=Path("interpolation"))
    DECODE.add_to(p)
    ENCODER_ONLY.add_to(p)
    p.add_argument("--as-decoded", action="store_true", help=AS_DECODED_HELP)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("atlas", parents=[common], help="encode a dataset and write latents, attributes and 2-D maps "
                                                       "for the app")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--dataset", default=None)
    p.add_argument("--out", type=Path, default=None, help="default: <checkpoint>.atlas.pt")
    for field in ("perplexity", "seed", "iterations"):
        config_option(MapConfig, field, f"--{field}", f"t-SNE {field}").add_to(p)
    ERRORS.add_to(p)
    ENCODER_ONLY.add_to(p)
    from nesf.data.frames import ATLAS_FRAMES

    p.add_argument("--frames", choices=sorted(ATLAS_FRAMES), default="stored",
                   help="the settings the dataset's crystals are mapped in: " + "; ".join(
                       f"{name}: {text}" for name, text in ATLAS_FRAMES.items()) + " (default: stored)")
    p.add_argument("--uploads", nargs="+", type=Path, default=None,
                   help="map these structure files or folders instead of a dataset (each in the setting the model "
                        "reads best; refused ones are named); default --out: <checkpoint>.uploads.atlas.pt")
    p.set_defaults(func=cmd_atlas)

    p = sub.add_parser("generate", parents=[common], help="sample new crystals from a density over the model's "
                                                          "training latents")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="sampling seed (the same seed gives the same crystals)")
    p.add_argument("--density", default="gmm", choices=["gmm", "kde", "gaussian"],
                   help="gmm: Gaussian mixture chosen by held-out likelihood; kde; gaussian: one Gaussian")
    p.add_argument("--density-seed", type=int, default=0, help="seed of the density's held-out split and fit")
    p.add_argument("--near", default=None, help="sample near this atlas crystal id, or this structure file")
    p.add_argument("--region", default=None, help="sample within these atlas crystals: id,id,... or @file of ids")
    p.add_argument("--spread", type=float, default=None,
                   help=f"local sampling width, a multiple of the density's covariance there (default "
                        f"{DEFAULT_SPREAD})")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="sampling across the whole density: below 1 the draws keep closer to the density's modes "
                        "(more valid, fewer novel; benchmarks/results/generation/)")
    p.add_argument("--any-atom-count", action="store_true",
                   help="keep every draw as decoded; by default a sample whose atom count no training crystal has is "
                        "replaced by a new draw")
    p.add_argument("--out-dir", type=Path, default=Path("generated"))
    p.add_argument("--valid-only", action="store_true", help="write CIFs of the valid crystals only")
    DECODE.add_to(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("score-generated", parents=[common], help="validity, coverage, uniqueness and novelty of "
                                                                 "generated structures (CDVAE's metrics)")
    p.add_argument("files", nargs="+", type=Path, help="structure files or folders of them")
    p.add_argument("--dataset", required=True, help="coverage against its test split, novelty against its training")
    p.add_argument("--reference-split", default="test", choices=["val", "test"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_score_generated)
