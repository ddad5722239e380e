"""The CLI on real-world tables: missing values through fit/evaluate/encode/compare, row
IDs kept by encode, continuous labels, table options."""
import json

import numpy as np
import pytest

import latentzoo
from latentzoo.cli import main


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A 160 x 12 low-rank table with sample IDs, 8% NA cells and a continuous covariate."""
    rng = np.random.default_rng(0)
    n, d = 160, 12
    Z = rng.normal(size=(n, 2))
    X = Z @ rng.normal(size=(2, d)) * 2 + 0.2 * rng.normal(size=(n, d)) + 5
    mask = rng.random((n, d)) < 0.08
    lines = ["sample," + ",".join(f"GENE{j}" for j in range(d)) + ",age"]
    for i in range(n):
        cells = ["NA" if mask[i, j] else f"{X[i, j]:.6f}" for j in range(d)]
        age = "" if i % 20 == 0 else f"{40 + 10 * Z[i, 0]:.2f}"
        lines.append(f"S{i:04d}," + ",".join(cells) + f",{age}")
    path = tmp_path_factory.mktemp("tables") / "missing.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, X, mask


def test_fit_ppca_on_missing_values_imputes_better_than_column_means(capsys, tmp_path, table):
    path, X, mask = table
    code, out, err = _run(capsys, ["fit", "ppca", str(path), "--label-column", "age", "--out", str(tmp_path / "r"),
                                   "--n_components", "2"])
    assert code == 0, err
    info = json.loads((tmp_path / "r" / "info.json").read_text())
    assert info["params"]["method"] == "em" and "missing entries" in info["missing_values"]
    model = latentzoo.load(tmp_path / "r" / "model.safetensors")
    Xn = np.where(mask, np.nan, X)
    R = model.inverse_transform(model.transform(Xn))  # E[x | x_observed] under the fitted model
    rmse = np.sqrt(np.mean((R[mask] - X[mask]) ** 2))
    means = np.nanmean(Xn, axis=0)
    rmse_means = np.sqrt(np.mean((np.broadcast_to(means, X.shape)[mask] - X[mask]) ** 2))
    assert rmse < 0.3 * rmse_means


def test_fit_of_a_model_that_cannot_take_missing_values_is_a_clear_error(capsys, tmp_path, table):
    path, _, _ = table
    code, _, err = _run(capsys, ["fit", "pca", str(path), "--label-column", "age", "--out", str(tmp_path / "p")])
    assert code == 2 and "cannot fit data with missing values" in err and "models that can: ppca" in err
    assert "Traceback" not in err and not (tmp_path / "p").exists()


def test_evaluate_and_encode_keep_row_ids_on_missing_values(capsys, tmp_path, table):
    path, _, _ = table
    run = tmp_path / "r"
    assert _run(capsys, ["fit", "ppca", str(path), "--label-column", "age", "--out", str(run)])[0] == 0
    code, out, err = _run(capsys, ["evaluate", str(run), str(path), "--label-column", "age", "--json"])
    assert code == 0, err
    m = json.loads(out)
    assert m["knn_accuracy"] is None and m["knn_r2"] > 0.5  # age is continuous and follows z_0
    assert np.isfinite(m["reconstruction_error"]) and np.isfinite(m["trustworthiness"])
    code, _, err = _run(capsys, ["encode", str(run), str(path), "--label-column", "age", "--out",
                                 str(tmp_path / "z.csv")])
    assert code == 0, err
    lines = (tmp_path / "z.csv").read_text().splitlines()
    assert lines[0] == "sample,z0,z1" and lines[1].startswith("S0000,") and len(lines) == 161
    assert _run(capsys, ["encode", str(run), str(path), "--label-column", "age", "--out", str(tmp_path / "z.npy")])[0] == 0
    assert (tmp_path / "z.row_ids.txt").read_text().split() == [f"S{i:04d}" for i in range(160)]
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"),
                               np.loadtxt(tmp_path / "z.csv", delimiter=",", skiprows=1, usecols=(1, 2)), rtol=1e-6)


def test_compare_on_missing_values_leaves_out_models_with_the_reason(capsys, tmp_path, table):
    path, _, _ = table
    out_dir = tmp_path / "rep"
    code, out, err = _run(capsys, ["compare", str(path), "--label-column", "age", "--models", "pca,ppca,ae",
                                   "--epochs", "2", "--out", str(out_dir)])
    assert code == 0, err
    metrics = json.loads((out_dir / "metrics.json").read_text())
    names = [m["model"] for m in metrics["models"]]
    assert names == ["ppca", "ae"]  # PPCA by EM, the autoencoder on the observed entries; PCA cannot
    html = (out_dir / "report.html").read_text()
    assert "left out: pca" in html and "left out: ae" not in html and "cannot fit data with missing values" in html
    assert "missing entries" in html and "unlabelled rows" in html and "continuous covariate" in html
    assert "kNN R" in html


def test_compare_when_no_model_can_take_missing_values(capsys, tmp_path, table):
    path, _, _ = table
    code, _, err = _run(capsys, ["compare", str(path), "--label-column", "age", "--models", "pca",
                                 "--out", str(tmp_path / "rep")])
    assert code == 1 and "no model of pca can fit data with missing values" in err


def test_header_and_id_options(capsys, tmp_path):
    (tmp_path / "t.csv").write_text("10,20,30\n1.5,2,3\n4,5.5,6\n7,8,9.25\n")
    code, _, err = _run(capsys, ["fit", "pca", str(tmp_path / "t.csv"), "--no-header", "--out", str(tmp_path / "a"),
                                 "--n_components", "1"])
    assert code == 0 and json.loads((tmp_path / "a" / "info.json").read_text())["data"]["n_samples"] == 4
    code, _, err = _run(capsys, ["fit", "pca", str(tmp_path / "t.csv"), "--header", "--out", str(tmp_path / "b"),
                                 "--n_components", "1"])
    assert code == 0 and json.loads((tmp_path / "b" / "info.json").read_text())["data"]["columns"] == ["10", "20", "30"]
    (tmp_path / "i.csv").write_text("v,name\n1,a\n2,b\n3,c\n")
    code, _, err = _run(capsys, ["fit", "pca", str(tmp_path / "i.csv"), "--id-column", "name", "--out",
                                 str(tmp_path / "c"), "--n_components", "1"])
    assert code == 0, err
    code, _, err = _run(capsys, ["fit", "pca", str(tmp_path / "i.csv"), "--id-column", "nope", "--out",
                                 str(tmp_path / "d")])
    assert code == 1 and "id_column 'nope' is not a column" in err and "Traceback" not in err


@pytest.mark.parametrize("model", ["pca", "ae"])
def test_fit_sets_feature_names_from_the_header_and_the_saved_model_keeps_them(capsys, tmp_path, model):
    rng = np.random.default_rng(1)
    header = ["TP53", "BRCA1", "7157", "EGFR", "MYC"]
    X = rng.normal(size=(40, 5))
    (tmp_path / "g.csv").write_text("id," + ",".join(header) + "\n"
                                    + "".join(f"S{i}," + ",".join(f"{v:.5f}" for v in row) + "\n"
                                              for i, row in enumerate(X)))
    extra = ["--max_epochs", "2", "--hidden", "(4,)"] if model == "ae" else []
    code, _, err = _run(capsys, ["fit", model, str(tmp_path / "g.csv"), "--out", str(tmp_path / "m"),
                                 "--n_components", "2", *extra])
    assert code == 0, err
    est = latentzoo.load(tmp_path / "m" / "model.safetensors")
    assert list(est.feature_names_in_) == header  # the CSV's header, in order (the ID column is not a feature)
    prefix = type(est).__name__.lower()
    assert list(est.get_feature_names_out()) == [f"{prefix}0", f"{prefix}1"]
    assert list(est.get_feature_names_out(header)) == [f"{prefix}0", f"{prefix}1"]
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        est.get_feature_names_out(header[::-1])
    # the CLI passes arrays in the checked column order: no scikit-learn feature-name warning
    code, out, err = _run(capsys, ["encode", str(tmp_path / "m"), str(tmp_path / "g.csv"), "--out",
                                   str(tmp_path / "z.csv")])
    assert code == 0 and "feature names" not in err, err
    assert (tmp_path / "z.csv").read_text().splitlines()[1].startswith("S0,")  # row IDs kept
    # a table whose columns differ from the model's: one line naming the column
    (tmp_path / "h.csv").write_text("id," + ",".join(header[::-1]) + "\n"
                                    + "".join(f"S{i}," + ",".join(f"{v:.5f}" for v in row) + "\n"
                                              for i, row in enumerate(X)))
    code, _, err = _run(capsys, ["evaluate", str(tmp_path / "m"), str(tmp_path / "h.csv")])
    assert code == 1 and "column 0 is 'MYC', the model's is 'TP53'" in err and "Traceback" not in err


def test_compare_models_carry_the_feature_names(capsys, tmp_path, table):
    path, _, _ = table
    out_dir = tmp_path / "rep"
    code, _, err = _run(capsys, ["compare", str(path), "--label-column", "age", "--models", "ppca",
                                 "--out", str(out_dir)])
    assert code == 0, err
    stored = sorted((out_dir / "runs").glob("*/model.safetensors"))
    assert stored and all(list(latentzoo.load(p).feature_names_in_) == [f"GENE{j}" for j in range(12)]
                          for p in stored)
    assert "does not have valid feature names" not in err


def test_h5ad_through_the_cli_keeps_var_names_and_obs_names(capsys, tmp_path):
    ad = pytest.importorskip("anndata")
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    genes = ["TP53", "EGFR", "MYC", "KRAS", "GAPDH", "ACTB"]
    obs = pd.DataFrame({"cell_type": pd.Categorical(rng.choice(["T", "B"], 30))}, index=[f"cell{i}" for i in range(30)])
    ad.AnnData(X=rng.poisson(3, size=(30, 6)).astype(np.float32), obs=obs,
               var=pd.DataFrame(index=genes)).write_h5ad(tmp_path / "c.h5ad")
    code, _, err = _run(capsys, ["fit", "pca", str(tmp_path / "c.h5ad"), "--label-column", "cell_type", "--out",
                                 str(tmp_path / "m"), "--n_components", "2"])
    assert code == 0, err
    assert list(latentzoo.load(tmp_path / "m" / "model.safetensors").feature_names_in_) == genes
    code, _, err = _run(capsys, ["encode", str(tmp_path / "m"), str(tmp_path / "c.h5ad"), "--out", str(tmp_path / "z.csv")])
    assert code == 0, err
    rows = (tmp_path / "z.csv").read_text().splitlines()
    assert rows[1].startswith("cell0,") and rows[30].startswith("cell29,")


def test_a_text_column_not_named_as_labels_is_a_one_line_error_with_the_hint(capsys, tmp_path):
    (tmp_path / "t.csv").write_text("id,g1,g2,group\nS1,1,2,A\nS2,3,4,B\nS3,5,6,A\n")
    code, _, err = _run(capsys, ["fit", "pca", str(tmp_path / "t.csv"), "--out", str(tmp_path / "m"),
                                 "--n_components", "1"])
    assert code == 1 and "non-numeric value 'A'" in err and "--label-column" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_warning_during_a_command_is_one_line(capsys, tmp_path, table):
    path, _, _ = table  # PPCA's EM stops at max_iter=2 on missing values: a ConvergenceWarning
    code, _, err = _run(capsys, ["fit", "ppca", str(path), "--label-column", "age", "--out", str(tmp_path / "r"),
                                 "--max_iter", "2"])
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if "converge" in ln]
    assert lines and all(ln.startswith("latentzoo: warning: PPCA EM did not converge") for ln in lines), err
    assert "ppca.py" not in err  # no file name, no source line
