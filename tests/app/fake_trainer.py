"""A stand-in for `python -m nesf train` that speaks the same progress protocol (JSON lines), fast.

Usage: fake_trainer.py --epochs N --progress-file F --out-dir D --name NAME [--epoch-s S] [--fail-at E] [--crash-at E]
       fake_trainer.py --spec RUN.json [--epoch-s S] ... (the run's name, epochs, out dir and progress file from the
       spec file, as `nesf train --spec` reads them)
"""

import argparse
import json
import signal
import sys
import time
from pathlib import Path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--progress-file")
    parser.add_argument("--out-dir")
    parser.add_argument("--name")
    parser.add_argument("--epoch-s", type=float, default=0.05)
    parser.add_argument("--fail-at", type=int, default=0)
    parser.add_argument("--crash-at", type=int, default=0)
    args, _ = parser.parse_known_args()
    if args.spec:
        run = json.loads(Path(args.spec).read_text())
        args.name, args.out_dir, args.progress_file = run["name"], run["out_dir"], run["progress_file"]
        args.epochs = run.get("overrides", {}).get("epochs", args.epochs)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    state = {"epoch": 0, "last": None}

    def emit(**event):
        event.setdefault("elapsed_s", time.time() - start)
        with open(args.progress_file, "a") as f:
            f.write(json.dumps(event) + "\n")

    def save(final: bool):
        path = out / (f"{args.name}.pt" if final else f"{args.name}.last.pt")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"fake checkpoint at epoch {state['epoch']}")
        tmp.replace(path)
        state["last"] = str(path)
        return str(path)

    def on_term(signum, frame):
        path = save(final=False)
        emit(event="cancelled", epoch=state["epoch"], epochs=args.epochs, checkpoint=path,
             message=f"cancelled at epoch {state['epoch']}; last good checkpoint kept")
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    emit(event="start", epoch=0, epochs=args.epochs)
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.epoch_s)
        state["epoch"] = epoch
        if epoch == args.crash_at:
            print("Traceback (most recent call last):\nRuntimeError: fake crash", flush=True)
            sys.exit(3)
        if epoch == args.fail_at:
            emit(event="failed", epoch=epoch, epochs=args.epochs, checkpoint=state["last"],
                 message="loss became NaN at epoch %d" % epoch)
            sys.exit(1)
        loss = 1.0 / epoch
        elapsed = time.time() - start
        emit(event="epoch", epoch=epoch, epochs=args.epochs, train_loss=loss, val_loss=loss * 1.1,
             eta_s=elapsed / epoch * (args.epochs - epoch))
        if epoch % 2 == 0:
            emit(event="checkpoint", epoch=epoch, epochs=args.epochs, checkpoint=save(final=False))
    emit(event="done", epoch=args.epochs, epochs=args.epochs, checkpoint=save(final=True), message="finished")


if __name__ == "__main__":
    main()
