"""Gaussian algebra and EM of probabilistic PCA (Tipping & Bishop 1999), with missing values.

The model is ``x = W z + mu + eps``, ``z ~ N(0, I_q)``, ``eps ~ N(0, sigma2 I_d)``, so
``x ~ N(mu, C)``, ``C = W W^T + sigma2 I``. Everything here needs only ``q x q`` solves:

* Woodbury: ``C^-1 = (I - W M^-1 W^T) / sigma2`` with ``M = W^T W + sigma2 I``;
* determinant lemma: ``log|C| = (d - q) log sigma2 + log|M|``;
* posterior: ``p(z | x) = N(M^-1 W^T (x - mu), sigma2 M^-1)`` (T&B eq. 6).

A row with missing entries (NaN) uses its observed coordinates ``o`` only: the marginal
``x_o ~ N(mu_o, W_o W_o^T + sigma2 I)`` is again PPCA with ``W_o`` (the rows of ``W``
at ``o``), so the same formulas hold with ``W_o, mu_o, d_o`` (also when ``d_o < q``).
Those rows get their own ``M_n = W_o^T W_o + sigma2 I``, computed in vectorised chunks.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy import linalg
from sklearn.exceptions import ConvergenceWarning

logger = logging.getLogger(__name__)

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


def posterior(X, W, mu, s2):
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


def _mean_loglik_from_S(S, W, s2):
    """Mean log-likelihood ``-1/2 (d log 2pi + log|C| + tr(C^-1 S))`` (T&B eq. 4), S = 1/N scatter."""
    d, q = W.shape
    M = W.T @ W + s2 * np.eye(q)
    cf = linalg.cho_factor(M, lower=True)
    logdet = (d - q) * np.log(s2) + 2.0 * np.log(np.diag(cf[0])).sum()
    SW = S @ W
    tr = (np.trace(S) - np.trace(linalg.cho_solve(cf, W.T @ SW))) / s2
    return -0.5 * (d * _LOG_2PI + logdet + tr), M, cf, SW


def _converged(hist, tol):
    return len(hist) > 1 and abs(hist[-1] - hist[-2]) <= tol * abs(hist[-2])


def _warn_not_converged(max_iter):
    warnings.warn(
        f"PPCA EM did not converge in max_iter={max_iter} iterations; increase max_iter or tol.",
        ConvergenceWarning,
        stacklevel=3,
    )


def em_complete(S, W, s2, *, max_iter, tol):
    """EM on complete data in the form using the 1/N sample covariance S (T&B eqs. 29-30).

    ``W_new = S W (sigma2 I + M^-1 W^T S W)^-1``,
    ``sigma2_new = tr(S - S W M^-1 W_new^T) / d``. ``mu`` is the sample mean (its ML value).

    Returns ``W, sigma2, history`` where ``history[t]`` is the mean log-likelihood of the
    parameters after ``t`` updates (the last entry is that of the returned parameters).
    """
    d, q = W.shape
    hist = []
    for it in range(max_iter + 1):
        ll, M, cf, SW = _mean_loglik_from_S(S, W, s2)
        hist.append(float(ll))
        if _converged(hist, tol):
            break
        if it == max_iter:
            _warn_not_converged(max_iter)
            break
        Minv_WtSW = linalg.cho_solve(cf, W.T @ SW)  # M^-1 W^T S W
        W_new = linalg.solve((s2 * np.eye(q) + Minv_WtSW).T, SW.T).T  # S W (sigma2 I + M^-1 W^T S W)^-1
        s2 = float(np.trace(S) - np.einsum("ij,ij->", SW, linalg.cho_solve(cf, W_new.T).T)) / d
        W = W_new
    return W, s2, np.asarray(hist)


def em_missing(X, W, mu, s2, *, max_iter, tol):
    """EM of PPCA with missing values (NaN) marginalised out (Ilin & Raiko 2010, sec. 3.2).

    E-step per row from the observed coordinates: ``zbar_n = M_n^-1 W_o^T (x_o - mu_o)``,
    ``Sigma_n = sigma2 M_n^-1``. M-step, per feature ``j`` over the rows ``n`` observing it,
    jointly for ``(w_j, mu_j)`` with ``ztilde = [z; 1]``:
    ``[w_j; mu_j] = (sum_n E[ztilde ztilde^T])^-1 sum_n x_nj E[ztilde]`` and
    ``sigma2 = 1/N_obs sum_(n,j) observed [(x_nj - w_j^T zbar_n - mu_j)^2 + w_j^T Sigma_n w_j]``.
    The joint (w, mu) update is an exact M-step, so the observed-data log-likelihood never
    decreases. Returns ``W, mu, sigma2, history`` (mean log-likelihood per row).

    Cost per iteration ``O(n d q^2)`` time and ``O(n q^2)`` memory (per-row posterior
    covariances); no Python loop over rows (chunks of rows are vectorised).
    """
    n, d = X.shape
    q = W.shape[1]
    mask = ~np.isnan(X)
    maskf = mask.astype(np.float64)
    X0 = np.where(mask, X, 0.0)
    n_obs = maskf.sum()
    hist = []
    for it in range(max_iter + 1):
        Z, covs, ll = masked_posterior(X, mask, W, mu, s2)
        hist.append(float(ll.mean()))
        if _converged(hist, tol):
            break
        if it == max_iter:
            _warn_not_converged(max_iter)
            break
        Zt = np.hstack([Z, np.ones((n, 1))])  # (n, q+1)
        Ezz = Zt[:, :, None] * Zt[:, None, :]  # (n, q+1, q+1)
        Ezz[:, :q, :q] += covs
        A = (maskf.T @ Ezz.reshape(n, -1)).reshape(d, q + 1, q + 1)  # per-feature sums
        r = X0.T @ Zt  # (d, q+1): sum_n x_nj E[ztilde_n] over observed n
        Wt = np.linalg.solve(A, r[:, :, None])[:, :, 0]
        W, mu = Wt[:, :q], Wt[:, q]
        resid = np.where(mask, X0 - Z @ W.T - mu, 0.0)
        Ssum = (maskf.T @ covs.reshape(n, -1)).reshape(d, q, q)  # sum_n Sigma_n over observed n
        s2 = float((np.einsum("ij,ij->", resid, resid) + np.einsum("ja,jab,jb->", W, Ssum, W)) / n_obs)
    return W, mu, s2, np.asarray(hist)
