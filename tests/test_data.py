"""Tests of latentzoo.data: every format, every bad input, the embedded sets and densities."""
import gzip

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from latentzoo.data import (
    Dataset,
    GaussianMixture2D,
    gaussian_mixture_density,
    load_dataset,
    moons_density,
    swiss_roll_density,
)


# ---------------------------------------------------------------------- writers (oracles)
def write_idx_images(path, images, magic=2051):
    n, h, w = images.shape
    header = np.array([magic, n, h, w], dtype=">u4").tobytes()
    data = header + images.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def write_idx_labels(path, labels):
    data = np.array([2049, len(labels)], dtype=">u4").tobytes() + labels.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def write_amat(path, X):
    text = "".join(" ".join(str(int(v)) for v in row) + "\n" for row in X).encode()
    path.write_bytes(gzip.compress(text) if path.name.endswith(".gz") else text)


@pytest.fixture
def arr(rng):
    return rng.normal(size=(7, 3)).astype(np.float32)


# ---------------------------------------------------------------------- round trips
def test_dataset_unpacks_and_meta(arr):
    ds = load_dataset(arr)
    assert isinstance(ds, Dataset)
    X, y, meta = ds
    assert X.dtype == np.float32 and X.flags.c_contiguous and y is None
    np.testing.assert_array_equal(X, arr)
    assert meta["n_samples"] == 7 and meta["n_features"] == 3 and meta["image_shape"] is None
    assert meta["value_range"] == (float(arr.min()), float(arr.max())) and meta["has_labels"] is False


def test_npy_round_trip_2d_and_3d(tmp_path, rng):
    A = rng.normal(size=(5, 4))
    np.save(tmp_path / "a.npy", A)
    np.testing.assert_allclose(load_dataset(tmp_path / "a.npy").X, A.astype(np.float32))
    imgs = rng.integers(0, 9, size=(6, 3, 2)).astype(np.int16)
    np.save(tmp_path / "imgs.npy", imgs)
    X, _, meta = load_dataset(str(tmp_path / "imgs.npy"))
    assert meta["image_shape"] == (3, 2)
    np.testing.assert_array_equal(X, imgs.reshape(6, 6).astype(np.float32))


def test_npy_mmap_keeps_dtype_and_is_read_only(tmp_path, rng):
    A = rng.integers(0, 255, size=(10, 2, 3)).astype(np.uint8)
    np.save(tmp_path / "m.npy", A)
    X, _, meta = load_dataset(tmp_path / "m.npy", mmap=True)
    assert isinstance(X.base, np.memmap) or isinstance(X, np.memmap)
    assert X.dtype == np.uint8 and X.shape == (10, 6) and not X.flags.writeable
    assert meta["mmap"] is True and meta["image_shape"] == (2, 3)
    np.testing.assert_array_equal(X, A.reshape(10, 6))


def test_mmap_rejected_for_other_formats(tmp_path, arr):
    np.savez(tmp_path / "a.npz", X=arr)
    with pytest.raises(ValueError, match="mmap"):
        load_dataset(tmp_path / "a.npz", mmap=True)


@pytest.mark.parametrize("data_key,label_key", [("X", "y"), ("x", "labels"), ("data", "target"), ("arr_0", None)])
def test_npz_keys(tmp_path, arr, data_key, label_key):
    labels = np.arange(7)
    arrays = {data_key: arr, **({label_key: labels} if label_key else {})}
    np.savez(tmp_path / "a.npz", **arrays)
    X, y, meta = load_dataset(tmp_path / "a.npz")
    np.testing.assert_array_equal(X, arr)
    if label_key:
        np.testing.assert_array_equal(y, labels)
    else:
        assert y is None


def test_npz_missing_key_lists_keys(tmp_path, arr):
    np.savez(tmp_path / "a.npz", features=arr)
    with pytest.raises(ValueError, match=r"a\.npz.*expected one of the keys.*found features"):
        load_dataset(tmp_path / "a.npz")


@pytest.mark.parametrize("delim,suffix", [(",", ".csv"), ("\t", ".tsv"), (" ", ".txt"), (";", ".csv")])
def test_csv_round_trip(tmp_path, arr, delim, suffix):
    path = tmp_path / f"a{suffix}"
    np.savetxt(path, arr, delimiter=delim, fmt="%.9g")
    np.testing.assert_array_equal(load_dataset(path).X, arr)


