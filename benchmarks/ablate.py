"""Equal-budget ablation of training recipes on LCS6A: each recipe trains from scratch for the same CPU time, and
its validation metrics are read at fixed points of that budget.

    python benchmarks/ablate.py --recipes standin aux_species1 cosine --budget-minutes 15 --eval-every-minutes 5
    python benchmarks/ablate.py --table --out-dir runs/ablation          # print the table of finished runs

Fairness: every recipe runs in its own process with one torch thread (`--threads`), `--parallel` at a time (2 on a
2-core machine: a pair side by side sees the same conditions). The budget is the process's CPU time spent in
training steps (`time.process_time`), so evaluation and other load on the machine do not eat into it. Before the
run a few untimed steps measure the recipe's cost per step; the learning-rate schedule (for cosine) spans the
epochs the budget buys.

At each mark (every `--eval-every-minutes` of training CPU time, and at the end) the current weights are scored on
the LCS6A validation split (or its first `--val-count`): Table 1 metrics with the fast decoding, validation loss, and
the composition probe (fitted on up to 2,048 training latents). At the end the same weights are scored once more
after BatchNorm recalibration (`--recalibration-batches`), as the "+bn" row.

Seeded (`--seed`): recipe, data order and queries are reproducible; the stopping point depends on measured CPU time
(a step or two either way). Results go to `<out-dir>/<recipe>.jsonl` (one line per mark); a recipe whose file
already ends with a final mark for the same settings is not run again, so an interrupted ablation resumes.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COLUMNS = [  # (result key, header, format)
    ("mark", "mark", "{}"), ("train_cpu_min", "CPU min", "{:.1f}"), ("epochs", "epochs", "{:.2f}"),
    ("species_error_actual_percent", "species err %", "{:.1f}"), ("atom_count_error_percent", "atom-count err %",
                                                                   "{:.1f}"),
    ("position_error_actual_angstrom", "pos act A", "{:.3f}"), ("position_error_detected_angstrom", "pos det A",
                                                                 "{:.3f}"),
    ("lattice_length_error_angstrom", "len A", "{:.3f}"), ("lattice_angle_error_degrees", "angle deg", "{:.2f}"),
    ("probe_presence_error", "presence err", "{:.4f}"), ("probe_element_set_match_percent", "1-NN set %", "{:.1f}"),
    ("val_loss", "val loss", "{:.3f}"),
]


def settings_key(args) -> dict:
    return {"budget_minutes": args.budget_minutes, "eval_every_minutes": args.eval_every_minutes,
            "train_count": args.train_count, "val_count": args.val_count, "seed": args.seed, "threads": args.threads}


def read_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by an interrupted run
    return rows


def finished(path: Path, settings: dict) -> bool:
    rows = read_results(path)
    return bool(rows) and rows[-1].get("mark") == "final+bn" and rows[-1].get("settings") == settings


# -- worker: one recipe -------------------------------------------------------------------------------------------
def load_data(args):
    from nesf.data.datasets import load_dataset
    from nesf.training.trainer import TrainingData

    dataset = load_dataset("lim_l6", args.data_dir)
    train = dataset.crystals("train")
    if args.train_count:
        import numpy as np

        order = np.random.default_rng(args.seed).permutation(len(train))[: args.train_count]
        train = [train[i] for i in sorted(order)]
    val = dataset.crystals("val")[: args.val_count or None]
    # the full training set's box: every variant and subset decodes in the same frame as the shipped model
    return TrainingData("lim_l6", train, val, dataset.species_vocab, dataset.bbox_min, dataset.bbox_max,
                        {"train": len(train), "val": len(val)})


def evaluate(trainer, label: str, extra: dict) -> dict:
    """Score the trainer's current weights on its validation crystals."""
    from nesf.api import Autoencoder
    from nesf.core.config import DecodeConfig
    from nesf.evaluation.metrics import table1_metrics

    started = time.monotonic()
    model = trainer.model
    autoencoder = Autoencoder(model, trainer.checkpoint(include_training_state=False), trainer.device)
    preds = autoencoder.reconstruct(trainer.data.val, DecodeConfig.fast())
    result = {"mark": label, **extra, **table1_metrics(trainer.data.val, preds, match=False),
              "val_loss": trainer.validate(), **trainer.probe()}
    result["eval_s"] = time.monotonic() - started
    return result


