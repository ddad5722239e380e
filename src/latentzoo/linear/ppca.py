"""Probabilistic PCA (Tipping & Bishop 1999): closed-form maximum likelihood or EM."""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg
from sklearn.utils import check_random_state

from .._validation import Instance, Interval, Options
from ..base import LatentModel
from ..registry import register_model
from . import _em, _impute
from .ppca_likelihood import log_likelihood, posterior_and_log_likelihood
from ._eigh import check_n_components, checked_mean, flip_signs, scatter_matrix, top_eigh

__all__ = ["PPCA", "DegenerateFitWarning"]


class DegenerateFitWarning(UserWarning):
    """A fit that is mathematically degenerate (e.g. PPCA keeping every direction of its
    training data): its log-likelihoods are not to be compared or trusted."""

_RANDOM_STATE = Instance((int, np.integer, np.random.RandomState, np.random.Generator),
                         "an int, a numpy RandomState/Generator")


@register_model("ppca", description="probabilistic PCA (Tipping & Bishop 1999), closed form or EM")
class PPCA(LatentModel):
    """Probabilistic PCA: ``x = W z + mu + eps``, ``z ~ N(0, I_q)``, ``eps ~ N(0, sigma2 I_d)``.

    The marginal is ``x ~ N(mu, C)``, ``C = W W^T + sigma2 I``.

    * ``method="closed"``: the maximum-likelihood solution (T&B eqs. 7-8) from the
      eigen-decomposition of the **1/N** (maximum-likelihood) sample covariance ``S``:
      ``sigma2 = mean of the d - q discarded eigenvalues``,
      ``W = U_q (Lambda_q - sigma2 I)^{1/2}`` (rotation ``R = I``), ``mu`` the sample mean.
      scikit-learn's :class:`~sklearn.decomposition.PCA` uses the 1/(N-1) covariance, so
      its ``score_samples`` is the log-density of ``N(mu, c^2 C)``, ``c = sqrt(N/(N-1))``:
      ``sklearn_PCA(q).fit(X).score_samples(X) ==
      PPCA(q).fit(X).score_samples(mu + (X - mu) / c) - d log c``.
    * ``method="em"``: EM (T&B eqs. 29-30 in the form using ``S``), parameter-expanded
      (PX-EM, Liu, Rubin & Wu 1998: ``W`` rescaled to the latent moments each step, without
      which EM stalls with inflated ``W`` on wide data; see :mod:`latentzoo.linear._em`),
      started from a random ``W`` (seeded by ``random_state``), stopped when the relative
      changes of the mean log-likelihood and of ``sigma2`` are below ``tol``. With missing values (NaN, ``method="em"`` only) the
      missing entries are marginalised out (Ilin & Raiko 2010). The ML solution is
      unique only up to a rotation ``W R``; after EM ``W`` is rotated to orthogonal columns
      of decreasing norm (the ``R = I`` form), which changes no likelihood.

    ``transform``, ``score_samples`` and ``posterior`` accept NaN in ``X`` whatever the
    fitting method: a row with NaN is treated by the marginal of its observed coordinates
    (``W_o``, ``mu_o``). ``reconstruction_error`` does not (it needs every coordinate).

    Parameters
    ----------
    n_components : int, default=2
        Latent dimension ``q``, ``1 <= q < n_features`` (strictly: ``sigma2`` is the mean
        of the discarded eigenvalues) and ``q <= n_samples``.
    method : {"closed", "em"}, default="closed"
    max_iter : int, default=500
        EM iterations at most (``method="em"``).
    tol : float, default=1e-6
        EM stops when ``|L_t - L_{t-1}| <= tol * |L_{t-1}|`` (mean log-likelihood ``L``) and
        ``|sigma2_t - sigma2_{t-1}| <= tol * sigma2_{t-1}`` (``L`` alone is flat at its maximum:
        it stopped with ``sigma2`` 2-8% off the ML for ``q = d - 1``).
    random_state : int, RandomState, Generator or None, default=None
        Seeds the EM initialisation; results are deterministic given it.

    Attributes
    ----------
    W_ : ndarray of shape (n_features, n_components)
        Loadings ``U_q (Lambda_q - sigma2 I)^{1/2}``.
    components_ : ndarray of shape (n_components, n_features)
        Orthonormal principal directions ``U_q^T`` (largest-|entry| of each row positive).
    explained_variance_ : ndarray of shape (n_components,)
        ``Lambda_q``: top eigenvalues of the ML covariance (``= ||w_k||^2 + sigma2``).
    noise_variance_ : float
        ``sigma2``, floored so that ``C`` stays invertible where the data lie in a
        ``q``-dimensional affine subspace (the likelihood is then unbounded as ``sigma2 -> 0``):
        at ``eps * trace(S) / d`` by the closed form, at ``sqrt(eps)`` times the mean variance by
        EM, whose likelihood and M-step divide by ``sigma2`` (:mod:`latentzoo.linear._em`).
    degenerate_ : bool
        ``n_components >= n_samples - 1``: ``sigma2`` is at its floor and held-out
        log-likelihoods are meaningless; ``fit`` warns (:class:`DegenerateFitWarning`).
    mean_ : ndarray of shape (n_features,)
    n_components_, n_features_in_, n_samples_ : int
    n_iter_ : int
        EM updates performed (``method="em"`` only).
    loglik_history_ : ndarray
        Mean log-likelihood (nats per sample) after each EM update, starting from the
        initial parameters; the last is that of the fitted model (``method="em"`` only).

    References
    ----------
    Tipping, M. E. & Bishop, C. M. (1999). Probabilistic principal component analysis.
    JRSS B 61(3), 611-622.
    Ilin, A. & Raiko, T. (2010). Practical approaches to principal component analysis in
    the presence of missing values. JMLR 11, 1957-2000.

    Examples
    --------
    >>> import numpy as np
    >>> from latentzoo import PPCA
    >>> X = np.random.default_rng(0).normal(size=(200, 5))
    >>> m = PPCA(n_components=2).fit(X)
    >>> m.W_.shape, m.score_samples(X).shape
    ((5, 2), (200,))
    """

    has_density = exact_density = has_prior = has_posterior = True

    #: a fit that fails after input validation leaves n_features_in_ set: not proof of a fit
    _fitted_attr = "components_"

    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "method": [Options(("closed", "em"))],
        "max_iter": [Interval("int", 1, None)],
        "tol": [Interval("real", 0, None)],
        "random_state": [_RANDOM_STATE, None],
    }

    def __init__(self, n_components=2, *, method="closed", max_iter=500, tol=1e-6, random_state=None):
        self.n_components = n_components
        self.method = method
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # only EM fits data with NaN (transform/score_samples accept NaN for both methods)
        tags.input_tags.allow_nan = self.method == "em"
        return tags

    def _expected_failed_checks(self):
        return {
            "check_estimators_nan_inf": "by design transform/score_samples accept NaN (missing "
            "values, marginalised) even after a closed-form fit, which rejects NaN in fit",
            "check_transformer_n_iter": "n_iter_ exists for method='em' only: the closed form "
            "has no iterations (max_iter applies to EM)",
        }

    # ------------------------------------------------------------------ fitting
    @property
    def degenerate_(self) -> bool:
        """True when ``n_components >= n_samples - 1``: the (at most n - 1) directions of the
        centred training data are all kept, so the noise variance falls to its floor
        (~1e-16) and held-out log-likelihoods are meaningless (about -1e18)."""
        self._check_fitted()
        return bool(self.n_components_ >= self.n_samples_ - 1)

    def fit(self, X, y=None):
        """Fit by maximum likelihood (closed form or EM); returns ``self``."""
        self._validate_params()
        em = self.method == "em"
        X = self._validate_input(X, reset=True, allow_nan=em, finite=em,  # closed: checked_mean checks
                                 dtype=np.float64 if em else [np.float64, np.float32], min_samples=2)
        n, d = X.shape
        q = check_n_components(self, n, d, strict=True)
        self.n_components_, self.n_samples_ = q, n
        if em:
            self._fit_em(X, q)
        else:
            self._fit_closed(X, q)
        if self.degenerate_:
            warnings.warn(
                f"PPCA with n_components={q} >= n_samples - 1 = {n - 1}: the {n} training rows span at most "
                f"{n - 1} directions, all of them kept, so the noise variance is ~0 "
                f"({self.noise_variance_:.3g}) and held-out log-likelihoods are meaningless; use fewer components "
                "or more samples (the fitted model has degenerate_ = True)", DegenerateFitWarning, stacklevel=2)
        return self

    def _fit_closed(self, X, q):
        n, d = X.shape
        eig = top_eigh(X, q, mean=checked_mean(X, self._check_finite))
        lam = eig.eigenvalues / n  # ML (1/N) eigenvalues
        s2 = max(eig.discarded_mean(ddof=0), np.finfo(np.float64).eps * eig.total / n / d, 1e-300)
        self.mean_ = eig.mean
        self.components_ = eig.components
        self.explained_variance_ = lam
        self.noise_variance_ = float(s2)
        self.W_ = eig.components.T * np.sqrt(np.maximum(lam - s2, 0.0))  # U_q (Lambda_q - s2 I)^1/2

    def _fit_em(self, X, q):
        n, d = X.shape
        rng = check_random_state(self.random_state) if not isinstance(self.random_state, np.random.Generator) \
            else self.random_state
        missing = np.isnan(X)
        if missing.any():
            empty = np.flatnonzero(missing.all(axis=0))
            if empty.size:
                raise ValueError(f"PPCA: column {int(empty[0])} of X has no observed value (all NaN).")
            mu0 = np.nanmean(X, axis=0)
            var0 = float(np.nanvar(X, axis=0).mean())
            W0 = rng.standard_normal((d, q)) * np.sqrt(max(var0, 1e-300) / q)
            W, mu, s2, hist = _em.em_missing(X, W0, mu0, max(var0, 1e-300),
                                             max_iter=self.max_iter, tol=self.tol)
        else:
            mu, S = scatter_matrix(X)
            S /= n
            var0 = float(np.trace(S)) / d
            W0 = rng.standard_normal((d, q)) * np.sqrt(max(var0, 1e-300) / q)
            W, s2, hist = _em.em_complete(S, W0, max(var0, 1e-300), max_iter=self.max_iter, tol=self.tol)
        # rotate to the R = I form: orthogonal columns of decreasing norm
        U, s, _ = linalg.svd(W, full_matrices=False)
        comps = flip_signs(U.T)
        s2 = max(s2, 1e-300)
        self.mean_ = np.asarray(mu, dtype=np.float64)
        self.components_ = comps
        self.W_ = comps.T * s
        self.explained_variance_ = s ** 2 + s2
        self.noise_variance_ = float(s2)
        self.loglik_history_ = hist
        self.n_iter_ = len(hist) - 1

    # ------------------------------------------------------------------ inference
    def _posterior_arrays(self, X):
        self._check_fitted()
        X = self._validate_input(X, reset=False, allow_nan=True)
        return posterior_and_log_likelihood(X, self.W_, self.mean_, self.noise_variance_)

    def posterior(self, X):
        """``p(z | x) = N(M^-1 W^T (x - mu), sigma2 M^-1)``, ``M = W^T W + sigma2 I`` (T&B eq. 6).

        Rows with NaN use their observed coordinates (``W_o``, ``mu_o``) only.

        Returns
        -------
        torch.distributions.MultivariateNormal
            Batch shape ``(n_samples,)``, event shape ``(n_components,)``, float64.
        """
        import torch
        from torch.distributions import MultivariateNormal

        Z, cov, _ = self._posterior_arrays(X)
        cov = torch.from_numpy(np.ascontiguousarray(cov))
        if cov.ndim == 2:
            cov = cov.expand(Z.shape[0], *cov.shape)
        return MultivariateNormal(torch.from_numpy(Z), covariance_matrix=cov)

    def transform(self, X):
        """Posterior means ``M^-1 W^T (x - mu)`` (n_samples, n_components); NaN = missing."""
        return self._posterior_arrays(X)[0]

    def inverse_transform(self, Z):
        """Decode ``x' = W z + mu``."""
        Z = self._validate_codes(Z)
        return Z @ self.W_.T + self.mean_

    def score_samples(self, X):
        """``log N(x; mu, W W^T + sigma2 I)`` per row, in nats (Woodbury and the matrix
        determinant lemma: ``q x q`` work only). Rows with NaN: the marginal density of
        their observed coordinates. float32 data are evaluated in float32 blocks (float64 where
        rounding would cancel: :func:`latentzoo.linear.ppca_likelihood.log_likelihood`), with no posterior
        covariances and no NaN mask for complete rows."""
        self._check_fitted()
        X = self._validate_input(X, reset=False, allow_nan=True, dtype=[np.float64, np.float32], finite=False)
        return log_likelihood(X, self.W_, self.mean_, self.noise_variance_,
                              check_finite=lambda X: self._check_finite(X, allow_nan=True))

    def impute(self, X):
        """``X`` with every NaN replaced by the exact conditional mean ``E[x_mis | x_obs]``.

        ``E[x_m | x_o] = mu_m + C_mo C_oo^-1 (x_o - mu_o) = W_m zbar + mu_m`` with ``zbar``
        the posterior mean of ``z`` given the observed coordinates (``q x q`` work per
        row; see :mod:`latentzoo.linear._impute`). Observed entries are returned as given.

        Returns
        -------
        ndarray of shape (n_samples, n_features), float64
        """
        self._check_fitted()
        X = self._validate_input(X, reset=False, allow_nan=True)
        return _impute.conditional_mean(X, self.W_, self.mean_, self.noise_variance_)

    def sample_imputations(self, X, n_imputations=5, random_state=None):
        """Multiple imputation: exact draws of the missing entries from ``p(x_mis | x_obs)``.

        The conditional is ``N(W_m zbar + mu_m, W_m Sigma_o W_m^T + sigma2 I)``
        (``Sigma_o = sigma2 M_o^-1``), drawn as ``x_m = W_m z + mu_m + sigma eps`` with
        ``z ~ p(z | x_o)`` (Rubin 1987's multiple imputation from the fitted model).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), NaN = missing
        n_imputations : int, default=5
        random_state : int, Generator or None

        Returns
        -------
        ndarray of shape (n_imputations, n_samples, n_features)
            Every draw equals ``X`` on its observed entries.
        """
        self._check_fitted()
        X = self._validate_input(X, reset=False, allow_nan=True)
        _check_count("n_imputations", n_imputations)
        rng = np.random.default_rng(random_state) if not isinstance(random_state, np.random.RandomState) \
            else random_state
        return _impute.conditional_samples(X, self.W_, self.mean_, self.noise_variance_, n_imputations, rng)

    @classmethod
    def _imputer_params(cls):
        """Parameters :class:`latentzoo.Imputer` gives PPCA unless told otherwise: EM, the
        only method that fits data with missing values."""
        return {"method": "em"}

    @classmethod
    def _imputer_grid(cls, n_samples, n_features):
        """The ``n_components`` :class:`latentzoo.Imputer` chooses among by held-out observed
        entries: 1, 2, 4, ... and ``d - 1`` (near-full PPCA is the Gaussian conditional
        imputation, which wins on strongly correlated tables), up to 32 (EM with missing values
        costs ``O(n d q^2)`` per iteration)."""
        top = min(n_features - 1, n_samples - 1, 32)
        qs = {2 ** k for k in range(6) if 2 ** k <= top} | ({n_features - 1} if 1 <= n_features - 1 <= top else set())
        return {"n_components": sorted(qs)} if qs else None

    def get_covariance(self):
        """Model covariance ``C = W W^T + sigma2 I`` (n_features, n_features)."""
        self._check_fitted()
        return self.W_ @ self.W_.T + self.noise_variance_ * np.eye(self.n_features_in_)

    def get_precision(self):
        """``C^-1 = (I - W M^-1 W^T) / sigma2`` by Woodbury (a ``q x q`` solve only)."""
        self._check_fitted()
        W, s2 = self.W_, self.noise_variance_
        M = W.T @ W + s2 * np.eye(W.shape[1])
        return (np.eye(W.shape[0]) - W @ linalg.solve(M, W.T, assume_a="pos")) / s2

    def sample(self, n_samples=1, random_state=None, *, mean=False):
        """Draw ``x = W z + mu + sigma eps`` with ``z ~ N(0, I_q)``, ``eps ~ N(0, I_d)``.

        ``mean=True`` returns the decoder means ``W z + mu`` of the same ``z`` instead
        (the same ``random_state`` gives the same ``z`` either way).
        """
        self._check_fitted()
        rng = np.random.default_rng(random_state) if not isinstance(random_state, np.random.RandomState) \
            else random_state
        z = rng.standard_normal((n_samples, self.n_components_))
        if mean:
            return z @ self.W_.T + self.mean_
        eps = rng.standard_normal((n_samples, self.n_features_in_))
        return z @ self.W_.T + self.mean_ + np.sqrt(self.noise_variance_) * eps

    # ------------------------------------------------------------------ persistence
    _fitted_arrays = ("W_", "mean_", "components_", "explained_variance_", "loglik_history_")
    _fitted_scalars = ("n_features_in_", "n_components_", "n_samples_", "noise_variance_", "n_iter_")

    @classmethod
    def _contract_params(cls):
        # scikit-learn's checks include 2-feature data, where q = 2 is not < n_features
        return {"n_components": 1}


def _check_count(name, v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
