"""latentzoo.Imputer: the ladder where scikit-learn's SimpleImputer goes."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from latentzoo import PPCA, Imputer
from latentzoo.base import LatentModel


def _data(n=200, d=6, seed=0, rate=0.25):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 2))
    X = Z @ rng.normal(size=(2, d)) + 0.3 * rng.normal(size=(n, d))
    y = (Z[:, 0] > 0).astype(int)
    Xm = X.copy()
    Xm[rng.random(X.shape) < rate] = np.nan
    return X, Xm, y


def test_ppca_imputer_is_the_fitted_models_conditional_mean_and_beats_the_mean():
    X, Xm, _ = _data()
    imp = Imputer("ppca", model_params={"n_components": 2, "random_state": 0}).fit(Xm)
    assert imp.model_.method == "em"  # the imputation default: the method that fits NaN
    out = imp.transform(Xm)
    np.testing.assert_array_equal(out, imp.model_.impute(Xm))
    miss = np.isnan(Xm)
    rmse = np.sqrt(np.mean((out[miss] - X[miss]) ** 2))
    mean = np.sqrt(np.mean((SimpleImputer().fit_transform(Xm)[miss] - X[miss]) ** 2))
    assert rmse < 0.6 * mean


@pytest.mark.parametrize("model", ["ppca", "dae", "vae"])
def test_imputer_in_a_pipeline_with_a_classifier(model):
    X, Xm, y = _data()
    params = {"n_components": 2, "random_state": 0}
    if model != "ppca":
        params.update(hidden=(16,), max_epochs=10, device="cpu")
    pipe = make_pipeline(Imputer(model, model_params=params), LogisticRegression())
    pipe.fit(Xm, y)
    assert pipe.score(Xm, y) > 0.7
    assert np.isfinite(pipe[0].transform(Xm)).all()


def test_imputer_clones_grid_searches_and_takes_an_estimator():
    X, Xm, y = _data()
    imp = Imputer("ppca", model_params={"n_components": 1})
    assert clone(imp).get_params() == imp.get_params()
    grid = GridSearchCV(make_pipeline(Imputer("ppca"), LogisticRegression()),
                        {"imputer__model_params": [{"n_components": 1}, {"n_components": 2}]}, cv=2)
    grid.fit(Xm, y)
    assert grid.best_params_["imputer__model_params"]["n_components"] in (1, 2)
    est = PPCA(2, method="em", random_state=0)
    imp = Imputer(est).fit(Xm)
    assert imp.model_ is not est and not hasattr(est, "W_")  # cloned, the given one untouched
    np.testing.assert_allclose(imp.transform(Xm), est.fit(Xm).impute(Xm))
    draws = imp.sample_imputations(Xm[:5], 3, random_state=0)
    assert draws.shape == (3, 5, 6)


def test_imputer_errors_are_clear():
    _, Xm, _ = _data()
    with pytest.raises(ValueError, match="registered model name"):
        Imputer("nope").fit(Xm)
    with pytest.raises(ValueError, match="missing values as NaN: PPCA"):  # PCA imputes, but fits complete data
        Imputer("pca").fit(Xm)

    class NoImpute(LatentModel):
        def fit(self, X, y=None):
            return self

    with pytest.raises(ValueError, match="NoImpute has no impute method"):
        Imputer(NoImpute()).fit(Xm)
    with pytest.raises(ValueError, match="model_params applies to a model given by name"):
        Imputer(PPCA(1), model_params={"n_components": 2}).fit(Xm)
    imp = Imputer("dae", model_params={"hidden": (4,), "max_epochs": 1, "n_components": 1}).fit(Xm)
    with pytest.raises(ValueError, match="draws no imputations"):
        imp.sample_imputations(Xm)


@parametrize_with_checks([Imputer("ppca", model_params={"n_components": 1, "random_state": 0}),
                          Imputer("ppca", random_state=0)])  # the default: n_components chosen by held-out entries
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
