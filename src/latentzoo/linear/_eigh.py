"""The fast exact fit shared by PCA and PPCA: the top eigenpairs of the sample covariance.

Route (exact in every case; the cheapest one is chosen from the shape):

* ``n >= d`` -- the scatter matrix ``X^T X`` with one BLAS ``syrk`` call (numpy's
  ``X.T @ X`` dispatches to it) in the input's
  precision (float32 stays float32: ``syrk`` computes one triangle only, and the pass
  over ``X`` dominates the whole fit), the mean correction
  ``S = X^T X - n mu mu^T`` in float64, then the top ``q`` eigenpairs only
  (:func:`top_eigenpairs`). ``trace(S)`` gives the sum of the discarded
  eigenvalues (PPCA's noise variance) without computing them. The column mean is the
  caller's finite check too (:func:`checked_mean`): a column sum is finite exactly when
  the column is (barring overflow, which falls back to the element-wise scan), so the
  data are read once before the ``syrk`` pass, not twice.
  The correction subtracts two large numbers when a feature's mean is large against its
  spread: the relative error of a diagonal entry is about ``eps * (X^T X)_jj / S_jj``.
  When that amplification would exceed ``1e-5`` (float32: means about 10x the standard
  deviation) the data are centred first (a float32 copy of ``X``, then one ``syrk``).
  The decision is taken *before* the costly pass from a strided sample of ~1000 rows,
  so the centred route costs one extra memory pass, not a second ``syrk``: measured
  0.9-1.1x the plain route on 70000 x 784 float32 (2 loaded cores). The exact diagonal
  check after the plain route catches what the sample missed (then the centred scatter
  is recomputed). MNIST-like data take the plain route.
* ``n < d`` -- the Gram matrix ``Xc Xc^T`` (n x n) of the centred data, whose non-zero
  eigenvalues are those of the scatter and whose eigenvectors map to principal directions
  ``u = Xc^T v / sqrt(lambda)``; if a requested eigenvalue is (numerically) zero the
  direction is undefined there, so the economy SVD of ``Xc`` is used instead.

Threads: the small steps (the column-mean pass of matrix-vector products and the
``d x d`` eigen-decomposition for ``d <= 2048``) run with one BLAS thread. They gain
little from threads at these sizes, and on a shared, oversubscribed machine threaded
small BLAS calls were measured 3-10x slower (thread hand-offs), while single-threaded
they cost about 0.02 s (mean) and 0.05 s (eigh, d = 784); the ``syrk`` pass keeps all
threads.

The principal directions get a deterministic sign: the entry of largest absolute value
of every direction is positive (the convention of scikit-learn's ``PCA``).
"""
from __future__ import annotations

import contextlib
import functools
import logging
from dataclasses import dataclass

import numpy as np
from scipy import linalg
from threadpoolctl import ThreadpoolController

logger = logging.getLogger(__name__)

__all__ = ["EighFit", "check_n_components", "checked_mean", "column_mean", "scatter_matrix", "top_eigh",
           "top_eigenpairs", "flip_signs"]

#: recentre first when eps * (X^T X)_jj / S_jj exceeds this (see module docstring)
_MAX_CANCELLATION_ERROR = 1e-5
#: rows per float32 block when averaging columns (float64 accumulation across blocks)
_MEAN_BLOCK = 2048
#: eigen-decompositions up to this size run single-threaded (see module docstring)
_SINGLE_THREAD_EIGH = 2048


@functools.lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # finding the loaded BLAS libraries takes ~4 ms: do it once


def _one_blas_thread():
    return _controller().limit(limits=1, user_api="blas")


@dataclass(frozen=True)
class EighFit:
    """Top-``q`` eigen-decomposition of the scatter matrix ``S = sum_i (x_i - mu)(x_i - mu)^T``.

    Attributes
    ----------
    mean : ndarray (d,), float64
    eigenvalues : ndarray (q,), float64, descending -- of ``S`` (divide by ``n - ddof``)
    components : ndarray (q, d), float64 -- orthonormal rows, sign-normalised
    total : float -- ``trace(S)``, the sum of all ``d`` eigenvalues
    n_samples : int
    """

    mean: np.ndarray
    eigenvalues: np.ndarray
    components: np.ndarray
    total: float
    n_samples: int

    def discarded_mean(self, ddof: int) -> float:
        """Mean of the ``d - q`` discarded eigenvalues of ``S / (n - ddof)`` (0 if none)."""
        d, q = self.components.shape[1], self.components.shape[0]
        if q >= d:
            return 0.0
        rest = max(self.total - float(self.eigenvalues.sum()), 0.0)
        return rest / (d - q) / (self.n_samples - ddof)


def flip_signs(components: np.ndarray) -> np.ndarray:
    """Make the largest-|entry| of every row positive (deterministic, like scikit-learn)."""
    idx = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), idx])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


