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
    # its decoder means alone lie on a plane: told apart from the data, not rewarded
    means = model.sample(400, random_state=0, mean=True)
    assert two_sample_accuracy(X[1000:], means) > 0.7


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
