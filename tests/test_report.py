"""The comparison report: sections, embedded figures, metrics files, atomic output, oracles."""
import base64
import csv
import json
import re

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA
from sklearn.neighbors import KNeighborsClassifier

from latentzoo import PPCA
from latentzoo.experiment import choose_likelihood, run_comparison
from latentzoo.report import write_report
from latentzoo.report import output as report_output
from latentzoo.experiment import COLUMNS
from latentzoo.report.html import HEADINGS

IMG = '<img src="data:image/png;base64,'
FAST = dict(epochs=2, hidden=(16,), n_importance=20, progress=False)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits_report(tmp_path_factory):
    comp = run_comparison("digits", ["pca", "ppca", "vae"], n_samples=250, seed=0, **FAST)
    out = tmp_path_factory.mktemp("rep") / "report"
    write_report(comp, out)
    return comp, out


def _headings(page):
    return re.findall(r"<h2>(.*?)</h2>", page)


def test_report_has_every_section_and_one_embedded_png_per_figure(digits_report):
    comp, out = digits_report
    page = (out / "report.html").read_text()
    # digits are not 2-D (no score field), have no missing values (no imputation section);
    # one latent dimension: no sweep; images: no feature-driver bars (tables only)
    expected = [h for h in HEADINGS if h not in ("DAE score field", "Imputation", "Latent-dimension sweep",
                                                  "Features driving each latent unit")]
    assert _headings(page) == expected
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 9 and page.count(IMG) == len(pngs)
    for p in pngs:  # each file is embedded byte for byte
        assert base64.b64encode(p.read_bytes()).decode() in page
    assert "could not be drawn" not in page
    # the one measure heads the log-likelihood column; PCA (no density) says n/a, never a number
    assert "<br><span class='measure'>log-probability of the discrete values (grid width 0.0625" in page
    assert 'n/a <span class="small">(no density model)</span>' in page
    for text in ("uniformly dequantised", "latentzoo", "torch", "numpy", "scikit-learn", "python", "n_components=2",
                 "IS (k=20)"):
        assert text in page


def test_metrics_files_have_one_row_per_model_and_the_documented_columns(digits_report):
    comp, out = digits_report
    doc = json.loads((out / "metrics.json").read_text())
    assert [m["model"] for m in doc["models"]] == ["pca", "ppca", "vae"]
    assert doc["setup"]["seed"] == 0 and doc["data"]["name"] == "digits"
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    cols = tuple(rows[0].keys())  # layout 2: the run's identity, its metrics, then the fit
    assert cols[:5] == COLUMNS[:5] and cols[-2:] == ("fit_time_s", "epochs") and set(COLUMNS) <= set(cols)
    from latentzoo.evaluation import METRICS  # every metric column is explained in the report

    assert set(COLUMNS) - {"model", "latent_dim", "repeat", "seed", "fold", "log_likelihood_method",
                           "log_likelihood_measure", "flags"} <= set(METRICS)
    assert [(r["latent_dim"], r["repeat"], r["seed"], r["fold"]) for r in rows] == [("2", "0", "0", "")] * 3
    assert rows[0]["epochs"] == "" and int(rows[2]["epochs"]) == len(comp.results[2].model.history_["train_loss"])
    assert [r["model"] for r in rows] == ["pca", "ppca", "vae"]
    for r, m in zip(rows, doc["models"]):
        assert float(r["reconstruction_error"]) == pytest.approx(m["reconstruction_error"])
    assert rows[0]["log_likelihood"] == "" and rows[1]["log_likelihood_method"] == "exact, uniform dequantisation"
    assert rows[2]["log_likelihood_method"] == "importance-sampled (k=20), uniform dequantisation"
    assert len({r["log_likelihood_measure"] for r in rows}) == 1 and "flags" in rows[2]
    vae = doc["models"][2]
    assert vae["elbo"] <= vae["log_likelihood"] + 1.0  # IWAE(k=20) >= ELBO up to Monte Carlo noise


