"""Sample realism (a 1-NN classifier two-sample test): real held-out data score near the ideal
0.5, the data mean repeated and an untrained decoder score clearly worse; blur is not rewarded."""
import numpy as np
import pytest
import torch

from latentzoo import PPCA, VAE, load_dataset
from latentzoo.realism import generated_samples, sample_realism, two_sample_accuracy


@pytest.fixture(scope="module")
def digits():
    X, _, _ = load_dataset("digits")
    idx = np.random.default_rng(0).permutation(len(X))
    return X[idx[:1000]].astype(np.float64), X[idx[1000:1500]].astype(np.float64)


def test_real_held_out_data_score_near_the_ideal(digits):
    train, test = digits
    accs = [two_sample_accuracy(test, train, random_state=s) for s in range(3)]
    assert all(abs(a - 0.5) < 0.06 for a in accs)


def test_same_gaussian_scores_near_one_half_and_a_shifted_one_clearly_worse():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 5)), rng.normal(size=(400, 5))
    assert abs(two_sample_accuracy(a, b) - 0.5) < 0.06
    assert two_sample_accuracy(a, b + 1.5) > 0.8


def test_data_mean_repeated_scores_clearly_worse(digits):
    train, test = digits
    blur = np.tile(train.mean(axis=0), (len(test), 1))  # the blurriest "sample" of all
    assert two_sample_accuracy(test, blur) > 0.95


def test_untrained_decoder_scores_clearly_worse(digits):
    train, test = digits
    untrained = VAE(2, hidden=(32,), likelihood="gaussian-learned", max_epochs=1, lr=1e-12, verbose=0,
                    random_state=0).fit(train)
    assert sample_realism(untrained, test, train) > 0.95


def test_a_well_specified_ppca_scores_near_the_ideal():
    rng = np.random.default_rng(2)
    W = rng.normal(size=(8, 2))
    X = rng.normal(size=(1400, 2)) @ W.T + 0.3 * rng.normal(size=(1400, 8))
    model = PPCA(2).fit(X[:1000])
    assert abs(sample_realism(model, X[1000:], X[:1000]) - 0.5) < 0.07
    # its decoder means alone lie on a plane: told apart from the data, not rewarded (the
    # off-plane noise is small, sd 0.3 against ~2.8 along the plane: 0.65 here, the Monte
    # Carlo sd of the accuracy at n = 400 is about 0.02)
    means = model.sample(400, random_state=0, mean=True)
    assert two_sample_accuracy(X[1000:], means) > 0.6