def test_csv_header_and_label_column(tmp_path):
    (tmp_path / "h.csv").write_text("a,b,label\n1,2,0\n3,4,1\n# comment\n\n5,6,1\n")
    for key in ("label", 2, -1):
        X, y, meta = load_dataset(tmp_path / "h.csv", label_column=key)
        np.testing.assert_array_equal(X, [[1, 2], [3, 4], [5, 6]])
        np.testing.assert_array_equal(y, [0, 1, 1])
        assert meta["columns"] == ["a", "b"] and meta["has_labels"]
    X, y, meta = load_dataset(tmp_path / "h.csv", label_column=0)
    np.testing.assert_array_equal(X, [[2, 0], [4, 1], [6, 1]])


def test_csv_string_labels(tmp_path):
    (tmp_path / "s.csv").write_text("x,cls\n1,cat\n2,dog\n")
    X, y, _ = load_dataset(tmp_path / "s.csv", label_column="cls")
    assert list(y) == ["cat", "dog"]


def test_csv_empty_cell_is_nan(tmp_path):
    (tmp_path / "m.csv").write_text("1,2\n3,\n")
    X, _, _ = load_dataset(tmp_path / "m.csv", allow_nan=True)
    assert np.isnan(X[1, 1]) and X[1, 0] == 3
    with pytest.raises(ValueError, match=r"m\.csv.*NaN first at line 2, column 1"):
        load_dataset(tmp_path / "m.csv")


def test_idx_round_trip_with_labels(tmp_path, rng):
    imgs = rng.integers(0, 256, size=(5, 4, 3))
    labels = rng.integers(0, 10, size=5)
    write_idx_images(tmp_path / "train-images-idx3-ubyte.gz", imgs)
    write_idx_labels(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    X, y, meta = load_dataset(tmp_path / "train-images-idx3-ubyte.gz")
    np.testing.assert_allclose(X, imgs.reshape(5, 12) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    assert meta["image_shape"] == (4, 3) and meta["value_range"][1] <= 1.0


def test_idx_without_labels_and_folder_splits(tmp_path, rng):
    tr, te = rng.integers(0, 256, size=(4, 2, 2)), rng.integers(0, 256, size=(3, 2, 2))
    write_idx_images(tmp_path / "t10k-images-idx3-ubyte", te)
    X, y, _ = load_dataset(tmp_path / "t10k-images-idx3-ubyte")
    assert y is None and X.shape == (3, 4)
    write_idx_images(tmp_path / "train-images-idx3-ubyte.gz", tr)
    write_idx_labels(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(4))
    write_idx_labels(tmp_path / "t10k-labels-idx1-ubyte", np.arange(3))
    X, y, meta = load_dataset(tmp_path)
    np.testing.assert_allclose(X * 255, tr.reshape(4, 4), atol=1e-4)
    assert meta["split"] == "train" and list(y) == [0, 1, 2, 3]
    X, y, _ = load_dataset(tmp_path, split="test")
    np.testing.assert_allclose(X * 255, te.reshape(3, 4), atol=1e-4)
    with pytest.raises(ValueError, match="unknown split 'dev'.*train, test"):
        load_dataset(tmp_path, split="dev")


@pytest.mark.parametrize("name", ["b.amat", "b.amat.gz"])
def test_amat_round_trip(tmp_path, rng, name):
    B = rng.integers(0, 2, size=(6, 784))
    write_amat(tmp_path / name, B)
    X, y, meta = load_dataset(tmp_path / name)
    np.testing.assert_array_equal(X, B)
    assert meta["image_shape"] == (28, 28) and y is None


def test_amat_general_text_layout(tmp_path):
    (tmp_path / "f.amat").write_text("0.5  1\n2 3.25\n")
    np.testing.assert_array_equal(load_dataset(tmp_path / "f.amat").X, [[0.5, 1], [2, 3.25]])


def test_dataframe_and_label_column():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4], "t": [0, 1]})
    X, y, meta = load_dataset(df, label_column="t")
    np.testing.assert_array_equal(X, [[1, 3], [2, 4]])
    np.testing.assert_array_equal(y, [0, 1])
    assert meta["columns"] == ["a", "b"]
    with pytest.raises(ValueError, match="column 'c' has non-numeric dtype"):
        load_dataset(pd.DataFrame({"a": [1.0], "c": ["x"]}))