class BudgetController:
    """`should_stop` for Trainer.fit: stops when training CPU time reaches the budget and scores the weights at each
    mark. CPU time spent scoring is not counted."""

    def __init__(self, trainer, args, write):
        self.trainer, self.args, self.write = trainer, args, write
        self.budget_s = args.budget_minutes * 60
        self.every_s = args.eval_every_minutes * 60 if args.eval_every_minutes else math.inf
        self.next_mark_s = self.every_s
        self.excluded_s = 0.0
        self.started = time.process_time()

    def train_cpu_s(self) -> float:
        return time.process_time() - self.started - self.excluded_s

    def progress(self) -> dict:
        from nesf.training.trainer import TRAIN_MIN_BATCH

        steps = self.trainer.global_step
        per_epoch = self.trainer.train_tensors.num_batches(self.trainer.train_config.batch_size, TRAIN_MIN_BATCH)
        return {"train_cpu_min": self.train_cpu_s() / 60, "steps": steps, "epochs": steps / per_epoch}

    def score(self, label: str) -> None:
        before = time.process_time()
        self.write(evaluate(self.trainer, label, self.progress()))
        self.excluded_s += time.process_time() - before

    def __call__(self) -> bool:
        spent = self.train_cpu_s()
        if spent >= self.budget_s:
            return True
        if spent >= self.next_mark_s:
            self.score(f"{self.next_mark_s / 60:g} min")
            self.next_mark_s += self.every_s
        return False


def measure_step_cpu_s(recipe, data, steps: int = 6) -> float:
    """CPU seconds per training step of `recipe` (after one untimed step), on a throwaway model."""
    import torch

    from nesf.training.trainer import TRAIN_MIN_BATCH, Trainer

    trainer = Trainer(data, model_config=recipe.model, train_config=recipe.train, sampling_config=recipe.sampling)
    generator = torch.Generator().manual_seed(1)
    batches = itertools.cycle(trainer.train_tensors.batches(recipe.train.batch_size, shuffle=True,
                                                            generator=generator, min_batch=TRAIN_MIN_BATCH))
    trainer.train_step(next(batches))
    started = time.process_time()
    for _ in range(steps):
        trainer.train_step(next(batches))
    return (time.process_time() - started) / steps


def run_worker(args) -> None:
    import torch

    from nesf.training.recipes import get_recipe, with_epochs
    from nesf.training.trainer import Trainer, recalibrate_batchnorm

    torch.set_num_threads(args.threads)
    out = Path(args.out_dir) / f"{args.worker}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")
    settings = settings_key(args)

    def write(row: dict) -> None:
        row = {"recipe": args.worker, "settings": settings, **row}
        with open(out, "a") as stream:
            stream.write(json.dumps(row) + "\n")

    data = load_data(args)
    recipe = get_recipe(args.worker)
    recipe = with_epochs(recipe, 10 ** 6)
    recipe = replace_seed(recipe, args.seed)
    step_s = measure_step_cpu_s(recipe, data)
    steps_per_epoch = math.ceil(len(data.train) / recipe.train.batch_size)
    horizon = max(1, math.ceil(args.budget_minutes * 60 / step_s / steps_per_epoch))
    if recipe.train.lr_schedule == "cosine":  # the schedule spans the epochs the budget buys
        recipe = with_epochs(recipe, horizon)
    # other schedules do not depend on the horizon: the budget alone stops them (a calibration that overestimated
    # the step cost once ended a run at its horizon, 10.3 of its 12 minutes)
    torch.manual_seed(args.seed)
    trainer = Trainer(data, model_config=recipe.model, train_config=recipe.train, sampling_config=recipe.sampling,
                      name=recipe.name)
    trainer.train_config = replace_validate_every(trainer.train_config)
    controller = BudgetController(trainer, args, write)
    trainer.should_stop = controller
    write({"mark": "start", "step_cpu_s": step_s, "horizon_epochs": horizon, "description": recipe.description})
    trainer.fit()
    controller.score("final")
    generator = torch.Generator().manual_seed(args.seed + 1)
    recalibrate_batchnorm(trainer.model, trainer.train_tensors, trainer.sampler, recipe.train.batch_size,
                          args.recalibration_batches, generator)
    write(evaluate(trainer, "final+bn", controller.progress()))


