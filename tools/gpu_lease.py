"""One short GPU lease, used whole: continue the LCS6A training run and train + score the YBCO13 folds side by side
until a wall-clock deadline, then pack what came out into a folder for the trip back (at most 8 files of 16 MiB).

    python tools/gpu_lease.py --budget-s 500 --resume runs/final/lcs6a_cpu.pt --data-dir DATA --out $OUT
    python tools/gpu_lease.py --budget-s 500 --init-from checkpoints/lcs6a.pt --lr 5e-4 --dropout 0 \
        --lengths-weight 5 --angles-weight 100 --ybco-folds none --data-dir DATA --out $OUT

- LCS6A: `nesf train --resume` with the cosine horizon extended so the run anneals by the deadline. The pace on the
  lent machine is not known in advance: the run starts with a guess, and once a few epochs have given the pace it
  is stopped (a checkpoint) and resumed with the horizon that fits; the learning rate is a function of epoch and
  horizon, so this is a small step in the schedule, not a restart. With --init-from instead of --resume, a new
  cosine cycle starts from a model's weights (--lr, --dropout, --lengths-weight, --angles-weight,
  --hard-crystal-fraction as `train`'s) and is fitted to the deadline the same way; `nesf refit-lattice` follows
  on any machine (the shipped recipe).
- YBCO13: a pool of workers, one `nesf crossval YBCO13 --folds K` process per fold, lowest folds first; each fold
  trains from scratch with the same settings and is scored on its test split where it ran.
- At the deadline every process is asked to stop (SIGTERM: each writes its checkpoint) and the results are packed.

On the lent machine (its image has torch but not pymatgen, which reading the paper's splits needs):
`tools/stage_gpu_lease.sh` stages the LCS6A splits and the wheels into .gpu/ here, and says what to run there.
Two drivers with their own `--work` and `--out` folders can share one GPU: two LCS6A cycles side by side ran at 6.25 s
per epoch each on an H200, against 3.45 s for one alone (an earlier lease).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # nesf from the checkout, installed or not

MiB = 1024 * 1024
PACK_LIMIT_BYTES = 15 * MiB  # per returned file (the lease returns files of at most 16 MiB)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def epochs_done(progress: Path, since: float = 0.0) -> list:
    """The epoch events (`nesf.training.progress.Event`) of a progress file written at or after `since`
    (time.time()): a work folder used by an earlier call on the same machine holds that call's events too."""
    from nesf.training.progress import EPOCH, read_events

    return read_events(progress, kind=EPOCH, since=since)


# config fields of the LCS6A run's `nesf train` levers that this driver passes on when given (its options are the
# levers' own). The lattice refit of the shipped recipe (`nesf refit-lattice`, ~20 s) runs afterwards on any machine.
RUN_LEVERS = ("learning_rate", "dropout", "lengths", "angles", "hard_crystal_fraction")


