"""The ``latentzoo`` CLI end to end (in-process ``main``), its help, and every error path."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA

import latentzoo
from latentzoo.cli import COMMANDS, main


@pytest.fixture(scope="module", autouse=True)
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits_X():
    return latentzoo.load_dataset("digits").X.astype(np.float64)


@pytest.fixture(scope="module")
def pca_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs") / "pca"
    assert main(["fit", "pca", "digits", "--out", str(d), "--n_components", "3"]) == 0
    return d


@pytest.fixture(scope="module")
def ppca_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs") / "ppca"
    assert main(["fit", "ppca", "digits", "--out", str(d), "--n-components=2"]) == 0
    return d


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_python_m_latentzoo_help_in_a_subprocess():
    r = subprocess.run([sys.executable, "-m", "latentzoo", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == ""
    for name in COMMANDS:
        assert name in r.stdout


@pytest.mark.parametrize("cmd", list(COMMANDS))
def test_every_subcommand_has_help_with_examples(capsys, cmd):
    code, out, _ = _run(capsys, [cmd, "--help"])
    assert code == 0 and "examples:" in out and f"latentzoo {cmd}" in out


def test_fit_saves_model_and_info_matching_sklearn(pca_dir, digits_X):
    info = json.loads((pca_dir / "info.json").read_text())
    assert info["model"] == "pca" and info["params"] == {"n_components": 3, "whiten": False}
    assert info["data"]["name"] == "digits"
    model = latentzoo.load(pca_dir / "model.safetensors")
    sk = SkPCA(n_components=3).fit(digits_X)
    np.testing.assert_allclose(np.abs(model.transform(digits_X)), np.abs(sk.transform(digits_X)), atol=1e-4)


def test_evaluate_json_matches_direct_reconstruction_error(capsys, pca_dir, digits_X):
    code, out, err = _run(capsys, ["evaluate", str(pca_dir), "digits", "--json"])
    assert code == 0 and err == ""
    m = json.loads(out)
    sk = SkPCA(n_components=3).fit(digits_X)
    direct = ((digits_X - sk.inverse_transform(sk.transform(digits_X))) ** 2).sum(1).mean()
    assert m["model"] == "pca" and m["reconstruction_error"] == pytest.approx(direct, rel=1e-4)
    assert m["log_likelihood"] is None and 0 <= m["knn_accuracy"] <= 1
    code, out, _ = _run(capsys, ["evaluate", str(pca_dir), "digits"])
    assert code == 0 and "reconstruction_error" in out and "trustworthiness" in out


def test_encode_npy_and_csv(capsys, tmp_path, pca_dir, digits_X):
    assert _run(capsys, ["encode", str(pca_dir), "digits", "--out", str(tmp_path / "z.npy")])[0] == 0
    assert _run(capsys, ["encode", str(pca_dir), "digits", "--out", str(tmp_path / "z.csv")])[0] == 0
    Z = np.load(tmp_path / "z.npy")
    sk = SkPCA(n_components=3).fit(digits_X)
    np.testing.assert_allclose(np.abs(Z), np.abs(sk.transform(digits_X)), atol=1e-4)
    np.testing.assert_allclose(np.loadtxt(tmp_path / "z.csv", delimiter=","), Z, rtol=1e-6, atol=1e-7)


def test_sample_from_ppca(capsys, tmp_path, ppca_dir):
    code, out, _ = _run(capsys, ["sample", str(ppca_dir), "-n", "500", "--out", str(tmp_path / "s.npy"),
                                 "--seed", "1"])
    assert code == 0
    S = np.load(tmp_path / "s.npy")
    model = latentzoo.load(ppca_dir / "model.safetensors")
    assert S.shape == (500, 64)
    # sample mean near the model mean (Monte Carlo, sd of the mean = sqrt(diag C / n))
    sd = np.sqrt(np.diag(model.get_covariance()) / 500)
    assert np.all(np.abs(S.mean(0) - model.mean_) < 5 * sd + 1e-9)


def test_report_single_model(capsys, tmp_path, ppca_dir):
    code, out, _ = _run(capsys, ["report", str(ppca_dir), "digits", "--out", str(tmp_path / "p.html")])
    assert code == 0 and "report written" in out
    page = (tmp_path / "p.html").read_text()
    assert page.count('<img src="data:image/png;base64,') >= 4 and "<h2>Metrics</h2>" in page
    assert "could not be drawn" not in page


def test_fit_neural_parses_literals_and_chooses_likelihood(capsys, tmp_path):
    d = tmp_path / "vae"
    code, out, err = _run(capsys, ["fit", "vae", "digits", "--out", str(d), "--max-epochs", "1",
                                   "--hidden", "(8,)", "--batch_size", "256", "--beta", "-0.5"])
    assert code == 2 and "beta" in err  # a negative literal reaches the parameter check
    code, out, err = _run(capsys, ["fit", "vae", "digits", "--out", str(d), "--max-epochs", "1",
                                   "--hidden", "(8,)", "--batch_size", "256", "--beta", "0.5"])
    assert code == 0, err
    info = json.loads((d / "info.json").read_text())
    assert info["params"]["hidden"] == [8] and info["params"]["max_epochs"] == 1
    assert info["params"]["batch_size"] == 256 and info["params"]["beta"] == 0.5
    assert info["params"]["likelihood"] == "bernoulli" and "[0, 1]" in info["likelihood_choice"]
    assert _run(capsys, ["sample", str(d), "-n", "3", "--out", str(tmp_path / "s.csv")])[0] == 0
    assert np.loadtxt(tmp_path / "s.csv", delimiter=",").shape == (3, 64)


def test_compare_in_process(capsys, tmp_path):
    out_dir = tmp_path / "rep"
    code, out, err = _run(capsys, ["compare", "digits", "--n-samples", "120", "--models", "pca,ppca",
                                   "--out", str(out_dir), "--epochs", "1"])
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("log-likelihood measure: log-probability of the discrete values")
    assert lines[1].startswith("[1/2] pca") and "log-lik n/a" in lines[1]
    assert lines[2].startswith("[2/2] ppca") and "nats (" in lines[2] and "bits/dim" in lines[2]
    assert any(line.startswith("likelihood policy: discrete data (17 levels") for line in lines)
    assert "report written" in lines[-1]
    assert {"report.html", "metrics.json", "metrics.csv"} <= {p.name for p in out_dir.iterdir()}


# ---------------------------------------------------------------------- errors
def _corrupt(tmp_path):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"not a model")
    return str(p)


ERRORS = [
    # (argv, exit code, text in the message); "OUT" is replaced by a fresh output path
    (["fit", "nosuch", "digits", "--out", "OUT"], 2, "unknown model 'nosuch'"),
    (["fit", "pca", "digits", "--out", "OUT", "--foo", "1"], 2, "valid parameters: n_components, whiten"),
    (["fit", "pca", "digits", "--out", "OUT", "--n-components", "-3"], 2, "n_components"),
    (["fit", "pca", "digits", "--out", "OUT", "--n-components"], 2, "needs a value"),
    (["fit", "pca", "no/such/file.csv", "--out", "OUT"], 1, "no/such/file.csv"),
    (["fit", "pca", "nosuchset", "--out", "OUT"], 1, "unknown dataset 'nosuchset'"),
    (["fit", "pca", "digits"], 2, "--out"),
    (["evaluate", "no/such/dir", "digits"], 1, "no/such/dir"),
    (["evaluate", "BAD", "digits"], 1, "not a readable latentzoo model file"),
    (["evaluate", "PPCA", "moons"], 1, "has 2 features but the model (PPCA) was fitted on 64"),
    (["encode", "PPCA", "moons", "--out", "OUT.npy"], 1, "2 features"),
    (["encode", "PPCA", "digits", "--out", "OUT.txt"], 2, "unsupported file type '.txt'"),
    (["sample", "PCA", "-n", "3", "--out", "OUT.npy"], 1, "cannot sample"),
    (["sample", "PPCA", "-n", "0", "--out", "OUT.npy"], 2, "positive integer"),
    (["report", "PPCA", "moons", "--out", "OUT.html"], 1, "2 features"),
    (["compare", "digits", "--models", "pca,nope", "--out", "OUT"], 2, "unknown model(s) 'nope'"),
    (["compare", "moons", "--models", "pca", "--latent-dim", "5", "--out", "OUT"], 1, "latent_dim=5"),
    (["compare", "digits", "--hidden", "a,b", "--out", "OUT"], 2, "--hidden"),
    (["compare", "digits", "--models", "pca,vae", "--param", "vae.beta", "--out", "OUT"], 2, "MODEL.NAME=VALUE"),
    (["compare", "digits", "--models", "pca,vae", "--param", "ae.noise=0.1", "--out", "OUT"], 2,
     "model 'ae' is not compared"),
    (["compare", "digits", "--models", "pca,vae", "--param", "vae.bogus=1", "--out", "OUT"], 2,
     "vae has no parameter 'bogus'"),
    (["compare", "digits", "--models", "pca,vae", "--param", "vae.beta=-1", "--out", "OUT"], 2,
     "--param 'vae.beta=-1': VAE: invalid value for parameter 'beta'"),
    (["compare", "digits", "--models", "pca,dae", "--param", "dae.noise=blur:2", "--out", "OUT"], 2,
     "invalid value for parameter 'noise': 'blur:2'"),
    (["compare", "digits", "--likelihood", "poisson", "--out", "OUT"], 2, "'poisson' is not a registered"),
    (["compare", "moons", "--latent-dim", "1", "--likelihood", "bernoulli", "--out", "OUT"], 1,
     "needs data in [0, 1]"),
    (["evaluate", "PPCA", "digits", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["frobnicate"], 2, "invalid choice"),
    ([], 2, "required"),
]


@pytest.mark.parametrize("argv,code,text", ERRORS, ids=[" ".join(a[:2]) + f" [{i}]" for i, (a, _, _) in
                                                         enumerate(ERRORS)])
def test_errors_are_one_line_without_traceback_or_output(capsys, tmp_path, pca_dir, ppca_dir, argv, code, text):
    out_base = tmp_path / "out"
    subst = {"PCA": str(pca_dir), "PPCA": str(ppca_dir), "BAD": _corrupt(tmp_path)}
    argv = [subst.get(a, a.replace("OUT", str(out_base))) for a in argv]
    before = set(tmp_path.iterdir())
    got, out, err = _run(capsys, argv)
    assert got == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentzoo: error: ") and text in lines[0], err
    assert "Traceback" not in err + out
    assert set(tmp_path.iterdir()) == before, "an output (or temporary) file was left behind"


def test_keyboard_interrupt_is_one_line_and_leaves_no_report(capsys, tmp_path, monkeypatch):
    from latentzoo.report import output

    def interrupted(comp):
        raise KeyboardInterrupt

    monkeypatch.setattr(output, "metrics_csv", interrupted)
    code, out, err = _run(capsys, ["compare", "digits", "--n-samples", "100", "--models", "pca",
                                   "--out", str(tmp_path / "rep")])
    assert code == 130 and err.strip() == "latentzoo: error: interrupted"  # 128 + SIGINT, as shells expect
    # no report and no debris: only the finished run, stored so that a rerun resumes from it
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == ["runs"]
    assert sorted(p.name for p in (tmp_path / "rep" / "runs").iterdir()) == ["pca-q2-r0"]


def test_verbose_shows_the_traceback(capsys):
    code, _, err = _run(capsys, ["-v", "evaluate", "no/such/dir", "digits"])
    assert code == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("latentzoo: error:")


def test_compare_param_repeats_and_reaches_the_model_before_the_fit(capsys, tmp_path):
    out_dir = tmp_path / "rep"
    code, out, err = _run(capsys, ["compare", "digits", "--n-samples", "100", "--models", "pca,vae", "--epochs", "1",
                                   "--hidden", "8", "--n-importance", "4", "--param", "vae.beta=4",
                                   "--param", "vae.kl_warmup=2", "--likelihood", "gaussian:0.5", "--out", str(out_dir)])
    assert code == 0, err
    doc = json.loads((out_dir / "metrics.json").read_text())
    params = doc["models"][1]["params"]
    assert params["beta"] == 4 and params["kl_warmup"] == 2 and params["likelihood"] == "gaussian:0.5"
    assert doc["setup"]["likelihood_policy"]["policy"] == "user"