def test_values_match_direct_computations_on_the_same_split(digits_report):
    comp, _ = digits_report
    assert len(comp.X_train) + len(comp.X_test) == 250 and len(comp.X_test) == 50
    rows = {r.name: r.metrics for r in comp.results}
    # PPCA log-likelihood: a fresh PPCA fitted on the same dequantised training split, scored on the
    # same dequantised held-out split, plus D log(width) (digits: 17 levels 1/16 apart)
    from latentzoo.experiment.likelihood_policy import resolve_policy
    from latentzoo.experiment.measure import prepare_split

    split = prepare_split(comp.X_train, comp.X_test, None, None, resolve_policy(comp.X_train), 0)
    direct = PPCA(n_components=2).fit(split.X_train_deq).score(split.X_test_deq) + 64 * np.log(1 / 16)
    assert rows["ppca"]["log_likelihood"] == pytest.approx(direct, rel=1e-6)
    assert rows["ppca"]["bits_per_dim"] == pytest.approx(-direct / (64 * np.log(2)), rel=1e-6)
    # PCA: scikit-learn's PCA gives the same reconstruction error and (sign-free) kNN accuracy
    sk = SkPCA(n_components=2).fit(comp.X_train.astype(np.float64))
    Xte = comp.X_test.astype(np.float64)
    err = ((Xte - sk.inverse_transform(sk.transform(Xte))) ** 2).sum(1).mean()
    assert rows["pca"]["reconstruction_error"] == pytest.approx(err, rel=1e-5)
    knn = KNeighborsClassifier(5).fit(sk.transform(comp.X_train), comp.y_train).score(sk.transform(Xte), comp.y_test)
    assert rows["pca"]["knn_accuracy"] == pytest.approx(knn)
    assert rows["pca"]["interpolation_smoothness"] == pytest.approx(1.0)
    for m in rows.values():
        assert 0 <= m["trustworthiness"] <= 1 and 0 <= m["active_units"] <= 2


def test_all_seven_models_on_2d_data_use_gaussian_and_draw_the_score_field(tmp_path):
    comp = run_comparison("moons", ["pca", "ppca", "ae", "dae", "cae", "vae", "beta-vae"], latent_dim=1,
                          n_samples=150, epochs=1, hidden=(8,), n_importance=10, progress=False)
    assert comp.setup["likelihood"] == "gaussian-learned"  # continuous data: the VAEs' learned variance
    assert all(r.model.likelihood == ("gaussian-learned" if hasattr(r.model, "elbo") else "gaussian")
               for r in comp.results if hasattr(r.model, "likelihood"))
    write_report(comp, tmp_path / "r")
    page = (tmp_path / "r" / "report.html").read_text()
    assert "DAE score field" in _headings(page) and "Decoded latent grids" not in _headings(page)
    assert page.count(IMG) == len(list((tmp_path / "r").glob("*.png")))
    assert len(json.loads((tmp_path / "r" / "metrics.json").read_text())["models"]) == 7


def test_choose_likelihood_by_value_range():
    assert choose_likelihood(np.array([[0.0, 1.0], [0.5, 0.2]]))[0] == "bernoulli"
    assert choose_likelihood(np.array([[0.0, 1.5]]))[0] == "gaussian"
    assert choose_likelihood(np.array([[-0.1, 0.5]]))[0] == "gaussian"


@pytest.fixture
def quick_figures(monkeypatch):
    """Writing logic only: one stand-in figure instead of drawing them all."""
    from latentzoo.report.figures import RenderedFigure

    fig = RenderedFigure("latent", "one.png", "stand-in", b"\x89PNG fake")
    monkeypatch.setattr(report_output, "build_figures", lambda comp, dpi=100: [fig])


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir())


def test_write_replaces_an_old_report_and_leaves_no_temporary_folders(digits_report, tmp_path, quick_figures):
    comp, _ = digits_report
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.html").write_text("old")
    (out / "stale.png").write_bytes(b"x")
    write_report(comp, out)
    assert (out / "report.html").read_text() != "old" and not (out / "stale.png").exists()
    assert _siblings(out) == ["rep"]


def test_failed_write_leaves_nothing_behind(digits_report, tmp_path, monkeypatch, quick_figures):
    comp, _ = digits_report

    def boom(comp):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_output, "metrics_csv", boom)
    with pytest.raises(KeyboardInterrupt):
        write_report(comp, tmp_path / "rep")
    assert list(tmp_path.iterdir()) == []
    # an existing report survives a failed rewrite untouched
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.html").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        write_report(comp, tmp_path / "old")
    assert (tmp_path / "old" / "report.html").read_text() == "old" and _siblings(tmp_path / "old") == ["old"]


def test_refuses_to_replace_a_folder_that_is_not_a_report(digits_report, tmp_path, quick_figures):
    comp, _ = digits_report
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not a latentzoo report|holds no latentzoo report"):
        write_report(comp, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model"):
        run_comparison("digits", ["pca", "nope"], progress=False)
    with pytest.raises(ValueError, match="latent_dim"):
        run_comparison("moons", ["pca"], latent_dim=2, progress=False)
    with pytest.raises(ValueError, match="test_size"):
        run_comparison("digits", ["pca"], test_size=1.5, progress=False)
