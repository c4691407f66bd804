"""Training runs started from the app: a background process per run, at most one at a time.

A run lives in its own folder under `runs_dir` (default checkpoints/user/.runs/<run_id>/):
    spec.json       what was asked (datasets, epochs, ...), the command line and the start time
    run.json        the `nesf train` run it asks for, as data (nesf.training.run_spec: `nesf train --spec run.json`)
    pid             the process id (the process leads its own session, so page reruns and browser reloads,
                    even a restart of the app, leave it running; a reloaded page finds it through this folder)
    progress.jsonl  the progress events the trainer appends (nesf.training.progress)
    log.txt         the process' stdout and stderr
`runs_dir/active.lock` (created with O_EXCL) names the one running run; a lock whose process is gone is stale and
is taken over.

Nothing here imports Streamlit: the sidebar calls `TrainingManager` and draws what `RunStatus` says.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from nesf.core.config import TrainConfig
from nesf.core.errors import NesfError
from nesf.training.progress import EPOCH, STEP, read_events
from nesf.training.run_spec import TrainRun, train_command

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")

# Children started by this server process, so that they are reaped (a finished child must not linger as a zombie
# that still looks alive).
_CHILDREN: dict[int, subprocess.Popen] = {}


HYPERPARAMETERS = ("epochs", "batch_size", "learning_rate")  # the TrainConfig fields a spec may set


@dataclass(frozen=True)
class TrainSpec:
    """What to train. `datasets` are dataset names; `structures_dir` a folder of uploaded structure files.
    `epochs`, `batch_size` and `learning_rate` left None are those of `nesf train` (TrainConfig's defaults)."""

    name: str
    datasets: tuple[str, ...] = ()
    structures_dir: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    data_dir: str | None = None
    device: str = "auto"

    def hyperparameters(self) -> dict:
        """The TrainConfig fields this spec sets (the others keep their defaults)."""
        return {name: getattr(self, name) for name in HYPERPARAMETERS if getattr(self, name) is not None}

    def validate(self, taken_names: set[str] = frozenset()) -> None:
        if not NAME_PATTERN.match(self.name or ""):
            raise NesfError(
                f"checkpoint name {self.name!r}: use 1-48 letters, digits, '-', '_' or '.', starting with a letter or digit"
            )
        if self.name in taken_names:
            raise NesfError(f"a checkpoint named {self.name!r} exists already; choose another name")
        if not self.datasets and not self.structures_dir:
            raise NesfError("choose at least one dataset (or upload structure files) to train on")
        replace(TrainConfig(), **self.hyperparameters())  # TrainConfig refuses bad values, naming them


CANCEL_MARK = "cancel-requested"  # file in a run's folder: the user asked it to stop

@dataclass
class RunStatus:
    """What a run is doing, read from its folder."""

    run_id: str
    name: str
    state: str                      # running | done | cancelled | failed | crashed
    epoch: int = 0
    epochs: int = 0
    elapsed_s: float | None = None
    eta_s: float | None = None
    message: str = ""
    checkpoint: str | None = None   # final checkpoint (done) or last good one (cancelled, failed, crashed)
    history: list[dict] = field(default_factory=list)  # epoch events: epoch, train_loss, val_loss
    step: int = 0             # steps done within the running epoch (STEP events; 0 once it ends)
    steps_per_epoch: int = 0
    started: float = 0.0
    pid: int | None = None
    log_tail: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def fraction(self) -> float:
        within = self.step / self.steps_per_epoch if self.steps_per_epoch else 0.0
        return min(1.0, (self.epoch + within) / self.epochs) if self.epochs else 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def default_command(spec: TrainSpec, out_dir: Path, progress_file: Path) -> list[str]:
    """The command of the `nesf train` run `spec` asks for: the run written as data beside its progress file
    (run.json) and `nesf train --spec run.json` (nesf.training.run_spec.train_command)."""
    run = TrainRun(name=spec.name, datasets=tuple(spec.datasets), structures_dir=spec.structures_dir,
                   overrides=spec.hyperparameters(), out_dir=Path(out_dir), progress_file=Path(progress_file),
                   device=spec.device)
    return train_command(run, Path(progress_file).with_name("run.json"))


def _pid_alive(pid: int, marker: str | None = None) -> bool:
    """Whether `pid` runs (not a zombie) and, when `marker` is given, its command line contains it."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _CHILDREN.pop(pid, None)
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
            if marker is not None:
                return marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            return True
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    except OSError:
        return False
    return True


def _tail(path: Path, lines: int = 12) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class TrainingManager:
    """Start, follow and cancel training runs kept under `runs_dir`, writing checkpoints to `out_dir`.

    command: builds the argv of a run from (spec, out_dir, progress_file); tests pass a fake trainer.
    """

    def __init__(
        self,
        runs_dir: Path,
        out_dir: Path,
        *,
        command: Callable[[TrainSpec, Path, Path], list[str]] = default_command,
        cwd: Path | None = None,
        env: dict | None = None,
    ):
        self.runs_dir = Path(runs_dir)
        self.out_dir = Path(out_dir)
        self.command = command
        self.cwd = Path(cwd) if cwd else Path(__file__).resolve().parents[1]
        self.env = env

    # -- paths -------------------------------------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.runs_dir / "active.lock"

    def run_dir(self, run_id: str) -> Path:
        if not re.match(r"^[A-Za-z0-9_.-]+$", run_id):
            raise NesfError(f"bad run id {run_id!r}")
        return self.runs_dir / run_id

    # -- queries -----------------------------------------------------------------------------------------------
    def status(self, run_id: str) -> RunStatus:
        folder = self.run_dir(run_id)
        try:
            spec = json.loads((folder / "spec.json").read_text())
        except (OSError, ValueError) as exc:
            raise NesfError(f"training run {run_id}: its folder is unreadable ({exc})") from exc
        progress = folder / "progress.jsonl"
        events = read_events(progress)
        pid = None
        try:
            pid = int((folder / "pid").read_text().strip())
        except (OSError, ValueError):
            pass
        status = RunStatus(
            run_id=run_id,
            name=spec.get("name", run_id),
            state="running",
            epochs=int(spec.get("epochs") or 0),
            started=float(spec.get("started", 0.0)),
            pid=pid,
        )
        for event in events:
            if event.epochs:
                status.epochs = event.epochs
            if event.epoch is not None:
                status.epoch = max(status.epoch, event.epoch)
            if event.elapsed_s is not None:
                status.elapsed_s = event.elapsed_s
            if event.eta_s is not None:
                status.eta_s = event.eta_s
            if event.checkpoint:
                status.checkpoint = event.checkpoint
            if event.kind == STEP:
                status.step, status.steps_per_epoch = event.step or 0, event.steps or 0
            if event.kind == EPOCH:
                status.step = 0
                status.history.append({"epoch": event.epoch, "train_loss": event.train_loss,
                                       "val_loss": event.val_loss})
            if event.terminal:
                status.state = event.kind
                status.message = event.message
        alive = pid is not None and _pid_alive(pid, str(folder))  # its command names its folder (spec, progress)
        if status.state == "running" and not alive and (folder / CANCEL_MARK).is_file():
            # cancelled before the trainer could say so (still starting: no signal handler yet)
            status.state = "cancelled"
            status.message = f"cancelled at epoch {status.epoch}, before the trainer had started"
        elif status.state == "running" and not alive:
            status.state = "crashed"
            status.log_tail = _tail(folder / "log.txt")
            last_line = status.log_tail.strip().splitlines()[-1] if status.log_tail.strip() else ""
            status.message = "the training process stopped without saying why" + (
                f"; last line of its log: {last_line}" if last_line else ""
            )
        elif status.state == "failed":
            status.log_tail = _tail(folder / "log.txt")
        if status.state != "running" and status.eta_s:
            status.eta_s = None
        if status.checkpoint and not Path(status.checkpoint).is_file():
            status.checkpoint = None
        return status

    def runs(self) -> list[RunStatus]:
        """All runs, newest first (unreadable folders are skipped)."""
        if not self.runs_dir.is_dir():
            return []
        found = []
        for folder in self.runs_dir.iterdir():
            if folder.is_dir() and (folder / "spec.json").is_file():
                try:
                    found.append(self.status(folder.name))
                except NesfError:
                    continue
        return sorted(found, key=lambda s: s.started, reverse=True)

    def active(self) -> RunStatus | None:
        """The running run, if any (a stale lock is removed)."""
        try:
            run_id = self.lock_path.read_text().strip()
        except OSError:
            return None
        try:
            status = self.status(run_id)
        except NesfError:
            status = None
        if status is not None and status.running:
            return status
        self._release(run_id)
        return None

    # -- actions -----------------------------------------------------------------------------------------------
    def start(self, spec: TrainSpec, *, taken_names: set[str] = frozenset()) -> RunStatus:
        """Start `spec` in the background; NesfError if another run is going or the spec is bad."""
        spec.validate(set(taken_names))
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{spec.name}"
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                running = self.active()
                if running is not None:
                    raise NesfError(
                        f"training run {running.name!r} is running (epoch {running.epoch}/{running.epochs}); "
                        "wait for it or cancel it first"
                    ) from None
        else:  # pragma: no cover - lost two races in a row
            raise NesfError("another training run is starting; try again")
        folder = self.run_dir(run_id)
        try:
            os.write(fd, run_id.encode())
            os.close(fd)
            folder.mkdir(parents=True)
            progress = folder / "progress.jsonl"
            argv = self.command(spec, self.out_dir, progress)
            record = {**asdict(spec), "run_id": run_id, "argv": argv, "started": time.time()}
            (folder / "spec.json").write_text(json.dumps(record, indent=1))
            env = dict(os.environ if self.env is None else self.env)
            if spec.data_dir:
                env["NESF_DATA_DIR"] = str(spec.data_dir)
            env.setdefault("PYTHONUNBUFFERED", "1")
            with open(folder / "log.txt", "ab") as log:
                proc = subprocess.Popen(
                    argv, cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            _CHILDREN[proc.pid] = proc
            (folder / "pid").write_text(str(proc.pid))
        except Exception as exc:
            self._release(run_id)
            if isinstance(exc, NesfError):
                raise
            raise NesfError(f"could not start the training process ({type(exc).__name__}: {exc})") from exc
        return self.status(run_id)

    def cancel(self, run_id: str, *, wait_s: float = 0.0) -> RunStatus:
        """Ask the run to stop (SIGTERM to its process group: it saves its last good checkpoint and says
        "cancelled"). With wait_s > 0, wait that long for it, then kill it."""
        status = self.status(run_id)
        if not status.running or status.pid is None:
            return status
        (self.run_dir(run_id) / CANCEL_MARK).touch()  # a run that dies of the signal while starting was cancelled
        try:
            os.killpg(status.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        except PermissionError:
            os.kill(status.pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while wait_s > 0 and time.monotonic() < deadline:
            if not self.status(run_id).running:
                break
            time.sleep(0.1)
        else:
            if wait_s > 0:
                try:
                    os.killpg(status.pid, signal.SIGKILL)
                except OSError:
                    pass
                time.sleep(0.1)
        status = self.status(run_id)
        if not status.running:
            self._release(run_id)
        return status

    def _release(self, run_id: str) -> None:
        try:
            if self.lock_path.read_text().strip() == run_id:
                self.lock_path.unlink()
        except OSError:
            pass
