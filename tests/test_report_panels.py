"""Report panels meant to be compared: on wide tables every heatmap shows the same features
(chosen once from the training data) on one colour scale; figures stay a readable size."""
import matplotlib

matplotlib.use("Agg")

import html

import numpy as np
import pytest

from latentzoo.experiment import run_comparison
from latentzoo.report import write_report
from latentzoo.report.panels import (N_SHOWN, SHOWN_WORDS, Z_RANGE, FeatureScale, heatmap_grid,
                                     interpolation_figure, samples_figure, shown_features)

# the figures pass arrays to models fitted with the table's feature names (write_report silences it too)
pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore:X does not have valid feature names:UserWarning")]

FAST = dict(epochs=2, hidden=(16,), n_importance=20, progress=False)


def _planted(rng, n=400, d=120):
    """Unit A drives features A (weight 3), unit B features B (1.5); the rest is noise."""
    a, b = [7, 19, 33, 41, 52], [3, 12, 25, 38, 57]
    W = np.zeros((2, d))
    W[0, a], W[1, b] = 3.0, 1.5
    return rng.normal(size=(n, 2)) @ W + 0.3 * rng.normal(size=(n, d)), a + b


def test_shown_features_are_the_planted_drivers_even_on_standardised_data():
    X, drivers = _planted(np.random.default_rng(0))
    assert set(shown_features(X, n=10)) == set(drivers)
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)  # every raw variance 1: variance alone could not choose
    assert set(shown_features(Xs, n=10)) == set(drivers)


def test_a_float32_table_longer_than_the_row_cap_gives_what_its_float64_copy_gives():
    # rows are subsampled before the upcast now (the whole table is never copied to float64):
    # the chosen features, their order and the scale must be those of the float64 table
    from latentzoo.report.panels import MAX_ROWS

    X, drivers = _planted(np.random.default_rng(3), n=MAX_ROWS + 1500, d=60)
    X32 = X.astype(np.float32)
    X32[5, 7] = np.nan  # a missing value: filled for the axes, left out of the scale
    X64 = X32.astype(np.float64)
    cols = shown_features(X32, n=10)
    assert set(cols) == set(drivers)
    np.testing.assert_array_equal(cols, shown_features(X64, n=10))
    scale = FeatureScale(X32, cols)
    np.testing.assert_allclose(scale.mean, np.nanmean(X64[:, cols], axis=0), rtol=1e-12)
    np.testing.assert_allclose(scale.sd, np.nanstd(X64[:, cols], axis=0), rtol=1e-12)
    rows = X32[:4]
    np.testing.assert_allclose(scale(rows), (X64[:4, cols] - np.nanmean(X64[:, cols], axis=0))
                               / np.nanstd(X64[:, cols], axis=0), rtol=1e-12)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    X, _ = _planted(np.random.default_rng(1), n=150)
    names = [f"GENE{j:03d}" for j in range(X.shape[1])]
    path = tmp_path_factory.mktemp("wide") / "wide.csv"
    np.savetxt(path, X, delimiter=",", header=",".join(names), comments="", fmt="%.6g")
    comp = run_comparison(str(path), ["pca", "ppca", "vae"], seed=0, **FAST)
    return comp, names


def _heatmaps(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_images()]


def _standardised(comp, A, cols):
    T = comp.X_train[:, cols]
    return (A[:, cols] - T.mean(axis=0)) / T.std(axis=0)


def test_samples_of_a_wide_table_share_one_feature_set_and_colour_scale(wide):
    comp, names = wide
    cols = shown_features(comp.X_train)
    models = {n: m for n, m in comp.models.items() if m.has_prior}
    fig = samples_figure(comp, models, seed=0)
    axes = _heatmaps(fig)
    assert len(axes) == 3 * len(models)  # held-out rows, means, full draws per model
    for row in range(len(models)):  # the names on the first panel of each row, the same every time
        first = axes[3 * row]
        assert [t.get_text() for t in first.get_yticklabels()] == [names[j] for j in cols]
    for ax in axes:
        assert ax.get_images()[0].get_clim() == (-Z_RANGE, Z_RANGE)
        assert ax.get_images()[0].get_array().shape == (N_SHOWN, 16)
    by_title = {ax.get_title(): ax.get_images()[0].get_array() for ax in axes}
    ppca = comp.models["ppca"]
    for kind, mean in (("decoder means E[x|z]", True), ("full draws x ~ p(x|z)", False)):
        expected = _standardised(comp, ppca.sample(16, random_state=0, mean=mean), cols).T
        np.testing.assert_allclose(by_title[f"ppca: {kind}"], expected, rtol=1e-5, atol=1e-5)  # float32 data
    # the reference panel: held-out rows, on the same scale
    real = by_title["held-out data (16 rows)"].T
    held_out = _standardised(comp, comp.X_test, cols)
    assert all(np.isclose(held_out, r, rtol=1e-5, atol=1e-5).all(axis=1).any() for r in real)


