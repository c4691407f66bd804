"""Densities over a model's training latents, to sample new latent vectors from.

- "gmm": a Gaussian mixture (scikit-learn), its number of components and covariance type chosen by the mean
  log-likelihood of a held-out tenth of the latents; refitted on all of them.
  Full covariances only: diagonal ones lost by more than 100 nats per latent on LCS6A's held-out latents.
- "kde": a Gaussian kernel density, one kernel on every training latent, each the latents' covariance times a
  bandwidth factor (squared) chosen the same way.
- "gaussian": one full-covariance Gaussian (the baseline the others must beat).

Outlying latents (`nesf.inference.latent_outliers`) are left out of every fit. LCS6A's training latents hold
four: left in, they made the largest covariance direction point at them, the held-out selection chose one component,
samples lay at twice the training latents' norm (29.5 against 13.0), decoded 9 times slower (160 s for 100 samples
against 18 s) and often as element-only O cells.

Local sampling: `near` draws around one latent (a chosen crystal's), `within` around latents picked uniformly
among a region's (a lasso on the map); each draw is a Gaussian whose covariance is that of the mixture component
owning the centre latent (of the single Gaussian, of the KDE's kernel), times `spread` squared. Every draw is
reproducible from its seed.

Stored: `LatentDensity.state()` is what an atlas keeps of a fitted density (the setting chosen, the held-out
selection and, for a mixture, its weights and means in float32 and its covariances' Cholesky factors' lower
triangles in float16: 305 KB for LCS6A's 8 components, where float32 took 602 KB, with draws within 1e-3 of the
fitted mixture's and the test latents' mean log-likelihood within 0.001 of 96.35), and `density_from_state` rebuilds
it over the same latents in 0.2 s where fitting took 12 s (LCS6A, 2 CPU cores): `nesf atlas` fits once and every
generation session reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nesf.core.errors import NesfError
from nesf.inference.latent_outliers import inlier_mask

METHODS = ("gmm", "kde", "gaussian")
HOLDOUT_FRACTION = 0.1
GMM_COMPONENTS = (1, 2, 4, 8, 16, 32)  # tried in order until the held-out likelihood falls
KDE_BANDWIDTHS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
REG_COVAR = 1e-4
DEFAULT_SPREAD = 0.3
MIN_LATENTS = 20  # fewer training latents than this fit no density


@dataclass(frozen=True)
class Selection:
    """One candidate of the held-out selection: its label and held-out mean log-likelihood per latent."""
    label: str
    heldout_log_likelihood: float


@dataclass
class LatentDensity:
    method: str
    label: str                       # the chosen setting, e.g. "gmm: 8 full components"
    latents: np.ndarray              # (N, L) the training latents it was fitted on (outliers left out)
    selection: list[Selection] = field(default_factory=list)
    mixture: object = None           # sklearn GaussianMixture ("gmm", "gaussian"); None for "kde"
    kernel_cholesky: np.ndarray | None = None  # (L, L) "kde": Cholesky factor of one kernel's covariance
    bandwidth: float | None = None   # "kde": the kernel's covariance is the latents' times bandwidth squared
    outliers: int = 0                # latents left out of the fit (`inlier_mask`)

    def sample(self, count: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        """(count, L) latent vectors from the whole density; `temperature` scales every draw's spread about its
        component's mean (its kernel's centre): below 1 the samples keep closer to where the training latents are
        dense, as sampling "at a temperature" in flow and VAE models."""
        if not 0 <= temperature <= 2:
            raise NesfError(f"temperature must be 0 to 2, got {temperature}")
        rng = np.random.default_rng(seed)
        if self.mixture is not None:
            return _sample_mixture(self.mixture, count, rng, temperature)
        centres = self.latents[rng.integers(len(self.latents), size=count)]
        return self._around(centres, rng, temperature)

    def near(self, latent: np.ndarray, count: int, seed: int = 0, spread: float = DEFAULT_SPREAD) -> np.ndarray:
        """(count, L) latents around `latent` (see the module docstring)."""
        latent = self._checked(np.asarray(latent, dtype=np.float64).reshape(1, -1))
        rng = np.random.default_rng(seed)
        return self._around(np.repeat(latent, count, axis=0), rng, spread)

    def within(self, latents: np.ndarray, count: int, seed: int = 0, spread: float = DEFAULT_SPREAD) -> np.ndarray:
        """(count, L) latents around latents picked uniformly among `latents` (a region's crystals)."""
        latents = np.asarray(latents, dtype=np.float64)
        if latents.ndim != 2 or not len(latents):
            raise NesfError("a region to sample in needs at least one crystal")
        self._checked(latents)
        rng = np.random.default_rng(seed)
        return self._around(latents[rng.integers(len(latents), size=count)], rng, spread)

    def log_likelihood(self, latents: np.ndarray) -> float:
        """Mean log-density per latent vector."""
        latents = self._checked(np.asarray(latents, dtype=np.float64))
        if self.mixture is not None:
            return float(self.mixture.score(latents))
        return _kde_log_likelihood(self.latents, latents, self.kernel_cholesky)

    def state(self, seed: int) -> dict:
        """What an atlas stores of this density, fitted with `seed` (torch tensors and plain values: loads with
        `weights_only=True`)."""
        import torch

        stored = {"method": self.method, "label": self.label, "seed": int(seed),
                  "latent_count": len(self.latents) + self.outliers, "outliers": self.outliers,
                  "selection": [[s.label, float(s.heldout_log_likelihood)] for s in self.selection]}
        if self.mixture is not None:
            factors = np.linalg.cholesky(self.mixture.covariances_)
            rows, cols = np.tril_indices(factors.shape[-1])
            stored.update(weights=torch.from_numpy(self.mixture.weights_.astype(np.float32)),
                          means=torch.from_numpy(self.mixture.means_.astype(np.float32)),
                          cholesky_lower=torch.from_numpy(factors[:, rows, cols].astype(np.float16)))
        else:
            stored["bandwidth"] = float(self.bandwidth)
        return stored

    def _around(self, centres: np.ndarray, rng: np.random.Generator, spread: float) -> np.ndarray:
        """One Gaussian draw around each centre with its owner's covariance times spread^2."""
        if spread < 0:
            raise NesfError(f"spread must be >= 0, got {spread}")
        noise = rng.standard_normal(centres.shape)
        if self.mixture is None:
            return (centres + spread * noise @ self.kernel_cholesky.T).astype(np.float32)
        owners = self.mixture.predict(centres) if len(centres) else np.zeros(0, dtype=int)
        out = np.array(centres, dtype=np.float64)
        for k in np.unique(owners):
            rows = owners == k
            factor = np.linalg.cholesky(self.mixture.covariances_[k])
            out[rows] += spread * noise[rows] @ factor.T
        return out.astype(np.float32)

    def _checked(self, latents: np.ndarray) -> np.ndarray:
        if latents.shape[1] != self.latents.shape[1]:
            raise NesfError(f"latent vectors have {latents.shape[1]} entries, the density {self.latents.shape[1]}")
        return latents


def fit_density(latents: np.ndarray, method: str = "gmm", seed: int = 0) -> LatentDensity:
    """A density of `method` over `latents` (N, L), its setting chosen on a held-out tenth (`seed` splits)."""
    if method not in METHODS:
        raise NesfError(f"unknown density {method!r}; use one of {', '.join(METHODS)}")
    latents = np.asarray(latents, dtype=np.float64)
    if latents.ndim != 2 or len(latents) < MIN_LATENTS:
        raise NesfError(f"a latent density needs at least {MIN_LATENTS} training latents, got {len(latents)}")
    keep = inlier_mask(latents)
    outliers = int((~keep).sum())
    latents = latents[keep]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(latents))
    n_held = max(int(len(latents) * HOLDOUT_FRACTION), 2)
    held, fit = latents[order[:n_held]], latents[order[n_held:]]

    if method == "kde":
        bandwidth, selection = _choose_bandwidth(fit, held)
        cholesky = bandwidth * _covariance_cholesky(latents)
        return LatentDensity("kde", f"kde: bandwidth {bandwidth:g} x the latents' covariance"
                             + _outliers_note(outliers), latents, selection, kernel_cholesky=cholesky,
                             bandwidth=bandwidth, outliers=outliers)
    selection, best, falls = [], None, 0
    for components in (1,) if method == "gaussian" else GMM_COMPONENTS:
        if components * 10 > len(fit):
            break
        score = float(_mixture(components, seed).fit(fit).score(held))
        falls = falls + 1 if selection and score < selection[-1].heldout_log_likelihood else 0
        selection.append(Selection(_components_label(components), score))
        if best is None or score > best[0]:
            best = (score, components)
        if falls >= 1:
            break
    components = best[1]
    mixture = _mixture(components, seed).fit(latents)
    return LatentDensity(method, f"{method}: {_components_label(components)}" + _outliers_note(outliers), latents,
                         selection, mixture, outliers=outliers)