def replace_seed(recipe, seed: int):
    from dataclasses import replace

    return replace(recipe, train=replace(recipe.train, seed=seed))


def replace_validate_every(config):
    from dataclasses import replace

    return replace(config, validate_every=10 ** 9)  # the controller scores; fit() validates only at its last epoch


# -- orchestrator -------------------------------------------------------------------------------------------------
def worker_command(args, recipe: str) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", recipe, "--out-dir", str(args.out_dir),
               "--budget-minutes", str(args.budget_minutes), "--eval-every-minutes", str(args.eval_every_minutes),
               "--train-count", str(args.train_count), "--val-count", str(args.val_count), "--seed", str(args.seed),
               "--threads", str(args.threads), "--recalibration-batches", str(args.recalibration_batches)]
    if args.data_dir:
        command += ["--data-dir", str(args.data_dir)]
    return command


def run_all(args) -> int:
    settings = settings_key(args)
    pending = [r for r in args.recipes if not finished(Path(args.out_dir) / f"{r}.jsonl", settings)]
    skipped = [r for r in args.recipes if r not in pending]
    if skipped:
        print(f"already done with these settings: {', '.join(skipped)}", flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    running: dict[str, subprocess.Popen] = {}
    failed = []
    while pending or running:
        while pending and len(running) < args.parallel:
            recipe = pending.pop(0)
            log = open(Path(args.out_dir) / f"{recipe}.log", "w")
            running[recipe] = subprocess.Popen(worker_command(args, recipe), env=env, stdout=log, stderr=log)
            print(f"started {recipe}", flush=True)
        time.sleep(1)
        for recipe, process in list(running.items()):
            if process.poll() is not None:
                del running[recipe]
                print(f"{recipe}: exit {process.returncode}", flush=True)
                if process.returncode:
                    failed.append(recipe)
    print(format_table(args.out_dir, args.recipes))
    if failed:
        print(f"failed: {', '.join(failed)} (see their .log files in {args.out_dir})")
    return 1 if failed else 0


def format_table(out_dir, recipes=None) -> str:
    out_dir = Path(out_dir)
    names = recipes or sorted(p.stem for p in out_dir.glob("*.jsonl"))
    lines = ["| recipe | " + " | ".join(header for _, header, _ in COLUMNS) + " |",
             "|---|" + "---|" * len(COLUMNS)]
    for name in names:
        for row in read_results(out_dir / f"{name}.jsonl"):
            if row.get("mark") == "start":
                continue
            cells = []
            for key, _, fmt in COLUMNS:
                value = row.get(key)
                cells.append("—" if value is None or (isinstance(value, float) and math.isnan(value))
                             else fmt.format(value))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    from nesf.training.recipes import RECIPES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["paper", "standin", "aux_species1"],
                        help=f"recipes to compare ({', '.join(RECIPES)})")
    parser.add_argument("--budget-minutes", type=float, default=15.0, help="training CPU minutes per recipe")
    parser.add_argument("--eval-every-minutes", type=float, default=5.0, help="score every N CPU minutes (0: end)")
    parser.add_argument("--train-count", type=int, default=0, help="seeded random subset of LCS6A train (0: all)")
    parser.add_argument("--val-count", type=int, default=0, help="first N validation crystals (0: all 286)")
    parser.add_argument("--recalibration-batches", type=int, default=50, help="BatchNorm recalibration at the end")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per recipe")
    parser.add_argument("--parallel", type=int, default=2, help="recipes trained at once")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--data-dir", default=None, help="default $NESF_DATA_DIR or ./data")
    parser.add_argument("--table", action="store_true", help="only print the table of results in --out-dir")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.table:
        print(format_table(args.out_dir))
        return 0
    if args.worker:
        run_worker(args)
        return 0
    unknown = [r for r in args.recipes if r not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