def test_interpolations_of_a_wide_table_share_the_features_and_stay_small(wide):
    comp, names = wide
    cols = shown_features(comp.X_train)
    x_a, x_b = comp.X_test[0], comp.X_test[1]
    fig = interpolation_figure(comp, x_a, x_b, steps=10)
    by_title = {ax.get_title(): ax.get_images()[0].get_array() for ax in _heatmaps(fig)}
    assert set(by_title) == {"the two inputs", "pca", "ppca", "vae"}
    np.testing.assert_allclose(by_title["the two inputs"], _standardised(comp, np.vstack([x_a, x_b]), cols).T,
                               rtol=1e-5, atol=1e-5)
    pca = comp.models["pca"]
    Z = pca.transform(np.vstack([x_a, x_b]))
    t = np.linspace(0, 1, 10)[:, None]
    path = pca.inverse_transform((1 - t) * Z[0] + t * Z[1])  # decoded straight latent line
    np.testing.assert_allclose(by_title["pca"], _standardised(comp, path, cols).T, rtol=1e-5, atol=1e-5)  # float32 data
    assert fig.get_size_inches()[1] < 5  # one row of four panels


def test_seven_models_fit_a_readable_figure():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 400))
    scale = FeatureScale(X, shown_features(X))
    panels = {f"model {k}": rng.normal(size=(10, 400)) for k in range(8)}
    fig = heatmap_grid(panels, scale, [f"g{j}" for j in range(400)], xlabel="t", ncols=4)
    w, h = fig.get_size_inches()
    assert h < 8 and w < 14  # two rows of four (the old layout: one stacked row per model, 19 inches)


def test_the_report_says_which_features_its_heatmaps_show(wide, tmp_path):
    comp, _ = wide
    page = write_report(comp, tmp_path / "rep").read_text()
    assert page.count(html.escape(SHOWN_WORDS)) == 6  # samples, reconstructions, interpolations: alt and caption
    assert "could not be drawn" not in page
    n = min(len(comp.X_test), 500)
    assert f"With {n} points a side, chance alone moves the accuracy by about &plusmn;{0.5 / np.sqrt(2 * n):.2f}" in page


def test_reconstructions_of_a_wide_table_share_the_features(wide):
    from latentzoo.report.panels import reconstruction_heatmaps

    comp, names = wide
    cols = shown_features(comp.X_train)
    fig = reconstruction_heatmaps(comp)[2]()
    axes = _heatmaps(fig)
    by_title = {ax.get_title(): ax.get_images()[0].get_array() for ax in axes}
    assert set(by_title) == {"held-out data (16 rows)", "pca", "ppca", "vae"}
    assert [t.get_text() for t in axes[0].get_yticklabels()] == [names[j] for j in cols]
    real_cols = by_title["held-out data (16 rows)"].T  # (16, shown): standardised held-out rows
    held_out = _standardised(comp, comp.X_test, cols)
    rows = [int(np.flatnonzero(np.isclose(held_out, r, rtol=1e-5, atol=1e-5).all(axis=1))[0]) for r in real_cols]
    pca = comp.models["pca"]
    R = pca.inverse_transform(pca.transform(comp.X_test[rows]))  # the same rows, reconstructed
    np.testing.assert_allclose(by_title["pca"], _standardised(comp, R, cols).T, rtol=1e-5, atol=1e-5)


def test_image_samples_start_each_row_with_held_out_images():
    from latentzoo.plots import tile_images
    from latentzoo.report.panels import samples_section

    comp = run_comparison("digits", ["pca", "ppca"], n_samples=200, seed=0, **FAST)
    fig = samples_section(comp)[0][2]()
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["16 held-out images", "ppca: decoder means E[x|z]",
                                                "ppca: full draws x ~ p(x|z)"]
    tiled = shown[0].get_images()[0].get_array()
    # the reference panel tiles 16 held-out rows of the data
    idx = np.random.default_rng(0).permutation(len(comp.X_test))[:16]
    np.testing.assert_allclose(tiled, tile_images(comp.X_test[idx], 4, image_shape=comp.image_shape))


def test_missing_values_are_not_drawn_as_the_mean():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 40))
    scale = FeatureScale(X, shown_features(X))
    A = X[:5].copy()
    A[:, scale.cols[0]] = np.nan
    fig = heatmap_grid({"rows": A}, scale, [f"g{j}" for j in range(40)], xlabel="row", ncols=1)
    im = fig.axes[0].get_images()[0]
    missing = im.to_rgba(im.get_array())[0, 0]  # feature row 0: every cell missing
    mean = im.to_rgba(np.zeros((1, 1)))[0, 0]  # a value at the training mean: near-white
    # opaque dark grey (a transparent cell shows the white page, which reads as "at the mean")
    assert missing[3] == 1 and missing[:3].max() < 0.6 and mean[:3].min() > 0.9