class Lcs6aRun:
    def __init__(self, args, work: Path):
        self.args, self.work = args, work
        self.checkpoint = work / "lcs6a_cpu.pt"
        self.progress = work / "lcs6a_progress.jsonl"
        self.process: subprocess.Popen | None = None
        self.start_epoch = 0
        self.horizon = 0
        self.launched_at = 0.0

    def launch(self, start_from: Path, horizon: int, source: str = "resume") -> None:
        """Run `nesf train` to epoch `horizon` from `start_from`: its training state (`source` "resume") or its
        weights ("init_from")."""
        from nesf.training.options import lever
        from nesf.training.run_spec import TrainRun, train_command

        self.horizon, self.launched_at = horizon, time.time()
        levers = {field: getattr(self.args, lever(field).option.name) for field in RUN_LEVERS}
        run = TrainRun(name="lcs6a_cpu", datasets=("lim_l6",), recipe="cpu", out_dir=self.work,
                       progress_file=self.progress, atlas=False, threads=2, quiet=True, device=self.args.device,
                       data_dir=Path(self.args.data_dir), limit=self.args.limit, **{source: Path(start_from)},
                       overrides={"epochs": horizon, "compile": False, "validate_every": self.args.validate_every,
                                  "checkpoint_every_s": 60.0, "bn_recalibration_batches": 50,
                                  **{field: value for field, value in levers.items() if value is not None}})
        log(f"LCS6A: {source} {start_from} to epoch {horizon}")
        self.process = subprocess.Popen(train_command(run), stdout=open(self.work / "lcs6a.log", "a"),
                                        stderr=subprocess.STDOUT)

    def recalibrate_horizon(self, deadline: float) -> None:
        """Once the pace is known: stop and resume with the horizon that ends by the deadline."""
        events = [e for e in epochs_done(self.progress, since=self.launched_at) if e.epoch > self.start_epoch]
        if len(events) < 3 or self.process.poll() is not None:
            log(f"LCS6A: {len(events)} epochs so far; horizon kept at {self.horizon}")
            return
        pace = (events[-1].elapsed_s - events[0].elapsed_s) / (len(events) - 1)
        left = deadline - time.monotonic() - self.args.restart_s - self.args.finish_s
        horizon = events[-1].epoch + max(int(left / pace), 1)
        log(f"LCS6A: {pace:.2f} s/epoch here; {left:.0f} s left buy {horizon - events[-1].epoch} epochs")
        if abs(horizon - self.horizon) <= max(2, 0.1 * (self.horizon - self.start_epoch)):
            return
        self.process.send_signal(signal.SIGTERM)
        self.process.wait()
        self.launch(self.checkpoint, horizon)


def ybco_command(args, work: Path, fold: int) -> list[str]:
    from nesf.training.crossval import CrossvalConfig
    from nesf.training.run_spec import crossval_command

    config = CrossvalConfig(family="YBCO13", folds=(fold,), recipe="cpu", epochs=args.ybco_epochs, compile=False,
                            limit=args.limit)
    return crossval_command(config, work / "ybco13", progress_file=work / "ybco13" / f"progress_fold{fold}.jsonl",
                            threads=1, device=args.device, data_dir=args.data_dir, quiet=True)


