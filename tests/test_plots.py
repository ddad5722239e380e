"""latentzoo.plots: what is drawn is what the models compute (read back from the artists).

Oracles: scikit-learn's PCA, the PPCA posterior covariance sigma2 M^-1 from W_ and
noise_variance_ (Tipping & Bishop 1999, eq. 6), scipy's norm.ppf grid, the analytic
Gaussian-mixture score, and the models' own transform/inverse_transform/sample outputs
(the plots must show exactly those numbers).
"""
import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.stats import norm
from sklearn.decomposition import PCA as SkPCA

import latentzoo
from latentzoo import plots
from latentzoo.data.synthetic import gaussian_mixture_density

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHAPE = (8, 8)
FAST = dict(hidden=(16,), max_epochs=2, batch_size=128, verbose=0, random_state=0, device="cpu")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data(digits):
    X, y = digits
    return X[:400], y[:400]


@pytest.fixture(scope="module")
def fitted(data):
    """One fitted model per rung (2-D latent), fitted once for the module."""
    X, _ = data
    models = {
        "pca": latentzoo.PCA(2).fit(X),
        "ppca": latentzoo.PPCA(2).fit(X),
        "ae": latentzoo.Autoencoder(2, **FAST).fit(X),
        "vae": latentzoo.VAE(2, **FAST).fit(X),
    }
    return models


def _image(ax):
    return np.ma.filled(np.ma.asarray(ax.images[0].get_array(), dtype=float), np.nan)


def _tile(tiled, k, ncols, shape=SHAPE, pad=1):
    """Tile k of an image grid, located independently of the plotting code."""
    h, w = shape
    r, c = divmod(k, ncols)
    return tiled[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w]


def _png_ok(fig):
    png = plots.figure_to_png_bytes(fig)
    assert png.startswith(PNG_MAGIC) and len(png) > 1000


# ---------------------------------------------------------------------- hygiene
def test_import_latentzoo_does_not_import_matplotlib():
    code = "import sys, latentzoo; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tile_images_places_each_image_row_major_with_padding(rng):
    imgs = rng.normal(size=(5, 3, 2))
    tiled = plots.tile_images(imgs, ncols=2, pad=1)
    assert tiled.shape == (3 * 4 + 1, 2 * 3 + 1)
    for k in range(5):
        np.testing.assert_array_equal(_tile(tiled, k, 2, (3, 2)), imgs[k])
    # the gaps and the unused sixth cell are NaN (drawn in the pad colour)
    assert np.isnan(tiled[0]).all() and np.isnan(_tile(tiled, 5, 2, (3, 2))).all()
    assert np.isfinite(tiled).sum() == imgs.size


def test_image_grid_needs_a_shape_for_flat_images(rng):
    with pytest.raises(ValueError, match="image_shape"):
        plots.image_grid(rng.normal(size=(4, 64)))
    with pytest.raises(ValueError, match="does not match the 64 features"):
        plots.image_grid(rng.normal(size=(4, 64)), image_shape=(7, 9))


# ---------------------------------------------------------------------- latent scatter
@pytest.mark.parametrize("name", ["pca", "ppca", "ae", "vae"])
def test_latent_scatter_offsets_are_the_codes(fitted, data, name):
    X, y = data
    model = fitted[name]
    fig = plots.latent_scatter(model, X, y)
    ax = fig.axes[0]
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets, model.transform(X), rtol=1e-6, atol=1e-6)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(c) for c in range(10)]
    assert ax.get_xlabel() and ax.get_ylabel() and type(model).__name__ in ax.get_title()
    _png_ok(fig)


def test_latent_scatter_projects_higher_dimensional_codes_on_their_principal_plane(data):
    X, y = data
    model = latentzoo.PPCA(5).fit(X)
    fig = plots.latent_scatter(model, X, y)
    ax = fig.axes[0]
    expected = SkPCA(2).fit_transform(model.transform(X))
    got = np.asarray(ax.collections[0].get_offsets())
    for j in range(2):  # principal axes are defined up to sign
        sign = np.sign(got[:, j] @ expected[:, j])
        np.testing.assert_allclose(got[:, j], sign * expected[:, j], atol=1e-8)
    assert "PC 1" in ax.get_xlabel() and "5-D codes" in ax.get_xlabel()


def test_latent_scatter_continuous_labels_get_a_colorbar(fitted, data):
    X, _ = data
    fig = plots.latent_scatter(fitted["pca"], X, y=np.linspace(0, 1, len(X)) ** 2)
    assert len(fig.axes) == 2 and fig.axes[0].get_legend() is None  # main axes + colour bar


