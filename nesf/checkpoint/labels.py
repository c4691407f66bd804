"""The labels a checkpoint's stored metrics are filed under (`Checkpoint.with_metrics`, `nesf card`), typed: one
grammar, written and read here alone.

A label names the crystals measured and how: "test" (a split), "test[:64]" (its first 64 crystals: a card's CI
subset), "test[refined]" (the split with each latent refined), and upload-path figures
(`nesf.inference.reupload.measure_uploads`): "test[re-uploaded]", "perov_5 test[novel, re-uploaded]",
"novel[primitive standard cells]", "held-out hexagonal[orthohexagonal cells]", each also measured in the paper's
encoder-only protocol (", encoder only" inside the brackets). "trust" holds the trust calibrations, no figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRUST = "trust"                       # the stored trust calibrations (nesf.inference.trust): not a label of figures
REFINED = "refined"
REUPLOADED = "re-uploaded"
NOVEL = "novel"                       # crystals unlike the training set (`nesf.inference.reupload.novel_sources`)
ENCODER_ONLY = "encoder only"         # the paper's protocol: the encoder's latent, not refined
CELLS = " cells"                      # "primitive standard cells": crystals converted to that kind of cell
_LABEL = re.compile(r"^(?P<base>[^\[\]]+?)(?:\[(?P<qualifier>[^\[\]]*)\])?$")


@dataclass(frozen=True)
class MetricsLabel:
    base: str                         # the split or source: "test", "val", "perov_5 test", "novel", ...
    qualifier: str = ""               # inside the brackets, without the protocol: ":64", "refined", "re-uploaded",
                                      # "novel, re-uploaded", "primitive standard cells"
    encoder_only: bool = False        # measured in the paper's protocol

    @classmethod
    def parse(cls, text: str) -> "MetricsLabel":
        match = _LABEL.match(str(text))
        if match is None:
            raise ValueError(f"not a stored-metrics label: {text!r}")
        qualifier = match["qualifier"] or ""
        tag = f", {ENCODER_ONLY}"
        encoder_only = qualifier.endswith(tag) or qualifier == ENCODER_ONLY
        if encoder_only:
            qualifier = qualifier.removesuffix(tag) if qualifier != ENCODER_ONLY else ""
        return cls(match["base"].strip(), qualifier, encoder_only)

    @classmethod
    def ci_subset(cls, split: str, count: int) -> "MetricsLabel":
        return cls(split, f":{count}")

    @classmethod
    def refined(cls, split: str) -> "MetricsLabel":
        return cls(split, REFINED)

    @classmethod
    def reuploaded(cls, source: str, *, novel: bool = False) -> "MetricsLabel":
        return cls(source, f"{NOVEL}, {REUPLOADED}" if novel else REUPLOADED)

    @classmethod
    def in_cells(cls, source: str, kind: str) -> "MetricsLabel":
        return cls(source, f"{kind}{CELLS}")

    def __str__(self) -> str:
        inside = ", ".join(part for part in (self.qualifier, ENCODER_ONLY if self.encoder_only else "") if part)
        return f"{self.base}[{inside}]" if inside else self.base

    def protocol(self, encoder_only: bool) -> "MetricsLabel":
        return MetricsLabel(self.base, self.qualifier, encoder_only)

    @property
    def is_split(self) -> bool:
        """The figures of a whole split, encoder only (the paper's protocol as the dataset stores it)."""
        return not self.qualifier and not self.encoder_only

    @property
    def is_ci_subset(self) -> bool:
        return self.qualifier.startswith(":")

    @property
    def is_refined(self) -> bool:
        return self.qualifier == REFINED

    @property
    def is_upload(self) -> bool:
        """Upload-path figures: re-uploaded, novel or converted crystals (either protocol)."""
        return bool(self.qualifier) and not self.is_ci_subset and not self.is_refined

    @property
    def cell_kind(self) -> str | None:
        """"primitive standard" for crystals converted to primitive standard cells, else None."""
        return self.qualifier.removesuffix(CELLS) if self.qualifier.endswith(CELLS) else None

    @property
    def row_name(self) -> str:
        """For tables: "test, re-uploaded", "test, refined", "novel, primitive standard cells, encoder only"."""
        return ", ".join(part for part in (self.base, self.qualifier, ENCODER_ONLY if self.encoder_only else "")
                         if part)


def figure_labels(metrics: dict | None) -> dict[MetricsLabel, dict]:
    """A checkpoint's stored figures by typed label, in their stored order (`TRUST`, anything not a dict of figures
    and a label of no known form left out: a page reading a hand-edited checkpoint does not break on it); a flat
    dict of numbers (a checkpoint from before model cards) is one split, "held out"."""
    metrics = metrics or {}
    nested = {}
    for label, values in metrics.items():
        if isinstance(values, dict) and label != TRUST and _LABEL.match(str(label)):
            nested[MetricsLabel.parse(label)] = values
    if nested:
        return nested
    flat = {key: value for key, value in metrics.items() if isinstance(value, (int, float))}
    return {MetricsLabel("held out"): flat} if flat else {}
