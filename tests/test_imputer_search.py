"""latentzoo.Imputer's choices made on the training data alone: hyperparameters by held-out
observed entries, and the average over several fits."""
import numpy as np
import pytest
from sklearn.base import clone

from latentzoo import PPCA, Autoencoder, Imputer
from latentzoo._impute_search import holdout_masks, validation_rmse


def _low_rank(n=600, d=12, q=3, noise=0.3, rate=0.2, seed=0):
    """A planted q-dimensional linear-Gaussian table with isotropic noise and MCAR holes."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, q)) @ rng.normal(size=(q, d)) + noise * rng.normal(size=(n, d))
    Xm = X.copy()
    Xm[rng.random(X.shape) < rate] = np.nan
    return X, Xm


def test_holdout_masks_are_disjoint_sets_of_observed_entries_of_the_asked_size():
    _, Xm = _low_rank()
    masks = holdout_masks(Xm, 0.05, 3, np.random.default_rng(0))
    n_obs = (~np.isnan(Xm)).sum()
    for m in masks:
        assert not (m & np.isnan(Xm)).any()  # only observed entries are hidden again
        assert m.sum() == round(0.05 * n_obs)
    assert not (masks[0] & masks[1]).any() and not (masks[1] & masks[2]).any() and not (masks[0] & masks[2]).any()


def test_holdout_never_empties_a_column():
    X = np.full((50, 3), np.nan)
    X[:, 0] = np.arange(50.0)
    X[:, 1] = np.arange(50.0)
    X[0, 2] = 1.0  # one observed value: hiding it would leave column 2 unseen by the fit
    for seed in range(20):
        for m in holdout_masks(X, 0.3, 2, np.random.default_rng(seed)):
            assert not m[:, 2].any()


@pytest.mark.parametrize("seed", [0, 1])
def test_held_out_entries_choose_the_planted_dimension(seed):
    """On q = 3 planted dimensions with noise, PPCA with fewer components misses signal and
    with more fits noise: the held-out observed entries pick q = 3 without seeing the
    entries to impute."""
    _, Xm = _low_rank(n=150, d=24, noise=0.5, rate=0.1, seed=seed)
    imp = Imputer("ppca", model_params={"random_state": 0}, param_grid={"n_components": list(range(1, 7))},
                  random_state=seed).fit(Xm)
    assert imp.best_params_ == {"n_components": 3}
    assert imp.model_.n_components == 3
    assert [p["n_components"] for p in imp.cv_results_["params"]] == list(range(1, 7))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_default_grid_searches_ppca_and_the_held_out_rmse_estimates_the_imputation_rmse():
    """MCAR held-out observed entries are missing by the same mechanism as the real ones, so
    the validation RMSE of the chosen model estimates its RMSE on the unseen entries."""
    X, Xm = _low_rank(n=150, d=24, noise=0.5, rate=0.1)
    imp = Imputer("ppca", model_params={"random_state": 0, "max_iter": 100, "tol": 1e-5}, random_state=0).fit(Xm)
    grid = [p["n_components"] for p in imp.cv_results_["params"]]
    assert grid == [1, 2, 4, 8, 16, 23]  # powers of two and d - 1
    assert imp.best_params_ == {"n_components": 4}  # the grid's nearest to the planted 3 (2 misses signal)
    miss = np.isnan(Xm)
    true_rmse = np.sqrt(np.mean((imp.transform(Xm)[miss] - X[miss]) ** 2))
    assert imp.cv_results_["rmse"][grid.index(4)] == pytest.approx(true_rmse, rel=0.1)


def test_no_search_when_the_user_sets_the_parameter_or_passes_an_estimator():
    _, Xm = _low_rank(n=200)
    assert Imputer("ppca", model_params={"n_components": 2, "random_state": 0}).fit(Xm).best_params_ == {}
    imp = Imputer(PPCA(2, method="em", random_state=0)).fit(Xm)
    assert imp.best_params_ == {} and imp.cv_results_ is None
    assert Imputer("ppca", param_grid=None, model_params={"random_state": 0}).fit(Xm).model_.n_components == 2


def test_validation_rmse_scores_only_the_held_out_entries():
    X, _ = _low_rank(n=100)
    masks = holdout_masks(X, 0.1, 2, np.random.default_rng(0))

    def perfect_on_masks_wrong_elsewhere(Xv):
        out = np.where(np.isnan(Xv), X, Xv + 100.0)  # the held-out entries exactly, nonsense elsewhere
        return out

    assert validation_rmse(perfect_on_masks_wrong_elsewhere, X, masks)[0] == 0.0
    rmse, per = validation_rmse(lambda Xv: np.where(np.isnan(Xv), X + 2.0, Xv), X, masks)
    assert rmse == pytest.approx(2.0) and per == pytest.approx([2.0, 2.0])


def test_neural_imputer_averages_three_seeds_by_default():
    X, Xm = _low_rank(n=200, d=6, q=2)
    dae = Autoencoder(2, hidden=(16,), noise="masking:0.2", max_epochs=5, device="cpu", random_state=5, verbose=0)
    imp = Imputer(dae).fit(Xm)
    assert [m.random_state for m in imp.models_] == [5, 6, 7]
    singles = [clone(dae).set_params(random_state=s).fit(Xm).impute(Xm) for s in (5, 6, 7)]
    assert not np.allclose(singles[0], singles[1])  # the seeds give different networks
    np.testing.assert_allclose(imp.transform(Xm), np.mean(singles, axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(imp.transform(Xm)[~np.isnan(Xm)], Xm[~np.isnan(Xm)])
    assert len(Imputer(dae, n_models=1).fit(Xm).models_) == 1
    assert len(Imputer("ppca", model_params={"n_components": 2}).fit(Xm).models_) == 1  # EM: one fit


def test_pooled_draws_come_from_every_member_and_keep_observed_entries():
    _, Xm = _low_rank(n=200, d=6, q=2)
    imp = Imputer(PPCA(2, method="em", random_state=0), n_models=2).fit(Xm)
    draws = imp.sample_imputations(Xm[:20], 5, random_state=0)
    assert draws.shape == (5, 20, 6)
    obs = ~np.isnan(Xm[:20])
    assert all(np.array_equal(d[obs], Xm[:20][obs]) for d in draws)
    assert not np.allclose(draws[0], draws[1])


def test_search_errors_are_clear():
    _, Xm = _low_rank(n=50)
    with pytest.raises(ValueError, match="param_grid"):
        Imputer("ppca", param_grid="everything").fit(Xm)
    with pytest.raises(ValueError, match="n_models"):
        Imputer("ppca", n_models=0).fit(Xm)
    with pytest.raises(ValueError, match="validation_fraction"):
        Imputer("ppca", validation_fraction=0.9).fit(Xm)
    tiny = np.array([[1.0, np.nan], [np.nan, 2.0]])
    with pytest.raises(ValueError, match="fewer observed entries than held-out sets"):
        Imputer("ppca", param_grid={"n_components": [1]}, cv=3).fit(tiny)