def test_latent_scatter_one_dimensional_codes_against_the_label(data):
    X, y = data
    model = latentzoo.PCA(1).fit(X)
    offsets = np.asarray(plots.latent_scatter(model, X, y).axes[0].collections[0].get_offsets())
    np.testing.assert_allclose(offsets[:, 0], model.transform(X)[:, 0])
    np.testing.assert_array_equal(offsets[:, 1], y)


def test_figure_to_png_bytes_rejects_non_figures():
    with pytest.raises(ValueError, match="Figure"):
        plots.figure_to_png_bytes(object())


# ---------------------------------------------------------------------- posterior ellipses
def _ellipses(fig):
    return [p for p in fig.axes[0].patches if p.get_gid() == "posterior"]


def _ppca_posterior_cov(model):
    W, s2 = model.W_, model.noise_variance_
    M = W.T @ W + s2 * np.eye(W.shape[1])
    return s2 * np.linalg.inv(M)  # Tipping & Bishop (1999), eq. 6


@pytest.mark.parametrize("q", [2, 3])
def test_posterior_ellipses_ppca_match_sigma2_Minv(data, q):
    X, y = data
    model = latentzoo.PPCA(q).fit(X)
    n_std = 1.5
    fig = plots.posterior_ellipses(model, X, y, n_points=30, n_std=n_std)
    ells = _ellipses(fig)
    assert len(ells) == 30
    cov2 = _ppca_posterior_cov(model)[:2, :2]  # marginal of the first two coordinates
    vals, vecs = np.linalg.eigh(cov2)
    centres = np.array([e.center for e in ells])
    # each centre is the posterior mean of one input: a row of transform(X)
    Z = model.transform(X)[:, :2]
    assert np.abs(Z[:, None, :] - centres[None]).sum(-1).min(axis=0).max() < 1e-9
    for e in ells:
        np.testing.assert_allclose(e.width, 2 * n_std * np.sqrt(vals[1]), rtol=1e-9)
        np.testing.assert_allclose(e.height, 2 * n_std * np.sqrt(vals[0]), rtol=1e-9)
        major = np.array([np.cos(np.radians(e.angle)), np.sin(np.radians(e.angle))])
        assert abs(major @ vecs[:, 1]) == pytest.approx(1.0, abs=1e-9)
    prior = [p for p in fig.axes[0].patches if p.get_gid() == "prior"]
    assert len(prior) == 1 and prior[0].radius == n_std
    _png_ok(fig)


def test_posterior_ellipses_vae_are_axis_aligned_with_the_encoder_scales(fitted, data):
    X, y = data
    model = fitted["vae"]
    n_std = 2
    fig = plots.posterior_ellipses(model, X, y, n_points=20, n_std=n_std)
    ells = _ellipses(fig)
    q = model.posterior(X).base_dist
    loc, scale = q.loc.numpy().astype(float), q.scale.numpy().astype(float)
    for e in ells:
        k = np.argmin(np.abs(loc - np.asarray(e.center)).sum(1))
        np.testing.assert_allclose(e.center, loc[k], atol=1e-6)
        assert e.angle % 90 == pytest.approx(0, abs=1e-9)  # axis-aligned
        horizontal = abs(np.cos(np.radians(e.angle))) > 0.5
        along_z1, along_z2 = (e.width, e.height) if horizontal else (e.height, e.width)
        np.testing.assert_allclose([along_z1, along_z2], 2 * n_std * scale[k], rtol=1e-5)


@pytest.mark.parametrize("name", ["pca", "ae"])
def test_posterior_ellipses_reject_models_without_a_posterior(fitted, data, name):
    with pytest.raises(ValueError, match="no posterior"):
        plots.posterior_ellipses(fitted[name], data[0])


# ---------------------------------------------------------------------- latent grid
@pytest.mark.parametrize("name", ["ppca", "vae"])
def test_latent_grid_decodes_the_prior_quantiles(fitted, name):
    model, n = fitted[name], 5
    fig = plots.latent_grid(model, n=n, image_shape=SHAPE)
    tiled = _image(fig.axes[0])
    g = norm.ppf(np.linspace(0.05, 0.95, n))
    for i in range(n):          # rows: z2 from the largest (top) down
        for j in range(n):      # columns: z1 increasing
            z = np.array([[g[j], g[n - 1 - i]]])
            np.testing.assert_allclose(_tile(tiled, i * n + j, n), model.inverse_transform(z).reshape(SHAPE),
                                       rtol=1e-5, atol=1e-6)
    _png_ok(fig)