def test_generated_samples_are_full_draws_for_generative_models(digits):
    train, _ = digits
    torch.manual_seed(0)
    ppca = PPCA(2).fit(train)
    full, mean = generated_samples(ppca, 300, train), ppca.sample(300, random_state=0, mean=True)
    resid = full - mean  # same z: the difference is the observation noise sigma * eps
    assert resid.var() == pytest.approx(ppca.noise_variance_, rel=0.05)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="same columns"):
        two_sample_accuracy(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        two_sample_accuracy(np.zeros((1, 2)), np.zeros((5, 2)))


# ---------------------------------------------------------------- the embedding (high dimension)
def _null_expectation(n: int) -> float:
    """E[accuracy] when both sides share a distribution: a point's nearest neighbour is one
    of its own n - 1 kind among the 2n - 1 others, all equally likely (exchangeability)."""
    return (n - 1) / (2 * n - 1)


def _mixture(rng, n, d=50, sep=4.0):
    centres = sep * np.eye(3, d)
    return centres[rng.integers(0, 3, n)] + rng.normal(size=(n, d))


def _wide_lognormal(rng, n, d=3000):
    W = np.random.default_rng(99).normal(size=(3, d)) * 0.5
    return np.exp(1.0 + rng.normal(size=(n, 3)) @ W + 0.5 * rng.normal(size=(n, d)))


@pytest.mark.parametrize("draw, n", [(_mixture, 150), (_wide_lognormal, 40)], ids=["mixture-50d", "wide-lognormal"])
def test_two_draws_of_one_distribution_score_the_null_expectation(draw, n):
    # the wide case is 40 + 40 rows of 3000 heavy-tailed features: an embedding fitted on
    # one side only read 0.73 here; fitted on the pooled sample the sides stay exchangeable
    rng = np.random.default_rng(3)
    accs = np.array([two_sample_accuracy(draw(rng, n), draw(rng, n), random_state=r) for r in range(12)])
    se = accs.std(ddof=1) / np.sqrt(len(accs))
    assert abs(accs.mean() - _null_expectation(n)) < 4 * se + 0.01
    # the spread the report quotes, 0.5 / sqrt(2n) (binomial), is the right size
    assert 0.5 < accs.std(ddof=1) / (0.5 / np.sqrt(2 * n)) < 1.6


def test_a_moment_matched_gaussian_is_told_from_non_gaussian_data(digits):
    train, test = digits
    rng = np.random.default_rng(4)
    gauss = rng.multivariate_normal(train.mean(axis=0), np.cov(train.T), size=len(test), method="eigh")
    assert two_sample_accuracy(test, gauss) > 0.75  # digits: 10 clusters, not one Gaussian (0.84-0.86)
    mix = _mixture(rng, 1000, d=10, sep=6.0)  # three clusters (in 50-D noise dims drown them: 0.58)
    gauss = rng.multivariate_normal(mix.mean(axis=0), np.cov(mix.T), size=500, method="eigh")
    assert two_sample_accuracy(mix[500:], gauss) > 0.65  # 0.73-0.77 over seeds; real vs real 0.48-0.52


def test_isotropic_noise_in_empty_pixels_is_not_indistinguishable(digits):
    # MNIST's failure in small: 8x8 digits inside a 28x28 frame of always-black pixels;
    # PPCA's full draws add noise sigma^2 to every pixel, the frame included
    from sklearn.neighbors import NearestNeighbors

    train, test = (np.pad(A.reshape(-1, 8, 8), ((0, 0), (10, 10), (10, 10))).reshape(len(A), -1) for A in digits)
    full = PPCA(2).fit(train).sample(len(test), random_state=0, mean=False)
    # the fixture reproduces the failure: in the raw (standardised) pixel space each draw's
    # nearest neighbour is a real digit, and the plain 1-NN accuracy reads 0.5
    sd = test.std(axis=0)
    Z = np.vstack([test, full]) / np.maximum(sd, 1e-3 * sd.mean())
    label = np.r_[np.zeros(len(test)), np.ones(len(full))]
    nearest = NearestNeighbors(n_neighbors=1).fit(Z).kneighbors(return_distance=False)[:, 0]
    assert abs((label[nearest] == label).mean() - 0.5) < 0.05
    assert two_sample_accuracy(test, full) > 0.9
    assert abs(two_sample_accuracy(test, train) - 0.5) < 0.06  # real digits in the frame still ~0.5


def test_embedding_is_pca_plus_the_distance_from_the_subspace():
    from scipy.spatial.distance import pdist
    from sklearn.decomposition import PCA as SkPCA

    from latentzoo.realism import embed

    rng = np.random.default_rng(5)
    for n, d in ((60, 30), (20, 50)):  # tall and wide (the wide case goes through C C^T)
        X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
        T = embed(X, n_components=5)
        P = SkPCA(5, svd_solver="full").fit_transform(X)
        assert np.allclose(np.abs(T[:, :5]), np.abs(P), atol=1e-6)  # principal coordinates (up to sign)
        # the residual is the distance from the 5-D principal subspace
        C = X - X.mean(axis=0)
        V = SkPCA(5, svd_solver="full").fit(X).components_
        assert np.allclose(T[:, 5], np.linalg.norm(C - C @ V.T @ V, axis=1), atol=1e-6)
    # axes spanning the data: a rotation, every pairwise distance kept, no residual column
    X = rng.normal(size=(60, 4))
    T_all = embed(X, n_components=20)
    assert T_all.shape == (60, 4)
    assert np.allclose(pdist(T_all), pdist(X))


def test_n_components_must_be_positive():
    with pytest.raises(ValueError, match="n_components"):
        two_sample_accuracy(np.zeros((5, 2)), np.zeros((5, 2)), n_components=0)
