"""Health flags: each raised on a run built to trigger it, none on healthy fits, and shown
in metrics.json, the HTML table (explained under it) and the stdout summary."""
import json
import warnings

import numpy as np
import pytest

from latentzoo import PPCA, VAE, Autoencoder, load_dataset
from latentzoo.experiment.health import FLAG_DESCRIPTIONS, FLAGS
from latentzoo.experiment.likelihood_policy import resolve_policy
from latentzoo.experiment.measure import fit_run, measure_run, prepare_split


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    X, y, _ = load_dataset("digits")
    return X, y


def _flags(est, digits, n=400, n_train=None):
    X, y = digits[0][:n], digits[1][:n]
    k = int(0.8 * n) if n_train is None else n_train
    policy = resolve_policy(X)
    data = prepare_split(X[:k], X[k:], y[:k], y[k:], policy, 0)
    _, error = fit_run(est, policy, data)
    return measure_run(est, policy, data, n_importance=20, error=error)


VAE_KW = dict(hidden=(32,), likelihood="gaussian-learned", verbose=0, random_state=0)


def test_healthy_fits_raise_no_flag(digits):
    assert _flags(VAE(2, max_epochs=300, patience=3, lr=3e-3, **VAE_KW), digits)["flags"] == []
    assert _flags(PPCA(2), digits)["flags"] == []
    assert _flags(Autoencoder(2, hidden=(32,), max_epochs=300, patience=3, lr=3e-3, verbose=0, random_state=0),
                  digits)["flags"] == []


def test_missing_values_do_not_read_as_divergence(digits):
    # the baseline (the training mean's held-out error) counts the observed entries, as the
    # reconstruction error does: NaN in the data used to make it NaN and flag every run
    X, y = digits
    X, y = X[:400].copy(), y[:400]
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    assert "diverged" not in _flags(PPCA(2, method="em"), (X, y))["flags"]
    # and the flag still works there: the same fit with its mean moved far off the data
    policy = resolve_policy(X)
    data = prepare_split(X[:320], X[320:], y[:320], y[320:], policy, 0)
    est = PPCA(2, method="em")
    _, error = fit_run(est, policy, data)
    est.mean_ = est.mean_ + 100.0
    assert "diverged" in measure_run(est, policy, data, n_importance=20, error=error)["flags"]


def test_posterior_collapse(digits):
    m = _flags(VAE(2, max_epochs=30, patience=3, beta=200.0, **VAE_KW), digits)
    assert "posterior-collapse" in m["flags"] and m["active_units"] == 0


def test_not_converged(digits):
    assert "not-converged" in _flags(VAE(2, max_epochs=3, **VAE_KW), digits)["flags"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EM's own ConvergenceWarning
        assert _flags(PPCA(5, method="em", max_iter=3, random_state=0), digits)["flags"] == ["not-converged"]


def test_diverged_is_reported_not_raised(digits):
    m = _flags(Autoencoder(2, hidden=(32,), max_epochs=10, lr=1e4, verbose=0, random_state=0), digits)
    assert m["flags"] == ["diverged"] and m["reconstruction_error"] is None
    assert m["error"].startswith("TrainingDiverged") and m["log_likelihood_method"].startswith("n/a")
    # finite but absurd: reconstruction far worse than the data mean
    m = _flags(Autoencoder(2, hidden=(32,), max_epochs=10, lr=50.0, verbose=0, random_state=0), digits)
    assert "diverged" in m["flags"]


def test_overfit(digits):
    m = _flags(Autoencoder(8, hidden=(512,), max_epochs=300, patience=None, lr=3e-3, verbose=0, random_state=0),
               digits, n=200, n_train=30)
    assert "overfit" in m["flags"] and "diverged" not in m["flags"]  # a rising validation loss is not divergence


def test_degenerate_ppca(digits):
    from latentzoo.linear.ppca import DegenerateFitWarning

    with pytest.warns(DegenerateFitWarning):  # q >= n - 1: the noise variance is 0
        m = _flags(PPCA(21), digits, n=40, n_train=22)
    assert "degenerate" in m["flags"] and "overfit" in m["flags"]


def test_every_flag_is_explained_with_what_to_try():
    assert [f.name for f in FLAGS] == ["posterior-collapse", "not-converged", "diverged", "overfit", "degenerate"]
    assert all("Try" in text or "Use" in text for text in FLAG_DESCRIPTIONS.values())


def test_flags_reach_metrics_json_the_table_and_stdout(tmp_path, capsys):
    from latentzoo.cli import main

    out = tmp_path / "rep"
    code = main(["compare", "digits", "--n-samples", "200", "--models", "ppca,vae", "--epochs", "2",
                 "--hidden", "16", "--n-importance", "10", "--out", str(out)])
    stdout = capsys.readouterr().out
    assert code == 0
    doc = json.loads((out / "metrics.json").read_text())
    vae = doc["models"][1]
    assert "not-converged" in vae["flags"] and doc["models"][0]["flags"] == []
    assert set(doc["flag_descriptions"]) == set(FLAG_DESCRIPTIONS)
    page = (out / "report.html").read_text()
    assert "<span class='flag'>not-converged</span>" in page and "Health flags" in page
    vae_line = next(line for line in stdout.splitlines() if "] vae " in line)
    raised = next(line for line in stdout.splitlines() if line.startswith("health flags raised: "))
    assert "not-converged" in vae_line and "not-converged" in raised and "diverged" not in raised
    assert "not-converged" in (out / "metrics.csv").read_text().splitlines()[2]
