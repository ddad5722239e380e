"""Imputation under probabilistic PCA: the exact conditional p(x_mis | x_obs).

For ``x ~ N(mu, C)``, ``C = W W^T + sigma2 I``, the conditional of the missing block ``m``
given the observed block ``o`` of a row is Gaussian with

* mean ``mu_m + C_mo C_oo^-1 (x_o - mu_o) = W_m zbar + mu_m``, where
  ``zbar = M_o^-1 W_o^T (x_o - mu_o)`` is the posterior mean of ``z`` given ``x_o`` and
  ``M_o = W_o^T W_o + sigma2 I`` (push-through: ``W_o^T C_oo^-1 = M_o^-1 W_o^T``);
* covariance ``C_mm - C_mo C_oo^-1 C_om = W_m Sigma_o W_m^T + sigma2 I``, with
  ``Sigma_o = sigma2 M_o^-1`` the posterior covariance of ``z`` (``C_mo = W_m W_o^T``
  has no noise term because ``m`` and ``o`` are disjoint).

So ``x_m = W_m z + mu_m + sigma eps`` with ``z ~ p(z | x_o)``, ``eps ~ N(0, I)`` is an exact
draw from ``p(x_mis | x_obs)`` (Tipping & Bishop 1999, sec. 3; Ilin & Raiko 2010, sec. 3):
only ``q x q`` work per row, never a ``d x d`` solve.
"""
from __future__ import annotations

import numpy as np

from .ppca_likelihood import posterior_and_log_likelihood

__all__ = ["conditional_mean", "conditional_samples"]


def conditional_mean(X, W, mu, s2):
    """``X`` with every NaN replaced by ``E[x_mis | x_obs]`` (observed entries untouched).

    A row with nothing observed gets the marginal mean ``mu``.
    """
    missing = np.isnan(X)
    out = np.array(X, dtype=np.float64, copy=True)
    rows = np.flatnonzero(missing.any(axis=1))
    if rows.size:
        Z, _, _ = posterior_and_log_likelihood(X[rows], W, mu, s2)
        fill = Z @ W.T + mu  # (r, d): W zbar + mu, used only where missing
        m = missing[rows]
        out[rows] = np.where(m, fill, X[rows])
    return out


def conditional_samples(X, W, mu, s2, n_draws, rng):
    """``n_draws`` exact draws of the missing entries: array (n_draws, n, d).

    Each draw is ``X`` with its NaN replaced by ``W_m z + mu_m + sigma eps``,
    ``z ~ N(zbar, Sigma_o)`` (per-row posterior), ``eps ~ N(0, I)``.
    """
    missing = np.isnan(X)
    out = np.broadcast_to(np.asarray(X, dtype=np.float64), (n_draws,) + X.shape).copy()
    rows = np.flatnonzero(missing.any(axis=1))
    if not rows.size:
        return out
    Z, covs, _ = posterior_and_log_likelihood(X[rows], W, mu, s2)  # (r, q), (r, q, q)
    L = np.linalg.cholesky(covs)  # (r, q, q)
    r, q = Z.shape
    eps_z = rng.standard_normal((n_draws, r, q))
    z = Z + np.einsum("rab,srb->sra", L, eps_z)  # (s, r, q)
    x = z @ W.T + mu + np.sqrt(s2) * rng.standard_normal((n_draws, r, W.shape[0]))
    m = missing[rows]
    out[:, rows] = np.where(m, x, X[rows])
    return out
