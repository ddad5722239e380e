"""The common contract, written once: every registered model joins it by registration.

A model registered with :func:`latentzoo.registry.register_model` is checked here for
scikit-learn's estimator contract (constructor stores parameters, clone, get/set_params,
Pipeline, GridSearchCV, scikit-learn's own ``check_estimator`` checks) and for a
save/load round trip that gives identical outputs.
"""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import latentzoo
import torch
from latentzoo.base import LatentModel
from latentzoo.registry import MODELS

# one class may be registered under several preset names: check each class once
_CLASSES = {}
for _spec in MODELS.values():
    _CLASSES.setdefault(_spec.cls, _spec)
SPECS = list(_CLASSES.values())
IDS = [s.cls.__name__ for s in SPECS]


def _fast(spec, **kw):
    return spec.cls(**{**spec.params, **spec.cls._contract_params(), **kw})


def _data(n=60, d=6, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 2))
    A = rng.normal(size=(2, d))
    X = Z @ A + 0.1 * rng.normal(size=(n, d))
    # squash to [0, 1] so Bernoulli likelihoods accept it too
    return (1 / (1 + np.exp(-X))).astype(np.float64)


def test_every_public_model_class_is_registered():
    # the contract below runs over the registry: a public model missing from it would go unchecked
    public = [getattr(latentzoo, n) for n in latentzoo.__all__]
    models = {c for c in public if isinstance(c, type) and issubclass(c, LatentModel)}
    assert models and models <= {s.cls for s in MODELS.values()}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_declared_capabilities_match_the_model(spec):
    """What a class declares (has_density, has_prior, has_posterior) is what it does."""
    X = _data()
    cls = spec.cls
    est = _fast(spec, n_components=2).fit(X)
    assert cls.has_density == callable(getattr(cls, "score_samples", None))
    assert cls.has_prior == callable(getattr(cls, "sample", None))
    assert cls.has_posterior == callable(getattr(cls, "posterior", None))
    if cls.has_density:
        ll = est.score_samples(X)
        assert ll.shape == (len(X),) and np.isfinite(ll).all()
        if not cls.exact_density:  # importance-sampled: the ELBO bounds it from below (up to MC noise)
            assert callable(getattr(cls, "elbo", None))
            assert est.score_samples(X, n_importance=200).mean() >= est.elbo(X).mean() - 0.5
    else:  # no density: score is the negative reconstruction error (what GridSearchCV maximises)
        R = est.inverse_transform(est.transform(X))
        assert est.score(X) == pytest.approx(-((X - R) ** 2).sum(axis=1).mean(), rel=1e-5)
    if cls.has_prior:
        S = est.sample(7, random_state=0)
        assert S.shape == (7, X.shape[1]) and np.isfinite(S).all()
    if cls.has_posterior:
        q = est.posterior(X[:9])
        assert isinstance(q, torch.distributions.Distribution) and q.batch_shape == (9,)
        np.testing.assert_allclose(q.mean.numpy(), est.transform(X[:9]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_clone_and_set_params(spec):
    est = _fast(spec, n_components=3)
    c = clone(est)
    assert c.get_params() == est.get_params()
    assert c.set_params(n_components=1) is c
    assert c.n_components == 1 and est.n_components == 3


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_fit_returns_self_and_shapes(spec):
    X = _data()
    est = _fast(spec, n_components=2)
    assert est.fit(X) is est
    Z = est.transform(X)
    assert Z.shape == (X.shape[0], 2)
    R = est.inverse_transform(Z)
    assert R.shape == X.shape
    assert np.isfinite(est.score(X))
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :-1])


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_unfitted_use_is_a_clear_error(spec):
    from sklearn.exceptions import NotFittedError

    est = _fast(spec)
    with pytest.raises(NotFittedError, match="not fitted"):
        est.transform(_data())


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_pipeline_and_grid_search(spec):
    X = _data()
    pipe = Pipeline([("scale", MinMaxScaler()), ("model", _fast(spec))])
    Z = pipe.fit_transform(X)
    assert Z.shape[0] == X.shape[0]
    gs = GridSearchCV(_fast(spec), {"n_components": [1, 2]}, cv=2)
    gs.fit(X)
    assert gs.best_params_["n_components"] in (1, 2)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_save_load_round_trip(spec, tmp_path):
    X = _data()
    est = _fast(spec, n_components=2).fit(X)
    path = tmp_path / "model.safetensors"
    est.save(path)
    back = latentzoo.load(path)
    assert type(back) is type(est)
    assert back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.transform(X), est.transform(X))
    np.testing.assert_array_equal(back.inverse_transform(est.transform(X)), est.inverse_transform(est.transform(X)))
    assert not [p for p in tmp_path.iterdir() if p.name != "model.safetensors"], "temporary file left behind"


def _expected_failures(est):
    return getattr(est, "_expected_failed_checks", lambda: {})()


@parametrize_with_checks([_fast(s) for s in SPECS], expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_feature_names_and_pandas_output(spec, tmp_path):
    pd = pytest.importorskip("pandas")
    X = _data()
    cols = [f"gene_{j}" for j in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols, index=[f"s{i}" for i in range(len(X))])
    est = _fast(spec, n_components=2).fit(df)
    assert list(est.feature_names_in_) == cols  # scikit-learn's convention, from the DataFrame
    prefix = type(est).__name__.lower()
    assert list(est.get_feature_names_out()) == [f"{prefix}0", f"{prefix}1"]
    plain = est.transform(df)
    Z = est.set_output(transform="pandas").transform(df)
    assert isinstance(Z, pd.DataFrame) and list(Z.columns) == [f"{prefix}0", f"{prefix}1"]
    assert list(Z.index) == list(df.index)  # row IDs kept
    np.testing.assert_array_equal(Z.to_numpy(), plain)
    np.testing.assert_allclose(est.inverse_transform(Z), est.inverse_transform(plain))
    with pytest.raises(ValueError, match="feature names"):
        est.transform(df.rename(columns={cols[0]: "other"}))
    est.save(tmp_path / "m.safetensors")
    back = latentzoo.load(tmp_path / "m.safetensors")
    assert list(back.feature_names_in_) == cols
    np.testing.assert_array_equal(back.transform(df), plain)
