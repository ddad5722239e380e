"""Preprocessing: oracles (scikit-learn scalers, numpy), exact round trips on the user's
scale, the auto rules, a Pipeline on the original scale, and the CLI's --preprocess."""
import json

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler

import latentzoo
from latentzoo import PCA
from latentzoo.cli import main
from latentzoo.preprocessing import METHODS, Preprocessor, resolve_auto


@pytest.fixture
def counts():
    return np.random.default_rng(0).poisson(4.0, size=(80, 7)).astype(np.float64)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_round_trip_on_the_original_scale_keeps_nan(counts, method):
    X = counts.copy()
    X[3, 2] = np.nan
    pre = Preprocessor(method).fit(X)
    T = pre.transform(X)
    assert np.isnan(T[3, 2]) and np.isnan(T).sum() == 1
    np.testing.assert_allclose(pre.inverse_transform(T), X, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method,oracle", [
    ("standard", lambda: StandardScaler()),
    ("minmax", lambda: MinMaxScaler()),
    ("log1p", lambda: FunctionTransformer(np.log1p)),
    ("log1p+standard", lambda: make_pipeline(FunctionTransformer(np.log1p), StandardScaler())),
])
def test_matches_scikit_learn(counts, method, oracle):
    X = counts.copy()
    X[5, 1] = np.nan  # scikit-learn's scalers ignore NaN in fit, as ours
    np.testing.assert_allclose(Preprocessor(method).fit_transform(X), oracle().fit_transform(X), rtol=1e-10,
                               atol=1e-12)


def test_constant_feature_keeps_scale_one():
    X = np.c_[np.ones(10), np.arange(10.0)]
    for method in ("standard", "minmax"):
        T = Preprocessor(method).fit_transform(X)
        assert np.all(T[:, 0] == 0) and np.all(np.isfinite(T))


def test_auto_rules(counts):
    imgs = np.random.default_rng(1).integers(0, 256, size=(5, 16)).astype(np.uint8)
    assert resolve_auto(imgs)[0] == "scale255"
    np.testing.assert_allclose(Preprocessor().fit_transform(imgs), imgs / 255.0)
    assert resolve_auto(counts)[0] == "log1p" and "counts" in resolve_auto(counts)[1]
    assert resolve_auto(counts.astype(np.float32), stored_dtype="uint8")[0] == "scale255"
    assert resolve_auto(np.array([[0.0, 1.0], [1.0, 0.0]]))[0] == "none"  # binary data stay as they are
    assert resolve_auto(counts - 1)[0] == "none"  # negative values are not counts
    assert resolve_auto(counts + 0.5)[0] == "none"


