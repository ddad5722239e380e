"""Embedded datasets: scikit-learn's digits and seeded 2-D sets whose density is known.

The 2-D sets come with their density object, so that score fields learned by
denoising autoencoders can be checked against the truth. For Gaussian noise
``x~ = x + sigma * eps`` the optimal denoiser satisfies Tweedie's formula
``E[x | x~] = x~ + sigma^2 * grad log p_sigma(x~)`` (Robbins 1956; Efron 2011;
Alain & Bengio 2014, "What regularized auto-encoders learn from the data-generating
distribution"), where ``p_sigma = p * N(0, sigma^2 I)``: each density's
``smoothed(sigma)`` returns exactly that ``p_sigma``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import logsumexp

__all__ = [
    "GaussianMixture2D", "CurveMixture2D", "gaussian_mixture_density", "moons_density",
    "swiss_roll_density", "DENSITIES", "EMBEDDED",
]


def _as_points(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"expected points of shape (n, 2), got {x.shape}.")
    return x


@dataclass(frozen=True)
class GaussianMixture2D:
    """Mixture of isotropic 2-D Gaussians ``p(x) = sum_k w_k N(x; mu_k, s_k^2 I)``.

    Parameters
    ----------
    weights : array of shape (K,), summing to one
    means : array of shape (K, 2)
    stds : array of shape (K,), the per-component standard deviation ``s_k``
    """

    weights: np.ndarray
    means: np.ndarray
    stds: np.ndarray

    def _log_terms(self, x: np.ndarray) -> np.ndarray:
        # log w_k + log N(x; mu_k, s_k^2 I), shape (n, K)
        var = self.stds ** 2
        d2 = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        return np.log(self.weights) - np.log(2 * np.pi * var) - d2 / (2 * var)

    def log_prob(self, x) -> np.ndarray:
        """``log p(x)`` for points of shape (n, 2); returns (n,)."""
        return logsumexp(self._log_terms(_as_points(x)), axis=1)

    def score(self, x) -> np.ndarray:
        """``grad_x log p(x) = sum_k r_k(x) (mu_k - x) / s_k^2``, r the responsibilities; (n, 2)."""
        x = _as_points(x)
        t = self._log_terms(x)
        r = np.exp(t - logsumexp(t, axis=1, keepdims=True))  # (n, K)
        return ((r / self.stds ** 2)[:, :, None] * (self.means[None] - x[:, None, :])).sum(1)

    def sample(self, n: int, rng=None, *, return_labels: bool = False):
        """``n`` samples (and, if asked, their component labels)."""
        rng = np.random.default_rng(rng)
        k = rng.choice(len(self.weights), size=n, p=self.weights)
        x = self.means[k] + self.stds[k, None] * rng.standard_normal((n, 2))
        return (x, k) if return_labels else x

    def smoothed(self, sigma: float) -> "GaussianMixture2D":
        """``p * N(0, sigma^2 I)``: the same mixture with variances ``s_k^2 + sigma^2``."""
        return GaussianMixture2D(self.weights, self.means, np.sqrt(self.stds ** 2 + sigma ** 2))


def gaussian_mixture_density() -> GaussianMixture2D:
    """The fixed mixture of the ``"gaussian-mixture"`` dataset: 6 components on a circle of radius 2."""
    angles = np.arange(6) * (2 * np.pi / 6)
    means = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    weights = np.array([0.25, 0.2, 0.15, 0.15, 0.15, 0.1])
    stds = np.array([0.2, 0.3, 0.25, 0.2, 0.35, 0.3])
    return GaussianMixture2D(weights, means, stds)


@dataclass(frozen=True)
class CurveMixture2D:
    """Points on curves plus Gaussian noise: ``p(x) = sum_c w_c E_{t~U[a_c,b_c]} N(x; f_c(t), s^2 I)``.

    ``log_prob`` and ``score`` integrate over ``t`` by the midpoint rule with ``n_quad``
    nodes per curve (exact up to quadrature error, far below the noise scale); ``score``
    is the exact gradient of that quadrature, ``sum_j r_j(x) (f(t_j) - x) / s^2``.
    """

    curves: tuple[Callable[[np.ndarray], np.ndarray], ...]
    ranges: tuple[tuple[float, float], ...]
    weights: tuple[float, ...]
    noise: float
    n_quad: int = 2000

    def _nodes(self):
        pts, logw = [], []
        for f, (a, b), w in zip(self.curves, self.ranges, self.weights):
            t = a + (b - a) * (np.arange(self.n_quad) + 0.5) / self.n_quad
            pts.append(f(t))
            logw.append(np.full(self.n_quad, np.log(w / self.n_quad)))
        return np.concatenate(pts), np.concatenate(logw)

    def _log_terms(self, x, nodes, logw):
        s2 = self.noise ** 2
        d2 = ((x[:, None, :] - nodes[None]) ** 2).sum(-1)
        return logw - np.log(2 * np.pi * s2) - d2 / (2 * s2)

    def log_prob(self, x) -> np.ndarray:
        x = _as_points(x)
        nodes, logw = self._nodes()
        return np.concatenate([logsumexp(self._log_terms(c, nodes, logw), axis=1)
                               for c in np.array_split(x, max(1, len(x) // 256))]) if len(x) else np.empty(0)

    def score(self, x) -> np.ndarray:
        x = _as_points(x)
        nodes, logw = self._nodes()
        out = []
        for c in np.array_split(x, max(1, len(x) // 256)):
            t = self._log_terms(c, nodes, logw)
            r = np.exp(t - logsumexp(t, axis=1, keepdims=True))
            out.append((r @ nodes - c) / self.noise ** 2)
        return np.concatenate(out) if out else np.empty((0, 2))

    def sample(self, n: int, rng=None, *, return_labels: bool = False):
        rng = np.random.default_rng(rng)
        k = rng.choice(len(self.curves), size=n, p=np.asarray(self.weights))
        x = np.empty((n, 2))
        for i, (f, (a, b)) in enumerate(zip(self.curves, self.ranges)):
            m = k == i
            x[m] = f(rng.uniform(a, b, size=int(m.sum())))
        x += self.noise * rng.standard_normal((n, 2))
        return (x, k) if return_labels else x

    def smoothed(self, sigma: float) -> "CurveMixture2D":
        """``p * N(0, sigma^2 I)``: the same curves with noise ``sqrt(s^2 + sigma^2)``."""
        return CurveMixture2D(self.curves, self.ranges, self.weights,
                              float(np.hypot(self.noise, sigma)), self.n_quad)


def _upper_moon(t):
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _lower_moon(t):
    return np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)


def moons_density(noise: float = 0.1) -> CurveMixture2D:
    """Two interleaving half circles (as scikit-learn's ``make_moons``), t uniform, equal weights."""
    return CurveMixture2D((_upper_moon, _lower_moon), ((0.0, np.pi), (0.0, np.pi)), (0.5, 0.5), noise)


def _swiss_roll(t):
    return 0.2 * np.stack([t * np.cos(t), t * np.sin(t)], axis=1)


def swiss_roll_density(noise: float = 0.1) -> CurveMixture2D:
    """2-D Swiss roll ``0.2 t (cos t, sin t)``, t ~ U[1.5 pi, 4.5 pi] (as ``make_swiss_roll``)."""
    return CurveMixture2D((_swiss_roll,), ((1.5 * np.pi, 4.5 * np.pi),), (1.0,), noise, n_quad=4000)


#: dataset name -> density factory
DENSITIES: dict[str, Callable] = {
    "gaussian-mixture": gaussian_mixture_density,
    "moons": moons_density,
    "swiss-roll": swiss_roll_density,
}


# ---------------------------------------------------------------------- embedded loaders
def _digits(*, n_samples=None, random_state=0):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    if n_samples is not None:
        X, y = X[:n_samples], y[:n_samples]
    return X / 16.0, y, {"name": "digits", "source": "embedded:digits", "image_shape": (8, 8)}


def _synthetic(name: str, labelled: bool):
    def load(*, n_samples=None, random_state=0, **density_kw):
        density = DENSITIES[name](**density_kw)
        n = 1000 if n_samples is None else n_samples
        X, k = density.sample(n, np.random.default_rng(random_state), return_labels=True)
        return X, (k if labelled else None), {"name": name, "source": f"embedded:{name}",
                                              "random_state": random_state, **density_kw}

    load.__name__ = f"_load_{name.replace('-', '_')}"
    return load


def _load_gaussian_mixture(*, n_samples=None, random_state=0):
    return _synthetic("gaussian-mixture", True)(n_samples=n_samples, random_state=random_state)


def _load_moons(*, n_samples=None, random_state=0, noise=0.1):
    return _synthetic("moons", True)(n_samples=n_samples, random_state=random_state, noise=noise)


def _load_swiss_roll(*, n_samples=None, random_state=0, noise=0.1):
    return _synthetic("swiss-roll", False)(n_samples=n_samples, random_state=random_state, noise=noise)


#: embedded dataset name -> loader(n_samples=, random_state=, **options) -> (X, y, meta)
EMBEDDED: dict[str, Callable] = {
    "digits": _digits,
    "gaussian-mixture": _load_gaussian_mixture,
    "moons": _load_moons,
    "swiss-roll": _load_swiss_roll,
}
