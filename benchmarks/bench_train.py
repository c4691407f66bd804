"""Training throughput (crystals/s) of the real training step on LCS6A (lim_l6) training crystals.

    python benchmarks/bench_train.py [--device auto|cpu|cuda] [--batch-size 64 128] [--steps 20] [--warmup 3]
                                     [--mixed-precision] [--compile] [--global-in-cell]
                                     [--position-field-channels 256,128,128,128,128,128,128,128 256,256,...]

Each step is `nesf.training.trainer.Trainer.train_step` on a batch cut from `trainer.train_tensors` (device-resident):
query sampling and nearest-atom targets on the device, forward, backward, Adam. Warmup steps (and torch.compile's first
compilation) are not timed; CUDA is synchronized before the clock starts and stops. One line per batch size and
position-field widths (the recipe's when not given), so their costs compare within one run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from nesf.training.options import parse_widths  # noqa: E402


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}, torch {torch.__version__})"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads (torch {torch.__version__})"


def parse_with_common_arguments(parser: argparse.ArgumentParser):
    """Add --device, --threads and --data-dir, parse, set the torch threads; returns (args, device, LCS6A dataset)."""
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--data-dir", default=None, help="default $NESF_DATA_DIR or ./data")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from nesf.core.device import get_device
    from nesf.data.datasets import load_dataset

    return args, get_device(args.device), load_dataset("lim_l6", args.data_dir)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64], help="one or more batch sizes")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, allocator)")
    parser.add_argument("--mixed-precision", action="store_true", help="bf16 autocast (CUDA only)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the field MLPs (CPU or CUDA)")
    parser.add_argument("--global-in-cell", action="store_true", help="SamplingConfig(global_in_cell=True)")
    parser.add_argument("--recipe", default="paper", help="named recipe (nesf.training.recipes) the flags are added to")
    parser.add_argument("--position-field-channels", nargs="+", type=parse_widths, default=None, metavar="W1,W2,...",
                        help="one or more hidden widths of the position field to time (default: the recipe's)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with the process's CPU time (fair beside other load; CPU only)")
    args, device, dataset = parse_with_common_arguments(parser)
    from dataclasses import replace

    from nesf.training.recipes import get_recipe
    from nesf.training.trainer import TRAIN_MIN_BATCH, Trainer, TrainingData, bounding_box

    train = dataset.crystals("train")
    bbox_min, bbox_max = bounding_box(train)
    data = TrainingData("lim_l6", train, [], dataset.species_vocab, bbox_min, bbox_max)
    recipe = get_recipe(args.recipe)
    sampling = replace(recipe.sampling, global_in_cell=args.global_in_cell or recipe.sampling.global_in_cell)
    flags = [name for name, on in (("mixed-precision", args.mixed_precision), ("compile", args.compile),
                                   ("global-in-cell", args.global_in_cell)) if on]
    ignored = [f for f in flags if f == "mixed-precision" and device.type != "cuda"]
    clock = time.process_time if args.cpu_time and device.type == "cpu" else time.perf_counter
    print(f"device: {device_name(device)}")
    print(f"LCS6A train: {len(train)} crystals; recipe {recipe.name}; flags: {', '.join(flags) or 'none'}"
          + (f"  [{', '.join(ignored)}: CUDA only, no effect here]" if ignored else "")
          + ("; timed in process CPU time" if clock is time.process_time else ""))

    widths = args.position_field_channels or []
    for batch_size, channels in itertools.product(args.batch_size, widths or [recipe.model.position_field_channels]):
        config = replace(recipe.train, batch_size=batch_size, mixed_precision=args.mixed_precision,
                         compile=args.compile)
        model = replace(recipe.model, position_field_channels=channels)
        trainer = Trainer(data, model_config=model, train_config=config, sampling_config=sampling,
                          device=device)
        generator = torch.Generator().manual_seed(0)
        batches = trainer.train_tensors.batches(batch_size, shuffle=True, generator=generator,
                                                min_batch=TRAIN_MIN_BATCH)
        batches = itertools.cycle(list(itertools.islice(batches, args.warmup + args.steps)))
        batch = next(batches)
        queries = trainer.sampler.sample(batch, trainer.generator)
        per_crystal = (queries.position_queries.shape[0] + queries.species_queries.shape[0]) / batch.size
        for _ in range(args.warmup):
            trainer.train_step(next(batches))
        synchronize(device)
        started = clock()
        crystals = 0
        for _ in range(args.steps):
            batch = next(batches)
            loss = trainer.train_step(batch)["loss"]
            crystals += batch.size
        synchronize(device)
        elapsed = clock() - started
        shown = f" position field {','.join(map(str, channels))}" if widths else ""
        print(f"batch {batch_size:>4}{shown}: {crystals / elapsed:9.1f} crystals/s  "
              f"{1000 * elapsed / args.steps:9.1f} ms/step  ({args.steps} steps after {args.warmup} warmup; "
              f"~{per_crystal:,.0f} queries/crystal; last loss {float(loss):.3f})")
        del trainer
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
