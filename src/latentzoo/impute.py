"""``Imputer``: any rung of the ladder as a scikit-learn imputer (where ``SimpleImputer`` goes).

Every latentzoo model learns from data with missing entries (NaN) and has
``impute(X)``: PPCA the exact conditional mean ``E[x_mis | x_obs]``, the VAE its
importance-sampled estimate (MIWAE), the autoencoders their reconstruction. This module
wraps one of them in the transformer interface of :mod:`sklearn.impute`: ``fit`` learns
the model from incomplete data, ``transform`` fills the NaN of new data. It clones, takes
``set_params`` and grid searches like any estimator, and sits in a ``Pipeline``.
"""
from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin, clone

from ._validation import Callable_, Instance
from .base import LatentModel
from .registry import MODELS, make_model

__all__ = ["Imputer"]


def _is_model_name(v) -> bool:
    return isinstance(v, str) and v in MODELS


class Imputer(TransformerMixin, BaseEstimator):
    """Fill missing values (NaN) with a latent-variable model fitted on the incomplete data.

    Parameters
    ----------
    model : str or estimator, default="ppca"
        A registered model name (``"ppca"``, ``"vae"``, ``"dae"``, ...; see
        :data:`latentzoo.MODELS`) or an unfitted latentzoo estimator (cloned at ``fit``).
    model_params : dict, optional
        Constructor parameters of a model given by name. They override the model's own
        imputation defaults (``_imputer_params``: PPCA fits by EM, the only method that
        accepts NaN; the neural models train quietly, the VAE with a Gaussian decoder of
        learned variance, since imputed data are rarely in [0, 1]).

    Attributes
    ----------
    model_ : estimator
        The fitted model; ``model_.impute``, ``model_.sample_imputations`` (PPCA, VAE)
        and every other method of it are available.
    n_features_in_ : int

    See Also
    --------
    sklearn.impute.SimpleImputer, sklearn.impute.KNNImputer, sklearn.impute.IterativeImputer

    References
    ----------
    Tipping & Bishop (1999), Probabilistic principal component analysis, JRSS B 61(3).
    Mattei & Frellsen (2019), MIWAE: Deep generative modelling and imputation of
    incomplete data sets, ICML.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> from latentzoo import Imputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 4)) @ rng.normal(size=(4, 4))
    >>> X[rng.random(X.shape) < 0.2] = np.nan
    >>> Imputer("ppca", model_params={"n_components": 2, "random_state": 0}).fit_transform(X).shape
    (100, 4)
    >>> pipe = make_pipeline(Imputer("ppca", model_params={"n_components": 2}), LogisticRegression())
    """

    _parameter_constraints = {
        "model": [Callable_(_is_model_name, "a registered model name, e.g. 'ppca', 'vae', 'dae'"),
                  Instance((LatentModel,), "a latentzoo estimator")],
        "model_params": [Instance((dict,), "a dict of the model's parameters"), None],
    }

    def __init__(self, model="ppca", *, model_params=None):
        self.model = model
        self.model_params = model_params

    def _make(self):
        from ._validation import validate_params

        validate_params(self)
        if isinstance(self.model, str):
            cls = MODELS[self.model].cls
            defaults = cls._imputer_params() if hasattr(cls, "_imputer_params") else {}
            return make_model(self.model, **{**defaults, **(self.model_params or {})})
        if self.model_params:
            raise ValueError("Imputer: model_params applies to a model given by name; set the "
                             "parameters on the estimator passed as model instead")
        return clone(self.model)

    def fit(self, X, y=None):
        """Fit the model on ``X`` (NaN = missing); ``y`` is ignored. Returns ``self``."""
        model = self._make()
        if not hasattr(model, "impute"):
            raise ValueError(f"Imputer: {type(model).__name__} has no impute method")
        model.fit(X)
        self.model_ = model
        self.n_features_in_ = model.n_features_in_
        if hasattr(model, "feature_names_in_"):
            self.feature_names_in_ = model.feature_names_in_
        return self

    def transform(self, X):
        """``X`` with every NaN replaced by the model's imputation (observed entries kept)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        return self.model_.impute(X)

    def sample_imputations(self, X, n_imputations=5, random_state=None):
        """Multiple imputation from the fitted model (PPCA, VAE): (n_imputations, n, d)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        if not hasattr(self.model_, "sample_imputations"):
            raise ValueError(f"Imputer: {type(self.model_).__name__} draws no imputations "
                             "(multiple imputation needs a density model: 'ppca' or 'vae')")
        return self.model_.sample_imputations(X, n_imputations, random_state=random_state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
