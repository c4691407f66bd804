"""How far to trust one reconstruction, before and without comparing it to anything.

Two signals, both read without decoding:
- the field residual (`nesf.model.frame_select.FrameScore.score`): how well the model's own fields, at the encoded
  crystal's latent, point at that crystal's atoms and name their elements;
- the latent distance to the nearest training crystal (Euclidean, in the model's latent units).

Each is calibrated on a test split written as uploads (`nesf.inference.reupload`): the crystals are binned by the signal
(quantile bins) and each bin's StructureMatcher match rate is kept (`TrustCalibration`, stored in the checkpoint's
metrics). A new reconstruction's reading is its bin's rate: "test uploads with a residual this low matched 9 times
in 10".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SIGNALS = {"field_residual": "field residual", "latent_distance": "latent distance to the nearest training crystal"}
CALIBRATION_BINS = 5


@dataclass(frozen=True)
class TrustCalibration:
    signal: str              # a key of SIGNALS
    upper_edges: tuple       # (bins,) ascending: bin i holds values <= upper_edges[i] (the last bin: everything above)
    match_rates: tuple       # (bins,) share of the calibration crystals in each bin that matched, in [0, 1]
    counts: tuple            # (bins,) calibration crystals per bin
    source: str              # what it was calibrated on, e.g. "lim_l6 test, re-uploaded (seed 0), 301 crystals"

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "TrustCalibration":
        return cls(str(data["signal"]), tuple(float(x) for x in data["upper_edges"]),
                   tuple(float(x) for x in data["match_rates"]), tuple(int(x) for x in data["counts"]),
                   str(data.get("source", "")))

    def bin_of(self, value: float) -> int:
        return int(min(np.searchsorted(np.asarray(self.upper_edges), value, side="left"), len(self.upper_edges) - 1))

    def reading(self, value: float) -> "TrustReading":
        i = self.bin_of(value)
        low = self.upper_edges[i - 1] if i > 0 else None
        high = self.upper_edges[i] if i < len(self.upper_edges) - 1 else None
        return TrustReading(self.signal, float(value), self.match_rates[i], self.counts[i], low, high, self.source)


@dataclass(frozen=True)
class TrustReading:
    signal: str
    value: float
    match_rate: float          # in [0, 1], of the calibration crystals in this value's bin
    count: int                 # calibration crystals in the bin
    bin_low: float | None      # the bin's bounds (None: open)
    bin_high: float | None
    source: str

    @property
    def level(self) -> str:
        """"high", "medium" or "low": match rate >= 0.85, >= 0.6, or below."""
        return "high" if self.match_rate >= 0.85 else "medium" if self.match_rate >= 0.6 else "low"

    def sentence(self) -> str:
        if self.bin_low is None:
            where = f"at most {self.bin_high:.3g}"
        elif self.bin_high is None:
            where = f"above {self.bin_low:.3g}"
        else:
            where = f"between {self.bin_low:.3g} and {self.bin_high:.3g}"
        return (f"{SIGNALS.get(self.signal, self.signal)} {self.value:.3g}: test uploads with a value {where} "
                f"matched {10 * self.match_rate:.1f} times in 10 ({self.count} crystals)")


def calibrate(signal: str, values, matched, source: str, bins: int = CALIBRATION_BINS) -> TrustCalibration:
    """Quantile bins of `values` (one per calibration crystal) with the match rate of `matched` in each."""
    values = np.asarray(values, dtype=np.float64)
    matched = np.asarray(matched, dtype=bool)
    if values.shape != matched.shape or values.size == 0:
        raise ValueError(f"need one match flag per value and at least one value ({values.size} vs {matched.size})")
    if signal not in SIGNALS:
        raise ValueError(f"unknown trust signal {signal!r}; use one of {list(SIGNALS)}")
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:]))
    which = np.minimum(np.searchsorted(edges, values, side="left"), len(edges) - 1)
    counts = np.bincount(which, minlength=len(edges))
    hits = np.bincount(which, weights=matched.astype(np.float64), minlength=len(edges))
    keep = counts > 0
    return TrustCalibration(signal, tuple(float(x) for x in edges[keep]),
                            tuple(float(x) for x in hits[keep] / counts[keep]),
                            tuple(int(x) for x in counts[keep]), source)


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

    field_residual: float                 # FrameScore.score of the setting encoded
    latent_distance: float                # to the nearest training crystal (NaN without training latents)
    nearest_training_id: str             # that crystal's id ("" without)
    residual_reading: TrustReading | None
    distance_reading: TrustReading | None

    def sentences(self) -> list[str]:
        """One line per signal: the calibrated reading, or the bare value where the checkpoint has no calibration."""
        lines = []
        for signal, value, reading in (("field_residual", self.field_residual, self.residual_reading),
                                       ("latent_distance", self.latent_distance, self.distance_reading)):
            if np.isnan(value):
                continue
            text = reading.sentence() if reading else f"{SIGNALS[signal]} {value:.3g} (not calibrated for this model)"
            if signal == "latent_distance" and self.nearest_training_id:
                text += f"; nearest training crystal {self.nearest_training_id}"
            lines.append(text)
        return lines

    @property
    def level(self) -> str:
        """The lower of the two readings' levels ("high", "medium", "low"), or "unknown" without calibration."""
        levels = [r.level for r in (self.residual_reading, self.distance_reading) if r is not None]
        order = ["low", "medium", "high"]
        return min(levels, key=order.index) if levels else "unknown"


def trust_signals(autoencoder, choices, training_latents: np.ndarray | None = None,
                  training_ids: list[str] | None = None) -> list[TrustSignal]:
    """The `TrustSignal` of each `FrameChoice` (from `Autoencoder.select_frames` or `given_frames`)."""
    residual_calibration = autoencoder.trust_calibration("field_residual")
    distance_calibration = autoencoder.trust_calibration("latent_distance")
    if training_latents is not None and len(choices):
        distances, index = nearest_distances(np.stack([c.latent for c in choices]), training_latents)
    else:
        distances, index = np.full(len(choices), np.nan), np.full(len(choices), -1)
    signals = []
    for choice, distance, i in zip(choices, distances, index):
        residual = choice.score.score
        signals.append(TrustSignal(
            residual, float(distance), training_ids[i] if training_ids is not None and i >= 0 else "",
            residual_calibration.reading(residual) if residual_calibration else None,
            distance_calibration.reading(distance) if distance_calibration and not np.isnan(distance) else None))
    return signals


def map_trust(autoencoder, crystals, batch_size: int = 2048) -> tuple[np.ndarray, str]:
    """((N,) values, label) for coloring a map of `crystals` (each in its stored setting) by how far to trust its
    reconstruction: the match rate, in %, of its field residual's calibration bin where the model has a calibration,
    else the bare field residual. Read in batches of `batch_size`, without decoding."""
    residuals = np.concatenate([
        [choice.score.score for choice in autoencoder.given_frames(crystals[start:start + batch_size], check_box=False)]
        for start in range(0, len(crystals), batch_size)] or [np.zeros(0)])
    calibration = autoencoder.trust_calibration("field_residual")
    if calibration is None:
        return residuals, f"{SIGNALS['field_residual']} (not calibrated for this model)"
    rates = np.asarray(calibration.match_rates, dtype=float)[
        np.minimum(np.searchsorted(np.asarray(calibration.upper_edges), residuals, side="left"),
                   len(calibration.upper_edges) - 1)]
    return 100 * rates, "expected match rate from the field residual (%)"