def test_n_samples_keeps_first_rows(arr):
    np.testing.assert_array_equal(load_dataset(arr, n_samples=3).X, arr[:3])


# ---------------------------------------------------------------------- bad input
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.csv.*no such file"):
        load_dataset(tmp_path / "nope.csv")


def test_unknown_format_lists_known(tmp_path):
    (tmp_path / "a.xyz").write_text("1")
    with pytest.raises(ValueError, match=r"a\.xyz.*unknown file format.*\.csv.*\.npy"):
        load_dataset(tmp_path / "a.xyz")


def test_unknown_embedded_name_lists_known():
    with pytest.raises(ValueError, match="unknown dataset 'mnistt'.*digits.*gaussian-mixture"):
        load_dataset("mnistt")


def test_non_numeric_cell_names_line_and_column(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(ValueError, match=r"bad\.csv.*non-numeric value 'oops' at line 3, column 'b'"):
        load_dataset(tmp_path / "bad.csv")
    (tmp_path / "bad2.csv").write_text("1,2\nx1,2\n")
    with pytest.raises(ValueError, match=r"bad2\.csv.*'x1' at line 2, column 0"):
        load_dataset(tmp_path / "bad2.csv")


def test_ragged_rows(tmp_path):
    (tmp_path / "r.csv").write_text("1,2,3\n4,5,6\n7,8\n")
    with pytest.raises(ValueError, match=r"r\.csv.*line 3 has 2 fields, expected 3"):
        load_dataset(tmp_path / "r.csv")


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "a,b\n"])
def test_empty_csv(tmp_path, content):
    (tmp_path / "e.csv").write_text(content)
    with pytest.raises(ValueError, match=r"e\.csv.*(empty file|zero data rows)"):
        load_dataset(tmp_path / "e.csv")


def test_zero_rows_npy(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"z\.npy.*no data"):
        load_dataset(tmp_path / "z.npy")


def test_wrong_idx_magic(tmp_path):
    write_idx_images(tmp_path / "x-idx3-ubyte", np.zeros((2, 2, 2)), magic=2049)
    with pytest.raises(ValueError, match=r"x-idx3-ubyte.*wrong IDX magic number 2049.*2051"):
        load_dataset(tmp_path / "x-idx3-ubyte")


def test_truncated_idx(tmp_path):
    path = tmp_path / "t-idx3-ubyte"
    write_idx_images(path, np.zeros((3, 4, 4)))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"t-idx3-ubyte.*truncated.*header says 3 images.*43 bytes"):
        load_dataset(path)
    path.write_bytes(b"\x00\x00\x08")
    with pytest.raises(ValueError, match="truncated"):
        load_dataset(path)


def test_idx_label_count_mismatch(tmp_path):
    write_idx_images(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 2, 2)))
    write_idx_labels(tmp_path / "train-labels-idx1-ubyte", np.arange(2))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.*2 labels for 3 images"):
        load_dataset(tmp_path / "train-images-idx3-ubyte")


@pytest.mark.parametrize("name", ["c.csv.gz", "c-idx3-ubyte.gz", "c.amat.gz"])
def test_corrupted_gzip(tmp_path, name):
    good = gzip.compress(b"1 0 1\n" * 100)
    (tmp_path / name).write_bytes(good[:-12])  # truncated stream
    with pytest.raises(ValueError, match=rf"{name.replace('.', '[.]')}.*corrupted or truncated gzip"):
        load_dataset(tmp_path / name)
    (tmp_path / name).write_bytes(b"\x1f\x8bjunkjunkjunk")
    with pytest.raises(ValueError, match="gzip"):
        load_dataset(tmp_path / name)