def pack(work: Path, out: Path, lcs6a: Lcs6aRun | None) -> None:
    """The LCS6A checkpoint as it is (with its training state, to continue the run); one tar of logs, results,
    tables and fold 0's model; trained folds that could not be scored go into further tars while room is left."""
    out.mkdir(parents=True, exist_ok=True)
    files = 0
    if lcs6a and lcs6a.checkpoint.is_file():
        os.replace(lcs6a.checkpoint, out / "lcs6a_cpu.pt")
        files += 1
    ybco = work / "ybco13"
    small = [p for p in work.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json", ".md", ".log")]
    with tarfile.open(out / "results.tar.gz", "w:gz") as tar:
        for path in small + [ybco / "fold0.pt"]:
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(work)))
    files += 1
    from nesf.checkpoint import Checkpoint

    unscored = [p for p in sorted(ybco.glob("fold*.pt")) if p.name != "fold0.pt"
                and not p.with_suffix(".json").is_file()
                and Checkpoint.load(p, mmap=True).training_state is None]  # trained
    budget = 60 * MiB - sum(p.stat().st_size for p in out.iterdir())
    batch, size, index = [], 0, 0
    for path in unscored + [None]:
        fits = path is not None and size + path.stat().st_size <= PACK_LIMIT_BYTES
        if path is not None and fits:
            batch.append(path)
            size += path.stat().st_size
            continue
        if batch and files < 8 and size <= budget:
            with tarfile.open(out / f"folds{index}.tar", "w") as tar:
                for item in batch:
                    tar.add(item, arcname=f"ybco13/{item.name}")
            files, budget, index = files + 1, budget - size, index + 1
        batch, size = ([path], path.stat().st_size) if path is not None else ([], 0)
    log(f"packed {files} files: {sorted(p.name for p in out.iterdir())}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-s", type=float, default=500, help="wall seconds from start to packed results")
    parser.add_argument("--resume", type=Path, default=None, help="LCS6A training checkpoint to continue (none: skip)")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="instead of --resume: a new LCS6A cycle from these weights")
    from nesf.training.options import lever

    for field in RUN_LEVERS:  # `nesf train`'s own options, passed on to the LCS6A run
        lever(field).option.add_to(parser)
    parser.add_argument("--lcs6a-epochs-guess", type=int, default=100, help="epochs to add before the pace is known")
    parser.add_argument("--calibrate-after-s", type=float, default=90)
    parser.add_argument("--validate-every", type=int, default=10)
    parser.add_argument("--restart-s", type=float, default=25, help="time a stop + resume costs")
    parser.add_argument("--finish-s", type=float, default=35, help="kept for the last epoch, BN recalibration, save")
    parser.add_argument("--ybco-epochs", type=int, default=800)
    parser.add_argument("--ybco-folds", default="0-19", help="'none': no YBCO13 folds")
    parser.add_argument("--workers", type=int, default=6, help="YBCO13 folds trained at once")
    parser.add_argument("--ybco-min-s", type=float, default=100,
                        help="no fold starts this close to the deadline (until a fold's own time is known)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--limit", type=int, default=0, help="first N crystals of each split (a dry run)")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lease"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from nesf.training.crossval import parse_folds

    started = time.monotonic()
    deadline = started + args.budget_s - 25  # the rest is for stopping and packing
    work = args.work
    (work / "ybco13").mkdir(parents=True, exist_ok=True)
    lcs6a = None
    if args.resume and args.init_from:
        parser.error("give --resume or --init-from, not both")
    if args.resume:
        lcs6a = Lcs6aRun(args, work)
        from nesf.checkpoint import Checkpoint

        lcs6a.start_epoch = Checkpoint.load(args.resume, mmap=True).epoch
        lcs6a.launch(args.resume, lcs6a.start_epoch + args.lcs6a_epochs_guess)
    elif args.init_from:
        lcs6a = Lcs6aRun(args, work)
        lcs6a.launch(args.init_from, args.lcs6a_epochs_guess, source="init_from")
    queue = [] if args.ybco_folds == "none" else list(parse_folds(args.ybco_folds))
    running: dict[int, subprocess.Popen] = {}
    calibrated = False
    fold_started: dict[int, float] = {}
    fold_seconds: list[float] = []
    while time.monotonic() < deadline:
        for fold, process in list(running.items()):
            if process.poll() is not None:
                fold_seconds.append(time.monotonic() - fold_started[fold])
                log(f"YBCO13 fold {fold}: exit {process.returncode} after {fold_seconds[-1]:.0f} s")
                del running[fold]
        # a fold starts only when it can plausibly finish: not in the last stretch before the deadline
        fold_s = sorted(fold_seconds)[len(fold_seconds) // 2] if fold_seconds else args.ybco_min_s
        while queue and len(running) < args.workers and deadline - time.monotonic() > fold_s:
            fold = queue.pop(0)
            fold_started[fold] = time.monotonic()
            running[fold] = subprocess.Popen(ybco_command(args, work, fold), stdout=open(work / f"fold{fold}.log", "w"),
                                             stderr=subprocess.STDOUT)
            log(f"YBCO13 fold {fold}: started")
        if lcs6a and not calibrated and time.monotonic() - started > args.calibrate_after_s:
            lcs6a.recalibrate_horizon(deadline)
            calibrated = True
        if lcs6a and lcs6a.process.poll() is not None and lcs6a.process.returncode != 0:
            log(f"LCS6A: exit {lcs6a.process.returncode}")
        if not running and not queue and (not lcs6a or lcs6a.process.poll() is not None):
            break
        time.sleep(2)
    processes = list(running.values()) + ([lcs6a.process] if lcs6a else [])
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    stop_by = time.monotonic() + 20
    for process in processes:
        try:
            process.wait(timeout=max(stop_by - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
    log(f"stopped; folds not started: {queue}; folds cut short: {sorted(running)}")
    from nesf.training.crossval import CrossvalConfig
    from nesf.training.run_spec import crossval_command

    subprocess.run(crossval_command(CrossvalConfig(family="YBCO13"), work / "ybco13", table_only=True),
                   stdout=open(work / "table.log", "w"), stderr=subprocess.STDOUT)
    pack(work, args.out, lcs6a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
