"""Principal component analysis: the minimum-error linear encoder/decoder."""
from __future__ import annotations

import numpy as np

from .._validation import Instance, Interval
from ..base import LatentModel
from ..registry import register_model
from . import _impute
from ._eigh import check_n_components, checked_mean, top_eigh

__all__ = ["PCA"]


@register_model("pca", description="principal component analysis (exact, minimum error)")
class PCA(LatentModel):
    """Principal component analysis fitted exactly from the covariance eigen-decomposition.

    The ``q`` principal directions ``U_q`` (top eigenvectors of the sample covariance)
    minimise the mean squared reconstruction error of the linear code

    * ``whiten=False``: encode ``z = U_q^T (x - mu)``, decode ``x' = U_q z + mu``;
    * ``whiten=True``: unit-variance codes, encode ``z = Lambda_q^{-1/2} U_q^T (x - mu)``,
      decode ``x' = U_q Lambda_q^{1/2} z + mu``. The scaled basis
      ``V_q = U_q Lambda_q^{1/2}`` of the minimum-error formulation is this *decoder*;
      its literal transpose ``V_q^T (x - mu)`` is not the inverse of it (it scales by
      ``Lambda_q^{1/2}`` instead of ``Lambda_q^{-1/2}``), so the encoder is
      ``Lambda_q^{-1/2} U_q^T``.

    Variances use the unbiased ``1/(n - 1)`` covariance, exactly like
    :class:`sklearn.decomposition.PCA`, so ``explained_variance_`` matches it.
    (:class:`~latentzoo.PPCA` uses the maximum-likelihood ``1/n``.) PCA has no density,
    so it defines no ``score_samples`` and ``score`` is the negative mean squared
    reconstruction error (from :class:`~latentzoo.base.LatentModel`).

    The fit is the fastest exact route of :func:`latentzoo.linear._eigh.top_eigh`
    (one BLAS ``syrk`` for ``X^T X`` in the input precision, float64 mean correction,
    eigenpairs of the top ``q`` only). float32 input stays float32 for that pass.

    Parameters
    ----------
    n_components : int, default=2
        Number of components ``q``, ``1 <= q <= min(n_samples, n_features)``.
    whiten : bool, default=False
        Unit-variance codes (see above).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Principal directions ``U_q^T`` (orthonormal rows, by decreasing variance); the
        sign of each row makes its entry of largest absolute value positive (the
        convention of scikit-learn).
    explained_variance_ : ndarray of shape (n_components,)
        Top eigenvalues ``Lambda_q`` of the ``1/(n-1)`` covariance.
    explained_variance_ratio_ : ndarray of shape (n_components,)
        ``explained_variance_ / trace(covariance)``.
    noise_variance_ : float
        Mean of the ``d - q`` discarded eigenvalues (``1/(n-1)``; 0 when ``q = d``). With
        ``n < d`` this counts the ``d - n`` zero eigenvalues too (the PPCA definition);
        scikit-learn averages over ``min(n, d) - q`` only.
    mean_ : ndarray of shape (n_features,)
    n_components_ : int
    n_features_in_ : int
    n_samples_ : int

    References
    ----------
    Pearson, K. (1901). On lines and planes of closest fit to systems of points in space.
    Bishop, C. M. (2006). Pattern Recognition and Machine Learning, section 12.1.2
    (minimum-error formulation).

    Examples
    --------
    >>> import numpy as np
    >>> from latentzoo import PCA
    >>> X = np.random.default_rng(0).normal(size=(100, 5))
    >>> PCA(n_components=2).fit(X).transform(X).shape
    (100, 2)
    """

    #: a fit that fails after input validation leaves n_features_in_ set: not proof of a fit
    _fitted_attr = "components_"

    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "whiten": [Instance((bool,), "a bool")],
    }

    def __init__(self, n_components=2, *, whiten=False):
        self.n_components = n_components
        self.whiten = whiten

    def fit(self, X, y=None):
        """Fit the principal subspace of ``X`` (n_samples, n_features); returns ``self``."""
        self._validate_params()
        X = self._validate_input(X, reset=True, dtype=[np.float64, np.float32], min_samples=2, finite=False)
        n, d = X.shape
        q = check_n_components(self, n, d, strict=False)
        eig = top_eigh(X, q, mean=checked_mean(X, self._check_finite))
        self.mean_ = eig.mean
        self.components_ = eig.components
        self.explained_variance_ = eig.eigenvalues / (n - 1)
        total = eig.total / (n - 1)
        self.explained_variance_ratio_ = self.explained_variance_ / total if total > 0 else np.zeros(q)
        self.noise_variance_ = eig.discarded_mean(ddof=1)
        self.n_components_ = q
        self.n_samples_ = n
        return self

    def _scale(self) -> np.ndarray:
        """Per-component ``Lambda_q^{1/2}`` when whitening (floored: no division by 0), else 1."""
        if not self.whiten:
            return np.ones(self.n_components_)
        ev = self.explained_variance_
        return np.sqrt(np.maximum(ev, np.finfo(np.float64).eps * max(float(ev.max()), 1e-300)))

    def transform(self, X):
        """Codes ``z = U_q^T (x - mu)`` (whitened: divided by ``sqrt(Lambda_q)``), float64."""
        self._check_fitted()
        X = self._validate_input(X, reset=False)
        return (X - self.mean_) @ self.components_.T / self._scale()

    def inverse_transform(self, Z):
        """Decode ``x' = U_q z + mu`` (whitened: ``U_q Lambda_q^{1/2} z + mu``)."""
        Z = self._validate_codes(Z)
        return (Z * self._scale()) @ self.components_ + self.mean_

    # ------------------------------------------------------------------ persistence
    def impute(self, X):
        """``X`` with every NaN filled from the principal subspace fitted on complete data.

        Per row, the code ``z`` is the least-squares fit of the observed coordinates,
        ``x_o - mu_o ~ W_o z`` (``W = components_^T Lambda^1/2``), and ``x_m = W_m z + mu_m``:
        the ``sigma2 -> 0`` limit of PPCA's conditional mean (:meth:`PPCA.impute`), computed
        as it with a ridge ``sigma2 = 1e-6 * mean(Lambda)`` that keeps rows observing fewer
        than ``q`` coordinates defined. PCA fits complete data only; observed entries are
        returned as given.
        """
        self._check_fitted()
        X = self._validate_input(X, reset=False, allow_nan=True)
        ev = np.maximum(self.explained_variance_, 0.0)
        W = self.components_.T * np.sqrt(ev)
        ridge = max(1e-6 * float(ev.mean()), 1e-300)
        return _impute.conditional_mean(X, W, self.mean_, ridge)

    _fitted_arrays = ("mean_", "components_", "explained_variance_", "explained_variance_ratio_")
    _fitted_scalars = ("n_features_in_", "n_components_", "n_samples_", "noise_variance_")

    @classmethod
    def _contract_params(cls):
        return {}
