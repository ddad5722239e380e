"""The bad-input catalogue (Python API): every misuse gives a clear error, never garbage.

Each case asserts the exception type AND a fragment of the message that names the
problem (the parameter, the file, the row/column), and, where a file is written, that no
partial output is left in the folder. Model cases run over every registered model (one
instance per preset name) with the fast settings of ``_contract_params``.
"""
import gzip
import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sklearn.exceptions import NotFittedError

import latentzoo
from latentzoo.registry import MODELS
from latentzoo.neural.base import NeuralEstimator
from latentzoo.neural.engine import TrainingDiverged

NAMES = list(MODELS)
NEURAL = [n for n in NAMES if issubclass(MODELS[n].cls, NeuralEstimator)]
LINEAR = [n for n in NAMES if n not in NEURAL]


def fast(name, **kw):
    spec = MODELS[name]
    return spec.cls(**{**spec.params, **spec.cls._contract_params(), **kw})


def data(n=24, d=5, seed=0):
    return np.random.default_rng(seed).random((n, d))  # in [0, 1]: every likelihood accepts it


@pytest.fixture(scope="module")
def fitted():
    """One fitted instance per registered model (fitted once: the catalogue only reads them)."""
    return {name: fast(name).fit(data()) for name in NAMES}


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------- bad X at fit
BAD_X = {
    "nan": (lambda X: np.where(X > 0.8, np.nan, X), ValueError, r"NaN first at row \d+, column \d+"),
    "inf": (lambda X: np.where(X > 0.8, np.inf, X), ValueError, r"inf first at row \d+, column \d+"),
    "neg-inf": (lambda X: np.where(X > 0.8, -np.inf, X), ValueError, "inf first at row"),
    "1-d": (lambda X: X[:, 0], ValueError, "Expected 2D array"),
    "3-d": (lambda X: X.reshape(2, 12, 5), ValueError, "dim 3"),
    "0-rows": (lambda X: X[:0], ValueError, "0 sample"),
    "0-columns": (lambda X: X[:, :0], ValueError, "0 feature"),
    "strings": (lambda X: np.array([["0.1", "abc"]] * 10), ValueError, "abc"),
    "object-none": (lambda X: np.array([[0.1, None]] * 10, dtype=object), ValueError, "NaN first at row 0, column 1"),
    "complex": (lambda X: X + 1j, ValueError, "Complex data not supported"),
    "scalar": (lambda X: 3.0, ValueError, "Expected 2D array"),
    "ragged-list": (lambda X: [[0.1, 0.2], [0.3]], ValueError, "inhomogeneous"),
}


#: cases that are missing values (not errors) for models fitting data with NaN
MISSING_CASES = ("nan", "object-none")


def _accepts_nan(est):
    return est.__sklearn_tags__().input_tags.allow_nan


@pytest.mark.parametrize("case", list(BAD_X), ids=list(BAD_X))
@pytest.mark.parametrize("name", NAMES)
def test_bad_X_at_fit_is_a_clear_error(name, case):
    make, exc, fragment = BAD_X[case]
    est = fast(name)
    if case in MISSING_CASES and _accepts_nan(est):
        # NaN = missing for these models: a column with nothing observed is the error
        if case == "nan":
            assert np.isfinite(est.fit(make(data())).transform(data())).all()
            return
        fragment = "column 1 of X has no observed value"
    with pytest.raises(exc, match=fragment):
        est.fit(make(data()))
    with pytest.raises(NotFittedError):  # a failed fit leaves an unfitted estimator, not a broken one
        est.transform(data())


@pytest.mark.parametrize("name", NAMES)
def test_single_sample(name):
    """One row: the linear models need two (a covariance), the networks train on it."""
    X = data(n=1)
    est = fast(name)
    if name in LINEAR:
        with pytest.raises(ValueError, match="minimum of 2 is required"):
            est.fit(X)
    else:
        Z = est.fit(X).transform(X)
        assert Z.shape == (1, est.n_components) and np.isfinite(Z).all()


@pytest.mark.parametrize("name", NAMES)
def test_constant_data_fits_without_nan(name):
    """All-constant data (zero variance in every direction) and one constant column."""
    for X in (np.full((20, 4), 0.5), np.c_[data(20, 3), np.full(20, 0.25)]):
        est = fast(name, n_components=1).fit(X)
        Z = est.transform(X)
        R = est.inverse_transform(Z)
        assert np.isfinite(Z).all() and np.isfinite(R).all()
        assert np.isfinite(est.score(X))
        if name in LINEAR:  # a linear fit reproduces constant data exactly
            np.testing.assert_allclose(R[:, -1], X[:, -1], atol=1e-12)
    if name == "ppca":  # zero-variance directions: the noise variance is floored, C stays invertible
        assert est.noise_variance_ > 0 and np.isfinite(est.score_samples(X)).all()


