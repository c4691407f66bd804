"""How far to trust one reconstruction, before and without comparing it to anything.

Two signals, both read without decoding:
- the field residual (`nesf.model.frame_select.FrameScore.score`): how well the model's own fields, at the latent
  used (refined: `nesf.model.refine`), point at the encoded crystal's atoms and name their elements;
- the latent distance to the nearest training crystal (Euclidean, in the model's latent units).

Each is calibrated on uploads (`nesf.inference.reupload`) from several sources, the test split beside crystals unlike
the training set: the crystals are binned by the signal (quantile bins), each bin keeps its StructureMatcher match
rate, and the rates are made monotone (pooled where a higher value matched more often: `TrustCalibration`, stored in
the checkpoint's metrics). A new reconstruction's reading is its bin's rate: "uploads with a residual this low matched
9 times in 10"; a value above the largest calibrated one gets no figure ("beyond what was calibrated"). The
calibration also keeps, per source, its Brier score measured out of fold (`SourceReliability`); a signal whose Brier
score does not beat always guessing the base rate on the whole set, or is worse than it by more than 0.02 on any
source of 30 crystals or more, is shown without a probability.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

SIGNALS = {"field_residual": "field residual", "latent_distance": "latent distance to the nearest training crystal"}
CALIBRATION_BINS = 5
BEYOND = "beyond calibration"  # the level of a value above the largest calibrated one
MIN_SOURCE_COUNT = 30          # crystals a calibration source needs for its own Brier score to count
SOURCE_BRIER_SLACK = 0.02      # how far a source's Brier score may exceed the base rate's (its sampling noise at
                               # ~100 crystals) before the signal counts as misleading there


@dataclass(frozen=True)
class SourceReliability:
    """How one calibration source's uploads fared against the calibration (fitted out of fold: each half of the
    crystals read with the calibration of the other half)."""

    source: str              # e.g. "lim_l6 test, re-uploaded"
    count: int               # crystals
    matched_rate: float      # share that matched, in [0, 1]
    predicted_rate: float    # mean of the probabilities read for them
    brier: float             # mean squared difference of probability and outcome
    base_rate_brier: float   # the same for always predicting the whole set's (other half's) match rate

    @classmethod
    def from_dict(cls, data: dict) -> "SourceReliability":
        return cls(str(data["source"]), int(data["count"]), *(float(data[k]) for k in (
            "matched_rate", "predicted_rate", "brier", "base_rate_brier")))


@dataclass(frozen=True)
class TrustCalibration:
    signal: str              # a key of SIGNALS
    upper_edges: tuple       # (bins,) ascending: bin i holds values <= upper_edges[i] (the last edge: the largest seen)
    match_rates: tuple       # (bins,) share of the calibration crystals in each bin that matched, in [0, 1],
                             # non-increasing (adjacent bins pooled where a higher value matched more often)
    counts: tuple            # (bins,) calibration crystals per bin
    source: str              # what it was calibrated on, e.g. "lim_l6 test, re-uploaded (seed 0), 301 crystals"
    max_value: float = math.inf   # the largest calibrated value; above it, no figure (calibrations before: none)
    reliability: tuple = ()       # SourceReliability per source, and "all" last

    @property
    def informative(self) -> bool:
        """Whether its probabilities are worth showing: out of fold, its Brier score beats always guessing the base
        rate on the whole calibration set, and on no source of at least MIN_SOURCE_COUNT crystals is it worse than
        the base rate by more than SOURCE_BRIER_SLACK (a signal that ranks the pooled set but misleads on one kind of
        crystal is shown without a probability). True for a calibration without reliability figures (from before
        them)."""
        return all(r.brier < r.base_rate_brier if r.source == "all" else r.brier <= r.base_rate_brier + SOURCE_BRIER_SLACK
                   for r in self.reliability if r.source == "all" or r.count >= MIN_SOURCE_COUNT)

    def to_dict(self) -> dict:
        data = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        data["reliability"] = [asdict(r) if not isinstance(r, dict) else r for r in self.reliability]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "TrustCalibration":
        return cls(str(data["signal"]), tuple(float(x) for x in data["upper_edges"]),
                   tuple(float(x) for x in data["match_rates"]), tuple(int(x) for x in data["counts"]),
                   str(data.get("source", "")), float(data.get("max_value", math.inf)),
                   tuple(SourceReliability.from_dict(r) for r in data.get("reliability", ())))

    def bin_of(self, value: float) -> int:
        return int(min(np.searchsorted(np.asarray(self.upper_edges), value, side="left"), len(self.upper_edges) - 1))

    def rate(self, value: float) -> float:
        """The calibrated match probability of `value`; NaN beyond the largest calibrated value."""
        return math.nan if value > self.max_value else self.match_rates[self.bin_of(value)]

    def reading(self, value: float) -> "TrustReading":
        if value > self.max_value:
            return TrustReading(self.signal, float(value), None, 0, self.max_value, None, self.source)
        i = self.bin_of(value)
        low = self.upper_edges[i - 1] if i > 0 else None
        last_open = math.isinf(self.max_value) and i == len(self.upper_edges) - 1  # a calibration from before
        high = None if last_open else self.upper_edges[i]                           # `max_value`: last bin open
        return TrustReading(self.signal, float(value), self.match_rates[i], self.counts[i], low, high, self.source)


@dataclass(frozen=True)
class TrustReading:
    signal: str
    value: float
    match_rate: float | None   # in [0, 1], of the calibration crystals in this value's bin; None: beyond them all
    count: int                 # calibration crystals in the bin
    bin_low: float | None      # the bin's bounds (None: open)
    bin_high: float | None
    source: str

    @property
    def beyond(self) -> bool:
        return self.match_rate is None

    @property
    def level(self) -> str:
        """"high", "medium" or "low": match rate >= 0.85, >= 0.6, or below; BEYOND past the calibrated values."""
        if self.match_rate is None:
            return BEYOND
        return "high" if self.match_rate >= 0.85 else "medium" if self.match_rate >= 0.6 else "low"

    def sentence(self) -> str:
        name = f"{SIGNALS.get(self.signal, self.signal)} {self.value:.3g}"
        if self.match_rate is None:
            return (f"{name}: beyond what was calibrated (no calibration upload had a value above "
                    f"{self.bin_low:.3g}), so no probability is given; expect it to be wrong")
        if self.bin_low is None:
            where = f"at most {self.bin_high:.3g}"
        elif self.bin_high is None:
            where = f"above {self.bin_low:.3g}"
        else:
            where = f"between {self.bin_low:.3g} and {self.bin_high:.3g}"
        return (f"{name}: uploads with a value {where} matched {10 * self.match_rate:.1f} times in 10 "
                f"({self.count} crystals)")


def _monotone(rates: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Pool adjacent bins (weighted by their counts) until the rates do not increase with the value."""
    blocks = [[float(r), float(c), 1] for r, c in zip(rates, counts)]  # rate, weight, bins pooled
    merged: list = []
    for block in blocks:
        merged.append(block)
        while len(merged) > 1 and merged[-2][0] < merged[-1][0]:
            (r2, w2, n2), (r1, w1, n1) = merged.pop(), merged.pop()
            merged.append([(r1 * w1 + r2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([[r] * n for r, _, n in merged])


def _fit(signal: str, values: np.ndarray, matched: np.ndarray, source: str, bins: int) -> TrustCalibration:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:]))
    which = np.minimum(np.searchsorted(edges, values, side="left"), len(edges) - 1)
    counts = np.bincount(which, minlength=len(edges))
    hits = np.bincount(which, weights=matched.astype(np.float64), minlength=len(edges))
    keep = counts > 0
    rates = _monotone(hits[keep] / counts[keep], counts[keep])
    return TrustCalibration(signal, tuple(float(x) for x in edges[keep]), tuple(float(x) for x in rates),
                            tuple(int(x) for x in counts[keep]), source, float(values.max()))


