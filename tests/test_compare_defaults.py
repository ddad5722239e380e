"""Defaults that fit the data (issue 18): compare without --latent-dim picks a latent
dimension the data allow and says so; figures that cannot apply are left out with one
line saying why, never an error and never a section without its figure."""
import json

import numpy as np
import pytest

from latentzoo.cli import main
from latentzoo.experiment.plan import default_latent_dim

FAST = ["--epochs", "1", "--hidden", "8", "--n-importance", "4", "--n-samples", "200"]


@pytest.mark.parametrize("d, q", [(2, 1), (3, 2), (64, 2)])
def test_default_latent_dim_is_below_the_feature_count(d, q):
    got, why = default_latent_dim(d)
    assert got == q and got < d and "not given" in why and str(d) in why


def _compare(tmp_path, data, *extra, capsys):
    out = tmp_path / "rep"
    rc = main(["compare", data, "--models", "pca,ppca,vae", "--out", str(out), *FAST, *extra])
    printed = "".join(capsys.readouterr())
    return rc, printed, (out / "report.html").read_text(), json.loads((out / "metrics.json").read_text())


def test_two_feature_data_get_q1_and_the_2d_figures_are_left_out_with_a_reason(tmp_path, capsys):
    rc, printed, html, doc = _compare(tmp_path, "moons", capsys=capsys)
    assert rc == 0, printed
    assert "could not be drawn" not in printed and "latentzoo: error" not in printed
    assert doc["setup"]["latent_dims"] == [1]
    assert "not given: 1" in doc["setup"]["latent_dim_choice"] and "not given: 1" in html
    # no posterior or grid section, one line each saying why
    assert "id='posterior'" not in html and "id='grid'" not in html
    assert "posterior ellipses need at least 2 latent dimensions; the models shown have q = 1" in html
    assert "decoded latent grids need a 2-D latent space (q = 2)" in html
    assert "could not be drawn" not in html
    # every section that is there has its figure
    for section in html.split("<section id='")[1:]:
        key = section.split("'")[0]
        if key not in ("metrics", "setup"):
            assert "<img " in section, key


def test_an_explicit_latent_dim_is_kept_and_not_explained(tmp_path, capsys):
    rc, printed, html, doc = _compare(tmp_path, "digits", "--latent-dim", "3", capsys=capsys)
    assert rc == 0, printed
    assert doc["setup"]["latent_dims"] == [3] and "latent_dim_choice" not in doc["setup"]
    assert "id='posterior'" in html  # q = 3 >= 2: the ellipses of the first two coordinates
    assert "decoded latent grids need a 2-D latent space (q = 2); the models shown have q = 3" in html


def test_one_feature_data_is_a_clear_error(tmp_path, capsys):
    np.save(tmp_path / "one.npy", np.random.default_rng(0).random((50, 1)))
    rc = main(["compare", str(tmp_path / "one.npy"), "--out", str(tmp_path / "r"), *FAST])
    err = capsys.readouterr().err
    assert rc != 0 and "smaller than the number of features (1)" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()