@pytest.mark.parametrize("dtype", [np.bool_, np.int64, np.uint8, np.float32], ids=["bool", "int64", "uint8", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_numeric_dtypes_are_accepted(name, dtype):
    X = (data() > 0.5) if dtype is np.bool_ else (data() * (1 if dtype is np.float32 else 2)).astype(dtype)
    if name in NEURAL and np.issubdtype(dtype, np.integer):
        X = X.clip(0, 1)  # integer counts {0, 1}: in range for a Bernoulli likelihood too
    est = fast(name).fit(X)
    Z = est.transform(X)
    assert np.issubdtype(Z.dtype, np.floating) and np.isfinite(Z).all()


@pytest.mark.parametrize("scale", [1e30, 1e-30], ids=["1e30", "1e-30"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", NAMES)
def test_extreme_magnitudes_give_finite_results_or_a_clear_error(name, dtype, scale):
    """Never a silent NaN: either every output is finite, or fit says what went wrong."""
    X = (data() * scale).astype(dtype)
    est = fast(name)
    try:
        est.fit(X)
    except TrainingDiverged as e:  # networks: the loss overflows; the message says what to do
        assert "rescale the data" in str(e) and not hasattr(est, "module_")
        return
    Z = est.transform(X)
    assert np.isfinite(Z).all() and np.isfinite(est.inverse_transform(Z)).all()
    if hasattr(est, "score_samples") and name in LINEAR:
        assert np.isfinite(est.score_samples(X)).all()


@pytest.mark.parametrize("name", LINEAR)
def test_linear_fit_at_1e30_matches_the_rescaled_fit(name):
    """Oracle: PCA/PPCA are scale-equivariant, so 1e30 * X has the principal axes of X."""
    X = data(40, 5)
    for dtype in (np.float32, np.float64):
        big = fast(name).fit((X * 1e30).astype(dtype))
        ref = fast(name).fit(X)
        np.testing.assert_allclose(np.abs(big.components_), np.abs(ref.components_), atol=1e-4)


@pytest.mark.parametrize("name", LINEAR)
def test_sums_of_squares_overflowing_float64_is_a_clear_error(name):
    with pytest.raises(ValueError, match=r"too large .*rescale the data"):
        fast(name).fit(data() * 1e200)
    with pytest.raises(ValueError, match=r"too large .*rescale the data"):  # n < d route (Gram matrix)
        fast(name, n_components=1).fit(data(3, 8) * 1e200)


# ---------------------------------------------------------------------------- bad X after fit
@pytest.mark.parametrize("name", NAMES)
def test_wrong_number_of_features_at_transform(name, fitted):
    est = fitted[name]
    for method in ("transform", "reconstruction_error", "score"):
        with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 5 features"):
            getattr(est, method)(data(d=3))


@pytest.mark.parametrize("name", NAMES)
def test_1d_and_empty_input_at_transform(name, fitted):
    est = fitted[name]
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.transform(data()[0])
    with pytest.raises(ValueError, match="0 sample"):
        est.transform(data()[:0])


@pytest.mark.parametrize("name", NAMES)
def test_nan_and_inf_after_fit(name, fitted):
    est = fitted[name]
    Xnan = np.where(data() > 0.8, np.nan, data())
    if name == "pca":  # the others take NaN as missing (PPCA marginalises, the networks fill)
        with pytest.raises(ValueError, match="NaN first at row"):
            est.transform(Xnan)
    else:
        assert np.isfinite(est.transform(Xnan)).all()
    with pytest.raises(ValueError, match="NaN first at row"):
        est.reconstruction_error(Xnan)
    with pytest.raises(ValueError, match="inf first at row"):
        est.transform(np.where(data() > 0.8, np.inf, data()))


@pytest.mark.parametrize("name", NAMES)
def test_bad_codes_at_inverse_transform(name, fitted):
    est = fitted[name]
    q = est.n_components
    with pytest.raises(ValueError, match=rf"\b{q}\b"):  # the message names the expected width
        est.inverse_transform(np.zeros((3, q + 2)))
    with pytest.raises(ValueError, match="NaN"):
        est.inverse_transform(np.full((3, q), np.nan))
    with pytest.raises(ValueError, match="inf"):
        est.inverse_transform(np.full((3, q), np.inf))


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_use(name, tmp_path):
    est = fast(name)
    for call in (lambda: est.transform(data()), lambda: est.inverse_transform(np.zeros((2, 2))),
                 lambda: est.reconstruction_error(data()), lambda: est.score(data()),
                 lambda: est.save(tmp_path / "m.safetensors")):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()
    assert _listing(tmp_path) == []


# ---------------------------------------------------------------------------- bad parameters
BAD_PARAMS = [
    ("n_components", 0, "n_components"), ("n_components", -1, "n_components"),
    ("n_components", "two", "n_components"), ("n_components", 2.5, "n_components"),
    ("n_components", True, "n_components"),
]
NEURAL_BAD = [
    ("lr", -1, "lr"), ("lr", 0, "lr"), ("lr", float("nan"), "lr"), ("lr", "fast", "lr"),
    ("batch_size", 0, "batch_size"), ("batch_size", 2.5, "batch_size"),
    ("max_epochs", "ten", "max_epochs"), ("max_epochs", 0, "max_epochs"),
    ("validation_fraction", 1.0, "validation_fraction"), ("validation_fraction", -0.1, "validation_fraction"),
    ("patience", 0, "patience"), ("device", "tpu", "device"), ("precision", "16", "precision"),
    ("random_state", -1, "random_state"), ("checkpoint_every", 0, "checkpoint_every"),
    ("hidden", (0,), "hidden"), ("hidden", "8", "hidden"), ("architecture", "rnn", "architecture"),
    ("activation", "swishy", "activation"), ("likelihood", "poisson", "likelihood"),
    ("likelihood", "gaussian:-1", "likelihood"), ("image_shape", (8,), "image_shape"),
]
AE_BAD = [
    ("noise", "gaussian:-1", "noise"), ("noise", "gaussian:abc", "noise"), ("noise", "blur:0.1", "noise"),
    ("noise", "masking:1.5", "noise"), ("contractive", -1, "contractive"), ("contractive", "big", "contractive"),
]
VAE_BAD = [
    ("beta", -1, "beta"), ("beta", 0, "beta"), ("n_particles", 0, "n_particles"), ("objective", "vi", "objective"),
    ("kl_warmup", -1, "kl_warmup"),
]
LINEAR_BAD = {"ppca": [("method", "svd", "method"), ("tol", -1, "tol"), ("max_iter", 0, "max_iter")],
              "pca": [("whiten", "yes", "whiten")]}


def _param_cases():
    for name in NAMES:
        cls = MODELS[name].cls
        cases = list(BAD_PARAMS) + LINEAR_BAD.get(name, [])
        if name in NEURAL:
            cases += NEURAL_BAD + (AE_BAD if cls.__name__ == "Autoencoder" else VAE_BAD)
        for p, v, frag in cases:
            yield pytest.param(name, p, v, frag, id=f"{name}-{p}={v!r}")


@pytest.mark.parametrize("name, param, value, fragment", list(_param_cases()))
def test_bad_parameter_is_named_at_fit(name, param, value, fragment):
    est = fast(name, **{param: value})
    with pytest.raises(ValueError, match=rf"invalid value for parameter '{fragment}'"):
        est.fit(data())
    with pytest.raises(NotFittedError):
        est.transform(data())


@pytest.mark.parametrize("name", NAMES)
def test_n_components_larger_than_features(name):
    X = data(d=4)
    if name in LINEAR:
        with pytest.raises(ValueError, match=r"n_components=9 must be <="):
            fast(name, n_components=9).fit(X)
    else:  # an overcomplete code is a legitimate (regularised) autoencoder: it must still work
        Z = fast(name, n_components=9).fit(X).transform(X)
        assert Z.shape == (len(X), 9) and np.isfinite(Z).all()


def test_ppca_needs_fewer_components_than_features():
    with pytest.raises(ValueError, match="< n_features = 4"):
        fast("ppca", n_components=4).fit(data(d=4))


@pytest.mark.parametrize("name", ["unknown", "PCA ", "", "__import__('os')"])
def test_unknown_model_name(name):
    with pytest.raises(ValueError, match="unknown model .*known models: pca"):
        latentzoo.make_model(name)


@pytest.mark.parametrize("name", NEURAL)
def test_bernoulli_likelihood_needs_unit_interval(name):
    est = fast(name, likelihood="bernoulli")
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\].*MinMaxScaler"):
        est.fit(data() * 3 - 1)
    assert not hasattr(est, "module_")


@pytest.mark.parametrize("name", NEURAL)
def test_conv_image_shape_mismatch(name):
    X = data(20, 64)
    with pytest.raises(ValueError, match="image_shape .* 49 pixels but the data have 64 features"):
        fast(name, architecture="conv", image_shape=(7, 7)).fit(X)
    with pytest.raises(ValueError, match="needs the image shape"):
        fast(name, architecture="conv").fit(X)


@pytest.mark.parametrize("name", ["ae", "vae"])
def test_checkpoint_dir_that_is_a_file_fails_before_training(name, tmp_path):
    f = tmp_path / "not-a-folder"
    f.write_text("x")
    with pytest.raises(ValueError, match="checkpoint_dir=.*is a file, not a folder"):
        fast(name, checkpoint_dir=str(f)).fit(data())
    with pytest.raises(ValueError, match="checkpoint_dir=.*cannot be created"):
        fast(name, checkpoint_dir=str(f / "sub")).fit(data())
    with pytest.raises(ValueError, match="resume=True.*checkpoint_dir"):
        fast(name).fit(data(), resume=True)
    assert _listing(tmp_path) == ["not-a-folder"]


@pytest.mark.parametrize("name", ["ae", "vae"])
def test_huge_network_is_refused_with_its_memory_figure_before_allocating(name, monkeypatch):
    """``hidden=(10**8,)`` is counted on the meta device and refused, not allocated and killed."""
    from latentzoo.neural import resources

    monkeypatch.setattr(resources, "available_memory", lambda device: 16 * 10**9)  # the same on any machine
    h, d, q = 10**8, 5, 2
    code = 2 * q if name == "vae" else q  # the VAE's encoder gives location and scale
    n = (d * h + h + h * code + code) + (q * h + h + h * d + d)  # Linear(d, h), Linear(h, code); decoder back
    est = fast(name, hidden=(h,), likelihood="gaussian")
    weights, need = f"{4 * n / 1e9:.3g} GB", f"{5 * 4 * n / 1e9:.3g} GB"  # float32; 5 copies while training
    with pytest.raises(ValueError, match=rf"has {n:,} parameters \({weights} of weights\): training needs about "
                                         rf"{need} .* but cpu has 16 GB available; use smaller hidden layers"):
        est.fit(data())
    assert not hasattr(est, "module_")
    fast(name).fit(data())  # an ordinary network passes the same guard


def test_the_guard_counts_every_parameter_of_a_conv_network():
    """Oracle: the meta-device count equals the real network's, for the conv builder too."""
    from latentzoo.neural.resources import parameter_count

    est = fast("vae", architecture="conv", image_shape=(8, 8), hidden=(4, 8))
    from latentzoo.neural.likelihoods import make_likelihood

    build = lambda: est._build_module(64, make_likelihood("gaussian"))  # noqa: E731
    n, nbytes = parameter_count(build)
    real = build()
    assert n == sum(p.numel() for p in real.parameters()) and nbytes >= 4 * n


# ---------------------------------------------------------------------------- misleading results
def test_degenerate_ppca_warns_and_says_so():
    """n_components >= n_samples - 1: every direction of the centred training rows is kept, the
    noise variance falls to its floor and a held-out log-likelihood is ~-1e16 (meaningless)."""
    from latentzoo.linear import DegenerateFitWarning

    X, X_new = data(5, 10), data(5, 10, seed=1)
    with pytest.warns(DegenerateFitWarning, match=r"n_components=4 >= n_samples - 1 = 4.*degenerate_ = True"):
        est = fast("ppca", n_components=4).fit(X)
    assert est.degenerate_ and est.noise_variance_ < 1e-12 and est.score(X_new) < -1e10  # why it must warn
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateFitWarning)
        ok = fast("ppca", n_components=3).fit(X)  # n - 2 components: a proper fit, no warning
    assert not ok.degenerate_ and ok.noise_variance_ > 1e-6


def test_degenerate_flag_survives_save_and_load(tmp_path):
    with pytest.warns(UserWarning):
        fast("ppca", n_components=4).fit(data(5, 10)).save(tmp_path / "m.safetensors")
    assert latentzoo.load(tmp_path / "m.safetensors").degenerate_


def test_labels_that_look_like_ids_skip_knn(caplog, monkeypatch):
    """All-unique labels: kNN accuracy is skipped with a message (not a raw scikit-learn
    warning and "kNN 0.000"); ordinary classes still get it."""
    from latentzoo import evaluation
    from latentzoo.evaluation import evaluate

    monkeypatch.setattr(evaluation, "_WARNED", set())  # logged once per process: start afresh
    X = data(60, 5)
    est = fast("pca").fit(X[:40])
    with caplog.at_level("WARNING", logger="latentzoo.evaluation"):
        ids = evaluate(est, X[40:], np.arange(40, 60), X[:40], np.arange(40), n_prior=20)
    assert ids["knn_accuracy"] is None and "labels look like sample IDs (all 60 distinct" in caplog.text
    caplog.clear()
    classes = evaluate(est, X[40:], np.arange(20) % 3, X[:40], np.arange(40) % 3, n_prior=20)
    assert 0 <= classes["knn_accuracy"] <= 1 and "sample IDs" not in caplog.text


def test_dataset_indexes_like_the_tuple_it_unpacks_as():
    ds = latentzoo.load_dataset("moons", n_samples=50)
    X, y, meta = ds
    assert ds[0] is X and ds[1] is y and ds[2] is meta and ds[-1] is meta and ds[-3] is X
    assert ds[:2] == (X, y) and len(ds) == 3 and tuple(ds) == (X, y, meta)
    with pytest.raises(IndexError):
        ds[3]


# ---------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("posterior", ["normal", "laplace"])
def test_vae_score_of_a_row_depends_only_on_the_row(posterior):
    """A row scored alone, among others, permuted, duplicated or in batches of 7 (so the
    samples are chunked differently) gets the same estimate; another random_state another."""
    X = data(40, 6)
    vae = fast("vae", likelihood="gaussian", posterior_family=posterior).fit(X)
    full = vae.score_samples(X, n_importance=300)
    alone = np.concatenate([vae.score_samples(X[i:i + 1], n_importance=300) for i in (0, 17, 39)])
    np.testing.assert_allclose(alone, full[[0, 17, 39]], rtol=1e-6)
    perm = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_allclose(vae.score_samples(X[perm], n_importance=300, batch_size=7), full[perm], rtol=1e-6)
    twice = vae.score_samples(np.vstack([X[:5], X[:5]]), n_importance=300)
    np.testing.assert_allclose(twice[:5], twice[5:], rtol=1e-6)
    other = vae.score_samples(X, n_importance=300, random_state=1)
    assert np.abs(other - full).max() > 1e-4  # still a Monte Carlo estimate: the seed matters


@pytest.mark.parametrize("family", [torch.distributions.Normal, torch.distributions.Laplace])
def test_per_row_draws_follow_the_posterior(family):
    """Oracle: the inverse-CDF draws of each row are distributed as q(z|x) (Kolmogorov-Smirnov
    against scipy's distribution), and chunked draws equal one long draw."""
    from scipy import stats

    from latentzoo.neural.bounds import per_row_sampler, row_streams

    loc, scale = torch.tensor([[0.5, -1.0], [2.0, 0.0]]), torch.tensor([[1.0, 0.1], [3.0, 2.0]])
    qz = torch.distributions.Independent(family(loc, scale), 1)
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    z = per_row_sampler(qz, row_streams(x, seed=0))(4000).double()  # (4000, 2, 2)
    ref = stats.norm if family is torch.distributions.Normal else stats.laplace
    for b in range(2):
        for j in range(2):
            assert stats.kstest(z[:, b, j].numpy(), ref(loc[b, j].item(), scale[b, j].item()).cdf).pvalue > 1e-3
    draw = per_row_sampler(qz, row_streams(x, seed=0))
    chunked = torch.cat([draw(1000), draw(3000)]).double()
    torch.testing.assert_close(chunked, z)


# ---------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("name", NEURAL)
def test_divergence_is_a_clear_error_and_leaves_no_nan_weights(name):
    X = data(40, 5)
    est = fast(name, lr=1e30, likelihood="gaussian", max_epochs=5)
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch \d+.*smaller learning rate than lr=1e\+30"):
        est.fit(X)
    assert not hasattr(est, "module_"), "a diverged fit must not leave a (NaN) network behind"
    # refit of a fitted estimator that then diverges keeps the previous finite weights
    good = fast(name, likelihood="gaussian").fit(X)
    before = {k: v.clone() for k, v in good.module_.state_dict().items()}
    with pytest.raises(TrainingDiverged):
        good.set_params(lr=1e30, max_epochs=5).fit(X)
    after = good.module_.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", NEURAL)
def test_save_refuses_nan_weights(name, fitted, tmp_path):
    est = fast(name).fit(data())
    with torch.no_grad():
        next(est.module_.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="refusing to save .* contains NaN or inf"):
        est.save(tmp_path / "m.safetensors")
    assert _listing(tmp_path) == []


def test_save_refuses_nan_linear_state(fitted, tmp_path):
    est = fast("pca").fit(data())
    est.components_[0, 0] = np.inf
    with pytest.raises(ValueError, match="'components_' contains NaN or inf"):
        est.save(tmp_path / "m.safetensors")
    assert _listing(tmp_path) == []


# ---------------------------------------------------------------------------- saving: bad paths
@pytest.mark.parametrize("name", ["pca", "ae"])
def test_save_to_bad_paths(name, fitted, tmp_path):
    est = fitted[name]
    with pytest.raises(FileNotFoundError, match="folder .*missing does not exist"):
        est.save(tmp_path / "missing" / "m.safetensors")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        est.save(tmp_path)
    assert _listing(tmp_path) == []
    # a failed overwrite keeps the previous complete model
    est.save(tmp_path / "m.safetensors")
    before = (tmp_path / "m.safetensors").read_bytes()
    bad = fast(name).fit(data())
    first = bad.module_.parameters() if name == "ae" else None
    if first is not None:
        with torch.no_grad():
            next(first).fill_(float("nan"))
    else:
        bad.mean_[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bad.save(tmp_path / "m.safetensors")
    assert (tmp_path / "m.safetensors").read_bytes() == before
    assert _listing(tmp_path) == ["m.safetensors"]


# ---------------------------------------------------------------------------- latentzoo.load
@pytest.fixture(scope="module")
def saved(tmp_path_factory, fitted):
    folder = tmp_path_factory.mktemp("saved")
    fitted["pca"].save(folder / "pca.safetensors")
    fitted["ae"].save(folder / "ae.safetensors")
    return folder


def _header(cls="latentzoo.linear.pca.PCA", params=None, fitted=None, **extra):
    h = {"format": "latentzoo", "format_version": "2", "class": cls,
         "params": json.dumps({"n_components": 2} if params is None else params),
         "fitted": json.dumps({} if fitted is None else fitted)}
    h.update(extra)
    return h


def _write(folder, name, content, sign=True):
    """Write bytes, or (tensors, header); a format-2 header without ``sha256`` is signed first
    (the checksum would flag any edit first: the structural checks behind it are tested so)."""
    from latentzoo.persistence import _digest

    p = folder / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        tensors, header = content
        if sign and header and header.get("format_version") == "2" and "sha256" not in header:
            header = {**header, "sha256": _digest(tensors, header)}
        save_file(tensors, str(p), metadata=header)
    return p


def _state(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        header = fh.metadata()
        header.pop("sha256")
        return {k: fh.get_tensor(k) for k in fh.keys()}, header


def _pca_state(saved):
    return _state(saved / "pca.safetensors")


LOAD_CASES = {
    "truncated-half": (lambda s: (s / "pca.safetensors").read_bytes()[:300], "truncated or corrupted"),
    "truncated-tail": (lambda s: (s / "pca.safetensors").read_bytes()[:-3], "truncated or corrupted"),
    "truncated-8-bytes": (lambda s: (s / "pca.safetensors").read_bytes()[:8], "truncated or corrupted"),
    "empty": (lambda s: b"", "truncated or corrupted"),
    "random-bytes": (lambda s: np.random.default_rng(0).bytes(2000), "truncated or corrupted"),
    "text": (lambda s: b"n_components,2\n1,2\n", "truncated or corrupted"),
    "plain-safetensors": (lambda s: ({"w": torch.zeros(3)}, None), "not a latentzoo model"),
    "foreign-safetensors": (lambda s: ({"w": torch.zeros(3)}, {"format": "pt"}), "not a latentzoo model"),
    "os.system-class": (lambda s: ({"w": torch.zeros(3)}, _header("os.system", {"command": "touch pwned"})),
                        "unknown model class 'os.system'"),
    "builtins.eval-class": (lambda s: ({"w": torch.zeros(3)}, _header("builtins.eval")), "unknown model class"),
    "newer-format": (lambda s: ({"w": torch.zeros(3)}, _header(format_version="99")), "newer latentzoo"),
    "bad-format-version": (lambda s: ({"w": torch.zeros(3)}, _header(format_version="x")), "format_version 'x'"),
    "bad-json": (lambda s: ({"w": torch.zeros(3)}, {**_header(), "params": "{n_components: 2"}), "corrupted latentzoo header"),
    "params-not-object": (lambda s: ({"w": torch.zeros(3)}, _header(params=[2])), "not JSON objects"),
    "unknown-param": (lambda s: ({"w": torch.zeros(3)}, _header(params={"evil": 1})), "invalid PCA parameters.*evil"),
    "invalid-param": (lambda s: ({"w": torch.zeros(3)}, _header(params={"n_components": -3})),
                      "invalid PCA parameters.*'n_components'"),
    "missing-arrays": (lambda s: ({"w": torch.zeros(3)}, _header(fitted={"n_features_in_": 5})),
                       "fitted state does not match PCA"),
    "extra-array": (lambda s: ({**_pca_state(s)[0], "transform": torch.zeros(2)}, _pca_state(s)[1]),
                    "fitted state does not match PCA"),
    "wrong-shapes": (lambda s: ({**_pca_state(s)[0], "components_": torch.zeros(2, 3, dtype=torch.float64)},
                                _pca_state(s)[1]), "fitted state does not match PCA"),
    "tampered-with-checksum": (lambda s: ({**_pca_state(s)[0], "mean_": torch.ones(5, dtype=torch.float64)},
                                          {**_pca_state(s)[1], "sha256": "0" * 64}), "do not match the checksum"),
    "nan-weights": (lambda s: ({**_pca_state(s)[0], "mean_": torch.full((5,), float("nan"), dtype=torch.float64)},
                               _pca_state(s)[1]), "'mean_' contains NaN"),
    "ae-missing-weights": (lambda s: ({"module.x": torch.zeros(2)},
                                      _header("latentzoo.neural.autoencoder.Autoencoder", {"n_components": 2},
                                              {"n_features_in_": 5, "history_": {}})),
                           "weights do not match Autoencoder"),
    "ae-missing-meta": (lambda s: ({"module.x": torch.zeros(2)},
                                   _header("latentzoo.neural.autoencoder.Autoencoder", {"n_components": 2})),
                        "fitted state does not match Autoencoder.*n_features_in_"),
}


@pytest.mark.parametrize("case", list(LOAD_CASES), ids=list(LOAD_CASES))
def test_load_rejects_bad_files(case, saved, tmp_path):
    make, fragment = LOAD_CASES[case]
    content = make(saved)
    if isinstance(content, tuple) and content[1] is None:
        content = (content[0], {})
    path = _write(tmp_path, "model.safetensors", content)
    with pytest.raises(ValueError, match=fragment) as info:
        latentzoo.load(path)
    assert "model.safetensors" in str(info.value) or case.startswith("ae-missing-weights")
    assert _listing(tmp_path) == ["model.safetensors"]  # load writes nothing


def test_load_detects_damaged_data_behind_a_valid_header(saved, tmp_path):
    """A file of the right size with a valid header but wrong data (a flipped byte, or the zeros
    of a writer killed half-way) is caught by the checksum, not loaded as a model."""
    raw = bytearray((saved / "pca.safetensors").read_bytes())
    flipped = bytearray(raw)
    flipped[-9] ^= 0x40
    zeroed = raw[:-64] + bytes(64)  # the tail of the data section never written
    for name, content in (("flipped.safetensors", flipped), ("zeroed.safetensors", zeroed)):
        with pytest.raises(ValueError, match=f"{name} is incomplete or corrupted.*checksum"):
            latentzoo.load(_write(tmp_path, name, bytes(content)))


def _edit(header, key, change):
    out = dict(header)
    if key in ("params", "fitted"):
        obj = json.loads(out[key])
        change(obj)
        out[key] = json.dumps(obj)
    else:
        out[key] = change
    return out


HEADER_EDITS = {  # one hand edit of a saved VAE's header each; the file's own checksum is kept
    "params.likelihood": ("params", lambda p: p.update(likelihood="gaussian:0.1")),
    "params.beta": ("params", lambda p: p.update(beta=4.0)),
    "fitted.n_features_in_": ("fitted", lambda f: f.update(n_features_in_=6)),
    "fitted.history": ("fitted", lambda f: f["history_"].clear()),
    "class": ("class", "latentzoo.neural.autoencoder.Autoencoder"),
    "latentzoo_version": ("latentzoo_version", "0.0.1"),
    "format_version-downgrade": ("format_version", "1"),
    "new-entry": ("comment", "hello"),
}


@pytest.mark.parametrize("case", list(HEADER_EDITS), ids=list(HEADER_EDITS))
def test_load_refuses_an_edited_header(case, fitted, tmp_path):
    """Format 2: the checksum covers the header, so an edited parameter (which would load and
    compute other numbers without a word) is an error naming the file."""
    fitted["vae"].save(tmp_path / "vae.safetensors")
    tensors, header = _state(tmp_path / "vae.safetensors")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "vae.safetensors"), framework="pt") as fh:
        digest = fh.metadata()["sha256"]
    key, change = HEADER_EDITS[case]
    edited = {**_edit(header, key, change), "sha256": digest}
    path = _write(tmp_path, "edited.safetensors", (tensors, edited))
    with pytest.raises(ValueError, match=r"edited.safetensors is incomplete or corrupted: its header or data do "
                                         r"not match the checksum"):
        latentzoo.load(path)
    unsigned = {k: v for k, v in edited.items() if k != "sha256"}
    if edited["format_version"] == "2":  # removing the checksum is no way around it
        with pytest.raises(ValueError, match="unsigned.safetensors has no checksum"):
            latentzoo.load(_write(tmp_path, "unsigned.safetensors", (tensors, unsigned), sign=False))
    else:  # a format-1 file from before checksums: loads, with a warning that nothing was checked
        with pytest.warns(UserWarning, match="unsigned.safetensors has no checksum .*not be verified"):
            latentzoo.load(_write(tmp_path, "unsigned.safetensors", (tensors, unsigned), sign=False))


def test_load_refuses_a_newer_major_version_and_warns_about_a_newer_minor(fitted, tmp_path):
    fitted["pca"].save(tmp_path / "pca.safetensors")
    tensors, header = _state(tmp_path / "pca.safetensors")
    assert header["latentzoo_version"] == latentzoo.__version__
    major = int(latentzoo.__version__.split(".")[0])
    newer = f"{major + 9}.9.9"
    with pytest.raises(ValueError, match=rf"written by latentzoo {newer}, a newer major version than this "
                                         rf"latentzoo {latentzoo.__version__}"):
        latentzoo.load(_write(tmp_path, "major.safetensors", (tensors, {**header, "latentzoo_version": newer})))
    minor = f"{major}.99.0"
    with pytest.warns(UserWarning, match=rf"written by latentzoo {minor}, newer than this latentzoo"):
        est = latentzoo.load(_write(tmp_path, "minor.safetensors", (tensors, {**header, "latentzoo_version": minor})))
    np.testing.assert_array_equal(est.components_, fitted["pca"].components_)
    with pytest.raises(ValueError, match="latentzoo_version 'banana' is not a version number"):
        latentzoo.load(_write(tmp_path, "bad.safetensors", (tensors, {**header, "latentzoo_version": "banana"})))


def test_load_still_reads_format_1_files(fitted, tmp_path):
    """Files of format 1 (checksum over the tensors only, no version entry) load as before."""
    from latentzoo.persistence import _digest

    fitted["pca"].save(tmp_path / "pca.safetensors")
    tensors, header = _state(tmp_path / "pca.safetensors")
    old = {k: v for k, v in header.items() if k != "latentzoo_version"} | {"format_version": "1"}
    old["sha256"] = _digest(tensors)
    est = latentzoo.load(_write(tmp_path, "v1.safetensors", (tensors, old)))
    np.testing.assert_array_equal(est.transform(data()), fitted["pca"].transform(data()))
    with pytest.raises(ValueError, match="do not match the checksum"):  # a format-1 file's tensors still checked
        latentzoo.load(_write(tmp_path, "v1bad.safetensors",
                              ({**tensors, "mean_": tensors["mean_"] + 1}, old)))


def test_unreadable_model_file_says_permission_denied(fitted, tmp_path, monkeypatch):
    """Not "No such file or directory": the file is there, the user may not read it."""
    from latentzoo import _atomic

    path = tmp_path / "m.safetensors"
    fitted["pca"].save(path)
    real_open = open

    def denied(p, *a, **kw):
        if str(p) == str(path):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, *a, **kw)

    monkeypatch.setattr(_atomic, "open", denied, raising=False)  # as a non-root user with chmod 000
    with pytest.raises(PermissionError, match=r"cannot read .*m.safetensors: permission denied .*exists"):
        latentzoo.load(path)
    monkeypatch.undo()
    if os.geteuid() != 0:  # root reads everything: the real chmod only bites for other users
        os.chmod(path, 0)
        try:
            with pytest.raises(PermissionError, match="permission denied"):
                latentzoo.load(path)
        finally:
            os.chmod(path, 0o644)


def test_load_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file at .*nope.safetensors"):
        latentzoo.load(tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="is a folder"):
        latentzoo.load(tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_load_round_trip_survives_the_new_checks(name, fitted, tmp_path):
    """The hardened load still accepts every genuine model file (no false alarm)."""
    fitted[name].save(tmp_path / "m.safetensors")
    back = latentzoo.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(back.transform(data()), fitted[name].transform(data()))


# ---------------------------------------------------------------------------- data loaders
def _npy_bytes(X):
    import io

    buf = io.BytesIO()
    np.save(buf, X)
    return buf.getvalue()


def _npz_bytes(**arrays):
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _idx(n=3, h=4, w=4, magic=2051):
    return (magic.to_bytes(4, "big") + n.to_bytes(4, "big") + h.to_bytes(4, "big") + w.to_bytes(4, "big")
            + bytes(range(n * h * w)))


LOADER_CASES = {
    "csv-random-bytes": ("x.csv", lambda: np.random.default_rng(1).bytes(300) + b"\xff", ValueError, "not UTF-8 text"),
    "csv-png": ("x.csv", lambda: b"\x89PNG\r\n\x1a\n\x00\x00", ValueError, "not UTF-8|binary content"),
    "csv-nul": ("x.csv", lambda: b"1,2\n3,\x004\n", ValueError, "binary content"),
    "csv-empty": ("x.csv", lambda: b"", ValueError, "empty file"),
    "csv-header-only": ("x.csv", lambda: b"a,b\n", ValueError, "zero data rows"),
    "csv-string-cell": ("x.csv", lambda: b"a,b\n1,2\n3,oops\n", ValueError, "non-numeric value 'oops' at line 3, column 'b'"),
    "csv-ragged": ("x.csv", lambda: b"1,2,3\n4,5\n", ValueError, "ragged rows: line 2"),
    "csv-inf": ("x.csv", lambda: b"1,2\n3,inf\n", ValueError, "inf first at line 2, column 1"),
    "csv-nan": ("x.csv", lambda: b"1,2\n3,\n", ValueError, "NaN first at line 2.*allow_nan=True"),
    "csv-overflow-float32": ("x.csv", lambda: b"1,2\n3,1e300\n", ValueError, "overflows float32"),
    "csv-gz-truncated": ("x.csv.gz", lambda: gzip.compress(b"1,2\n3,4\n" * 50)[:-12], ValueError, "truncated gzip"),
    "npy-truncated": ("x.npy", lambda: _npy_bytes(data())[:150], ValueError, "not a valid .npy"),
    "npy-random-bytes": ("x.npy", lambda: np.random.default_rng(2).bytes(300), ValueError, "x.npy"),
    "npy-text": ("x.npy", lambda: b"gene,a,b\n1,2,3\n", ValueError, r"not a .npy file: it starts with text "
                 r"\('gene,a,b'\).*name it .csv"),  # not "pickled data"
    "npz-text": ("x.npz", lambda: "\u00e9t\u00e9 1 2\n".encode() * 8, ValueError, "not a .npz file: it starts with text"),
    "npy-object": ("x.npy", lambda: _npy_bytes(np.array([[1, "a"]], dtype=object)), ValueError, "pickled"),
    "npy-strings": ("x.npy", lambda: _npy_bytes(np.array([["1", "a"]])), ValueError, "not numeric"),
    "npy-complex": ("x.npy", lambda: _npy_bytes(data() + 1j), ValueError, "not numeric"),
    "npy-1d": ("x.npy", lambda: _npy_bytes(np.arange(5.0)), ValueError, "1-D array"),
    "npy-4d": ("x.npy", lambda: _npy_bytes(np.zeros((2, 2, 2, 2))), ValueError, "4 dimensions"),
    "npy-empty": ("x.npy", lambda: _npy_bytes(np.zeros((0, 3))), ValueError, "no data"),
    "npy-no-columns": ("x.npy", lambda: _npy_bytes(np.zeros((3, 0))), ValueError, "no data"),
    "npz-truncated": ("x.npz", lambda: _npz_bytes(X=data())[:200], ValueError, "not a valid .npz"),
    "npz-random-bytes": ("x.npz", lambda: np.random.default_rng(3).bytes(300), ValueError, "x.npz"),
    "npz-no-data-key": ("x.npz", lambda: _npz_bytes(weights=data()), ValueError, "no data array.*found weights"),
    "npz-2d-labels": ("x.npz", lambda: _npz_bytes(X=data(), y=data()), ValueError, "labels 'y' have shape"),
    "idx-truncated-header": ("t-images-idx3-ubyte", lambda: _idx()[:7], ValueError, "shorter than the 16-byte header"),
    "idx-truncated-data": ("t-images-idx3-ubyte", lambda: _idx()[:-5], ValueError, "truncated IDX file"),
    "idx-trailing": ("t-images-idx3-ubyte", lambda: _idx() + b"xx", ValueError, "trailing bytes"),
    "idx-wrong-magic": ("t-images-idx3-ubyte", lambda: _idx(magic=2049 + 3), ValueError, "wrong IDX magic"),
    "idx-gz-garbage": ("t-images-idx3-ubyte.gz", lambda: b"not gzip at all", ValueError, "corrupted or truncated gzip"),
    "amat-ragged": ("x.amat", lambda: b"0 1 0\n1 1\n", ValueError, "ragged rows"),
    "amat-binary": ("x.amat", lambda: b"\xff\xfe\x00\x01" * 20, ValueError, "not an ASCII .amat"),
    "amat-header": ("x.amat", lambda: b"a b\n0 1\n", ValueError, "non-numeric first line"),
    "amat-gz-truncated": ("x.amat.gz", lambda: gzip.compress(b"0 1 0 1\n" * 40)[:-10], ValueError, "truncated gzip"),
    "unknown-suffix": ("x.xyz", lambda: b"PAR1", ValueError, "unknown file format"),
    "parquet-damaged": ("x.parquet", lambda: b"PAR1", ValueError, "not a valid Parquet file"),
    "h5ad-damaged": ("x.h5ad", lambda: b"\x89HDF\r\n", ValueError, "not a valid .h5ad file"),
}


@pytest.mark.parametrize("case", list(LOADER_CASES), ids=list(LOADER_CASES))
def test_loaders_reject_bad_files(case, tmp_path):
    fname, make, exc, fragment = LOADER_CASES[case]
    path = tmp_path / fname
    path.write_bytes(make())
    with pytest.raises(exc, match=fragment) as info:
        latentzoo.load_dataset(path)
    assert fname in str(info.value), "the error names the file"
    assert _listing(tmp_path) == [fname]


@pytest.mark.parametrize("source", ["nope.csv", "missing/dir/x.npy", "no-such-set"])
def test_loader_bad_paths(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exc = ValueError if source == "no-such-set" else FileNotFoundError
    frag = "unknown dataset 'no-such-set'.*embedded datasets: digits" if exc is ValueError else "no such file"
    with pytest.raises(exc, match=frag):
        latentzoo.load_dataset(source)


def test_loader_folder_without_layout(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(ValueError, match="folder holds no known dataset layout"):
        latentzoo.load_dataset(tmp_path / "sub")


def test_loader_array_sources():
    with pytest.raises(ValueError, match="not numeric"):
        latentzoo.load_dataset(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="1-D array"):
        latentzoo.load_dataset(np.arange(4.0))
    with pytest.raises(ValueError, match="cannot load a source of type dict"):
        latentzoo.load_dataset({"X": 1})
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        latentzoo.load_dataset("moons", n_samples=0)


def test_no_debris_after_many_failed_saves(fitted, tmp_path):
    """Every failure path of save() cleans its temporary file (checked in the folder)."""
    est = fitted["pca"]
    for _ in range(5):
        with pytest.raises(IsADirectoryError):
            est.save(tmp_path)
    assert _listing(tmp_path) == []
    assert not [p for p in os.listdir(tmp_path.parent) if p.startswith(f".{tmp_path.name}.")]