def column_mean(X: np.ndarray) -> np.ndarray:
    """Column means in float64: float32 blocks summed by BLAS, blocks accumulated in float64.

    As accurate as a float64 pass for our purpose (each block sums at most
    ``_MEAN_BLOCK`` rows in the input precision) at the cost of a float32 pass.
    """
    n = X.shape[0]
    if X.dtype == np.float64:
        return X.mean(axis=0)
    total = np.zeros(X.shape[1], dtype=np.float64)
    ones = np.ones(min(n, _MEAN_BLOCK), dtype=X.dtype)
    with _one_blas_thread():
        for start in range(0, n, _MEAN_BLOCK):
            block = X[start:start + _MEAN_BLOCK]
            total += ones[: block.shape[0]] @ block
    return total / n


def checked_mean(X: np.ndarray, check) -> np.ndarray | None:
    """Column means of ``X`` that double as its finite check (one pass instead of two).

    ``check(X)`` (the element-wise scan that raises, naming the first NaN/inf) runs only
    when a mean is not finite. Returns the means, or ``None`` when finite data overflowed
    the float32 sums (the scatter is then recomputed in float64, mean included).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mu = column_mean(X)
    if np.isfinite(mu).all():
        return mu
    check(X)  # raises on NaN/inf; returning means the data are finite but huge
    return None


def _syrk(X: np.ndarray) -> np.ndarray:
    """``X^T X`` (d x d, full symmetric, float64) in X's precision.

    numpy's ``X.T @ X`` recognises a matrix times its own transpose and calls BLAS
    ``syrk`` on its row-major layout, mirroring the triangle itself; on OpenBLAS that was
    measured 1.1-1.2x faster than calling ``scipy.linalg.blas.ssyrk`` on the transposed view.
    """
    if not (X.flags.c_contiguous or X.flags.f_contiguous):
        X = np.ascontiguousarray(X)  # numpy's matmul reaches BLAS only on contiguous operands
    return (X.T @ X).astype(np.float64, copy=False)


def scatter_matrix(X: np.ndarray, mean: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scatter ``S = (X - mu)^T (X - mu)`` (float64) of a float32/float64 ``X``.

    Uses ``X^T X - n mu mu^T`` and recentres first only where that would cancel too much
    (see the module docstring). ``mean``: the column means when the caller has them.
    """
    n = X.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        mu = column_mean(X) if mean is None else mean
        if X.dtype == np.float32 and not np.isfinite(mu).all():  # finite data, float32 sums overflowed
            return scatter_matrix(X.astype(np.float64))
        if _cancellation_likely(X, mu):  # decide before the costly pass: one syrk, not two
            return mu, _centred_scatter(X, mu)
        G = _syrk(X)
        S = G - n * np.outer(mu, mu)
    if not np.isfinite(S).all():
        if X.dtype == np.float32:  # squares above ~1.8e19 overflow float32: redo the pass in float64
            return scatter_matrix(X.astype(np.float64))
        raise _overflow_error(X)
    diag_S = np.diag(S)
    diag_G = np.diag(G)
    with np.errstate(all="ignore"):  # inf amplification just means "centre first"
        amp = np.where(diag_G > 0, diag_G / np.maximum(diag_S, np.finfo(np.float64).tiny), 1.0)
    worst = float(amp.max()) * np.finfo(X.dtype).eps
    if worst > _MAX_CANCELLATION_ERROR:
        # the row sample missed it (e.g. a column constant on the sample): redo, centred
        logger.debug("scatter: cancellation error %.2g > %.0e, centring first", worst, _MAX_CANCELLATION_ERROR)
        S = _centred_scatter(X, mu)
    return mu, S


