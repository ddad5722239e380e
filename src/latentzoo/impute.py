"""``Imputer``: any rung of the ladder as a scikit-learn imputer (where ``SimpleImputer`` goes).

Every latentzoo model learns from data with missing entries (NaN) and has
``impute(X)``: PPCA the exact conditional mean ``E[x_mis | x_obs]``, the VAE its
importance-sampled estimate (MIWAE), the autoencoders their reconstruction. This module
wraps one of them in the transformer interface of :mod:`sklearn.impute`: ``fit`` learns
the model from incomplete data, ``transform`` fills the NaN of new data. It clones, takes
``set_params`` and grid searches like any estimator, and sits in a ``Pipeline``.

Two things make it a better imputer than the bare model, both decided on the training
data alone: hyperparameters chosen by how well the candidates recover observed entries
hidden on purpose (:mod:`latentzoo._impute_search`; PPCA's ``n_components`` by default),
and an average over several fits with different seeds for the models whose fit depends
on the seed (the neural ones), the pooled point estimate of multiple imputation (Rubin
1987) from an ensemble of networks (Gondara & Wang 2018, MIDA; Lakshminarayanan et al.
2017).
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.model_selection import ParameterGrid
from sklearn.utils import check_random_state

from ._impute_search import holdout_masks, validation_rmse
from ._validation import Callable_, Instance, Interval, Options
from .base import LatentModel
from .registry import MODELS, make_model

__all__ = ["Imputer"]


def _is_model_name(v) -> bool:
    return isinstance(v, str) and v in MODELS


def _is_grid(v) -> bool:
    if isinstance(v, dict):
        v = [v]
    return isinstance(v, list) and len(v) > 0 and all(isinstance(g, dict) for g in v)


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
    param_grid : dict, list of dicts, "auto" or None, default="auto"
        Candidate model parameters (as :class:`sklearn.model_selection.ParameterGrid`),
        one chosen at ``fit`` by the pooled RMSE on ``cv`` disjoint sets of
        ``validation_fraction`` of the *observed* entries, hidden from a fit of each
        candidate (:mod:`latentzoo._impute_search`); the model is then refitted on all of
        ``X`` with the best one. The entries to impute are never looked at. ``"auto"``:
        the model's own grid for a model given by name whose ``model_params`` do not set
        its parameters (PPCA: ``n_components`` in 1, 2, 4, ... and ``d - 1``, up to 32;
        the neural models have none, a fit each being costly), else no search.
    n_models : int or "auto", default="auto"
        Fits averaged: ``transform`` returns the mean of their imputations and
        :meth:`sample_imputations` pools their draws. Member ``j`` is the model with
        ``random_state = s + j`` (``s`` the model's integer ``random_state``, else drawn
        from ``random_state``). ``"auto"``: 1 for PPCA (EM finds the same optimum from
        any start, up to a rotation that leaves the imputation unchanged), 3 for the
        neural models (a network's imputation varies with its seed; averaging three was
        measured to lower the digits' RMSE by 5%, ``benchmarks/bench_impute.py``).
        Grid candidates are scored with one fit each.
    cv : int, default=3
        Disjoint held-out sets of observed entries in the search.
    validation_fraction : float, default=0.05
        Fraction of the observed entries each held-out set hides.
    random_state : int, RandomState or None, default=None
        Seeds the held-out sets (and the members' seeds when the model has none).

    Attributes
    ----------
    model_ : estimator
        The fitted model (the first member); ``model_.impute``,
        ``model_.sample_imputations`` (PPCA, VAE) and every other method of it are available.
    models_ : list of estimators
        The ``n_models`` fitted members.
    best_params_ : dict
        The parameters chosen by the search (empty without one).
    cv_results_ : dict or None
        ``params``, ``rmse`` (pooled held-out RMSE) and ``split_rmse`` per candidate.
    n_features_in_ : int

    See Also
    --------
    sklearn.impute.SimpleImputer, sklearn.impute.KNNImputer, sklearn.impute.IterativeImputer

    References
    ----------
    Tipping & Bishop (1999), Probabilistic principal component analysis, JRSS B 61(3).
    Mattei & Frellsen (2019), MIWAE: Deep generative modelling and imputation of
    incomplete data sets, ICML.
    Gondara & Wang (2018), MIDA: Multiple imputation using denoising autoencoders, PAKDD.
    Josse & Husson (2012), Selecting the number of components in PCA using
    cross-validation approximations, CSDA 56(6).

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
        "param_grid": [Options(("auto",)), Callable_(_is_grid, "a dict of parameter lists or a list of such dicts"),
                       None],
        "n_models": [Options(("auto",)), Interval("int", 1, None)],
        "cv": [Interval("int", 1, None)],
        "validation_fraction": [Interval("real", 0, 0.5, closed="neither")],
        "random_state": [Instance((int, np.integer, np.random.RandomState), "an int or a RandomState"), None],
    }

    def __init__(self, model="ppca", *, model_params=None, param_grid="auto", n_models="auto", cv=3,
                 validation_fraction=0.05, random_state=None):
        self.model = model
        self.model_params = model_params
        self.param_grid = param_grid
        self.n_models = n_models
        self.cv = cv
        self.validation_fraction = validation_fraction
        self.random_state = random_state

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

    def _grid(self, model, X):
        """The candidates searched, or None."""
        if self.param_grid != "auto":
            return None if self.param_grid is None else list(ParameterGrid(self.param_grid))
        hook = getattr(type(model), "_imputer_grid", None)
        if not isinstance(self.model, str) or hook is None:
            return None
        shape = X.shape if hasattr(X, "shape") else np.asarray(X).shape
        grid = hook(*shape) if len(shape) == 2 else None  # not a table: the model's fit says so
        if not grid or set(grid) & set(self.model_params or {}):
            return None  # the user set the parameter: no search
        return list(ParameterGrid(grid))

    def _members(self, model):
        n = self.n_models
        if n == "auto":
            n = int(getattr(type(model), "_imputer_n_models", 1))
        if n == 1:
            return [model]
        params = model.get_params(deep=False)
        if "random_state" not in params:
            return [clone(model) for _ in range(n)]
        s = params["random_state"]
        if not isinstance(s, (int, np.integer)) or isinstance(s, bool):
            s = int(check_random_state(self.random_state).randint(0, 2**31 - n))
        return [clone(model).set_params(random_state=int(s) + j) for j in range(n)]

    def fit(self, X, y=None):
        """Fit the model on ``X`` (NaN = missing); ``y`` is ignored. Returns ``self``."""
        model = self._make()
        if not hasattr(model, "impute"):
            raise ValueError(f"Imputer: {type(model).__name__} has no impute method")
        self.best_params_, self.cv_results_ = {}, None
        grid = self._grid(model, X)
        if grid:
            model = self._search(model, X, grid)
        members = [m.fit(X) for m in self._members(model)]
        self.models_ = members
        self.model_ = members[0]
        self.n_features_in_ = members[0].n_features_in_
        if hasattr(members[0], "feature_names_in_"):
            self.feature_names_in_ = members[0].feature_names_in_
        return self

    def _search(self, model, X, grid):
        from sklearn.utils.validation import check_array

        Xa = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan")
        masks = holdout_masks(Xa, self.validation_fraction, self.cv, np.random.default_rng(
            check_random_state(self.random_state).randint(0, 2**31 - 1)))
        scores, splits = [], []
        for params in grid:
            cand = clone(model).set_params(**params)
            rmse, per = validation_rmse(lambda Xv, c=cand: clone(c).fit(Xv).impute(Xv), Xa, masks)
            scores.append(rmse)
            splits.append(per)
        best = int(np.nanargmin(scores))
        self.cv_results_ = {"params": grid, "rmse": scores, "split_rmse": splits}
        self.best_params_ = dict(grid[best])
        return clone(model).set_params(**grid[best])

    def transform(self, X):
        """``X`` with every NaN replaced by the model's imputation (observed entries kept);
        with several members, the mean of theirs."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        out = self.models_[0].impute(X)
        if len(self.models_) > 1:
            miss = np.isnan(self.models_[0]._validate_input(X, reset=False, allow_nan=True, dtype=np.float64))
            fills = sum(m.impute(X)[miss] for m in self.models_[1:]) + out[miss]
            out[miss] = fills / len(self.models_)  # observed entries stay exactly as given
        return out

    def sample_imputations(self, X, n_imputations=5, random_state=None):
        """Multiple imputation from the fitted model (PPCA, VAE): (n_imputations, n, d);
        with several members, draw ``i`` comes from member ``i mod n_models``."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "model_")
        if not hasattr(self.model_, "sample_imputations"):
            raise ValueError(f"Imputer: {type(self.model_).__name__} draws no imputations "
                             "(multiple imputation needs a density model: 'ppca' or 'vae')")
        k = len(self.models_)
        if k == 1:
            return self.model_.sample_imputations(X, n_imputations, random_state=random_state)
        rs = check_random_state(random_state)
        parts = [m.sample_imputations(X, len(range(j, n_imputations, k)), random_state=int(rs.randint(0, 2**31 - 1)))
                 for j, m in enumerate(self.models_) if j < n_imputations]
        out = np.empty((n_imputations,) + parts[0].shape[1:])
        for j, p in enumerate(parts):
            out[j::k] = p
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
