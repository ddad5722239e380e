"""PPCA's own choice of the latent dimension: Minka's (2000) Laplace approximation of the evidence.

For data with covariance eigenvalues ``l_1 >= ... >= l_d`` (``N`` samples), the evidence
of a PPCA model with ``k`` latent dimensions, integrated over the principal subspace,
the retained variances and the noise variance, is approximated (Minka 2000, Eq. 30) by

    log p(D | k) ~ log p(U) - N/2 sum_{i<=k} log l_i - N (d - k)/2 log v
                   + (m + k)/2 log(2 pi) - 1/2 log |A_Z| - k/2 log N

with ``v = sum_{j>k} l_j / (d - k)`` the noise variance, ``m = d k - k (k + 1)/2`` the
dimension of the Stiefel manifold, ``log p(U) = -k log 2 + sum_{i<=k} [log Gamma((d-i+1)/2)
- (d-i+1)/2 log pi]`` the uniform prior on it and
``|A_Z| = prod_{i<=k} prod_{j>i} N (l_i - l_j)(1/l~_j - 1/l~_i)`` where ``l~_j = v`` for
``j > k``. The chosen ``k`` maximises it; scikit-learn's ``PCA(n_components="mle")``
computes the same criterion and is the test's oracle.

References
----------
Minka, T. P. (2000). Automatic choice of dimensionality for PCA. NIPS 13.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln

__all__ = ["log_evidence", "evidence_curve", "choose_latent_dim", "covariance_spectrum"]

_EPS = 1e-15


def covariance_spectrum(X) -> np.ndarray:
    """Eigenvalues (descending) of the sample covariance of ``X`` (``N - 1`` denominator)."""
    if X.shape[1] <= X.shape[0]:  # the centred scatter summed over row blocks (a memory map is never read whole)
        from ..data.blocks import row_blocks

        mu = sum(b.sum(axis=0) for _, b in row_blocks(X, dtype=np.float64)) / X.shape[0]
        S = sum((b - mu).T @ (b - mu) for _, b in row_blocks(X, dtype=np.float64))
        lam = np.linalg.eigvalsh(S)[::-1]
    else:  # fewer samples than features: the nonzero eigenvalues from the Gram matrix
        X = np.asarray(X, dtype=np.float64)
        Xc = X - X.mean(axis=0)
        lam = np.concatenate([np.linalg.eigvalsh(Xc @ Xc.T)[::-1], np.zeros(X.shape[1] - X.shape[0])])
    return np.clip(lam, 0.0, None) / max(1, X.shape[0] - 1)


def log_evidence(spectrum, k: int, n_samples: int) -> float:
    """Minka's Laplace approximation of ``log p(D | k)`` (see the module docstring)."""
    lam = np.asarray(spectrum, dtype=np.float64)
    d = lam.shape[0]
    if not 1 <= k < d:
        raise ValueError(f"k must be in [1, {d - 1}], got {k}")
    if lam[k - 1] < _EPS:
        return -np.inf
    N = float(n_samples)
    i = np.arange(1, k + 1)
    log_pu = -k * np.log(2.0) + np.sum(gammaln((d - i + 1) / 2.0) - (d - i + 1) / 2.0 * np.log(np.pi))
    log_pl = -N / 2.0 * np.sum(np.log(lam[:k]))
    v = max(_EPS, lam[k:].sum() / (d - k))
    log_pv = -N * (d - k) / 2.0 * np.log(v)
    m = d * k - k * (k + 1) / 2.0
    log_pp = (m + k) / 2.0 * np.log(2.0 * np.pi)
    lam_t = lam.copy()
    lam_t[k:] = v
    li, lj = lam[:k, None], lam[None, :]
    inv = 1.0 / lam_t[None, :] - 1.0 / lam_t[:k, None]
    upper = np.arange(d)[None, :] > np.arange(k)[:, None]  # the pairs j > i
    with np.errstate(divide="ignore", invalid="ignore"):
        log_az = np.sum(np.where(upper, np.log((li - lj) * inv) + np.log(N), 0.0))
    return float(log_pu + log_pl + log_pv + log_pp - log_az / 2.0 - k * np.log(N) / 2.0)


def evidence_curve(spectrum, n_samples: int) -> np.ndarray:
    """``log p(D | k)`` for ``k = 1 .. d-1`` (index ``k - 1``)."""
    d = len(spectrum)
    return np.array([log_evidence(spectrum, k, n_samples) for k in range(1, d)])


def choose_latent_dim(X) -> int:
    """The ``k`` that maximises Minka's evidence for the data ``X`` (n, d)."""
    X = X if isinstance(X, np.memmap) else np.asarray(X)
    if X.ndim != 2 or X.shape[1] < 2 or X.shape[0] < 2:
        raise ValueError(f"the evidence needs at least 2 samples and 2 features, got shape {X.shape}")
    curve = evidence_curve(covariance_spectrum(X), X.shape[0])
    return int(np.argmax(curve)) + 1