def _outliers_note(outliers: int) -> str:
    return f" ({outliers} outlying latent{'s' if outliers != 1 else ''} left out)" if outliers else ""


def density_from_state(latents: np.ndarray, state: dict) -> LatentDensity:
    """The density `LatentDensity.state()` stored, over the same `latents` (N, L) it was fitted on (refused when
    their count differs: then it was fitted on other latents)."""
    latents = np.asarray(latents, dtype=np.float64)
    method = str(state.get("method"))
    if method not in METHODS:
        raise NesfError(f"a stored latent density of unknown method {method!r}")
    if int(state.get("latent_count", -1)) != len(latents):
        raise NesfError(f"a stored {method} density was fitted on {state.get('latent_count')} latents, not these "
                        f"{len(latents)}")
    keep = inlier_mask(latents)
    outliers = int((~keep).sum())
    if outliers != int(state.get("outliers", 0)):
        raise NesfError(f"a stored {method} density left out {state.get('outliers', 0)} outlying latents, these have "
                        f"{outliers}")
    latents = latents[keep]
    selection = [Selection(str(label), float(value)) for label, value in state.get("selection", [])]
    if method == "kde":
        bandwidth = float(state["bandwidth"])
        return LatentDensity("kde", str(state["label"]), latents, selection, bandwidth=bandwidth, outliers=outliers,
                             kernel_cholesky=bandwidth * _covariance_cholesky(latents))
    from scipy.linalg import solve_triangular

    weights = state["weights"].double().numpy()
    means = state["means"].double().numpy()
    dims = means.shape[1]
    rows, cols = np.tril_indices(dims)
    factors = np.zeros((len(weights), dims, dims))
    factors[:, rows, cols] = state["cholesky_lower"].double().numpy()
    mixture = _mixture(len(weights), int(state.get("seed", 0)))
    mixture.weights_, mixture.means_ = weights / weights.sum(), means
    mixture.covariances_ = factors @ factors.transpose(0, 2, 1)
    # sklearn's own form: the precision's Cholesky factor is the transposed inverse of the covariance's
    mixture.precisions_cholesky_ = np.stack([solve_triangular(factor, np.eye(dims), lower=True).T
                                             for factor in factors])
    mixture.precisions_ = mixture.precisions_cholesky_ @ mixture.precisions_cholesky_.transpose(0, 2, 1)
    mixture.converged_, mixture.n_iter_, mixture.n_features_in_ = True, 0, dims
    return LatentDensity(method, str(state["label"]), latents, selection, mixture, outliers=outliers)