@pytest.mark.parametrize("name", ["pca", "ae"])
def test_latent_grid_spans_the_codes_for_models_without_prior(fitted, data, name):
    X, _ = data
    model, n = fitted[name], 4
    with pytest.raises(ValueError, match="pass X"):
        plots.latent_grid(model, n=n, image_shape=SHAPE)
    tiled = _image(plots.latent_grid(model, n=n, image_shape=SHAPE, X=X).axes[0])
    lo, hi = np.percentile(model.transform(X), [1, 99], axis=0)
    top_left = model.inverse_transform(np.array([[lo[0], hi[1]]])).reshape(SHAPE)
    bottom_right = model.inverse_transform(np.array([[hi[0], lo[1]]])).reshape(SHAPE)
    np.testing.assert_allclose(_tile(tiled, 0, n), top_left, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_tile(tiled, n * n - 1, n), bottom_right, rtol=1e-5, atol=1e-6)
    # an explicit extent wins
    tiled = _image(plots.latent_grid(model, n=n, extent=(-1, 1, -2, 2), image_shape=SHAPE).axes[0])
    np.testing.assert_allclose(_tile(tiled, 0, n), model.inverse_transform(np.array([[-1.0, 2.0]])).reshape(SHAPE),
                               rtol=1e-5, atol=1e-6)


def test_latent_grid_needs_a_2d_latent_space(data):
    with pytest.raises(ValueError, match="2-D latent"):
        plots.latent_grid(latentzoo.PPCA(3).fit(data[0]), image_shape=SHAPE)


def test_latent_grid_on_2d_data_draws_the_decoded_grid_lines(rng):
    X = rng.normal(size=(200, 2)) @ np.array([[2.0, 0.5], [0.0, 1.0]])
    model, n = latentzoo.PCA(2).fit(X), 4
    fig = plots.latent_grid(model, n=n, X=X)
    lines = fig.axes[0].lines
    assert len(lines) == 2 * n
    lo, hi = np.percentile(model.transform(X), [1, 99], axis=0)
    z2_top = np.column_stack([np.linspace(lo[0], hi[0], n), np.full(n, hi[1])])
    np.testing.assert_allclose(np.column_stack(lines[0].get_data()), model.inverse_transform(z2_top))


# ---------------------------------------------------------------------- images of decoded data
def test_reconstructions_rows_are_inverse_transform_of_transform(fitted, data):
    X, _ = data
    models = {k: fitted[k] for k in ("pca", "ppca", "ae", "vae")}
    n = 6
    fig = plots.reconstructions(models, X, n=n, image_shape=SHAPE)
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == ["original", *models]
    for k in range(n):
        np.testing.assert_allclose(_tile(_image(axes[0]), k, n), X[k].reshape(SHAPE), atol=1e-7)
    for ax, m in zip(axes[1:], models.values()):
        R = m.inverse_transform(m.transform(X[:n]))
        for k in range(n):
            np.testing.assert_allclose(_tile(_image(ax), k, n), R[k].reshape(SHAPE), rtol=1e-5, atol=1e-6)
    _png_ok(fig)


def test_reconstructions_of_non_image_data_are_lines(rng):
    X = rng.normal(size=(50, 6))
    model = latentzoo.PCA(2).fit(X)
    fig = plots.reconstructions(model, X, n=3)
    R = SkPCA(2).fit(X)
    R = R.inverse_transform(R.transform(X[:3]))  # scikit-learn's projection as the oracle
    for k in range(3):
        original, rec = fig.axes[k].lines
        np.testing.assert_allclose(original.get_ydata(), X[k])
        np.testing.assert_allclose(rec.get_ydata(), R[k], atol=1e-10)


def test_reconstructions_of_2d_data_are_drawn_in_the_plane(rng):
    X = rng.normal(size=(40, 2)) * [2.0, 0.3]
    model = latentzoo.PCA(1).fit(X)
    fig = plots.reconstructions({"pca": model}, X, n=5)
    ax = fig.axes[0]
    original, rec = [c for c in ax.collections if c.get_label() in ("original", "pca")]
    np.testing.assert_allclose(original.get_offsets(), X[:5])
    sk = SkPCA(1).fit(X)
    np.testing.assert_allclose(rec.get_offsets(), sk.inverse_transform(sk.transform(X[:5])), atol=1e-10)