def calibrate(signal: str, values, matched, source: str, bins: int = CALIBRATION_BINS,
              sources=None) -> TrustCalibration:
    """Quantile bins of `values` (one per calibration crystal) with the match rate of `matched` in each, made
    monotone; with `sources` (one name per crystal), the reliability of each source and of all, out of fold (crystals
    alternately in two halves, each read with the other half's calibration; beyond its values, its last bin's rate),
    and whether the signal beats the base rate."""
    values = np.asarray(values, dtype=np.float64)
    matched = np.asarray(matched, dtype=bool)
    if values.shape != matched.shape or values.size == 0:
        raise ValueError(f"need one match flag per value and at least one value ({values.size} vs {matched.size})")
    if signal not in SIGNALS:
        raise ValueError(f"unknown trust signal {signal!r}; use one of {list(SIGNALS)}")
    calibration = _fit(signal, values, matched, source, bins)
    if sources is None or values.size < 4:
        return calibration
    sources = np.asarray(sources, dtype=object)
    half = np.arange(values.size) % 2
    predicted, base = np.zeros(values.size), np.zeros(values.size)
    for fold in (0, 1):
        fit, read = half != fold, half == fold
        other = _fit(signal, values[fit], matched[fit], source, bins)
        predicted[read] = [other.match_rates[other.bin_of(v)] for v in values[read]]
        base[read] = matched[fit].mean()
    outcome = matched.astype(np.float64)
    rows = []
    for name in [*dict.fromkeys(sources.tolist()), "all"]:
        pick = np.ones(values.size, bool) if name == "all" else sources == name
        rows.append(SourceReliability(str(name), int(pick.sum()), float(outcome[pick].mean()),
                                      float(predicted[pick].mean()),
                                      float(((predicted[pick] - outcome[pick]) ** 2).mean()),
                                      float(((base[pick] - outcome[pick]) ** 2).mean())))
    return replace(calibration, reliability=tuple(rows))