def test_log1p_rejects_negative_data():
    with pytest.raises(ValueError, match="log1p needs data above -1 .*; the minimum is -2"):
        Preprocessor("log1p").fit(np.array([[1.0, -2.0], [3.0, 4.0]]))
    pre = Preprocessor("log1p").fit(np.array([[1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(ValueError, match="above -1"):
        pre.transform(np.array([[-1.0, 0.0]]))


def test_pipeline_takes_and_gives_the_original_scale():
    rng = np.random.default_rng(0)
    L = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 9)) * 0.5 + 2.0  # rank 2 in log1p space
    raw = np.expm1(L)
    pipe = make_pipeline(Preprocessor("log1p+standard"), PCA(n_components=2)).fit(raw)
    np.testing.assert_allclose(pipe.inverse_transform(pipe.transform(raw)), raw, rtol=1e-8)


def test_json_round_trip(counts):
    pre = Preprocessor("log1p+standard").fit(counts)
    back = Preprocessor.from_json(pre.to_json())
    np.testing.assert_array_equal(back.transform(counts), pre.transform(counts))
    with pytest.raises(ValueError, match="inconsistent"):
        Preprocessor.from_json(json.dumps({**json.loads(pre.to_json()), "scale_": [1.0]}))


def test_pandas_output_keeps_names(counts):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(counts, columns=[f"g{j}" for j in range(7)])
    out = Preprocessor("log1p").set_output(transform="pandas").fit_transform(df)
    assert list(out.columns) == list(df.columns)


def test_cli_fit_preprocesses_and_the_run_applies_it_again(capsys, tmp_path, counts):
    path = tmp_path / "counts.csv"
    path.write_text("\n".join(",".join(f"{int(v)}" for v in r) for r in counts) + "\n")
    run = tmp_path / "run"
    assert main(["fit", "ppca", str(path), "--no-header", "--out", str(run), "--n_components", "2"]) == 0
    info = json.loads((run / "info.json").read_text())
    assert info["data"]["preprocess"].startswith("log1p (auto: non-negative integer counts")
    model = latentzoo.load(run / "model.safetensors")
    pre = Preprocessor("log1p").fit(counts)
    assert main(["encode", str(run), str(path), "--no-header", "--out", str(tmp_path / "z.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), model.transform(pre.transform(counts).astype(np.float32)),
                               rtol=1e-5, atol=1e-6)
    assert main(["sample", str(run), "-n", "4000", "--out", str(tmp_path / "s.npy")]) == 0
    S = np.load(tmp_path / "s.npy")  # on the counts' scale: expm1 of the model's log-scale draws
    assert S.min() > -1 and abs(np.median(S) - np.median(counts)) < 1.5
    assert main(["fit", "ppca", str(path), "--no-header", "--preprocess", "none", "--out", str(run)]) == 0
    assert not (run / "preprocess.json").exists()  # a refit without preprocessing leaves no stale file
    capsys.readouterr()


def test_cli_compare_auto_divides_uint8_by_255(capsys, tmp_path):
    imgs = np.random.default_rng(0).integers(0, 256, size=(60, 4, 4)).astype(np.uint8)
    np.save(tmp_path / "imgs.npy", imgs)
    assert main(["compare", str(tmp_path / "imgs.npy"), "--models", "pca", "--out", str(tmp_path / "rep")]) == 0
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert m["setup"]["preprocess"].startswith("scale255 (auto: 8-bit data")
    # the model saw [0, 1] data: 16 features, so a reconstruction error of at most 16 per row (not 255^2 scale)
    assert m["models"][0]["reconstruction_error"] < 16
    assert "scale255" in (tmp_path / "rep" / "report.html").read_text()
    capsys.readouterr()


def test_auto_standardises_columns_on_very_different_scales():
    from sklearn.datasets import load_breast_cancer, load_digits

    X = load_breast_cancer().data  # areas in the hundreds to thousands, smoothness near 0.1
    span = X.max(0) - X.min(0)
    assert span.max() / span.min() > 100  # the premise
    method, reason = resolve_auto(X)
    assert method == "standard" and f"{span.min():.3g}" in reason and f"{span.max():.3g}" in reason
    Xn = X.copy()
    Xn[::7, 3] = np.nan  # missing values do not hide the spread
    assert resolve_auto(Xn)[0] == "standard"
    Z = Preprocessor().fit(X).transform(X)
    np.testing.assert_allclose(Z, (X - X.mean(0)) / X.std(0), rtol=1e-6, atol=1e-9)
    # image pixels share one range, however rarely a border pixel is lit: left as they are
    img = load_digits().data / 16.0
    sd = img.std(0)
    assert sd.max() > 100 * sd[sd > 0].min()  # the spread of sds would have fooled a rule on sds
    assert resolve_auto(img)[0] == "none"
    # within the factor, with a large common offset or a constant column: left as they are
    rng = np.random.default_rng(0)
    Y = rng.uniform(size=(200, 3)) * np.array([1.0, 10.0, 90.0]) + 1e6
    assert resolve_auto(Y)[0] == "none"
    assert resolve_auto(np.column_stack([Y, np.full(200, 5.0)]))[0] == "none"
    assert resolve_auto(Y * np.array([1.0, 1.0, 2.0]))[0] == "standard"  # about 180x apart
