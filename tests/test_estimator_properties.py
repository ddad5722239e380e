"""Property-based checks (hypothesis) of the estimator contract over random shapes and dtypes.

For every registered model with tiny settings: codes have shape (n, q) and a float dtype
and are finite, decodings have shape (n, d); a list of lists, a C-ordered and an
F-ordered array give the same codes as the array itself.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentzoo.registry import MODELS
from latentzoo.neural.base import NeuralEstimator

NAMES = list(MODELS)
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _make(name, n, d):
    spec = MODELS[name]
    params = {**spec.params, **spec.cls._contract_params()}
    if issubclass(spec.cls, NeuralEstimator):
        params.update(max_epochs=1, hidden=(4,), batch_size=16, validation_fraction=0.0)
    q = max(1, min(2, n, d - 1))  # PPCA needs q < d and q <= n; every model takes it
    return spec.cls(**{**params, "n_components": q}), q


@st.composite
def datasets(draw):
    n = draw(st.integers(2, 40))
    d = draw(st.integers(2, 8))
    dtype = draw(st.sampled_from(["float32", "float64", "int64"]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    if dtype == "int64":  # {0, 1}: in the support of every likelihood
        X = rng.integers(0, 2, size=(n, d))
        X[0] = 1 - X[1]  # no constant data set of two equal rows only
    return X.astype(dtype)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(X=datasets())
def test_shapes_dtypes_and_finiteness(name, X):
    n, d = X.shape
    est, q = _make(name, n, d)
    Z = est.fit(X).transform(X)
    assert Z.shape == (n, q) and np.issubdtype(Z.dtype, np.floating) and np.isfinite(Z).all()
    R = est.inverse_transform(Z)
    assert R.shape == (n, d) and np.isfinite(R).all()
    err = est.reconstruction_error(X, per_sample=True)
    assert err.shape == (n,) and np.all(err >= 0)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=8, deadline=None, derandomize=True)
@given(X=datasets())
def test_input_containers_and_memory_order_agree(name, X):
    n, d = X.shape
    est, _ = _make(name, n, d)
    est.fit(X)
    Z = est.transform(X)
    np.testing.assert_array_equal(est.transform(X.tolist()), est.transform(np.asarray(X, dtype=X.dtype)))
    np.testing.assert_allclose(est.transform(np.asfortranarray(X)), Z, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(est.transform(np.ascontiguousarray(X)), Z, rtol=1e-6, atol=1e-6)
    # fitting on the F-ordered copy gives the same model (within floating-point reordering)
    est_f, _ = _make(name, n, d)
    np.testing.assert_allclose(np.abs(est_f.fit(np.asfortranarray(X)).transform(X)), np.abs(Z), rtol=1e-5, atol=1e-5)
