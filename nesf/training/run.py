"""One training run from its spec to its checkpoint and atlas: `run_training(run, progress, should_stop)`, the path
`nesf train` and the app's retraining (through `nesf train --spec`) take.

It reads the run's datasets, builds the trainer from the run's configs (`run_spec.run_configs`), resumes or
fine-tunes where the run says, trains, writes the atlas of the trained model, and reports each step as a progress
event (`nesf.training.progress`): epochs, the atlas's stages, then "done", "cancelled" or "failed" (with the
problem, and a traceback for an unexpected error, which is raised again).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from nesf.core.errors import NesfError
from nesf.training.progress import ATLAS, CANCELLED, DONE, FAILED, Event
from nesf.training.run_spec import TrainRun, run_configs

DONE_STATUS, CANCELLED_STATUS = "done", "cancelled"


def run_training(run: TrainRun, progress: Callable[[Event], None], should_stop: Callable[[], bool] = lambda: False
                 ) -> str:
    """Train `run`; "done" or "cancelled" (`should_stop` asked it to stop: its last checkpoint is written)."""
    try:
        return _train(run, progress, should_stop)
    except NesfError as exc:
        progress(Event(FAILED, message=str(exc)))
        raise
    except Exception as exc:
        progress(Event(FAILED, message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=5)))
        raise


def _train(run: TrainRun, progress, should_stop) -> str:
    from nesf.checkpoint import atlas_path_for
    from nesf.core.config import MapConfig
    from nesf.core.device import get_device
    from nesf.data.datasets import default_data_dir, training_dataset
    from nesf.inference.atlas import write_atlas
    from nesf.inference.autoencoder import Autoencoder
    from nesf.training.trainer import Trainer, TrainingData, init_distributed

    if run.resume and run.init_from:
        raise NesfError("give --resume (continue a run) or --init-from (new run from its weights), not both")
    checkpoint = Path(run.out_dir) / f"{run.name}.pt"
    device = init_distributed(run.device) or get_device(run.device)
    dataset = training_dataset(run.datasets, run.structures_dir, run.data_dir or default_data_dir())
    data = TrainingData.from_dataset(dataset, limit=run.limit)
    if run.threads:
        import torch

        torch.set_num_threads(run.threads)
    configs = run_configs(run)
    trainer = Trainer(data, model_config=configs.model, train_config=configs.train, sampling_config=configs.sampling,
                      device=device, checkpoint_path=checkpoint, progress=progress, name=run.name,
                      should_stop=should_stop)
    if run.resume:
        trainer.resume(Path(run.resume))
    elif run.init_from:
        trainer.initialize_from(Path(run.init_from))
    if trainer.fit() == CANCELLED_STATUS:
        progress(Event(CANCELLED, epoch=trainer.epoch, checkpoint=str(checkpoint),
                       message=f"cancelled at epoch {trainer.epoch}; last checkpoint {checkpoint}"))
        return CANCELLED_STATUS
    if run.atlas and trainer.rank == 0:
        seed = {"seed": run.overrides["seed"]} if "seed" in run.overrides else {}  # it seeds the map too
        write_atlas(Autoencoder.from_checkpoint(checkpoint, run.device), dataset, atlas_path_for(checkpoint),
                    errors=run.errors, maps=replace(MapConfig(), **seed),
                    progress=lambda fraction, message: progress(Event(ATLAS, message=message)))
    progress(Event(DONE, epoch=trainer.epoch, checkpoint=str(checkpoint),
                   message=f"trained {trainer.epoch} epochs in {trainer.wall_time_s:.0f} s"))
    return DONE_STATUS
