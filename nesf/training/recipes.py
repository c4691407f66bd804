"""Named training recipes: a model, training and sampling config in one frozen record.

"paper" is the paper's recipe (Supplementary Notes 5-6). The others are measured departures from it for 2-core CPU
training, compared at equal CPU budgets by `benchmarks/ablate.py` (figures in BENCHMARKS.md). `nesf train --recipe
NAME` starts from one; options given beside it override its fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from nesf.core.config import ModelConfig, SamplingConfig, TrainConfig
from nesf.core.errors import NesfError


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


def _derive(base: Recipe, name: str, description: str, *, model: dict | None = None, train: dict | None = None,
            weights: dict | None = None, sampling: dict | None = None) -> Recipe:
    train_config = replace(base.train, **(train or {}))
    if weights:
        train_config = replace(train_config, loss_weights=replace(train_config.loss_weights, **weights))
    return Recipe(name, description, replace(base.model, **(model or {})), train_config,
                  replace(base.sampling, **(sampling or {})))


PAPER = Recipe("paper", "the paper: batch 128, Adam 1e-3 halved every 640 epochs, losses 10/0.1/1/1, global queries "
                        "over the dataset box")
STANDIN = _derive(PAPER, "standin", "the shipped CPU stand-in's: paper + batch 32 + global queries only in each cell",
                  train={"batch_size": 32}, sampling={"global_in_cell": True})
SPECIES1 = _derive(STANDIN, "species1", "standin + species loss weight 1.0 (paper 0.1)", weights={"species": 1.0})
AUX = _derive(STANDIN, "aux", "standin + auxiliary composition head (weight 1)", model={"composition_head": True})
AUX_SPECIES1 = _derive(AUX, "aux_species1", "standin + composition head + species weight 1.0",
                       weights={"species": 1.0})
COSINE = _derive(AUX_SPECIES1, "cosine", "aux_species1 + warm-up (0.5 epoch) and cosine decay to 0 over the run",
                 train={"lr_schedule": "cosine", "warmup_epochs": 0.5, "lr_final_fraction": 0.0})
QUERIES = _derive(AUX_SPECIES1, "queries", "aux_species1 + a random quarter of the species queries and half of the "
                                           "local position queries per atom and step",
                  sampling={"species_query_fraction": 0.25, "local_query_fraction": 0.5})
ADAMW = _derive(AUX_SPECIES1, "adamw", "aux_species1 + AdamW, weight decay 0.01", train={"optimizer": "adamw",
                                                                                         "weight_decay": 0.01})
BATCH64 = _derive(AUX_SPECIES1, "batch64", "aux_species1 + batch 64 at lr 2e-3", train={"batch_size": 64,
                                                                                       "learning_rate": 2e-3})

CPU = _derive(AUX_SPECIES1, "cpu", "the 2-core CPU recipe: aux_species1 + a quarter of the species and half of the "
                                   "local queries + warm-up (1 epoch) and cosine decay + torch.compile of the fields",
              train={"lr_schedule": "cosine", "warmup_epochs": 1.0, "lr_final_fraction": 0.0, "compile": True,
                     "validate_every": 5},
              sampling={"species_query_fraction": 0.25, "local_query_fraction": 0.5})

RECIPES = {r.name: r for r in (PAPER, STANDIN, SPECIES1, AUX, AUX_SPECIES1, COSINE, QUERIES, ADAMW, BATCH64, CPU)}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise NesfError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None


def with_epochs(recipe: Recipe, epochs: int) -> Recipe:
    return replace(recipe, train=replace(recipe.train, epochs=int(epochs)))


