"""Faults: a training run killed with SIGKILL at 20 seeded-random moments leaves a checkpoint that loads and resumes.

A real `python -m nesf train` run (the paper recipe's model on three tiny crystals, one step and one checkpoint per
epoch, CPU, one thread) is killed 20 times: during start-up and resume, at random points of its epochs and event
writes, and at the moment a checkpoint save begins. After each kill the checkpoint loads with `read_payload`
(weights only), is no older than the last one the run announced, the app reads the progress file (with torn lines
injected as a kill mid-write would leave them) as a crashed run pointing at it, and `--resume` from it starts where it
left off and makes progress. Finally the run finishes: the requested epochs, one history record per epoch, nothing
but the checkpoint left in its folder.

Each run is forked from a "zygote" process that has imported torch, nesf and pymatgen once, then runs
`nesf/__main__.py` (what `python -m nesf` runs) with the train arguments: 21 fresh interpreters would spend ~5 s
each on imports. The kills go to the forked run's own pid.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pymatgen.core import Structure

from app.training_runs import TrainingManager, read_events
from nesf.checkpoint import read_payload
from nesf.core.errors import NesfError
from nesf.core.files import atomic_write, atomic_write_bytes
from nesf.training.progress import open_progress_file
from tests.helpers import bcc_iron, cscl, rocksalt_mgo

REPO_ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 60          # requested epochs; the 20 kill cycles reach ~30 of them
KILLS = 20
SEED = 20251125
TORN_LINE = '{"time": 1.0, "event": "epoch", "epoch": 3, "epochs": 6'  # an event line cut short by a kill
MODES = ["early"] * 3 + ["timer"] * 10 + ["save"] * 7

ZYGOTE = r'''
import json, os, runpy, sys, traceback

import torch

torch.set_num_threads(1)
# what `python -m nesf train` imports on its way, loaded once here so that each forked run starts at once
import nesf.checkpoint.record, nesf.cli, nesf.core.device, nesf.data.datasets, nesf.data.structure_io  # noqa
import nesf.training.recipes, nesf.training.trainer  # noqa
import pymatgen.io.cif  # noqa
torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # the first optimizer imports torch._dynamo (~2 s)


def in_place_save(payload, path):  # the fault the test must catch: no temporary file, no os.replace
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(payload, path)


print(json.dumps({"ready": os.getpid()}), flush=True)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            if request.get("in_place_saves"):
                nesf.checkpoint.record.atomic_torch_save = in_place_save
            sys.argv = ["nesf", *request["argv"]]
            runpy.run_module("nesf", run_name="__main__", alter_sys=True)  # nesf/__main__.py: sys.exit(main())
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    print(json.dumps({"launched": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}), flush=True)
'''


class Zygote:
    """A process that forks `nesf` runs on request and reports their pids and exit codes."""

    def __init__(self, cwd: Path, env: dict):
        self.log = cwd / "zygote.log"
        self.process = subprocess.Popen([sys.executable, "-c", ZYGOTE], cwd=cwd, env=env, text=True, bufsize=1,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=open(self.log, "w"))
        self.replies: queue.Queue = queue.Queue()
        self.exit_codes: dict[int, int] = {}
        self.live: set[int] = set()
        threading.Thread(target=self._read, daemon=True).start()
        self._reply("ready", 300)

    def _read(self) -> None:
        for line in self.process.stdout:
            self.replies.put(json.loads(line))
        self.replies.put({"closed": True})

    def _reply(self, key: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                reply = self.replies.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise AssertionError(f"zygote: no {key!r} reply within {timeout} s") from None
            if "closed" in reply:
                raise AssertionError(f"zygote exited: {self.log.read_text()[-3000:]}")
            if "exited" in reply:
                self.exit_codes[reply["exited"]] = reply["code"]
                self.live.discard(reply["exited"])
            if key in reply:
                return reply

    def launch(self, argv: list[str], log: Path, *, in_place_saves: bool = False) -> int:
        request = {"argv": [str(a) for a in argv], "log": str(log), "in_place_saves": in_place_saves}
        self.process.stdin.write(json.dumps(request) + "\n")
        pid = self._reply("launched", 30)["launched"]
        self.live.add(pid)
        return pid

    def exit_code(self, pid: int) -> int | None:
        """The run's exit code (negative: the signal that ended it), None while it runs."""
        while pid not in self.exit_codes:
            try:
                reply = self.replies.get_nowait()
            except queue.Empty:
                return None
            if "exited" in reply:
                self.exit_codes[reply["exited"]] = reply["code"]
                self.live.discard(reply["exited"])
        return self.exit_codes[pid]

    def wait(self, pid: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (code := self.exit_code(pid)) is None:
            assert time.monotonic() < deadline, f"run {pid} still running after {timeout} s"
            time.sleep(0.01)
        return code

    def close(self) -> None:
        for pid in list(self.live):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zygote")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "NESF_CACHE_DIR": str(folder / "cache")}
    process = Zygote(folder, env)
    yield process
    process.close()


@pytest.fixture(scope="module")
def structures_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("structures")
    for crystal in (cscl(), bcc_iron(), rocksalt_mgo()):
        structure = Structure(crystal.lattice, [int(z) for z in crystal.species], crystal.cart_coords,
                              coords_are_cartesian=True)
        structure.to(filename=str(folder / f"{crystal.id}.cif"))
    return folder


def temporaries(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


class KilledRun:
    """One training run (checkpoint `out/model.pt`) laid out as the app's run folder `runs/run/`, launched, killed and
    resumed through `zygote`."""

    def __init__(self, zygote: Zygote, structures: Path, folder: Path, *, in_place_saves: bool = False):
        self.zygote = zygote
        self.structures = structures
        self.in_place_saves = in_place_saves
        self.out = folder / "out"
        self.runs = folder / "runs"
        self.folder = self.runs / "run"
        self.folder.mkdir(parents=True)
        self.progress = self.folder / "progress.jsonl"
        self.checkpoint = self.out / "model.pt"
        (self.folder / "spec.json").write_text(json.dumps({"name": "model", "epochs": EPOCHS, "started": 0.0}))
        self.manager = TrainingManager(self.runs, self.out)
        self.launches = 0
        self.pid: int | None = None
        self.pace_s = 0.0

    def argv(self) -> list:
        resume = ["--resume", self.checkpoint] if self.checkpoint.exists() else []
        return ["train", "--structures-dir", self.structures, "--epochs", EPOCHS, "--batch-size", 4,
                "--checkpoint-every-s", 0, "--threads", 1, "--no-atlas", "--quiet", "--device", "cpu",
                "--name", "model", "--out-dir", self.out, "--progress-file", self.progress, *resume]

    def count(self, kind: str) -> int:
        return sum(event.kind == kind for event in read_events(self.progress))

    def log_tail(self) -> str:
        log = self.folder / "log.txt"
        return log.read_text()[-3000:] if log.exists() else ""

    def wait_until(self, condition, what: str, *, poll_s: float = 0.01, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            code = self.zygote.exit_code(self.pid)
            assert code is None, f"the run ended ({code}) while waiting for {what}:\n{self.log_tail()}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s:\n{self.log_tail()}"
            time.sleep(poll_s)

    def launch(self) -> int:
        """Start (or resume) the run; returns the epoch it started from, checked against its 'start' event."""
        resumed_from = read_payload(self.checkpoint)["epoch"] if self.checkpoint.exists() else 0
        starts, saves = self.count("start"), self.count("checkpoint")
        self.pid = self.zygote.launch(self.argv(), self.folder / "log.txt", in_place_saves=self.in_place_saves)
        (self.folder / "pid").write_text(str(self.pid))
        self.launches += 1
        self.launched_at = time.monotonic()
        self.saves_before = saves
        self.starts_before = starts
        return resumed_from

    def wait_for_start(self) -> dict:
        # a checkpoint event without a start event: the start event was lost (glued to a torn line)
        self.wait_until(lambda: self.count("start") > self.starts_before
                        or self.count("checkpoint") > self.saves_before, "start event")
        events = read_events(self.progress)
        assert sum(e.kind == "start" for e in events) == self.starts_before + 1, \
            f"the start event of launch {self.launches} is missing from the progress file"
        return [e for e in events if e.kind == "start"][-1]

    def wait_for_save(self) -> None:
        started = time.monotonic()
        self.wait_until(lambda: self.count("checkpoint") > self.saves_before, "checkpoint event")
        self.pace_s = time.monotonic() - started  # one epoch and one save at this run's speed

    def saving(self, before: os.stat_result) -> bool:
        """A save has begun: a temporary file beside the checkpoint, or the checkpoint itself changed."""
        if temporaries(self.out):
            return True
        try:
            now = self.checkpoint.stat()
        except FileNotFoundError:
            return True
        return (now.st_ino, now.st_size, now.st_mtime_ns) != (before.st_ino, before.st_size, before.st_mtime_ns)

    def kill_when_saving(self) -> None:
        before = self.checkpoint.stat()
        self.wait_until(lambda: self.saving(before), "next save", poll_s=0.0005)
        self.kill()

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        code = self.zygote.wait(self.pid, 30)
        assert code == -signal.SIGKILL, f"the run ended by itself ({code}) before the kill:\n{self.log_tail()}"


def check_checkpoint(run: KilledRun) -> dict:
    payload = read_payload(run.checkpoint)  # weights_only; NesfError names the file if it is torn or corrupt
    assert "training_state" in payload
    assert [record["epoch"] for record in payload["history"]] == list(range(1, payload["epoch"] + 1))
    return payload


@pytest.mark.slow
def test_sigkill_at_20_random_moments_leaves_a_checkpoint_that_loads_and_resumes(zygote, structures_dir, tmp_path):
    rng = random.Random(SEED)
    modes = MODES[:]
    rng.shuffle(modes)
    # per kill: when (a fraction of the start-up time, or of an epoch and a save) and whether a torn line follows
    schedule = [(mode, rng.uniform(0.0, 1.0 if mode == "early" else 1.5), rng.random() < 0.3) for mode in modes]
    run = KilledRun(zygote, structures_dir, tmp_path)
    killed_mid_save = 0
    startup_s = 1.0
    for cycle, (mode, fraction, tear) in enumerate(schedule):
        resumed_from = run.launch()
        if mode == "early":  # during start-up: data, model, optimizer, --resume loading the checkpoint
            time.sleep(fraction * startup_s)
            run.kill()
        else:
            start = run.wait_for_start()
            assert start.epoch == resumed_from, f"cycle {cycle}: --resume started at the wrong epoch"
            startup_s = time.monotonic() - run.launched_at
            run.wait_for_save()  # the resumed run made progress and saved it
            if mode == "timer":  # anywhere in the next epoch or two: a step, an event line, a save
                time.sleep(fraction * run.pace_s)
                run.kill()
            else:  # the moment the next checkpoint save begins
                run.kill_when_saving()
        killed_mid_save += bool(temporaries(run.out))

        announced = [e.epoch for e in read_events(run.progress) if e.kind == "checkpoint"]
        if run.checkpoint.exists():
            payload = check_checkpoint(run)
            # the last good checkpoint is never lost or torn: the file is as new as the last one announced or newer
            assert payload["epoch"] >= max(announced, default=0), f"cycle {cycle} ({mode})"
            assert payload["epoch"] >= resumed_from
            if mode != "early":
                assert payload["epoch"] > resumed_from, f"cycle {cycle} ({mode}): the resumed run saved no progress"
            # the app's view of the folder: a crashed run whose last good checkpoint is this one
            status = run.manager.status("run")
            assert status.state == "crashed" and status.checkpoint == str(run.checkpoint), status
            assert status.epoch >= payload["epoch"]
        else:
            assert not announced, f"cycle {cycle}: the checkpoint announced at epoch {announced[-1]} is gone"
        if tear:  # as a kill in the middle of writing an event line would leave it
            with open(run.progress, "a") as stream:
                stream.write(TORN_LINE)
            assert run.manager.status("run").state == "crashed"

    assert killed_mid_save >= 1, "no kill landed during a checkpoint save"
    run.launch()
    assert zygote.wait(run.pid, 300) == 0, run.log_tail()
    payload = check_checkpoint(run)
    assert payload["epoch"] == EPOCHS
    assert os.listdir(run.out) == ["model.pt"], "temporary files left beside the checkpoint"
    lines = run.progress.read_text().splitlines()
    events = read_events(run.progress)
    torn_lines = sum(tear for _, _, tear in schedule)
    assert len(lines) - len(events) == torn_lines  # each torn line on its own, every event intact
    starts = sum(e.kind == "start" for e in events)  # early kills may land before or after theirs
    assert run.launches - modes.count("early") <= starts <= run.launches
    assert events[-1].kind == "done" and events[-1].epoch == EPOCHS
    status = run.manager.status("run")
    assert status.state == "done" and status.epoch == EPOCHS and status.checkpoint == str(run.checkpoint)


@pytest.mark.slow
def test_the_kills_catch_a_checkpoint_written_in_place(zygote, structures_dir, tmp_path):
    """The harness can fail: with saves written straight into the checkpoint (no temporary file, no os.replace), a
    kill as a save begins leaves a torn checkpoint that no longer loads."""
    run = KilledRun(zygote, structures_dir, tmp_path, in_place_saves=True)
    for _ in range(5):
        run.launch()
        run.wait_for_start()
        run.wait_for_save()
        run.kill_when_saving()
        try:
            read_payload(run.checkpoint)
        except NesfError as exc:
            assert "not a readable NeSF checkpoint" in str(exc)
            return
    pytest.fail("five kills during in-place saves all left a loadable checkpoint")


# -- the library fixes the kills called for ---------------------------------------------------------------------
def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_a_write_removes_the_temporaries_of_killed_writers_only(tmp_path):
    target = tmp_path / "model.pt"
    dead, parent = dead_pid(), os.getppid()
    stale = f".model.pt.{dead}.abc_123.tmp"
    kept = [f".model.pt.{parent}.live1234.tmp",     # another process still writing
            f".model.pt.{os.getpid()}.mine1234.tmp",  # this process (another thread) still writing
            f".other.pt.{dead}.abc_123.tmp",          # another file's
            ".model.pt.nopid123.tmp",                 # not a name this version writes
            f".model.pt.5.{dead}.abc_123.tmp"]        # model.pt.5's temporary, not model.pt's
    for name in [stale, *kept]:
        (tmp_path / name).write_bytes(b"partial")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == sorted(["model.pt", *kept])


def test_a_writer_killed_mid_write_leaves_the_old_file_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"old")
    code = ("import sys, time\nfrom nesf.core.files import atomic_write\n"
            "def write(stream):\n"
            "    stream.write(b'half'); stream.flush(); print('writing', flush=True); time.sleep(60)\n"
            "atomic_write(sys.argv[1], write)\n")
    process = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        assert process.stdout.readline().strip() == "writing"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert target.read_bytes() == b"old"
    assert temporaries(tmp_path) and all(f".{process.pid}." in name for name in temporaries(tmp_path))
    atomic_write(target, lambda stream: stream.write(b"new"))
    assert target.read_bytes() == b"new" and temporaries(tmp_path) == []


@pytest.mark.parametrize("before, lines", [
    ("", ['{"event": "start"}']),
    ('{"event": "epoch"}\n', ['{"event": "epoch"}', '{"event": "start"}']),
    ('{"event": "epoch"}\n' + TORN_LINE, ['{"event": "epoch"}', TORN_LINE, '{"event": "start"}']),
])
def test_a_resumed_run_starts_its_events_on_a_new_line_after_a_torn_one(tmp_path, before, lines):
    progress = tmp_path / "run" / "progress.jsonl"
    if before:
        progress.parent.mkdir()
        progress.write_text(before)
    with open_progress_file(progress) as stream:
        stream.write(json.dumps({"event": "start"}) + "\n")
    assert progress.read_text().splitlines() == lines
    assert [event.kind for event in read_events(progress)] == [json.loads(line)["event"] for line in lines
                                                                   if line != TORN_LINE]
