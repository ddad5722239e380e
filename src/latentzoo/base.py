"""The estimator contract every latentzoo model follows, and the model registry.

Every model is a scikit-learn transformer: the constructor stores hyperparameters only,
``fit`` validates them (``_parameter_constraints``) and returns ``self``, learned state
ends in ``_``. :class:`LatentModel` adds what the ladder shares: input validation,
``reconstruction_error``, ``score`` as the mean of ``score_samples`` where a model
defines a log-likelihood, and safe persistence (:mod:`latentzoo.persistence`).
The model registry lives in :mod:`latentzoo.registry`.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._validation import check_finite, validate_params

__all__ = ["LatentModel", "latent_dim", "name_features", "UNNAMED_INPUT_WARNING"]


def latent_dim(model) -> int:
    """The number of latent dimensions ``q`` of a model: ``n_components_`` where a fit set
    it (PCA lowers a request its data cannot fill), else the ``n_components`` parameter.

    The one latent-width lookup (codes, prior draws, plots and the report all ask it).

    Examples
    --------
    >>> from latentzoo import PCA
    >>> latent_dim(PCA(n_components=3))
    3
    """
    q = getattr(model, "n_components_", None)
    if q is None:
        q = getattr(model, "n_components", None)
    if q is None:
        raise ValueError(f"cannot tell the latent dimension of {type(model).__name__} (no n_components)")
    return int(q)


#: scikit-learn's warning when a model fitted with feature names is given a plain array (the CLI and
#: the report pass arrays whose columns were checked against the names)
UNNAMED_INPUT_WARNING = "X does not have valid feature names"


def name_features(model, names) -> None:
    """Set a fitted ``model``'s ``feature_names_in_`` to ``names`` (one string per input
    feature), as scikit-learn's ``fit`` does from a DataFrame's columns; the data of a
    fit on an array (or a memory map) read from a table, an ``.h5ad`` or a Parquet file
    keep their names this way. ``names`` None leaves the model as it is.
    """
    if names is None:
        return
    names = [str(v) for v in names]
    if len(names) != model.n_features_in_:
        raise ValueError(f"{len(names)} feature names for a model of {model.n_features_in_} features")
    model.feature_names_in_ = np.asarray(names, dtype=object)


class LatentModel(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Mixin of the ladder: encode with ``transform``, decode with ``inverse_transform``.

    Subclasses implement ``fit``, ``transform``, ``inverse_transform`` and, where the
    model defines a density, ``score_samples`` (log-likelihood in nats per sample).

    Feature names follow scikit-learn: ``fit`` on a DataFrame sets ``feature_names_in_``
    (saved with the model), ``get_feature_names_out()`` names the latent units
    (``pca0, pca1, ...``) and ``set_output(transform="pandas")`` makes ``transform``
    return a DataFrame with those columns (and the input's index).
    """

    #: the attribute that proves the estimator is fitted
    _fitted_attr: str = "n_features_in_"

    # ------------------------------------------------------------------ capabilities
    # What the model can do, declared by its class (as torch.distributions declares
    # ``has_rsample``): evaluation, plots, the report and the CLI read these instead of
    # probing for methods. The common contract test checks each against the methods.
    #: ``score_samples(X)`` gives log p(x) in nats per sample
    has_density: ClassVar[bool] = False
    #: that log-likelihood is exact (closed form); otherwise it is importance-sampled
    #: (``score_samples(X, n_importance=k)``, with ``elbo(X)`` its evidence lower bound)
    exact_density: ClassVar[bool] = False
    #: ``sample(n)`` draws from the generative model, whose prior is p(z) = N(0, I)
    has_prior: ClassVar[bool] = False
    #: ``posterior(X)`` returns the encoder's distribution over z given x (a torch
    #: Distribution, batch shape (n,)) whose mean is ``transform(X)``
    has_posterior: ClassVar[bool] = False

    @property
    def _n_features_out(self) -> int:
        """Latent units, named by ``get_feature_names_out`` (an AttributeError before fit)."""
        if not hasattr(self, self._fitted_attr):
            raise AttributeError("not fitted")
        return latent_dim(self)

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        validate_params(self)

    def _validate_input(self, X, *, reset: bool, allow_nan: bool = False, dtype=np.float64,
                        min_samples: int = 1, finite: bool = True):
        """Validate ``X`` as a 2-D numeric array (and record ``n_features_in_`` on reset).

        NaN is rejected unless ``allow_nan``; inf always is. The error names the problem.
        ``finite=False`` leaves the finite check to the caller, which folds it into a pass
        over ``X`` it makes anyway and calls :meth:`_check_finite` where that pass saw a
        non-finite value (so the data are read once, not twice).
        """
        X = validate_data(
            self, X, reset=reset, dtype=dtype, ensure_all_finite=False,
            ensure_min_samples=min_samples,
        )
        if finite:
            self._check_finite(X, allow_nan=allow_nan)
        return X

    @staticmethod
    def _check_finite(X, *, allow_nan: bool = False) -> None:
        """The element-wise finite scan of :meth:`_validate_input` (raises naming the entry)."""
        check_finite(X, allow_nan=allow_nan, nan_hint=(" (missing values as NaN: PPCA(method='em'), the "
                                                               "autoencoders and the VAE fit them)"))

    def _check_fitted(self) -> None:
        check_is_fitted(self, self._fitted_attr)

    def _validate_codes(self, Z, *, dtype=np.float64) -> np.ndarray:
        """Latent codes for ``inverse_transform``: fitted model, 2-D numeric ``Z`` with one
        column per latent dimension (``n_components_`` where fitted, else the parameter),
        finite; the error names the expected shape."""
        self._check_fitted()
        n_components = latent_dim(self)
        Z = check_array(Z, dtype=dtype, ensure_all_finite=False, input_name="Z")
        if Z.shape[1] != n_components:
            raise ValueError(f"{type(self).__name__}.inverse_transform: Z must have shape "
                             f"(n_samples, {n_components}) (n_components={n_components}), got {Z.shape}")
        check_finite(Z, what="Z")
        return Z

    # ------------------------------------------------------------------ shared API
    def reconstruction_error(self, X, *, per_sample: bool = False):
        """Squared reconstruction error ``||x - decode(encode(x))||^2``, summed over features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        per_sample : bool, default=False
            If True return the error of each row, else their mean.

        Returns
        -------
        float or ndarray of shape (n_samples,)
        """
        self._check_fitted()
        X = self._validate_input(X, reset=False)
        R = np.asarray(self.inverse_transform(self.transform(X)), dtype=np.float64)
        err = ((X - R) ** 2).sum(axis=1)
        return err if per_sample else float(err.mean())

    def score(self, X, y=None) -> float:
        """Higher is better: mean log-likelihood (nats per sample) where the model has one.

        Models with a density define ``score_samples``; the others (PCA, the plain
        autoencoders) score by the negative mean squared reconstruction error, so that
        ``GridSearchCV`` can select their hyperparameters.
        """
        if self.has_density:
            return float(np.mean(self.score_samples(X)))
        return -self.reconstruction_error(X)

    def save(self, path) -> None:
        """Save to one ``.safetensors`` file (weights) with JSON metadata; no pickle.

        The file is written atomically (temporary file, then rename). See
        :func:`latentzoo.load`.
        """
        from .persistence import save

        save(self, path)

    #: fitted arrays (saved as tensors) and fitted scalars (saved as JSON) that make up the
    #: fitted state; attributes a fit did not set (e.g. ``n_iter_`` of a closed form) are skipped
    _fitted_arrays: tuple[str, ...] = ()
    _fitted_scalars: tuple[str, ...] = ()

    def _get_fitted_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Arrays (numpy or torch) and JSON-able metadata of the fit, for :func:`save`."""
        tensors = {k: getattr(self, k) for k in self._fitted_arrays if hasattr(self, k)}
        meta = {k: getattr(self, k) for k in self._fitted_scalars if hasattr(self, k)}
        return tensors, meta

    def _set_fitted_state(self, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
        """Restore what :meth:`_get_fitted_state` saved (arrays as float64 numpy)."""
        for k, v in tensors.items():
            setattr(self, k, np.asarray(v, dtype=np.float64))
        for k, v in meta.items():
            setattr(self, k, v)

    @classmethod
    def _contract_params(cls) -> dict[str, Any]:
        """Parameters that make a fast instance for the common contract test."""
        return {}
