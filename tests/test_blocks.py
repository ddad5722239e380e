"""Streamed metrics and splits: evaluating a memory map in many row blocks gives the numbers
one in-memory pass gives (the oracle: the same metric computed on the whole array at once),
and the experiment's splits of a memory map are the rows an in-memory split takes."""
import gc
import pickle

import numpy as np
import pytest

from latentzoo import PCA, PPCA, VAE, Autoencoder
from latentzoo.data import blocks
from latentzoo.data.missing import fill_column_means
from latentzoo.evaluation import evaluate
from latentzoo.experiment.data import ExperimentData, prepare_data
from latentzoo.experiment.plan import make_splits

EXACT = ("n_test", "reconstruction_error", "log_likelihood", "bits_per_dim", "knn_accuracy", "knn_r2",
         "trustworthiness", "active_units", "sample_realism", "interpolation_smoothness")


def _data(n=400, d=12, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 2))
    X = (Z @ rng.normal(size=(2, d)) + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
    return X, (Z[:, 0] > 0).astype(int)


def _mapped(tmp_path, X, name="x.npy"):
    np.save(tmp_path / name, X)
    return np.load(tmp_path / name, mmap_mode="r")


@pytest.mark.parametrize("make", [lambda: PCA(2), lambda: PPCA(2),
                                  lambda: Autoencoder(2, hidden=(8,), max_epochs=3, random_state=0, verbose=0),
                                  lambda: VAE(2, hidden=(8,), max_epochs=3, random_state=0, verbose=0,
                                              likelihood="gaussian")])
def test_evaluate_of_a_memory_map_in_many_blocks_equals_one_in_memory_pass(tmp_path, monkeypatch, make):
    X, y = _data()
    est = make().fit(X[:300])
    whole = evaluate(est, X[300:], y[300:], X[:300], y[:300], n_importance=20)
    monkeypatch.setattr(blocks, "BLOCK_VALUES", 7 * X.shape[1])  # 7 rows a block: 15 blocks of held-out rows
    M = _mapped(tmp_path, X)
    streamed = evaluate(est, M[300:], y[300:], M[:300], y[:300], n_importance=20)
    for k in EXACT:
        assert (whole[k] is None) == (streamed[k] is None), k
        if whole[k] is not None:
            assert streamed[k] == pytest.approx(whole[k], rel=1e-6, abs=1e-9), k
    if whole["elbo"] is not None:  # one Monte Carlo draw per row, reseeded per block: same mean, other draws
        assert streamed["elbo"] == pytest.approx(whole["elbo"], rel=0.05)


def test_evaluate_with_missing_values_in_many_blocks_equals_one_pass(monkeypatch):
    X, y = _data(seed=1)
    X[np.random.default_rng(2).random(X.shape) < 0.1] = np.nan
    est = PPCA(2, method="em", random_state=0).fit(X[:300])
    whole = evaluate(est, X[300:], y[300:], n_importance=5)
    monkeypatch.setattr(blocks, "BLOCK_VALUES", 5 * X.shape[1])
    streamed = evaluate(est, X[300:], y[300:], n_importance=5)
    for k in EXACT:
        if whole[k] is not None:
            assert streamed[k] == pytest.approx(whole[k], rel=1e-6, abs=1e-9), k
    # the error over the observed entries only, against its definition
    R = est.inverse_transform(est.transform(X[300:]))
    obs = ~np.isnan(X[300:])
    assert whole["reconstruction_error"] == pytest.approx(((X[300:] - R)[obs] ** 2).sum() / 100, rel=1e-6)


def test_block_helpers_against_their_in_memory_definitions(tmp_path, monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_VALUES", 30)
    X, _ = _data(n=101, d=6)
    X[3, 2] = np.nan
    M = _mapped(tmp_path, X)
    means, missing = blocks.column_means(M)
    filled = fill_column_means(X)
    assert missing and np.allclose(blocks.filler(means)(X), filled, equal_nan=False)
    assert blocks.value_range(M) == (float(np.nanmin(X)), float(np.nanmax(X)))
    idx = np.random.default_rng(0).permutation(101)[:57]
    G = blocks.gather_to_memmap(M, idx)
    assert isinstance(G, np.memmap) and np.array_equal(np.asarray(G), X[idx], equal_nan=True)
    F = blocks.map_to_memmap(lambda b: 2 * np.nan_to_num(b), M)
    assert np.array_equal(np.asarray(F), 2 * np.nan_to_num(X))
    path = G.filename
    del G
    gc.collect()
    assert not __import__("os").path.exists(path)  # the temporary file goes with its mapping


def test_experiment_splits_of_a_memory_map_are_the_in_memory_splits_and_pickle_as_a_file(tmp_path):
    X, y = _data(n=300)
    np.save(tmp_path / "x.npy", X)
    mapped = prepare_data(tmp_path / "x.npy", load_kw={"mmap": True})
    plain = prepare_data(X)
    assert isinstance(mapped.X, np.memmap) and mapped.fingerprint == plain.fingerprint
    sp = make_splits(300, None, seed=3)[0]
    Xtr, _, Xte, _ = mapped.split(sp)
    assert isinstance(Xtr, np.memmap) and np.array_equal(Xtr, X[sp.train]) and np.array_equal(Xte, X[sp.test])
    assert mapped.split(sp)[0] is Xtr  # the same repeat's runs share the copy
    blob = pickle.dumps(mapped)
    assert len(blob) < X.nbytes / 4  # the file's name travels, not its bytes
    back = pickle.loads(blob)
    assert isinstance(back, ExperimentData) and isinstance(back.X, np.memmap)
    assert np.array_equal(back.split(sp)[0], X[sp.train])


def test_a_mapped_file_missing_on_a_worker_is_a_clear_error(tmp_path):
    np.save(tmp_path / "x.npy", _data(n=50)[0])
    blob = pickle.dumps(prepare_data(tmp_path / "x.npy", load_kw={"mmap": True}))
    (tmp_path / "x.npy").rename(tmp_path / "moved.npy")  # as on a machine without the file
    with pytest.raises(FileNotFoundError, match="cannot be read on this worker: put the file on a file system"):
        pickle.loads(blob)


@pytest.mark.parametrize("method", ["standard", "minmax", "log1p", "log1p+standard", "scale255"])
def test_preprocessing_in_row_blocks_is_the_whole_table_transform(method):
    # the CLI preprocesses in-memory data block by block now (no float64 copy of the whole table):
    # oracle, the float64 transform of the whole table at once, cast to float32
    from latentzoo.cli._common import preprocessed
    from latentzoo.preprocessing import Preprocessor

    rng = np.random.default_rng(4)
    X = rng.gamma(2.0, 30.0, size=(2 * blocks.block_rows(50) + 77, 50)).astype(np.float32)  # three blocks
    X[3, 4] = np.nan
    pre = Preprocessor(method).fit(X)
    want = pre.transform(X).astype(np.float32)
    got = preprocessed(pre, X)
    assert got.dtype == np.float32 and not isinstance(got, np.memmap)
    assert np.array_equal(got, want, equal_nan=True)
    small = blocks.map_to_array(pre.transform, X[:500], values=7 * 50)  # 7-row blocks, the last one short
    assert np.array_equal(small, want[:500], equal_nan=True)
