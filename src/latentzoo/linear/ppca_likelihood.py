"""PPCA's Gaussian algebra: the log-likelihood and the posterior (Tipping & Bishop 1999).

The model is ``x = W z + mu + eps``, ``z ~ N(0, I_q)``, ``eps ~ N(0, sigma2 I_d)``, so
``x ~ N(mu, C)``, ``C = W W^T + sigma2 I``. Everything here needs only ``q x q`` solves:

* Woodbury: ``C^-1 = (I - W M^-1 W^T) / sigma2`` with ``M = W^T W + sigma2 I``;
* determinant lemma: ``log|C| = (d - q) log sigma2 + log|M|``;
* log-likelihood: ``log N(x; mu, C) = -1/2 (d log 2pi + log|C| + (x-mu)^T C^-1 (x-mu))``
  (T&B eq. 4; :func:`mean_log_likelihood` is its mean from the 1/N scatter ``S``);
* posterior: ``p(z | x) = N(M^-1 W^T (x - mu), sigma2 M^-1)`` (T&B eq. 6).

A row with missing entries (NaN) uses its observed coordinates ``o`` only: the marginal
``x_o ~ N(mu_o, W_o W_o^T + sigma2 I)`` is again PPCA with ``W_o`` (the rows of ``W``
at ``o``), so the same formulas hold with ``W_o, mu_o, d_o`` (also when ``d_o < q``).
Those rows get their own ``M_n = W_o^T W_o + sigma2 I``, computed in vectorised chunks.
The EM fits that use these formulas are in :mod:`latentzoo.linear._em`.
"""
from __future__ import annotations

import numpy as np
from scipy import linalg

__all__ = ["complete_posterior", "masked_posterior", "posterior_and_log_likelihood", "mean_log_likelihood"]

_LOG_2PI = np.log(2.0 * np.pi)
#: at most this many floats in a per-row (chunk, d, q) temporary
_CHUNK_FLOATS = 1 << 22


def complete_posterior(X, W, mu, s2):
    """Posterior means (n, q), the shared covariance (q, q) and log N(x; mu, C) (n,)."""
    d, q = W.shape
    M = W.T @ W + s2 * np.eye(q)
    cf = linalg.cho_factor(M, lower=True)
    Xc = X - mu
    B = Xc @ W  # (n, q): W^T (x - mu)
    Z = linalg.cho_solve(cf, B.T).T  # (n, q): M^-1 W^T (x - mu)
    logdet = (d - q) * np.log(s2) + 2.0 * np.log(np.diag(cf[0])).sum()
    # Woodbury: (x-mu)^T C^-1 (x-mu) = (||x-mu||^2 - b^T M^-1 b) / sigma2
    quad = (np.einsum("ij,ij->i", Xc, Xc) - np.einsum("ij,ij->i", B, Z)) / s2
    loglik = -0.5 * (d * _LOG_2PI + logdet + quad)
    cov = s2 * linalg.cho_solve(cf, np.eye(q))
    return Z, cov, loglik


def masked_posterior(X, mask, W, mu, s2):
    """Per-row posterior of rows with missing entries, from their observed coordinates.

    Parameters
    ----------
    X : (n, d) with NaN where ``mask`` is False
    mask : (n, d) bool, True where observed

    Returns
    -------
    Z : (n, q) posterior means ``M_n^-1 W_o^T (x_o - mu_o)``
    covs : (n, q, q) posterior covariances ``sigma2 M_n^-1``
    loglik : (n,) ``log N(x_o; mu_o, W_o W_o^T + sigma2 I)`` (0 for a row with nothing observed)
    """
    n, d = X.shape
    q = W.shape[1]
    Z = np.empty((n, q))
    covs = np.empty((n, q, q))
    loglik = np.empty(n)
    eye = np.eye(q)
    step = max(1, _CHUNK_FLOATS // max(d * q, 1))
    for s in range(0, n, step):
        m = mask[s:s + step]
        Xc = np.where(m, X[s:s + step] - mu, 0.0)  # (c, d), 0 where missing
        Mn = np.matmul((W[None] * m[:, :, None]).transpose(0, 2, 1), W) + s2 * eye  # (c, q, q)
        L = np.linalg.cholesky(Mn)
        Minv = np.linalg.inv(Mn)
        B = Xc @ W  # (c, q): W_o^T (x_o - mu_o)
        Zc = np.einsum("nab,nb->na", Minv, B)
        d_o = m.sum(axis=1)
        logdet = (d_o - q) * np.log(s2) + 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
        quad = (np.einsum("ij,ij->i", Xc, Xc) - np.einsum("ij,ij->i", B, Zc)) / s2
        Z[s:s + step] = Zc
        covs[s:s + step] = s2 * Minv
        loglik[s:s + step] = np.where(d_o > 0, -0.5 * (d_o * _LOG_2PI + logdet + quad), 0.0)
    return Z, covs, loglik


def posterior_and_log_likelihood(X, W, mu, s2):
    """Posterior of every row of ``X`` (NaN = missing): means (n, q), covs (n, q, q) or
    one shared (q, q) when no row has NaN, and log-likelihoods (n,)."""
    mask = ~np.isnan(X)
    partial = ~mask.all(axis=1)
    if not partial.any():
        return complete_posterior(X, W, mu, s2)
    Z = np.empty((X.shape[0], W.shape[1]))
    loglik = np.empty(X.shape[0])
    full = ~partial
    Zf, cov, llf = complete_posterior(X[full], W, mu, s2)
    Zp, covp, llp = masked_posterior(X[partial], mask[partial], W, mu, s2)
    covs = np.broadcast_to(cov, (X.shape[0],) + cov.shape).copy()
    Z[full], loglik[full] = Zf, llf
    Z[partial], covs[partial], loglik[partial] = Zp, covp, llp
    return Z, covs, loglik


def mean_log_likelihood(S, W, s2):
    """Mean log-likelihood ``-1/2 (d log 2pi + log|C| + tr(C^-1 S))`` (T&B eq. 4), S = 1/N scatter.

    Also returns ``M``, its Cholesky factor and ``S W``, which the EM step reuses.
    """
    d, q = W.shape
    M = W.T @ W + s2 * np.eye(q)
    cf = linalg.cho_factor(M, lower=True)
    logdet = (d - q) * np.log(s2) + 2.0 * np.log(np.diag(cf[0])).sum()
    SW = S @ W
    tr = (np.trace(S) - np.trace(linalg.cho_solve(cf, W.T @ SW))) / s2
    return -0.5 * (d * _LOG_2PI + logdet + tr), M, cf, SW
