"""Data larger than memory: memory-mapped .npy files are trained on and evaluated chunk by
chunk with bounded RAM, and give the model an in-memory fit gives (same batches).

The RAM budget is checked with tracemalloc, which numpy reports its allocations to: a
full copy of the file would show as a peak of at least the file's size.
"""
import tracemalloc

import numpy as np
import pytest
import torch

import latentzoo
from latentzoo import VAE, Autoencoder

N, D = 24000, 1000  # 96 MB of float32 on disk
BUDGET = 40 * 2**20  # peak Python/numpy allocations allowed while streaming


@pytest.fixture(scope="module")
def big_npy(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.npy"
    rng = np.random.default_rng(0)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(N, D))
    for i in range(0, N, 4000):  # written in chunks: the test itself stays within budget
        X[i : i + 4000] = rng.random((min(4000, N - i), D), dtype=np.float32)
    X.flush()
    del X
    return path


def _warm_up(_done=[]):
    if not _done:  # the first fit imports torch submodules: their code objects are not data
        path = __import__("tempfile").mktemp(suffix=".npy")
        np.save(path, np.full((64, 3), 0.5, np.float32))
        _ae().fit(np.load(path, mmap_mode="r")).transform(np.load(path, mmap_mode="r"))
        VAE(n_components=2, hidden=(4,), max_epochs=1, verbose=0).fit(np.full((64, 3), 0.5)).score_samples(
            np.load(path, mmap_mode="r"), n_importance=2)
        _done.append(True)


def _ae(**kw):
    params = dict(n_components=2, hidden=(8,), likelihood="bernoulli", max_epochs=1,
                  batch_size=2048, random_state=0, verbose=0, device="cpu")
    return Autoencoder(**{**params, **kw})


def _peak(fn):
    """Peak of numpy/Python allocations during ``fn`` (lazy imports warmed up first)."""
    _warm_up()
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fit_streams_a_file_larger_than_the_budget(big_npy):
    X = latentzoo.load_dataset(big_npy, mmap=True).X
    assert isinstance(X, np.memmap) and X.nbytes > 2 * BUDGET
    est, peak = _peak(lambda: _ae().fit(X))
    assert peak < BUDGET, f"peak {peak / 2**20:.0f} MiB for a {X.nbytes / 2**20:.0f} MiB file"
    assert est.n_features_in_ == D and np.isfinite(est.history_["train_loss"]).all()


def test_transform_and_score_stream_with_bounded_memory(big_npy):
    X = latentzoo.load_dataset(big_npy, mmap=True).X
    small = np.asarray(X[:3000])
    vae = VAE(n_components=2, hidden=(8,), max_epochs=1, batch_size=512, random_state=0,
              verbose=0, device="cpu").fit(small)
    Z, peak = _peak(lambda: vae.transform(X))
    assert peak < BUDGET + Z.nbytes
    np.testing.assert_allclose(Z[:3000], vae.transform(small), rtol=1e-6, atol=1e-6)
    ll, peak = _peak(lambda: vae.score_samples(X[:2000], n_importance=64))
    assert np.isfinite(ll).all() and ll.shape == (2000,)


def test_streamed_fit_equals_in_memory_fit():
    """Same seed => same permutation => the same rows in every batch: equal models up to
    the summation order inside a batch."""
    rng = np.random.default_rng(1)
    X = rng.random((1500, 20)).astype(np.float32)
    path = __import__("tempfile").mktemp(suffix=".npy")
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    a = _ae(batch_size=64).set_params(max_epochs=3).fit(X)
    b = _ae(batch_size=64).set_params(max_epochs=3).fit(Xm)
    for p, q in zip(a.module_.parameters(), b.module_.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_stream_validation_names_the_bad_row(tmp_path):
    X = np.random.default_rng(0).random((9000, 5)).astype(np.float32)
    X[8765, 2] = np.nan
    np.save(tmp_path / "nan.npy", X)
    Xm = np.load(tmp_path / "nan.npy", mmap_mode="r")
    with pytest.raises(ValueError, match="row 8765"):
        _ae().fit(Xm)
    np.save(tmp_path / "wide.npy", np.zeros((10, 7), np.float32))
    est = _ae().fit(np.load(tmp_path / "nan.npy", mmap_mode="r")[:8000])
    with pytest.raises(ValueError, match="7 features"):
        est.transform(np.load(tmp_path / "wide.npy", mmap_mode="r"))
    np.save(tmp_path / "big.npy", np.full((10, 5), 3.0, np.float32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _ae().fit(np.load(tmp_path / "big.npy", mmap_mode="r"))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_close_to_fp32(precision, digits):
    """Autocast changes rounding, not the model: the loss curve stays finite and the
    held-out reconstruction error within 15% of the fp32 fit."""
    X = digits[0]
    kw = dict(n_components=4, hidden=(64,), likelihood="bernoulli", max_epochs=15, batch_size=64,
              random_state=0, verbose=0, device="cpu")
    ref = Autoencoder(**kw).fit(X[:1400])
    mixed = Autoencoder(precision=precision, **kw).fit(X[:1400])
    assert np.isfinite(mixed.history_["train_loss"]).all()
    e_ref, e_mixed = ref.reconstruction_error(X[1400:]), mixed.reconstruction_error(X[1400:])
    assert abs(e_mixed - e_ref) / e_ref < 0.15, (e_mixed, e_ref)
    assert all(p.dtype == torch.float32 for p in mixed.module_.parameters())  # master weights stay fp32


@pytest.mark.parametrize("n,k", [(1, 1), (50, 1000), (2000, 10), (10_000, 5000), (3, 10**6)])
def test_importance_sampling_steps_stay_within_the_memory_budget(n, k):
    """One importance-sampling step holds rows x chunk decoder activations of width D:
    at most the device's budget, whatever the number of points n and samples k."""
    from latentzoo.neural.vae import _IS_BUDGET

    vae = VAE(n_components=2, hidden=(8,), max_epochs=1, verbose=0, device="cpu").fit(
        np.random.default_rng(0).random((64, 784)).astype(np.float32))
    rows, chunk = vae._is_chunks(n, k, None)
    assert 1 <= rows <= n and 1 <= chunk <= k
    assert rows * chunk * 784 <= max(_IS_BUDGET["cpu"], 784)  # one row and one sample at least