def _cancellation_likely(X: np.ndarray, mu: np.ndarray) -> bool:
    """Estimate ``eps * (X^T X)_jj / S_jj = eps * (1 + mu_j^2 / var_j)`` from ~1000 rows."""
    sample = X[:: max(1, X.shape[0] // 1024)]
    var = sample.var(axis=0, dtype=np.float64)
    with np.errstate(all="ignore"):
        amp = np.where(var > 0, 1.0 + mu**2 / var, 1.0)  # var = 0 on the sample: left to the exact check
    return float(amp.max()) * np.finfo(X.dtype).eps > _MAX_CANCELLATION_ERROR / 4


def _centred_scatter(X: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Scatter from the centred data: one extra pass (a copy of X) but no cancellation."""
    Xc = X - mu.astype(X.dtype)
    # the float-rounded mean leaves a tiny residual mean r: S = Xc^T Xc - n r r^T
    r = column_mean(Xc)
    return _syrk(Xc) - Xc.shape[0] * np.outer(r, r)


def _overflow_error(X: np.ndarray) -> ValueError:
    big = float(np.max(np.abs(X)))
    return ValueError(f"X has values too large for a covariance matrix (max |x| = {big:.3g}): the sums of "
                      "squares overflow float64; rescale the data first (e.g. sklearn StandardScaler).")


def top_eigenpairs(S: np.ndarray, q: int, *, single: bool) -> tuple[np.ndarray, np.ndarray]:
    """Top ``q`` eigenpairs ``(w (q,), V (d, q))`` of the symmetric float64 ``S``, ascending.

    ``single=True`` (a scatter summed in float32): the float32 eigensolver (LAPACK
    ``ssyevr``, about 1.7x faster than ``dsyevr`` at ``d = 784``) finds the subspace,
    then a float64 Rayleigh-Ritz step on ``S`` itself gives the eigenpairs: the columns
    are re-orthonormalised (QR) and ``Q^T S Q`` (``q x q``) diagonalised in float64.
    Ritz values err by the square of the subspace angle, so the eigenvalues (and PPCA's
    noise variance, ``trace(S)`` minus their sum) keep float64 accuracy; the directions
    err by ``eps_32 ||S|| / gap``, the order of the rounding the float32 scatter itself
    already carries. ``single=False``: ``dsyevr`` for the top ``q`` only.
    """
    d = S.shape[0]
    with _one_blas_thread() if d <= _SINGLE_THREAD_EIGH else contextlib.nullcontext():
        if not single or q >= d:
            return linalg.eigh(S, subset_by_index=[d - q, d - 1], check_finite=False)
        scale = float(np.abs(np.diag(S)).max()) or 1.0  # keep float32 clear of overflow
        _, V32 = linalg.eigh((S / scale).astype(np.float32), subset_by_index=[d - q, d - 1],
                             check_finite=False)
        Q, _ = linalg.qr(V32.astype(np.float64), mode="economic", check_finite=False)
        H = Q.T @ (S @ Q)  # (q, q) Rayleigh quotient matrix
        w, U = linalg.eigh((H + H.T) / 2, check_finite=False)
        return w, Q @ U


def top_eigh(X: np.ndarray, q: int, *, mean: np.ndarray | None = None) -> EighFit:
    """Top ``q`` eigenpairs of the scatter matrix of ``X`` (n, d), by the cheapest exact route.

    Parameters
    ----------
    X : ndarray of shape (n, d), float32 or float64, finite
    q : int, 1 <= q <= min(n, d)
    mean : ndarray of shape (d,), optional
        The column means when the caller has them (:func:`checked_mean`).

    Returns
    -------
    EighFit
    """
    n, d = X.shape
    if n >= d:
        mu, S = scatter_matrix(X, mean)
        w, V = top_eigenpairs(S, q, single=X.dtype == np.float32)
        order = np.argsort(w)[::-1]
        evals, comps = w[order], V[:, order].T
        total = float(np.trace(S))
    else:
        mu = np.asarray(X.mean(axis=0, dtype=np.float64)) if mean is None else mean
        Xc = np.asarray(X, dtype=np.float64) - mu
        total = float(np.einsum("ij,ij->", Xc, Xc))
        with np.errstate(over="ignore", invalid="ignore"):
            G = Xc @ Xc.T
        if not (np.isfinite(G).all() and np.isfinite(total)):
            raise _overflow_error(X)
        w, V = linalg.eigh(G, subset_by_index=[n - q, n - 1], check_finite=False)
        order = np.argsort(w)[::-1]
        evals, V = w[order], V[:, order]
        tol = n * np.finfo(np.float64).eps * max(float(w.max(initial=0.0)), np.finfo(np.float64).tiny)
        if evals[-1] > tol:
            comps = (Xc.T @ V / np.sqrt(evals)).T
        else:  # rank-deficient request: the SVD still returns orthonormal directions
            _, s, Vt = linalg.svd(Xc, full_matrices=False, check_finite=False)
            evals, comps = s[:q] ** 2, Vt[:q]
    evals = np.maximum(evals, 0.0)
    return EighFit(mu, evals, flip_signs(comps), total, n)


def check_n_components(est, n: int, d: int, *, strict: bool) -> int:
    """Check ``1 <= n_components <= min(n, d)`` (``< d`` when ``strict``); error names it."""
    q = est.n_components
    hi = min(n, d - 1) if strict else min(n, d)
    if q > hi:
        why = (
            f" and < n_features = {d}, since the noise variance is the mean of the "
            f"discarded eigenvalues" if strict else ""
        )
        raise ValueError(
            f"{type(est).__name__}: n_components={q} must be <= min(n_samples, n_features) = "
            f"{min(n, d)}{why} (got n_samples = {n}, n_features = {d})."
        )
    return int(q)
