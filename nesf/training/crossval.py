"""Cross-validation over a dataset's folds: the paper's protocol for the YBCO-like set (Methods 4.1-4.3).

Each fold `{family}_fold{k}` (YBCO13: 20 folds of 90 train / 5 val / 5 test crystals) is trained from scratch once,
keeping its last weights (the paper applies no early stopping here: 5 validation crystals make an unreliable score),
and scored on its test split; Table 1's metrics are the mean over the folds done.

`Crossval.run()` trains and scores the folds in turn and rewrites the table after each. It resumes at every level: a
fold with a result file is skipped, a fold with a checkpoint continues from it. Several processes may share one
`out_dir` with disjoint folds: the table is rebuilt from whatever results are there.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from nesf.core.config import CHECKPOINT_PRESET
from nesf.core.errors import NesfError
from nesf.core.files import atomic_write_bytes
from nesf.training.progress import FOLD, FOLD_DONE, Event

ProgressCallback = Callable[[dict], None]


@dataclass(frozen=True)
class CrossvalConfig:
    family: str = "YBCO13"              # folds are the registry datasets "{family}_fold{k}"
    folds: tuple = tuple(range(20))     # fold indices this process handles, in order
    recipe: str = "cpu"                 # nesf.training.recipes name
    epochs: int = 1000                  # per fold (the paper: 3,200 epochs of one batch of 128, i.e. 3,200 steps)
    bn_recalibration_batches: int = 30  # BatchNorm statistics re-estimated after each fold's last epoch
    decode: str = CHECKPOINT_PRESET    # decoding preset for the test split (nesf.core.config.DECODE_PRESETS)
    limit: int = 0                      # first N crystals of each split only (0: all; tiny test runs)
    train_only: bool = False            # skip scoring (e.g. train on a GPU machine, score elsewhere)
    compile: bool | None = None         # torch.compile the field MLPs (None: as the recipe says)


def parse_folds(text: str) -> tuple[int, ...]:
    """ "0-19", "0,5,10" or "0-3,7" -> fold indices, in the order given, without repeats."""
    folds: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            first, _, last = part.partition("-")
            span = range(int(first), int(last) + 1) if last else [int(first)]
            folds += [k for k in span if k not in folds]
    except ValueError:
        raise NesfError(f"--folds {text!r}: give fold numbers like 0-19 or 0,5,10") from None
    if not folds or min(folds) < 0:
        raise NesfError(f"--folds {text!r}: give fold numbers like 0-19 or 0,5,10")
    return tuple(folds)


def fold_dataset_name(family: str, fold: int) -> str:
    return f"{family}_fold{fold}"


class Crossval:
    def __init__(self, config: CrossvalConfig, out_dir: Path, *, data_dir: Path | None = None,
                 device: str = "auto", progress: ProgressCallback | None = None,
                 should_stop: Callable[[], bool] | None = None):
        self.config = config
        self.out_dir = Path(out_dir)
        self.data_dir = data_dir
        self.device = device
        self.progress = progress or (lambda event: None)
        self.should_stop = should_stop or (lambda: False)

    def checkpoint_path(self, fold: int) -> Path:
        return self.out_dir / f"fold{fold}.pt"

    def result_path(self, fold: int) -> Path:
        return self.out_dir / f"fold{fold}.json"

    def run(self) -> str:
        """Train and score each fold not done yet; 'done', or 'cancelled' when `should_stop` asked."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for fold in self.config.folds:
            if self.result_path(fold).is_file():
                continue
            started = time.monotonic()
            self.progress(Event(FOLD, fold=fold, message=f"fold {fold}: training"))
            if self.train_fold(fold) == "cancelled":
                return "cancelled"
            if self.config.train_only:
                continue
            result = self.score_fold(fold)
            write_table(self.out_dir, self.config)
            self.progress(Event(FOLD_DONE, fold=fold, seconds=time.monotonic() - started, metrics=result["metrics"],
                                message=f"fold {fold}: done"))
        return "done"

    def _dataset(self, fold: int):
        from nesf.data.datasets import load_dataset

        return load_dataset(fold_dataset_name(self.config.family, fold), self.data_dir)

    def train_fold(self, fold: int) -> str:
        from nesf.checkpoint import Checkpoint
        from nesf.core.device import get_device
        from nesf.training.recipes import get_recipe
        from nesf.training.trainer import Trainer, TrainingData

        path = self.checkpoint_path(fold)
        if path.is_file():
            checkpoint = Checkpoint.load(path, mmap=True)
            if checkpoint.training_state is None and checkpoint.epoch >= self.config.epochs:
                return "done"  # trained; the training state was dropped when it finished
        recipe = get_recipe(self.config.recipe)
        train_config = replace(recipe.train, epochs=self.config.epochs, keep_best_by_validation=False,
                               early_stopping_patience=0, validate_every=max(self.config.epochs // 10, 1),
                               bn_recalibration_batches=self.config.bn_recalibration_batches,
                               compile=recipe.train.compile if self.config.compile is None else self.config.compile)
        data = TrainingData.from_dataset(self._dataset(fold), limit=self.config.limit)
        trainer = Trainer(data, model_config=recipe.model, train_config=train_config, sampling_config=recipe.sampling,
                          device=get_device(self.device), checkpoint_path=path, name=f"{self.config.family}_fold{fold}",
                          progress=self.progress, should_stop=self.should_stop)
        if path.is_file():
            trainer.resume(path)
        status = trainer.fit()
        if status == "done":  # keep the weights, drop the optimizer state: a finished fold is ~1/3 the size
            trainer.checkpoint().without_training_state().save(path)
        return status

    def score_fold(self, fold: int) -> dict:
        from nesf.checkpoint import file_sha256
        from nesf.inference.autoencoder import Autoencoder
        from nesf.inference.card_measure import evaluate_split

        autoencoder = Autoencoder.from_checkpoint(self.checkpoint_path(fold), self.device)
        crystals = self._dataset(fold).crystals("test")[: self.config.limit or None]
        if not crystals:
            raise NesfError(f"{fold_dataset_name(self.config.family, fold)} has no test split")
        metrics, decode_s = evaluate_split(autoencoder, crystals, autoencoder.decode_preset(self.config.decode))
        info = autoencoder.info
        result = {"fold": fold, "dataset": info.dataset, "test_count": len(crystals), "metrics": metrics,
                  "epochs": info.epoch, "wall_time_s": info.wall_time_s, "cpu_time_s": info.cpu_time_s,
                  "hardware": info.hardware, "decode": self.config.decode, "decode_s": decode_s,
                  "config": asdict(self.config) | {"folds": None},
                  "checkpoint_sha256": file_sha256(self.checkpoint_path(fold))}
        atomic_write_bytes(self.result_path(fold), json.dumps(result, indent=1).encode())
        return result


def read_results(out_dir: Path) -> dict[int, dict]:
    """Fold index -> its result, for every `fold{k}.json` in `out_dir` (unreadable files are skipped)."""
    results = {}
    for path in Path(out_dir).glob("fold*.json"):
        try:
            result = json.loads(path.read_text())
            results[int(result["fold"])] = result
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return dict(sorted(results.items()))


def fold_means(results: dict[int, dict]) -> dict:
    """Each metric's mean over the folds (the paper's averaging) and its standard deviation over them."""
    keys = [k for k in next(iter(results.values()))["metrics"]] if results else []
    summary = {}
    for key in keys:
        values = np.array([r["metrics"].get(key, math.nan) for r in results.values()], dtype=float)
        values = values[np.isfinite(values)]
        if len(values):
            summary[key] = {"mean": float(values.mean()), "std": float(values.std()), "folds": int(len(values))}
    return summary


def format_table(results: dict[int, dict], family: str) -> str:
    """Markdown: one row per fold done, their mean (and standard deviation) and the paper's row."""
    from nesf.evaluation.metrics import PAPER_TABLE1, TABLE1_LABELS

    if not results:
        return f"no folds of {family} scored yet"
    keys = [k for k in TABLE1_LABELS if k in next(iter(results.values()))["metrics"]]
    header = "| fold | " + " | ".join(TABLE1_LABELS[k] for k in keys) + " | epochs | training time |"
    lines = [header, "|" + "---|" * (len(keys) + 3)]
    for fold, result in results.items():
        cells = [f"{result['metrics'][k]:.4g}" for k in keys]
        minutes = float(result.get("wall_time_s") or 0) / 60
        lines.append(f"| {fold} | " + " | ".join(cells) + f" | {result.get('epochs')} | {minutes:.1f} min on "
                     f"{result.get('hardware')} |")
    means = fold_means(results)
    lines.append(f"| **mean of {len(results)}** | "
                 + " | ".join(f"**{means[k]['mean']:.4g}** ± {means[k]['std']:.2g}" if k in means else "—"
                              for k in keys) + " | | |")
    paper = PAPER_TABLE1.get(family, {})
    lines.append("| paper (20 folds) | " + " | ".join(str(paper.get(k, "—")) for k in keys) + " | 3200 | |")
    return "\n".join(lines)


def write_table(out_dir: Path, config: CrossvalConfig) -> Path:
    """`table.md` and `table.json` in `out_dir` from the fold results there; returns the markdown's path."""
    results = read_results(out_dir)
    summary = {"family": config.family, "folds_done": sorted(results), "means": fold_means(results),
               "folds": {str(k): v["metrics"] for k, v in results.items()}}
    atomic_write_bytes(Path(out_dir) / "table.json", json.dumps(summary, indent=1).encode())
    path = Path(out_dir) / "table.md"
    atomic_write_bytes(path, (format_table(results, config.family) + "\n").encode())
    return path
