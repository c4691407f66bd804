"""What ships in `checkpoints/`: a trained model without its run state, its weights stored in fp32 or fp16.

Every shipped version of a model stays in the repository's history, so its bytes count against the fresh clone's
100 MB. `shipped` drops the training state (optimizer moments, resume counters), names the model, and drops
metrics measured under another name or other weights (`nesf card` measures the shipped file). With `weights="fp16"`
the floating-point weights are stored in half precision, except the lattice heads' (`FULL_PRECISION_PREFIXES`):
`load_state_dict` copies them back into the model's fp32 parameters, so the model computes in fp32 from weights
rounded to 11 significant bits. Measured on the LCS6A val split (286 crystals, the 8 x 256 position-field model):
with every weight in fp16 the lattice angle error rose 0.105 -> 0.128 deg, all else within one crystal; with the
lattice heads kept in fp32 every Table 1 metric is the fp32 model's but the detected species error (6.48 -> 6.43 %),
at 2.4 MB against 4.5 MB.
"""

from __future__ import annotations

from dataclasses import replace

from nesf.checkpoint import Checkpoint
from nesf.checkpoint.run_state import WEIGHT_DTYPES, floats_in
from nesf.core.errors import NesfError

STORED_WEIGHTS = tuple(WEIGHT_DTYPES)
FULL_PRECISION_PREFIXES = ("length_head.", "angle_head.")  # the lattice heads: their outputs are the cell itself


def shipped(checkpoint: Checkpoint, *, name: str, weights: str = "fp32") -> Checkpoint:
    """`checkpoint` as it ships: named `name`, without training state or stored metrics, its weights in `weights`
    precision (see the module)."""
    if weights not in WEIGHT_DTYPES:
        raise NesfError(f"unknown weight precision {weights!r}; use one of {', '.join(STORED_WEIGHTS)}")
    if not name or any(char in name for char in "/\\\0") or name.startswith("."):
        raise NesfError(f"{name!r} is no model name: give a plain file stem such as 'lcs6a'")
    state = checkpoint.model_state
    if not isinstance(state, dict) or not state:
        raise NesfError("the checkpoint holds no model weights")
    kept = tuple(key for key in state if key.startswith(FULL_PRECISION_PREFIXES)) if weights == "fp16" else ()
    return replace(checkpoint.without_training_state(), name=name, metrics=None, stored_weights=weights,
                   model_state=floats_in(state, WEIGHT_DTYPES[weights], keep=kept))