def test_nan_and_inf(tmp_path):
    A = np.ones((4, 3))
    A[2, 1] = np.nan
    np.save(tmp_path / "n.npy", A)
    with pytest.raises(ValueError, match=r"n\.npy contains 1 non-finite value\(s\) \(NaN first at row 2, column 1; rows and columns count from 0\).*allow_nan"):
        load_dataset(tmp_path / "n.npy")
    X, _, meta = load_dataset(tmp_path / "n.npy", allow_nan=True)
    assert np.isnan(X[2, 1]) and meta["value_range"] == (1.0, 1.0)
    A[3, 2] = np.inf
    np.save(tmp_path / "i.npy", A)
    with pytest.raises(ValueError, match=r"i\.npy.*inf first at row 3, column 2"):
        load_dataset(tmp_path / "i.npy", allow_nan=True)
    (tmp_path / "i.csv").write_text("1,2\n3,inf\n")
    with pytest.raises(ValueError, match=r"i\.csv.*inf first at line 2, column 1; columns count from 0"):
        load_dataset(tmp_path / "i.csv")


def test_float32_overflow(tmp_path):
    np.save(tmp_path / "o.npy", np.array([[1.0, 1e300]]))
    with pytest.raises(ValueError, match=r"o\.npy.*row 0, column 1 overflows float32"):
        load_dataset(tmp_path / "o.npy")


def test_one_d_and_object_and_string_arrays(tmp_path):
    np.save(tmp_path / "one.npy", np.arange(5.0))
    with pytest.raises(ValueError, match=r"one\.npy.*1-D array"):
        load_dataset(tmp_path / "one.npy")
    np.save(tmp_path / "obj.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy.*object arrays"):
        load_dataset(tmp_path / "obj.npy")
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    with pytest.raises(ValueError, match=r"s\.npy.*not numeric"):
        load_dataset(tmp_path / "s.npy")
    with pytest.raises(ValueError, match="1-D array"):
        load_dataset(np.arange(3.0))
    with pytest.raises(ValueError, match="not numeric"):
        load_dataset(np.array([[1 + 2j]]))


def test_mmap_validates_shape_and_dtype(tmp_path):
    np.save(tmp_path / "one.npy", np.arange(5.0))
    with pytest.raises(ValueError, match=r"one\.npy.*1-D"):
        load_dataset(tmp_path / "one.npy", mmap=True)
    np.save(tmp_path / "s.npy", np.array([["a", "b"]]))
    with pytest.raises(ValueError, match=r"s\.npy.*not numeric"):
        load_dataset(tmp_path / "s.npy", mmap=True)