@pytest.mark.parametrize("name", ["ppca", "vae"])
def test_samples_show_model_sample(fitted, name):
    model = fitted[name]
    fig = plots.samples(model, n=9, image_shape=SHAPE, random_state=3)
    S = model.sample(9, random_state=3)
    tiled = _image(fig.axes[0])
    for k in range(9):
        np.testing.assert_allclose(_tile(tiled, k, 3), S[k].reshape(SHAPE), rtol=1e-6, atol=1e-7)
    _png_ok(fig)


@pytest.mark.parametrize("name", ["pca", "ae"])
def test_samples_reject_models_without_prior(fitted, name):
    with pytest.raises(ValueError, match="no prior"):
        plots.samples(fitted[name], image_shape=SHAPE)


def test_interpolations_decode_the_segment_between_codes(fitted, data):
    X, _ = data
    steps = 5
    models = {"pca": fitted["pca"], "vae": fitted["vae"]}
    fig = plots.interpolations(models, X[0], X[1], steps=steps, image_shape=SHAPE)
    path = {"pca": fig.axes[1], "vae": fig.axes[4]}  # per model a row: start (data), path, end (data)
    # PCA: decoding (1-t) z_a + t z_b is (1-t) P(x_a) + t P(x_b), P scikit-learn's projection
    sk = SkPCA(2).fit(X)
    Pab = sk.inverse_transform(sk.transform(X[:2]))
    for k, t in enumerate(np.linspace(0, 1, steps)):
        np.testing.assert_allclose(_tile(_image(path['pca']), k, steps), ((1 - t) * Pab[0] + t * Pab[1]).reshape(SHAPE),
                                   atol=1e-6)
    # VAE: its own interpolate (decoded posterior means at the ends)
    vae = fitted["vae"]
    ends = vae.inverse_transform(vae.transform(X[:2]))
    np.testing.assert_allclose(_tile(_image(path['vae']), 0, steps), ends[0].reshape(SHAPE), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_tile(_image(path['vae']), steps - 1, steps), ends[1].reshape(SHAPE),
                               rtol=1e-5, atol=1e-6)
    _png_ok(fig)


def test_image_interpolations_show_the_two_real_inputs_at_the_ends(fitted, data):
    X, _ = data
    models = {"pca": fitted["pca"], "vae": fitted["vae"]}
    fig = plots.interpolations(models, X[3], X[7], steps=6, image_shape=SHAPE)
    rows = np.array(fig.axes).reshape(len(models), 3)
    for i, (start, path, end) in enumerate(rows):
        # the end panels are the inputs themselves, not their reconstructions
        np.testing.assert_array_equal(_tile(_image(start), 0, 1), X[3].reshape(SHAPE))
        np.testing.assert_array_equal(_tile(_image(end), 0, 1), X[7].reshape(SHAPE))
        assert _image(path).shape[1] == 6 * (SHAPE[1] + 1) + 1  # the 6 decoded steps between them
        for ax in (start, end):  # marked as data: a visible frame
            assert all(sp.get_visible() for sp in ax.spines.values())
        assert not any(sp.get_visible() for sp in path.spines.values())
        assert start.get_ylabel() == list(models)[i]
    assert (rows[0, 0].get_title(), rows[0, 2].get_title()) == ("start (data)", "end (data)")
    # one grey scale for data and decoded images
    assert len({ax.images[0].get_clim() for ax in fig.axes}) == 1
    _png_ok(fig)


# ---------------------------------------------------------------------- curves
def test_training_curves_plot_history_and_mark_best_epoch(fitted):
    models = {"pca": fitted["pca"], "ae": fitted["ae"], "vae": fitted["vae"]}
    fig = plots.training_curves(models)
    ax = fig.axes[0]
    by_label = {line.get_label(): line for line in ax.lines}
    assert not any(k.startswith("pca") for k in by_label)  # closed-form fit: no curve
    for name in ("ae", "vae"):
        h = models[name].history_
        np.testing.assert_allclose(by_label[f"{name} train"].get_ydata(), h["train_loss"])
        np.testing.assert_allclose(by_label[f"{name} validation"].get_ydata(), h["val_loss"])
        np.testing.assert_array_equal(by_label[f"{name} train"].get_xdata(), np.arange(1, len(h["train_loss"]) + 1))
        best = by_label[f"{name} best epoch ({h['best_epoch']})"]
        assert best.get_xdata()[0] == h["best_epoch"]
        assert best.get_ydata()[0] == h["val_loss"][h["best_epoch"] - 1]
    positive = all(min(models[n].history_["train_loss"] + models[n].history_["val_loss"]) > 0 for n in ("ae", "vae"))
    assert ax.get_yscale() == ("log" if positive else "linear")
    _png_ok(fig)


