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

Stopping (:func:`_converged`): the relative change of the mean log-likelihood ``L`` **and**
of ``sigma2`` below ``tol``. ``L`` is flat (quadratic) at its maximum, so a small change of
``L`` alone leaves the parameters far off: on 50 x 10 data with ``q = 9`` it stopped EM with
``sigma2`` 2% (one seed 8%) above the ML. ``sigma2`` (the variance left outside the model's
subspace) moves while that subspace still turns.

Noise floor (:func:`noise_floor`): when the data lie in a ``q``-dimensional affine subspace
(always when ``q >= n - 1``; also for rank-deficient data, or missing entries that leave
rows with at most ``q`` observed values) the likelihood is unbounded as ``sigma2 -> 0``: EM
drove ``sigma2`` to ~1e-16, its likelihood (a difference of ``O(trace S)`` terms divided by
``sigma2``) became rounding noise of O(1) nats, then NaN, and the matrices singular
(``LinAlgError``). Each M-step therefore keeps ``sigma2 >= sqrt(eps) * (mean variance)``.
The ``W`` and ``mu`` updates do not depend on ``sigma2`` and ``Q`` is unimodal in
``sigma2``, so ``max(sigma2_new, floor)`` is the exact M-step on ``{sigma2 >= floor}``: EM
stays monotone, and the likelihood's rounding is ~``sqrt(eps) d`` nats. Where ``q`` exceeds
the data's rank, a direction of ``W`` carries no variance and the E-step's ``Gamma`` is
rounded there by O(1) (a term divided by ``sigma2^2``): its Cholesky factor failed, so
:func:`_expand` takes the symmetric square root with eigenvalues clipped at 0.

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


#: sigma2 >= NOISE_FLOOR * (mean variance) during EM (module docstring: "Noise floor")
NOISE_FLOOR = float(np.sqrt(np.finfo(np.float64).eps))


def noise_floor(mean_variance):
    """The least ``sigma2`` EM uses: ``sqrt(eps)`` times the mean variance of the data."""
    return max(NOISE_FLOOR * float(mean_variance), 1e-300)


def _converged(hist, s2s, tol):
    """Relative changes of the mean log-likelihood and of ``sigma2`` both ``<= tol``."""
    return (len(hist) > 1 and abs(hist[-1] - hist[-2]) <= tol * abs(hist[-2])
            and abs(s2s[-1] - s2s[-2]) <= tol * s2s[-2])


def _warn_not_converged(max_iter):
    warnings.warn(
        f"PPCA EM did not converge in max_iter={max_iter} iterations; increase max_iter or tol.",
        ConvergenceWarning,
        stacklevel=3,
    )


def _expand(W, Gamma):
    """PX-EM's reduction ``W L``, ``L L^T = Gamma`` (the latent second moment of the E-step):
    the same model as ``(W, z ~ N(0, Gamma))`` with ``z ~ N(0, I)``."""
    # any L with L L^T = Gamma will do (z ~ N(0, I) is rotation invariant): the symmetric
    # square root, eigenvalues clipped at 0 (rounding can make Gamma indefinite, module docstring)
    e, V = np.linalg.eigh((Gamma + Gamma.T) / 2)
    return W @ (V * np.sqrt(np.maximum(e, 0.0)))


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
    floor = noise_floor(np.trace(S) / d)
    s2 = max(s2, floor)
    hist, s2s = [], []
    for it in range(max_iter + 1):
        ll, M, cf, SW = mean_log_likelihood(S, W, s2)
        hist.append(float(ll))
        s2s.append(s2)
        if _converged(hist, s2s, tol):
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
        s2 = max(s2_new, floor)
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
    floor = noise_floor(np.nanvar(X, axis=0).mean())
    s2 = max(s2, floor)
    hist, s2s = [], []
    for it in range(max_iter + 1):
        Z, covs, ll = masked_posterior(X, mask, W, mu, s2)
        hist.append(float(ll.mean()))
        s2s.append(s2)
        if _converged(hist, s2s, tol):
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
        s2 = max(float((np.einsum("ij,ij->", resid, resid) + np.einsum("ja,jab,jb->", W, Ssum, W)) / n_obs), floor)
        b = Z.mean(axis=0)
        Gamma = (Z.T @ Z + covs.sum(axis=0)) / n - np.outer(b, b)
        mu = mu + W @ b
        W = _expand(W, Gamma)
    return W, mu, s2, np.asarray(hist)