def _components_label(components: int) -> str:
    return f"{components} full-covariance component{'s' if components > 1 else ''}"


def _mixture(components: int, seed: int):
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(n_components=components, covariance_type="full", reg_covar=REG_COVAR,
                           max_iter=200, n_init=1, random_state=seed)


def _covariance_cholesky(latents: np.ndarray) -> np.ndarray:
    covariance = np.cov(latents, rowvar=False) + REG_COVAR * np.eye(latents.shape[1])
    return np.linalg.cholesky(covariance)


def _sample_mixture(mixture, count: int, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
    """Samples of a fitted GaussianMixture drawn with our generator (sklearn's sample() uses its own state)."""
    counts = rng.multinomial(count, mixture.weights_)
    out = []
    for k, n in enumerate(counts):
        if not n:
            continue
        mean = mixture.means_[k]
        factor = np.linalg.cholesky(mixture.covariances_[k])
        out.append(mean + temperature * rng.standard_normal((n, len(mean))) @ factor.T)
    samples = np.concatenate(out)
    return samples[rng.permutation(len(samples))].astype(np.float32)


def _kde_log_likelihood(centres: np.ndarray, points: np.ndarray, cholesky: np.ndarray) -> float:
    """Mean log-density of `points` under equal Gaussian kernels (covariance cholesky @ cholesky.T) on `centres`."""
    from scipy.linalg import solve_triangular
    from scipy.special import logsumexp

    dims = centres.shape[1]
    white_centres = solve_triangular(cholesky, centres.T, lower=True).T
    white_points = solve_triangular(cholesky, points.T, lower=True).T
    log_norm = -0.5 * dims * np.log(2 * np.pi) - np.log(np.diag(cholesky)).sum() - np.log(len(centres))
    centre_norms = (white_centres ** 2).sum(1)
    total = 0.0
    for start in range(0, len(white_points), 1024):
        chunk = white_points[start:start + 1024]
        squared = (chunk ** 2).sum(1)[:, None] + centre_norms[None, :] - 2.0 * chunk @ white_centres.T
        total += float(logsumexp(-0.5 * np.maximum(squared, 0.0), axis=1).sum())
    return total / len(points) + float(log_norm)


def _choose_bandwidth(fit: np.ndarray, held: np.ndarray) -> tuple[float, list[Selection]]:
    cholesky = _covariance_cholesky(fit)
    selection = [Selection(f"kde: bandwidth {h:g}", _kde_log_likelihood(fit, held, h * cholesky))
                 for h in KDE_BANDWIDTHS]
    best = max(range(len(selection)), key=lambda i: selection[i].heldout_log_likelihood)
    return KDE_BANDWIDTHS[best], selection
