"""PCA against scikit-learn and the eigenvalues of numpy's covariance (the oracles)."""
import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA as SkPCA

from latentzoo import PCA


def _data(n=200, d=8, seed=0, offset=3.0):
    rng = np.random.default_rng(seed)
    scales = np.linspace(3.0, 0.2, d)
    A = np.linalg.qr(rng.normal(size=(d, d)))[0]
    return rng.normal(size=(n, d)) * scales @ A.T + offset


def _align_signs(Z, Z_ref):
    """Flip each column of Z to best agree with Z_ref (PCA is defined up to sign)."""
    return Z * np.sign(np.sum(Z * Z_ref, axis=0))


@pytest.mark.parametrize("whiten", [False, True])
@pytest.mark.parametrize("shape,q", [((200, 8), 3), ((200, 8), 8), ((12, 30), 5)])
def test_matches_sklearn(shape, q, whiten):
    X = _data(*shape)
    ours = PCA(q, whiten=whiten).fit(X)
    sk = SkPCA(q, whiten=whiten, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.explained_variance_, sk.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_ratio_, sk.explained_variance_ratio_, rtol=1e-10)
    ev = np.linalg.eigvalsh(np.cov(X.T))  # ascending; all d eigenvalues, zeros included
    np.testing.assert_allclose(ours.noise_variance_, ev[: X.shape[1] - q].mean() if q < X.shape[1] else 0.0,
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.mean_, sk.mean_, rtol=1e-12)
    assert np.max(subspace_angles(ours.components_.T, sk.components_.T)) < 1e-8
    Z, Z_sk = ours.transform(X), sk.transform(X)
    np.testing.assert_allclose(_align_signs(Z, Z_sk), Z_sk, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(ours.inverse_transform(Z), sk.inverse_transform(Z_sk), rtol=1e-8, atol=1e-8)


def test_rank_deficient_gram_route_gives_orthonormal_directions():
    # n < d and q = n: the last centred eigenvalue is 0, its direction is arbitrary
    X = _data(10, 30)
    ours = PCA(10).fit(X)
    sk = SkPCA(9, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.components_ @ ours.components_.T, np.eye(10), atol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_[:9], sk.explained_variance_, rtol=1e-10)
    assert ours.explained_variance_[9] < 1e-10 * ours.explained_variance_[0]
    assert np.max(subspace_angles(ours.components_[:9].T, sk.components_.T)) < 1e-8


def test_sign_convention_largest_entry_positive():
    comps = PCA(4).fit(_data()).components_
    assert np.all(comps[np.arange(4), np.abs(comps).argmax(axis=1)] > 0)


@pytest.mark.parametrize("whiten", [False, True])
def test_inverse_transform_is_identity_on_the_subspace(whiten):
    X = _data()
    m = PCA(3, whiten=whiten).fit(X)
    rng = np.random.default_rng(1)
    P = m.mean_ + rng.normal(size=(20, 3)) @ m.components_  # points in the principal subspace
    np.testing.assert_allclose(m.inverse_transform(m.transform(P)), P, rtol=1e-10, atol=1e-10)
    if whiten:  # codes of the training data have unit variance
        np.testing.assert_allclose(m.transform(X).var(axis=0, ddof=1), 1.0, rtol=1e-10)


def test_reconstruction_error_is_sum_of_discarded_eigenvalues():
    X = _data()
    n, d, q = X.shape[0], X.shape[1], 3
    ev = np.linalg.eigvalsh(np.cov(X.T))  # ascending, 1/(n-1)
    m = PCA(q).fit(X)
    expected = ev[: d - q].sum() * (n - 1) / n
    assert m.reconstruction_error(X) == pytest.approx(expected, rel=1e-10)
    assert m.score(X) == pytest.approx(-expected, rel=1e-10)
    assert not hasattr(m, "score_samples")


def test_float32_input_is_accurate_even_with_a_large_offset():
    # mean 1e4 x the spread: X^T X - n mu mu^T would cancel all float32 digits, so the
    # fit must centre first; the oracle is float64 PCA of the same float32 values
    X32 = _data(2000, 6, offset=1e4).astype(np.float32)
    ours = PCA(3).fit(X32)
    sk = SkPCA(3, svd_solver="full").fit(X32.astype(np.float64))
    np.testing.assert_allclose(ours.explained_variance_, sk.explained_variance_, rtol=1e-4)
    assert np.max(subspace_angles(ours.components_.T, sk.components_.T)) < 1e-3


def test_float32_cancellation_missed_by_the_row_sample_is_caught():
    # column 0 is constant (1e4) on the rows the pre-check samples (every 4th) and varies
    # elsewhere: only the exact check after X^T X can see the cancellation
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4096, 5))
    X[:, 0] = 1e4
    off = np.arange(4096) % 4 != 0
    X[off, 0] += rng.normal(size=off.sum())
    X32 = X.astype(np.float32)
    ours = PCA(3).fit(X32)
    sk = SkPCA(3, svd_solver="full").fit(X32.astype(np.float64))
    np.testing.assert_allclose(ours.explained_variance_, sk.explained_variance_, rtol=1e-4)


def test_float32_input_matches_float64_without_offset():
    X32 = _data(2000, 6, offset=0.5).astype(np.float32)
    ours = PCA(3).fit(X32)
    ref = PCA(3).fit(X32.astype(np.float64))
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-5)
    assert np.max(subspace_angles(ours.components_.T, ref.components_.T)) < 1e-4


@pytest.mark.parametrize("q", [0, -1, 2.5, "2", None, True])
def test_invalid_n_components_type_or_range(q):
    with pytest.raises(ValueError, match="n_components"):
        PCA(q).fit(_data())


def test_n_components_larger_than_data():
    with pytest.raises(ValueError, match="n_components=9.*n_features = 8"):
        PCA(9).fit(_data())
    with pytest.raises(ValueError, match="n_components=6.*n_samples = 5"):
        PCA(6).fit(_data(5, 8))


def test_bad_input_errors():
    X = _data()
    m = PCA(2).fit(X)
    with pytest.raises(ValueError, match="features"):
        m.transform(X[:, :5])
    with pytest.raises(ValueError, match="shape"):
        m.inverse_transform(np.zeros((3, 5)))
    Xn = X.copy()
    Xn[4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN first at row 4, column 2"):
        PCA(2).fit(Xn)
    with pytest.raises(ValueError, match="whiten"):
        PCA(2, whiten="yes").fit(X)


def test_save_load_round_trip_whiten(tmp_path):
    import latentzoo

    X = _data()
    m = PCA(3, whiten=True).fit(X)
    m.save(tmp_path / "pca.safetensors")
    back = latentzoo.load(tmp_path / "pca.safetensors")
    np.testing.assert_array_equal(back.transform(X), m.transform(X))
    assert back.noise_variance_ == m.noise_variance_ and back.whiten is True


@pytest.mark.parametrize("layout", ["fortran", "row-strided", "column-strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_any_memory_layout_fits_like_scikit_learn(layout, dtype):
    """The scatter pass takes C, Fortran and strided views (copied only when strided)."""
    big = _data(400, 16).astype(dtype)
    X = {"fortran": np.asfortranarray(big), "row-strided": big[::2], "column-strided": big[:, ::2]}[layout]
    ours = PCA(3).fit(X)
    sk = SkPCA(3, svd_solver="full").fit(np.asarray(X, dtype=np.float64))
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(ours.explained_variance_, sk.explained_variance_, rtol=rtol)
    assert np.max(subspace_angles(ours.components_.T, sk.components_.T)) < (1e-3 if dtype == np.float32 else 1e-8)