def test_training_curves_need_a_trained_model(fitted):
    with pytest.raises(ValueError, match="history_"):
        plots.training_curves({"pca": fitted["pca"], "ppca": fitted["ppca"]})


def test_training_curves_linear_scale_when_a_loss_is_negative():
    class Fake:
        history_ = {"train_loss": [3.0, -1.0], "val_loss": [2.0, -0.5], "best_epoch": 2}

    assert plots.training_curves(Fake()).axes[0].get_yscale() == "linear"


@pytest.mark.parametrize("name", ["pca", "ppca"])
def test_explained_variance_bars_match_scikit_learn(data, name):
    X, _ = data
    model = latentzoo.PCA(6).fit(X) if name == "pca" else latentzoo.PPCA(6).fit(X)
    fig = plots.explained_variance(model)
    ax = fig.axes[0]
    expected = SkPCA(6).fit(X).explained_variance_ratio_
    np.testing.assert_allclose([b.get_height() for b in ax.patches], expected, rtol=1e-5)
    cum = [line for line in ax.lines if line.get_gid() == "cumulative"][0]
    np.testing.assert_allclose(cum.get_ydata(), np.cumsum(expected), rtol=1e-5)
    _png_ok(fig)


def test_explained_variance_rejects_nonlinear_models(fitted):
    with pytest.raises(ValueError, match="linear model"):
        plots.explained_variance(fitted["ae"])


# ---------------------------------------------------------------------- score field
class _TrueScore:
    """A duck-typed 'model' whose score field is the analytic one."""

    def __init__(self, density):
        self.density = density

    def score_field(self, X):
        return self.density.score(X)


def test_score_field_quiver_shows_the_model_score_on_the_grid():
    density = gaussian_mixture_density()
    X = density.sample(300, 0)
    grid = 9
    fig = plots.score_field(_TrueScore(density), X, density=density, grid=grid)
    q = [c for c in fig.axes[0].collections if isinstance(c, matplotlib.quiver.Quiver)][0]
    pts = np.column_stack([q.X, q.Y])
    assert len(pts) == grid * grid
    np.testing.assert_allclose(np.column_stack([q.U, q.V]), density.score(pts), rtol=1e-12)
    # the grid covers the data (plus a margin)
    assert pts.min(0).tolist() < X.min(0).tolist() and pts.max(0).tolist() > X.max(0).tolist()
    _png_ok(fig)


def test_score_field_of_a_gaussian_dae_with_kde_background():
    density = gaussian_mixture_density()
    X = density.sample(300, 1).astype(np.float32)
    dae = latentzoo.Autoencoder(2, noise="gaussian:0.3", **FAST).fit(X)
    fig = plots.score_field(dae, X, grid=6)
    q = [c for c in fig.axes[0].collections if isinstance(c, matplotlib.quiver.Quiver)][0]
    np.testing.assert_allclose(np.column_stack([q.U, q.V]), dae.score_field(np.column_stack([q.X, q.Y])),
                               rtol=1e-5, atol=1e-5)
    assert "KDE" in fig.axes[0].get_title()


def test_score_field_rejects_models_without_score(fitted):
    X = gaussian_mixture_density().sample(50, 0)
    with pytest.raises(ValueError, match="no score_field"):
        plots.score_field(fitted["pca"], X)
    with pytest.raises(ValueError, match="2-D data"):
        plots.score_field(_TrueScore(gaussian_mixture_density()), np.zeros((10, 3)))


def test_eigen_spectrum_shows_every_component_against_scikit_learn_and_marks_q():
    from sklearn.decomposition import PCA as SkPCA

    X = np.random.default_rng(0).normal(size=(40, 12)) * np.linspace(3, 0.5, 12)
    fig = plots.eigen_spectrum(X, 3)
    ax, bars = fig.axes[0], fig.axes[1]
    heights = np.array([p.get_height() for p in bars.patches])
    np.testing.assert_allclose(heights, SkPCA().fit(X).explained_variance_ratio_, rtol=1e-10)  # all 12
    (q_line,) = [line for line in ax.lines if line.get_gid() == "chosen_q"]
    assert q_line.get_xdata()[0] == pytest.approx(3.5)
    cum = [line for line in ax.lines if line.get_gid() == "cumulative"][0]
    assert cum.get_ydata()[-1] == pytest.approx(1.0)