@pytest.mark.parametrize("shape", [(80, 30), (30, 80)], ids=["tall", "wide"])
def test_shown_features_rank_by_variance_along_the_leading_axes(shape):
    from sklearn.decomposition import PCA as SkPCA

    rng = np.random.default_rng(4)
    X = rng.normal(size=shape) @ rng.normal(size=(shape[1], shape[1]))
    p = SkPCA(5, svd_solver="full").fit(X)
    score = (p.explained_variance_[:, None] * p.components_ ** 2).sum(axis=0) * (len(X) - 1) / len(X)
    assert list(shown_features(X, n=10)) == list(np.argsort(-score)[:10])


@pytest.fixture(scope="module")
def narrow(tmp_path_factory):
    """A narrow table (8 named features of different scales, 200 rows), no image shape."""
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(200, 2)) @ rng.normal(size=(2, 8)) + 0.3 * rng.normal(size=(200, 8))) * np.logspace(0, 2, 8)
    names = [f"feat_{j}" for j in range(8)]
    path = tmp_path_factory.mktemp("narrow") / "narrow.csv"
    np.savetxt(path, X, delimiter=",", header=",".join(names), comments="", fmt="%.6g")
    return run_comparison(str(path), ["pca", "ppca", "vae"], seed=0, **FAST), names


def test_narrow_samples_start_each_row_with_held_out_rows_of_every_feature(narrow):
    from latentzoo.report.panels import samples_section

    comp, names = narrow
    (f1, _, draw), (f2, _, _) = samples_section(comp)
    assert (f1, f2) == ("samples.png", "samples_marginals.png")
    axes = _heatmaps(draw())
    assert [ax.get_title() for ax in axes] == ["held-out data (16 rows)", "ppca: decoder means E[x|z]",
                                               "ppca: full draws x ~ p(x|z)", "held-out data (16 rows) ",
                                               "vae: decoder means E[x|z]", "vae: full draws x ~ p(x|z)"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == names  # every feature, the table's order
    everything = np.arange(8)
    held_out = _standardised(comp, comp.X_test, everything)
    for ax in (axes[0], axes[3]):  # the reference: 16 distinct held-out rows, the same in both rows
        shown = ax.get_images()[0].get_array().T
        rows = {int(np.flatnonzero(np.isclose(held_out, r, rtol=1e-5, atol=1e-5).all(axis=1))[0]) for r in shown}
        assert len(rows) == 16
    expected = _standardised(comp, comp.models["ppca"].sample(16, random_state=0, mean=True), everything).T
    np.testing.assert_allclose(axes[1].get_images()[0].get_array(), expected, rtol=1e-5, atol=1e-5)


def _box_quartiles(ax, label):
    """(n_features, 2): the x extent (first and third quartile) of the boxes labelled ``label``, top to bottom."""
    boxes = sorted((p for p in ax.patches if p.get_label() == label), key=lambda p: p.get_path().vertices[:, 1].mean())
    return np.array([[p.get_path().vertices[:, 0].min(), p.get_path().vertices[:, 0].max()] for p in boxes])


def test_narrow_marginals_set_each_models_draws_beside_the_held_out_data(narrow):
    from latentzoo.report.panels import marginals_figure

    comp, _ = narrow
    models = {n: m for n, m in comp.models.items() if m.has_prior}
    fig = marginals_figure(comp, models, seed=0)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["ppca", "vae"]
    everything = np.arange(8)
    real = _standardised(comp, comp.X_test, everything)  # all held-out rows (fewer than 1000)
    for ax, (name, m) in zip(axes, models.items()):
        np.testing.assert_allclose(_box_quartiles(ax, "held-out data"), np.percentile(real, [25, 75], axis=0).T,
                                   rtol=1e-5, atol=1e-5)
        draws = _standardised(comp, m.sample(len(real), random_state=0, mean=False), everything)
        np.testing.assert_allclose(_box_quartiles(ax, f"{name} draws"), np.percentile(draws, [25, 75], axis=0).T,
                                   rtol=1e-5, atol=1e-5)


def test_narrow_interpolations_show_the_two_inputs_and_every_feature_standardised(narrow):
    from latentzoo.report.panels import interpolations_section

    comp, names = narrow
    fig = interpolations_section(comp)[0][2]()
    axes = _heatmaps(fig)
    by_title = {ax.get_title(): ax.get_images()[0].get_array() for ax in axes}
    assert list(by_title) == ["the two inputs", "pca", "ppca", "vae"]
    assert [t.get_text() for t in axes[0].get_yticklabels()] == names
    x_a, x_b = comp.X_test[0], comp.X_test[len(comp.X_test) // 2]  # no labels: the first and the middle row
    everything = np.arange(8)
    np.testing.assert_allclose(by_title["the two inputs"], _standardised(comp, np.vstack([x_a, x_b]), everything).T,
                               rtol=1e-5, atol=1e-5)
    ppca = comp.models["ppca"]
    Z = ppca.transform(np.vstack([x_a, x_b]))
    t = np.linspace(0, 1, 10)[:, None]
    np.testing.assert_allclose(by_title["ppca"], _standardised(comp, ppca.inverse_transform((1 - t) * Z[0] + t * Z[1]),
                                                                everything).T, rtol=1e-5, atol=1e-5)
