"""The experiment's statistics: PPCA evidence against scikit-learn, significance on real fits."""
import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

from latentzoo import PCA, Autoencoder
from latentzoo.experiment.plan import make_splits
from latentzoo.experiment.runner import RunRecord
from latentzoo.experiment.stats import compare, paired_test, summarize, verdict
from latentzoo.linear.evidence import choose_latent_dim, covariance_spectrum, log_evidence


@pytest.mark.parametrize("d,k,n,seed", [(10, 3, 500, 0), (20, 5, 300, 1), (40, 8, 2000, 2), (12, 1, 150, 3)])
def test_ppca_evidence_choice_equals_sklearn_mle_on_data_of_known_dimension(d, k, n, seed):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, k)) * 3.0
    X = rng.standard_normal((n, k)) @ W.T + 0.5 * rng.standard_normal((n, d))
    sk = SkPCA(n_components="mle", svd_solver="full").fit(X)
    assert choose_latent_dim(X) == sk.n_components_ == k


def test_evidence_choice_equals_sklearn_on_real_images():
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0  # float64: scikit-learn's own criterion fails on float32 here
    assert choose_latent_dim(X) == SkPCA(n_components="mle", svd_solver="full").fit(X).n_components_


def test_spectrum_is_sklearns_explained_variance_and_the_evidence_rejects_bad_k():
    from sklearn.datasets import load_digits

    X = load_digits().data / 16.0
    sk = SkPCA(svd_solver="full").fit(X)
    np.testing.assert_allclose(covariance_spectrum(X), sk.explained_variance_, rtol=1e-6, atol=1e-10)
    with pytest.raises(ValueError, match="k must be"):
        log_evidence(covariance_spectrum(X), 0, len(X))


def test_paired_test_matches_scipy_and_handles_constant_differences():
    from scipy import stats

    a, b = [1.0, 2.0, 3.5, 4.0], [1.1, 2.3, 3.4, 4.4]
    assert paired_test(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired_test([1, 2, 3], [1, 2, 3]) == 1.0 and paired_test([2, 3, 4], [1, 2, 3]) == 0.0


def _records(X, y, makers, repeats=4):
    """Real fits of each (name -> estimator factory(seed)) on the same repeated splits."""
    out = []
    for sp in make_splits(len(X), y, repeats=repeats, seed=0):
        Xtr, Xte = X[sp.train], X[sp.test]
        for name, make in makers.items():
            est = make(sp.seed).fit(Xtr)
            err = float(est.reconstruction_error(Xte))
            out.append(RunRecord(name, 4, sp.repeat, sp.seed, None, {"reconstruction_error": err}, 0.0, None))
    return out


def test_two_copies_of_one_model_with_different_seeds_are_tied(digits):
    X, y = digits[0][:400], digits[1][:400]
    ae = dict(n_components=4, hidden=(16,), max_epochs=3, batch_size=32, verbose=0)
    # interleaved seeds (2s, 2s + 1): exchangeable copies (note: seeds >= 1000 fitted systematically worse
    # than seeds < 20 here, which a fixed offset would turn into a real difference)
    runs = _records(X, y, {"ae": lambda s: Autoencoder(**ae, random_state=2 * s),
                           "ae-copy": lambda s: Autoencoder(**ae, random_state=2 * s + 1)}, repeats=5)
    errs = {m: [r.metrics["reconstruction_error"] for r in runs if r.model == m] for m in ("ae", "ae-copy")}
    assert errs["ae"] != errs["ae-copy"]  # different seeds, different fits
    c = compare(runs)["4"]["reconstruction_error"]
    assert c["verdict"] == "tied" and c["winner"] is None and c["p_value"] >= 0.05
    assert c["test"] == "paired t-test, 5%" and c["n_pairs"] == 5


def test_a_clear_winner_is_marked_best(digits):
    X, y = digits[0][:400], digits[1][:400]
    runs = _records(X, y, {"pca": lambda s: PCA(4),
                           "ae": lambda s: Autoencoder(4, hidden=(8,), max_epochs=1, batch_size=64, verbose=0,
                                                       random_state=s)}, repeats=3)
    c = compare(runs)["4"]["reconstruction_error"]
    assert c["verdict"] == "best" and c["winner"] == "pca" and c["runner_up"] == "ae" and c["p_value"] < 0.05
    rows = summarize(runs, order=["pca", "ae"])
    pca = rows[0]
    vals = [r.metrics["reconstruction_error"] for r in runs if r.model == "pca"]
    assert pca["model"] == "pca" and pca["n_runs"] == 3
    assert pca["reconstruction_error"] == pytest.approx(np.mean(vals))
    assert pca["std"]["reconstruction_error"] == pytest.approx(np.std(vals, ddof=1))
    text = verdict(rows, compare(runs), runs)
    assert text[0].startswith("reconstruction error: pca is best, ") and "p=" in text[0]


def test_one_run_per_model_claims_nothing(digits):
    X, y = digits
    runs = _records(X[:300], y[:300], {"pca": lambda s: PCA(4), "pca2": lambda s: PCA(3)}, repeats=1)
    c = compare(runs)["4"]["reconstruction_error"]
    assert c["verdict"] == "single run" and c["p_value"] is None


def test_the_verdict_groups_flagged_runs_by_flag_then_model_and_q():
    def run(model, q, repeat, flags):
        return RunRecord(model, q, repeat, repeat, None, {"reconstruction_error": 1.0 + repeat, "flags": flags},
                         0.0, None)

    runs = [run("ae", 2, 0, ["not-converged"]), run("vae", 2, 0, ["not-converged", "overfit"]),
            run("ae", 2, 1, ["not-converged"]), run("vae", 2, 1, []), run("ae", 8, 1, ["not-converged"]),
            run("vae", 2, 2, ["overfit"])]
    text = verdict(summarize(runs, order=["ae", "vae"]), compare(runs), runs)
    flagged = [s for s in text if s.startswith("Flagged")]
    assert flagged == ["Flagged not-converged (4 runs): ae q=2 repeats 0, 1; vae q=2 repeat 0; ae q=8 repeat 1.",
                       "Flagged overfit (2 runs): vae q=2 repeats 0, 2."]
    clean = verdict(summarize(runs[3:4], order=["vae"]), compare(runs[3:4]), runs[3:4])
    assert not any(s.startswith("Flagged") for s in clean)