def test_bad_label_column(tmp_path):
    (tmp_path / "h.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="label_column 'z' is not a column; columns: a, b"):
        load_dataset(tmp_path / "h.csv", label_column="z")
    with pytest.raises(ValueError, match="label_column 5 is out of range for 2 columns"):
        load_dataset(tmp_path / "h.csv", label_column=5)


def test_unknown_option_is_named(tmp_path, arr):
    np.save(tmp_path / "a.npy", arr)
    with pytest.raises(ValueError, match="label_column"):
        load_dataset(tmp_path / "a.npy", label_column=0)
    with pytest.raises(ValueError, match="bogus"):
        load_dataset("moons", bogus=1)


# ---------------------------------------------------------------------- embedded
def test_digits_equals_sklearn(digits):
    X_ref, y_ref = digits
    X, y, meta = load_dataset("digits")
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    assert meta["image_shape"] == (8, 8) and meta["value_range"] == (0.0, 1.0)


@pytest.mark.parametrize("name", ["gaussian-mixture", "moons", "swiss-roll"])
def test_synthetic_reproducible(name):
    a = load_dataset(name, n_samples=50, random_state=3)
    b = load_dataset(name, n_samples=50, random_state=3)
    c = load_dataset(name, n_samples=50, random_state=4)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.X.shape == (50, 2) and not np.array_equal(a.X, c.X)


# ---------------------------------------------------------------------- densities
def test_gaussian_mixture_log_prob_matches_scipy(rng):
    gm = gaussian_mixture_density()
    assert np.isclose(gm.weights.sum(), 1.0) and 4 <= len(gm.weights) <= 8
    x = rng.normal(scale=2.0, size=(20, 2))
    ref = sum(w * multivariate_normal(m, s ** 2 * np.eye(2)).pdf(x) for w, m, s in zip(gm.weights, gm.means, gm.stds))
    np.testing.assert_allclose(gm.log_prob(x), np.log(ref), rtol=1e-10)


def test_gaussian_mixture_score_matches_autograd(rng):
    gm = gaussian_mixture_density().smoothed(0.3)
    x = torch.tensor(rng.normal(scale=2.0, size=(20, 2)), requires_grad=True)
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.tensor(gm.weights)),
        torch.distributions.Independent(torch.distributions.Normal(
            torch.tensor(gm.means), torch.tensor(gm.stds)[:, None].expand(-1, 2)), 1))
    lp = mix.log_prob(x)
    (g,) = torch.autograd.grad(lp.sum(), x)
    np.testing.assert_allclose(gm.log_prob(x.detach().numpy()), lp.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(gm.score(x.detach().numpy()), g.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("density", [moons_density(0.15), swiss_roll_density(0.2)])
def test_curve_density_score_matches_finite_differences(density, rng):
    x = density.sample(10, rng) + 0.1 * rng.normal(size=(10, 2))
    h = 1e-5
    fd = np.stack([(density.log_prob(x + h * e) - density.log_prob(x - h * e)) / (2 * h)
                   for e in np.eye(2)], axis=1)
    np.testing.assert_allclose(density.score(x), fd, rtol=1e-5, atol=1e-5)


def test_moons_log_prob_matches_quadrature():
    from scipy.integrate import quad

    d = moons_density(0.2)
    x = np.array([[0.3, 0.7], [1.2, -0.4]])
    for point, lp in zip(x, d.log_prob(x)):
        ref = 0.0
        for f, (a, b), w in zip(d.curves, d.ranges, d.weights):
            g = lambda t: multivariate_normal(f(np.array([t]))[0], 0.04 * np.eye(2)).pdf(point)  # noqa: E731
            ref += w * quad(g, a, b)[0] / (b - a)
        assert np.isclose(lp, np.log(ref), rtol=1e-6)


def test_sample_follows_density(rng):
    # histogram of samples vs the density integrated over the same cells
    gm = gaussian_mixture_density()
    x = gm.sample(40000, rng)
    edges = np.linspace(-3, 3, 13)
    H, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=[edges, edges])
    c = (edges[:-1] + edges[1:]) / 2
    grid = np.stack(np.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2)
    # cell mass by the midpoint rule on a fine sub-grid
    sub = np.linspace(-0.25 + 0.025, 0.25 - 0.025, 10)
    offs = np.stack(np.meshgrid(sub, sub, indexing="ij"), -1).reshape(-1, 2)
    mass = np.exp(gm.log_prob((grid[:, None] + offs[None]).reshape(-1, 2))).reshape(len(grid), -1).mean(1) * 0.25
    np.testing.assert_allclose(H.ravel() / len(x), mass, atol=0.006)


def test_smoothed_mixture_is_the_convolution(rng):
    gm, sigma = gaussian_mixture_density(), 0.5
    sm = gm.smoothed(sigma)
    n = 200000
    noisy = gm.sample(n, rng) + sigma * rng.normal(size=(n, 2))
    # closed-form moments of a mixture of N(mu_k, v_k I)
    mean = gm.weights @ gm.means
    second = sum(w * (v * np.eye(2) + np.outer(m, m)) for w, m, v in zip(gm.weights, gm.means, sm.stds ** 2))
    np.testing.assert_allclose(noisy.mean(0), mean, atol=0.02)
    np.testing.assert_allclose(np.cov(noisy.T), second - np.outer(mean, mean), atol=0.03)
    # density of x + sigma*eps at a few points: E_y N(x0; y, sigma^2 I), y ~ p
    y = gm.sample(n, rng)
    for x0 in np.array([[2.0, 0.0], [0.0, 0.0], [-1.0, 1.5]]):
        mc = np.mean(np.exp(-((y - x0) ** 2).sum(1) / (2 * sigma ** 2)) / (2 * np.pi * sigma ** 2))
        assert np.isclose(np.exp(sm.log_prob(x0[None]))[0], mc, rtol=0.03)


def test_gaussian_mixture_is_public_class():
    gm = gaussian_mixture_density()
    assert isinstance(gm, GaussianMixture2D) and isinstance(gm.smoothed(0.1), GaussianMixture2D)
    np.testing.assert_allclose(gm.smoothed(0.1).stds ** 2, gm.stds ** 2 + 0.01)
