"""Structure decoding on LCS6A (lim_l6) test crystals: latency per structure at batch 1 and batch 64, particle-field
evaluations per structure, and the Table 1 metrics, for each decode configuration, all from one checkpoint in one run.

    python benchmarks/bench_decode.py [--checkpoint PATH] [--device auto|cpu|cuda] [--count 64] [--batch-size 64]
                                      [--single 4] [--no-match]

Configurations: paper (DecodeConfig()), fast (DecodeConfig.fast()), each of fast's two flags alone
("in-cell": particles_in_predicted_cell=True; "tol 1e-3": convergence_tolerance=1e-3), and "exact": exact fields
(ExactFields of the true crystals, paper settings) for reference. Latency is latent -> crystals (StructureDecoder.decode + to_crystals; encoding is
timed once, apart). Batch-1 latency: the first --single crystals decoded one at a time. Batch latency: the first
--count crystals decoded in chunks of --batch-size. Metrics: Table 1 on those --count reconstructions.

Checkpoint: --checkpoint, else checkpoints/lcs6a.pt, else a throwaway model trained for 1 epoch on 64 crystals in a
temporary folder (its metrics say nothing about NeSF; the output says so).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench_train import device_name, parse_with_common_arguments, synchronize  # noqa: E402

DEFAULT_CHECKPOINT = ROOT / "checkpoints" / "lcs6a.pt"


def throwaway_checkpoint(dataset, device: torch.device, folder: Path) -> Path:
    """1 epoch on 64 LCS6A training crystals (bounding box of the whole training set, as a real run)."""
    from nesf.core.config import TrainConfig
    from nesf.training.trainer import Trainer, TrainingData, bounding_box

    train = dataset.crystals("train")
    bbox_min, bbox_max = bounding_box(train)
    data = TrainingData("lim_l6", train[:64], [], dataset.species_vocab, bbox_min, bbox_max)
    path = folder / "throwaway.pt"
    trainer = Trainer(data, train_config=TrainConfig(epochs=1, batch_size=64), device=device, checkpoint_path=path)
    trainer.fit()
    return path


def configs() -> dict:
    from nesf.core.config import DecodeConfig

    paper = DecodeConfig()
    return {
        "paper": paper,
        "fast": DecodeConfig.fast(),
        "in-cell": dataclasses.replace(paper, particles_in_predicted_cell=True),
        "tol 1e-3": dataclasses.replace(paper, convergence_tolerance=1e-3),
    }


def decode_timed(decoder, fields_for, chunks, device) -> tuple[list, float, int]:
    """Decode each chunk (a list of row indices); returns crystals, seconds, particle-field evaluations."""
    from nesf.model.decode import to_crystals

    crystals, seconds, moved = [], 0.0, 0
    for rows, vocab, ids in chunks:
        fields = fields_for(rows)
        synchronize(device)
        started = time.perf_counter()
        decoded = decoder.decode(fields, device)
        crystals.extend(to_crystals(decoded, vocab, ids))
        synchronize(device)
        seconds += time.perf_counter() - started
        moved += decoded.particles_moved
    return crystals, seconds, moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--count", type=int, default=64, help="test crystals decoded in batches and scored")
    parser.add_argument("--batch-size", type=int, default=64, help="crystals per batched decode")
    parser.add_argument("--single", type=int, default=4, help="test crystals decoded one at a time (batch 1)")
    parser.add_argument("--no-match", action="store_true", help="skip StructureMatcher (slow on bad reconstructions)")
    args, device, dataset = parse_with_common_arguments(parser)
    from nesf.api import Autoencoder
    from nesf.evaluation.metrics import TABLE1_LABELS, table1_metrics
    from nesf.model.batch import CrystalTensors
    from nesf.model.decode import StructureDecoder
    from nesf.model.fields import ExactFields, ModelFields

    print(f"device: {device_name(device)}")
    temporary = None
    checkpoint = args.checkpoint or (DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None)
    if checkpoint is None:
        temporary = tempfile.TemporaryDirectory(prefix="nesf-bench-")
        started = time.perf_counter()
        checkpoint = throwaway_checkpoint(dataset, device, Path(temporary.name))
        print(f"checkpoint: none given and {DEFAULT_CHECKPOINT} absent: trained a THROWAWAY model (1 epoch, 64 "
              f"crystals, {time.perf_counter() - started:.0f} s) in {checkpoint.parent}; its metrics mean nothing")
    autoencoder = Autoencoder.from_checkpoint(checkpoint, device)
    print(f"checkpoint: {checkpoint} ({autoencoder.info.name}, {autoencoder.info.epoch} epochs)")

    test = dataset.crystals("test")[: max(args.count, args.single)]
    scored = test[: args.count]
    synchronize(device)
    started = time.perf_counter()
    latents = torch.from_numpy(autoencoder.encode(test)).to(device)
    synchronize(device)
    print(f"LCS6A test: {len(scored)} crystals scored, batches of {min(args.batch_size, len(scored))}, "
          f"{min(args.single, len(test))} at batch 1; encoding {len(test)} took "
          f"{1000 * (time.perf_counter() - started) / len(test):.1f} ms/structure (not in the latencies below)")
    vocab, ids = autoencoder.vocab, [c.id for c in test]
    exact_tensors = CrystalTensors(test, vocab, device)

    def model_fields(rows):
        return ModelFields(autoencoder.model, latents[rows])

    def exact_fields(rows):
        return ExactFields(exact_tensors.batch(torch.tensor(rows)), len(vocab))

    def chunks(total, size):
        return [(list(range(s, min(s + size, total))), vocab, ids[s:min(s + size, total)])
                for s in range(0, total, size)]

    runs = [(name, config, model_fields) for name, config in configs().items()]
    runs.append(("exact", configs()["paper"], exact_fields))
    rows = {}
    for name, config, fields_for in runs:
        decoder = StructureDecoder(autoencoder.bbox_min, autoencoder.bbox_max, config)
        decode_timed(decoder, fields_for, chunks(1, 1), device)  # warm up kernels and allocator
        _, single_s, _ = decode_timed(decoder, fields_for, chunks(min(args.single, len(test)), 1), device)
        preds, batch_s, moved = decode_timed(decoder, fields_for, chunks(len(scored), args.batch_size), device)
        metrics = table1_metrics(scored, preds, match=not args.no_match)
        rows[name] = {"single_ms": 1000 * single_s / min(args.single, len(test)),
                      "batch_ms": 1000 * batch_s / len(scored), "moved": moved / len(scored), "metrics": metrics}
        print(f"  decoded: {name} ({batch_s:.1f} s for the batched pass)", flush=True)

    paper = rows["paper"]
    batch = min(args.batch_size, len(scored))
    print()
    print(f"{'config':<16}{'ms/struct b1':>14}{f'ms/struct b{batch}':>15}{'vs paper':>10}{'field evals/struct':>20}"
          f"{'vs paper':>10}")
    for name, row in rows.items():
        print(f"{name:<16}{row['single_ms']:>14.1f}{row['batch_ms']:>15.1f}"
              f"{row['batch_ms'] / paper['batch_ms']:>9.2f}x{row['moved']:>20,.0f}"
              f"{row['moved'] / paper['moved']:>9.2f}x")
    print()
    print(f"Table 1 on {len(scored)} test crystals (ratio to paper decoding in brackets)")
    print(f"{'metric':<36}" + "".join(f"{name:>11}{'':9}" for name in rows))
    for key, label in TABLE1_LABELS.items():
        if key not in paper["metrics"]:
            continue
        cells = []
        for name, row in rows.items():
            value, base = row["metrics"][key], paper["metrics"][key]
            ratio = f"({value / base:.2f}x)" if base and math.isfinite(base) and math.isfinite(value) else ""
            cells.append(f"{value:>11.4f} {ratio if name != 'paper' else '':<8}")
        print(f"{label:<36}" + "".join(cells))
    if temporary is not None:
        temporary.cleanup()


if __name__ == "__main__":
    main()
