"""EM for probabilistic PCA (Tipping & Bishop 1999), also with missing values (Ilin & Raiko 2010).

The E-steps use the posterior and the log-likelihood of
:mod:`latentzoo.linear.ppca_likelihood`; each update here is an exact M-step, so the
recorded mean log-likelihood never decreases.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np
from scipy import linalg
from sklearn.exceptions import ConvergenceWarning

from .ppca_likelihood import masked_posterior, mean_log_likelihood

logger = logging.getLogger(__name__)


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
        ll, M, cf, SW = mean_log_likelihood(S, W, s2)
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
