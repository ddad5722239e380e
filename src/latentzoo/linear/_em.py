"""EM for probabilistic PCA (Tipping & Bishop 1999), also with missing values (Ilin & Raiko 2010).

The E-steps use the posterior and the log-likelihood of
:mod:`latentzoo.linear.ppca_likelihood`; each update here is an exact M-step, so the
recorded mean log-likelihood never decreases.

Both EMs are parameter-expanded (PX-EM, Liu, Rubin & Wu 1998, whose example is factor
analysis): the M-step also fits the latent prior ``z ~ N(b, Gamma)`` from the E-step's
moments, ``b = 1/N sum_n zbar_n``, ``Gamma = 1/N sum_n (zbar_n zbar_n^T + Sigma_n) - b b^T``,
and maps back to ``z ~ N(0, I)`` by ``W <- W L`` (``L L^T = Gamma``), ``mu <- mu + W b``
(``sigma2`` unchanged). Plain EM rescales ``W`` only at the rate ``1 - 2 sigma2 / lambda``
per iteration (``lambda`` an eigenvalue of ``C``), and its first step from a random start
in many dimensions overshoots ``||w||^2`` by about ``lambda_1 / (4 q tr(S) / d)``: on
300 x 3000 data it stopped, by the relative ``tol``, with ``trace(C)`` 160 times
``trace(S)`` (the ML has ``trace(C) = trace(S)``). The expanded step rescales ``W`` to the
latent moments at once; it is an EM of the expanded model, so it is still monotone.

References
----------
Liu, C., Rubin, D. B. & Wu, Y. N. (1998). Parameter expansion to accelerate EM: the PX-EM
algorithm. Biometrika 85(4), 755-770.
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


def _expand(W, Gamma):
    """PX-EM's reduction ``W L``, ``L L^T = Gamma`` (the latent second moment of the E-step):
    the same model as ``(W, z ~ N(0, Gamma))`` with ``z ~ N(0, I)``."""
    return W @ np.linalg.cholesky((Gamma + Gamma.T) / 2)


def em_complete(S, W, s2, *, max_iter, tol):
    """EM on complete data in the form using the 1/N sample covariance S (T&B eqs. 29-30).

    ``W_new = S W (sigma2 I + M^-1 W^T S W)^-1``,
    ``sigma2_new = tr(S - S W M^-1 W_new^T) / d``. ``mu`` is the sample mean (its ML value).
    Then the PX-EM reduction ``W_new <- W_new L``, ``L L^T = Gamma =
    sigma2 M^-1 + M^-1 W^T S W M^-1`` (``1/N sum_n E[z_n z_n^T]``; ``b = 0`` at ``mu = xbar``).

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
        s2_new = float(np.trace(S) - np.einsum("ij,ij->", SW, linalg.cho_solve(cf, W_new.T).T)) / d
        MinvWtSW_Minv = linalg.cho_solve(cf, Minv_WtSW.T)  # M^-1 W^T S W M^-1 (symmetric)
        Gamma = s2 * linalg.cho_solve(cf, np.eye(q)) + MinvWtSW_Minv  # 1/N sum_n E[z_n z_n^T]
        W = _expand(W_new, Gamma)
        s2 = s2_new
    return W, s2, np.asarray(hist)


def em_missing(X, W, mu, s2, *, max_iter, tol):
    """EM of PPCA with missing values (NaN) marginalised out (Ilin & Raiko 2010, sec. 3.2).

    E-step per row from the observed coordinates: ``zbar_n = M_n^-1 W_o^T (x_o - mu_o)``,
    ``Sigma_n = sigma2 M_n^-1``. M-step, per feature ``j`` over the rows ``n`` observing it,
    jointly for ``(w_j, mu_j)`` with ``ztilde = [z; 1]``:
    ``[w_j; mu_j] = (sum_n E[ztilde ztilde^T])^-1 sum_n x_nj E[ztilde]`` and
    ``sigma2 = 1/N_obs sum_(n,j) observed [(x_nj - w_j^T zbar_n - mu_j)^2 + w_j^T Sigma_n w_j]``.
    The joint (w, mu) update is an exact M-step, followed by the PX-EM reduction
    ``mu <- mu + W b``, ``W <- W L`` (module docstring), so the observed-data
    log-likelihood never decreases. Returns ``W, mu, sigma2, history`` (mean log-likelihood per row).

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
        b = Z.mean(axis=0)
        Gamma = (Z.T @ Z + covs.sum(axis=0)) / n - np.outer(b, b)
        mu = mu + W @ b
        W = _expand(W, Gamma)
    return W, mu, s2, np.asarray(hist)
