"""The report's imputation section: RMSE on entries hidden from held-out rows."""
import dataclasses
import json

import numpy as np
import pytest

from latentzoo import PCA, PPCA, Autoencoder
from latentzoo.experiment.imputation import REFERENCES, hide, imputation_table
from latentzoo.report.html import metrics_json, render_html


def _data(n=300, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)) @ rng.normal(size=(2, d)) * 2 + 0.3 * rng.normal(size=(n, d))
    Xm = X.copy()
    Xm[rng.random(X.shape) < 0.1] = np.nan
    return Xm[:200], Xm[200:]


@pytest.fixture(scope="module")
def table():
    tr, te = _data()
    models = {"ppca": PPCA(2, method="em", random_state=0).fit(tr),
              "dae": Autoencoder(2, hidden=(16,), noise="masking:0.2", max_epochs=20, verbose=0, random_state=0,
                                 device="cpu").fit(tr),
              "no-impute": object()}
    return imputation_table(models, tr, te, rate=0.25, seed=3), tr, te


def test_every_model_and_both_references_are_scored_on_the_hidden_entries(table):
    t, tr, te = table
    names = [r["imputer"] for r in t["rows"]]
    assert names == ["ppca", "dae", "no-impute", *REFERENCES]
    _, hidden = hide(te, 0.25, 3)
    assert t["n_hidden"] == hidden.sum() and not (hidden & np.isnan(te)).any()  # only observed entries hidden
    assert 0.2 < t["n_hidden"] / (~np.isnan(te)).sum() < 0.3
    rm = {r["imputer"]: r["rmse"] for r in t["rows"]}
    assert rm["no-impute"] is None and t["rows"][2]["note"] == "no impute"
    # the mean reference by hand: training column means on the hidden entries
    cols = np.nonzero(hidden)[1]
    want = np.sqrt(np.mean((te[hidden] - np.nanmean(tr, 0)[cols]) ** 2))
    assert rm["mean (sklearn SimpleImputer)"] == pytest.approx(want, rel=1e-9)
    assert rm["ppca"] < 0.5 * rm["mean (sklearn SimpleImputer)"]  # rank-2 data: the model knows better
    assert "25%" in t["description"]


def test_pca_fitted_on_complete_rows_imputes_too():
    tr, te = _data()
    full = tr[~np.isnan(tr).any(1)]
    t = imputation_table({"pca": PCA(2).fit(full)}, tr, te, seed=0)
    assert t["rows"][0]["rmse"] < t["rows"][1]["rmse"]


def test_the_section_is_in_the_page_and_in_metrics_json(table):
    from latentzoo.experiment import run_comparison

    comp = run_comparison("digits", ["pca"], n_samples=60, seed=0, epochs=1, hidden=(8,), n_importance=5,
                          progress=False)
    assert comp.imputation is None  # complete data: no section
    comp = dataclasses.replace(comp, imputation=table[0])
    page = render_html(comp, [])
    assert "<h2>Imputation</h2>" in page and "Masking rate <b>25%</b>" in page
    assert page.index("<h2>Metrics</h2>") < page.index("<h2>Imputation</h2>") < page.index("<h2>Setup</h2>")
    doc = json.loads(metrics_json(comp))
    assert doc["imputation"]["rate"] == 0.25 and len(doc["imputation"]["rows"]) == 5
