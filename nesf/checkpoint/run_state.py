"""What a stop commits of a long training run: its resume state, made small.

A resume checkpoint holds four copies of the model's size: the best-validation weights, the training weights and
Adam's two moment estimates (12.7 MB for the LCS6A model). Committing one after every stretch of a run that spans
many sessions would grow the repository by that much each time. `slim_run_state` keeps what resuming needs:

- the training weights, in fp32; they also stand as the checkpoint's weights (the best-validation weights are
  dropped where they differ, and the next validation sets a new best);
- Adam's moments either in bfloat16 ("bf16", half their size; `Optimizer.load_state_dict` casts them back to the
  parameters' fp32 on resume) or not at all ("drop": the optimizer starts afresh, and the learning rate is ramped
  linearly back to the schedule's over `rewarm_steps` steps so that the first steps of a cold Adam, each of size
  ~lr in every weight, do not jolt the model);
- the weights themselves either in fp32 or in fp16 ("fp16", half again; `load_state_dict` copies them back into
  the model's fp32 parameters on resume, so the run goes on in fp32 from weights rounded to 11 significant bits).

`benchmarks/bench_run_state.py` measures what each costs against the full state at an equal number of steps. On
the LCS6A run at epoch 98 (one epoch, 170 steps, the same batches): validation loss -0.01 % with bf16 moments and
-0.06 % without moments, against the full state's (BENCHMARKS.md). Both are within noise, so "drop" (3.2 MB, a
quarter of the full 12.7 MB) is the default. Measured again from the epoch-5 state of a fine-tuning cycle: fp16
weights without moments end one epoch at -0.65 % against the full state's validation loss, fp32 weights without
moments at -0.64 %; so fp16 (1.6 MB) is the default too.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from nesf.checkpoint import Checkpoint
from nesf.core.errors import NesfError

MOMENT_POLICIES = ("bf16", "drop")
WEIGHT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
DEFAULT_REWARM_STEPS = 100


def slim_run_state(checkpoint: Checkpoint, moments: str = "drop", rewarm_steps: int = DEFAULT_REWARM_STEPS,
                   weights: str = "fp16") -> Checkpoint:
    """A copy of a resume checkpoint that resumes the same run from fewer bytes (see the module)."""
    state = checkpoint.training_state
    if state is None:
        raise NesfError("the checkpoint holds no training state (a shipped model?); only a run's resume "
                        "checkpoint can be slimmed")
    if moments not in MOMENT_POLICIES:
        raise NesfError(f"unknown moments policy {moments!r}; use one of {', '.join(MOMENT_POLICIES)}")
    if weights not in WEIGHT_DTYPES:
        raise NesfError(f"unknown weight precision {weights!r}; use one of {', '.join(WEIGHT_DTYPES)}")
    if rewarm_steps < 0:
        raise NesfError(f"rewarm_steps must not be negative, got {rewarm_steps}")
    if state.optimizer_state is None and moments == "bf16":
        raise NesfError("the checkpoint's moments were already dropped; slim it with moments='drop'")
    training_weights = floats_in(state.model_state, WEIGHT_DTYPES[weights])
    slim_state = replace(state, model_state=training_weights,
                         optimizer_state=_moments_in_bfloat16(state.optimizer_state) if moments == "bf16" else None,
                         rewarm_steps=None if moments == "bf16" else int(rewarm_steps),
                         slimmed=moments if weights == "fp32" else f"{moments}, {weights} weights")
    same = _same_weights(checkpoint.model_state, state.model_state)
    return replace(checkpoint, training_state=slim_state, model_state=training_weights,  # one copy of the weights
                   best_val_loss=checkpoint.best_val_loss if same else None)


def floats_in(values: dict, dtype: torch.dtype, keep: tuple[str, ...] = ()) -> dict:
    """`values` with its floating-point tensors in `dtype`; other entries (integer buffers such as BatchNorm's batch
    count, plain numbers) and the keys in `keep` as they are."""
    return {key: value.to(dtype) if key not in keep and torch.is_tensor(value) and value.is_floating_point() else value
            for key, value in values.items()}


def _moments_in_bfloat16(optimizer_state: dict) -> dict:
    per_parameter = {index: floats_in(values, torch.bfloat16, keep=("step",))
                     for index, values in optimizer_state["state"].items()}
    return {**optimizer_state, "state": per_parameter}


def _same_weights(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)


def rewarm_factor(steps_since_resume: int, rewarm_steps: int) -> float:
    """The learning-rate multiplier `steps_since_resume` steps after resuming without moments (1 once warm)."""
    if rewarm_steps <= 0:
        return 1.0
    return min(1.0, (steps_since_resume + 1) / rewarm_steps)
