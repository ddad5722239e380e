"""Figures for tables: the features that drive each latent unit (loadings, decoder
Jacobian against torch.autograd), observed vs reconstructed scatter with R², heatmaps."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA
from sklearn.metrics import r2_score

import latentzoo
from latentzoo import plots
from latentzoo.plots.features import feature_drivers


@pytest.fixture(scope="module")
def planted():
    """60 'genes': unit A drives DRV_A0..4 strongly, unit B drives DRV_B0..4; the rest is noise."""
    rng = np.random.default_rng(0)
    n, d = 400, 60
    names = [f"GENE{j}" for j in range(d)]
    a, b = [7, 19, 33, 41, 52], [3, 12, 25, 38, 57]
    for k, j in enumerate(a):
        names[j] = f"DRV_A{k}"
    for k, j in enumerate(b):
        names[j] = f"DRV_B{k}"
    W = np.zeros((2, d))
    W[0, a], W[1, b] = 3.0, 1.5
    X = rng.normal(size=(n, 2)) @ W + 0.3 * rng.normal(size=(n, d))
    return X, names


def _labels(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def test_loadings_figure_names_the_planted_drivers(planted):
    X, names = planted
    for model in (latentzoo.PCA(2).fit(X), latentzoo.PPCA(2).fit(X)):
        fig = plots.drivers_figure(model, X, feature_names=names, top=5)
        assert set(_labels(fig.axes[0])) == {f"DRV_A{k}" for k in range(5)}
        assert set(_labels(fig.axes[1])) == {f"DRV_B{k}" for k in range(5)}
        assert "loadings" in fig._suptitle.get_text()


def test_feature_drivers_of_linear_models_are_their_loadings(planted):
    X, _ = planted
    pca = latentzoo.PCA(3).fit(X)
    sk = SkPCA(3).fit(X)
    J = feature_drivers(pca, X)
    np.testing.assert_allclose(np.abs(J), np.abs(sk.components_.T), atol=1e-6)  # scikit-learn's axes
    ppca = latentzoo.PPCA(3).fit(X)
    np.testing.assert_allclose(feature_drivers(ppca, X), ppca.W_, rtol=1e-6, atol=1e-8)


def test_feature_drivers_of_a_neural_decoder_match_autograd(planted):
    X, _ = planted
    ae = latentzoo.Autoencoder(2, hidden=(16,), activation="tanh", likelihood="gaussian", max_epochs=3,
                               batch_size=64, random_state=0, verbose=0).fit(X)
    J = feature_drivers(ae, X, n_points=50)
    Xs = X[np.random.default_rng(0).choice(len(X), 50, replace=False)]
    Z = torch.as_tensor(ae.transform(Xs), dtype=torch.float64)
    dec = ae.module_.double()
    jac = torch.stack([torch.autograd.functional.jacobian(lambda z: dec.decode(z[None]).mean[0], z) for z in Z])
    np.testing.assert_allclose(J, jac.mean(0).numpy(), rtol=2e-3, atol=2e-5)


def test_neural_drivers_find_the_planted_features(planted):
    X, names = planted
    ae = latentzoo.Autoencoder(2, hidden=(32,), likelihood="gaussian", max_epochs=60, batch_size=64, lr=3e-3,
                               random_state=0, verbose=0).fit(X)
    fig = plots.drivers_figure(ae, X, feature_names=names, top=10)
    shown = set(_labels(fig.axes[0])) | set(_labels(fig.axes[1]))
    assert {f"DRV_A{k}" for k in range(5)} <= shown and "mean decoder Jacobian" in fig._suptitle.get_text()


def test_wide_reconstructions_are_a_scatter_with_r2():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 3)) @ rng.normal(size=(3, 80)) + 0.5 * rng.normal(size=(120, 80))
    model = latentzoo.PCA(3).fit(X)
    fig = plots.reconstructions({"pca": model}, X, n=120)
    R = model.inverse_transform(model.transform(X))
    expected = r2_score(X, R, multioutput="variance_weighted")  # 1 - sum SS_res / sum SS_tot
    assert fig.axes[0].get_title() == f"pca: R\u00b2 = {expected:.3f}"
    pts = fig.axes[0].collections[0].get_offsets()
    assert len(pts) == X.size
    np.testing.assert_allclose(np.sort(pts[:, 0]), np.sort(X.ravel()))


def test_wide_interpolations_are_a_heatmap_of_named_features():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 2)) @ rng.normal(size=(2, 50)) + 0.1 * rng.normal(size=(100, 50))
    names = [f"g{j}" for j in range(50)]
    model = latentzoo.PCA(2).fit(X)
    fig = plots.interpolations({"pca": model}, X[0], X[1], steps=6, feature_names=names)
    img = fig.axes[0].get_images()[0].get_array()
    shown = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert img.shape == (6, 40) and len(shown) == 40 and set(shown) <= set(names)
    cols = [names.index(s) for s in shown]
    P = model.inverse_transform(model.transform(X[:2]))
    assert sorted(cols) == sorted(np.argsort(-np.abs(P[1] - P[0]))[:40].tolist())  # what the path moves most
    for k, t in enumerate(np.linspace(0, 1, 6)):
        np.testing.assert_allclose(img[k], ((1 - t) * P[0] + t * P[1])[cols], atol=1e-8)


def test_wide_samples_are_a_heatmap_of_the_most_varying_named_features(planted):
    pd = pytest.importorskip("pandas")
    X, names = planted
    model = latentzoo.PPCA(2).fit(pd.DataFrame(X, columns=names))
    fig = plots.samples(model, n=12, random_state=3)
    S = model.sample(12, random_state=3)
    cols = np.sort(np.argsort(-S.var(axis=0), kind="stable")[:20])
    np.testing.assert_allclose(fig.axes[0].get_images()[0].get_array(), S[:, cols])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [names[j] for j in cols]


def test_wide_reconstructions_of_seven_models_are_a_grid_of_four_columns():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 8)) @ rng.normal(size=(8, 200)) + 0.3 * rng.normal(size=(60, 200))
    models = {f"pca{q}": latentzoo.PCA(q).fit(X) for q in range(1, 8)}
    fig = plots.reconstructions(models, X, n=60)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 7 and len(fig.axes) == 8  # 2 rows of 4, the 8th cell hidden
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes} == {(2, 4)}
    rows_cols = [ax.get_subplotspec().get_geometry()[2] for ax in shown]
    assert rows_cols == list(range(7))  # the models in order, row-major
    for ax, (name, m) in zip(shown, models.items()):
        R = m.inverse_transform(m.transform(X))
        assert ax.get_title() == f"{name}: R\u00b2 = {r2_score(X, R, multioutput='variance_weighted'):.3f}"
    w, h = fig.get_size_inches()
    # at most 14 inches wide (the report scales a figure to the page: one row of 7 was 24 inches
    # wide, each panel a sixth of the page) and every panel at least 3 x 3 inches
    assert w <= 14 and w / 4 >= 3 and h / 2 >= 3


def test_the_title_names_the_model_by_its_registry_name_when_given(planted):
    # a report shows ae, dae and cae (one class, three presets): each panel says which it is
    X, names = planted
    pca = latentzoo.PCA(2).fit(X)
    assert plots.drivers_figure(pca, X, name="pca-whitened")._suptitle.get_text().startswith("pca-whitened: ")
    assert plots.drivers_figure(pca, X)._suptitle.get_text().startswith("PCA: ")


def test_the_x_tick_labels_do_not_overlap_on_a_wide_table():
    # PCA on 3000 features: loadings ~0.05, whose default labels (-0.075 -0.050 -0.025 0.000 ...)
    # ran into each other in the report's 3.3-inch panels
    X = np.random.default_rng(0).standard_normal((300, 3000))
    pca = latentzoo.PCA(2).fit(X)
    fig = plots.drivers_figure(pca, X, top=10)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        boxes = sorted((t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_visible() and t.get_text()),
                       key=lambda b: b.x0)
        assert len(boxes) >= 2
        assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:])), [t.get_text() for t in ax.get_xticklabels()]
