"""What a slim resume state costs: resume one run from its full state and from its slim forms, train the same steps.

    python benchmarks/bench_run_state.py RUN_CHECKPOINT [--steps 170] [--rewarm-steps 100] [--threads 1]

RUN_CHECKPOINT is a training run's resume checkpoint (with Adam's moments) on LCS6A. Each variant resumes from it
(full; `nesf.checkpoint.run_state.slim_run_state` with bf16 moments; with moments dropped and the learning rate
re-warmed; the same with the weights in fp16), with the run's own model, training and sampling configs (torch.compile
off, which changes no numerics), then takes the same `--steps` steps: the same batches and the same queries, in one
process one after the other, so the budget is equal by construction. Printed per variant: the file size, the mean
training loss over the first 20 steps and over the rest, and the validation loss after the steps (the trainer's own
fixed-query validation on all 286 val crystals), with the difference to the full state's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

EARLY_STEPS = 20


def run_variant(data, checkpoint, path: Path, steps: int) -> dict:
    from nesf.training.trainer import Trainer

    train_config = replace(checkpoint.train_config, compile=False)
    trainer = Trainer(data, model_config=checkpoint.model_config, train_config=train_config,
                      sampling_config=checkpoint.sampling_config)
    trainer.resume(path)
    losses: list[float] = []
    original_step = trainer.train_step

    def counted_step(batch, indices=None):
        parts = original_step(batch, indices)
        losses.append(float(parts["loss"]))
        return parts

    trainer.train_step = counted_step
    trainer.should_stop = lambda: len(losses) >= steps
    torch.manual_seed(0)  # the same shuffle for every variant; the sampler's generator is seeded by the config
    trainer.fit()
    early, rest = losses[:EARLY_STEPS], losses[EARLY_STEPS:]
    return {"size_mb": path.stat().st_size / 1e6, "early": sum(early) / len(early),
            "rest": sum(rest) / len(rest) if rest else float("nan"), "val": trainer.validate()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--steps", type=int, default=170, help="training steps per variant (170: one LCS6A epoch)")
    parser.add_argument("--rewarm-steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from nesf.checkpoint import Checkpoint
    from nesf.checkpoint.run_state import slim_run_state
    from nesf.data.datasets import load_dataset
    from nesf.training.trainer import TrainingData

    checkpoint = Checkpoint.load(args.checkpoint)
    data = TrainingData.from_dataset(load_dataset(checkpoint.dataset, args.data_dir))
    print(f"{args.checkpoint}: epoch {checkpoint.epoch}, {args.steps} steps per variant, {args.threads} thread(s)")
    print(f"| state | size MB | train loss, first {EARLY_STEPS} steps | train loss, rest | val loss after | "
          f"val loss vs full |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        variants = {"full (fp32 moments)": args.checkpoint}
        for moments, weights in (("bf16", "fp32"), ("drop", "fp32"), ("drop", "fp16")):
            path = Path(folder) / f"{moments}-{weights}.pt"
            slim_run_state(checkpoint, moments=moments, rewarm_steps=args.rewarm_steps, weights=weights).save(path)
            label = "slim, bf16 moments" if moments == "bf16" else f"slim, no moments ({args.rewarm_steps}-step re-warm)"
            variants[label + (", fp16 weights" if weights == "fp16" else "")] = path
        full_val = None
        for label, path in variants.items():
            result = run_variant(data, checkpoint, path, args.steps)
            full_val = result["val"] if full_val is None else full_val
            print(f"| {label} | {result['size_mb']:.1f} | {result['early']:.4f} | {result['rest']:.4f} | "
                  f"{result['val']:.4f} | {100 * (result['val'] / full_val - 1):+.2f} % |", flush=True)


if __name__ == "__main__":
    main()