def nearest_distances(latents: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B,) Euclidean distance from each latent (B, L) to its nearest reference latent (R, L), and that one's
    index."""
    latents = np.asarray(latents, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if len(reference) == 0:
        return np.full(len(latents), np.nan), np.full(len(latents), -1)
    squared = ((latents ** 2).sum(1)[:, None] - 2 * latents @ reference.T + (reference ** 2).sum(1)[None])
    index = squared.argmin(1)
    return np.sqrt(np.maximum(squared[np.arange(len(latents)), index], 0.0)), index


@dataclass(frozen=True)
class TrustSignal:
    """Both trust signals of one encoded crystal, with their calibrated readings where the checkpoint has them."""

    field_residual: float                 # FrameScore.score of the latent used
    latent_distance: float                # to the nearest training crystal (NaN without training latents)
    nearest_training_id: str             # that crystal's id ("" without)
    residual_reading: TrustReading | None
    distance_reading: TrustReading | None  # None also where the distance predicts no better than the base rate
    distance_uninformative: bool = False  # the checkpoint's calibration found the distance no better than the base rate

    def lines(self) -> list[tuple[str, str]]:
        """(level, sentence) per signal: its calibrated reading and level, or the bare value ("unknown" level) where
        the checkpoint has no calibration or the calibration is not better than guessing the base rate."""
        lines = []
        for signal, value, reading in (("field_residual", self.field_residual, self.residual_reading),
                                       ("latent_distance", self.latent_distance, self.distance_reading)):
            if np.isnan(value):
                continue
            if reading is not None:
                level, text = reading.level, reading.sentence()
            elif signal == "latent_distance" and self.distance_uninformative:
                level, text = "unknown", (f"{SIGNALS[signal]} {value:.3g} (no probability: on the calibration uploads "
                                          "it did not predict matches better than their base rate on every kind "
                                          "of crystal)")
            else:
                level, text = "unknown", f"{SIGNALS[signal]} {value:.3g} (not calibrated for this model)"
            if signal == "latent_distance" and self.nearest_training_id:
                text += f"; nearest training crystal {self.nearest_training_id}"
            lines.append((level, text))
        return lines

    def sentences(self) -> list[str]:
        """One line per signal (`lines` without the levels)."""
        return [text for _, text in self.lines()]

    @property
    def readings(self) -> list[TrustReading]:
        return [r for r in (self.residual_reading, self.distance_reading) if r is not None]

    @property
    def level(self) -> str:
        """The lowest of the readings' levels (BEYOND below "low"), or "unknown" without calibration."""
        order = [BEYOND, "low", "medium", "high"]
        levels = [r.level for r in self.readings]
        return min(levels, key=order.index) if levels else "unknown"

    @property
    def match_probability(self) -> float | None:
        """The lowest calibrated match probability of the readings; None without one (or beyond calibration)."""
        rates = [r.match_rate for r in self.readings]
        return None if not rates or any(r is None for r in rates) else min(rates)


def trust_signals(autoencoder, choices, training_latents: np.ndarray | None = None,
                  training_ids: list[str] | None = None) -> list[TrustSignal]:
    """The `TrustSignal` of each `FrameChoice` (from `Autoencoder.select_frames` or `given_frames`), each read with
    the calibration of its protocol (refined latents, or the encoder's)."""
    if training_latents is not None and len(choices):
        distances, index = nearest_distances(np.stack([c.latent for c in choices]), training_latents)
    else:
        distances, index = np.full(len(choices), np.nan), np.full(len(choices), -1)
    signals = []
    for choice, distance, i in zip(choices, distances, index):
        residual_calibration = autoencoder.trust_calibration("field_residual", refined=choice.refined)
        distance_calibration = autoencoder.trust_calibration("latent_distance", refined=choice.refined)
        distance_shown = distance_calibration is not None and distance_calibration.informative
        residual = choice.score.score
        signals.append(TrustSignal(
            residual, float(distance), training_ids[i] if training_ids is not None and i >= 0 else "",
            residual_calibration.reading(residual) if residual_calibration else None,
            distance_calibration.reading(distance) if distance_shown and not np.isnan(distance) else None,
            distance_calibration is not None and not distance_calibration.informative))
    return signals


def map_trust(autoencoder, crystals, batch_size: int = 2048) -> tuple[np.ndarray, str]:
    """((N,) values, label) for coloring a map of `crystals` (each in its stored setting) by how far to trust its
    reconstruction: the match rate, in %, of its field residual's calibration bin where the model has a calibration
    (NaN beyond the calibrated values), else the bare field residual. Read in batches of `batch_size`, without decoding
    or refinement (the encoder's latent: what the map shows)."""
    residuals = np.concatenate([
        [choice.score.score for choice in autoencoder.given_frames(crystals[start:start + batch_size], check_box=False)]
        for start in range(0, len(crystals), batch_size)] or [np.zeros(0)])
    calibration = autoencoder.trust_calibration("field_residual", refined=False)
    if calibration is None:
        return residuals, f"{SIGNALS['field_residual']} (not calibrated for this model)"
    return 100 * np.array([calibration.rate(r) for r in residuals]), "expected match rate from the field residual (%)"
