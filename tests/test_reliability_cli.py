"""The bad-input catalogue through the CLI: one ``latentzoo: error:`` line, non-zero exit,
no traceback, no output left behind. A ``compare`` killed mid-way leaves no half report."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import latentzoo

pytest.importorskip("latentzoo.cli")
from latentzoo.cli import main  # noqa: E402


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.savetxt(tmp_path / "x.csv", np.random.default_rng(0).random((30, 5)), delimiter=",")
    np.savetxt(tmp_path / "wide.csv", 3 * np.random.default_rng(0).random((30, 5)), delimiter=",")
    (tmp_path / "bad.csv").write_text("1,2\n3,oops\n")
    (tmp_path / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\x00")
    (tmp_path / "trunc.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr'")
    (tmp_path / "random.safetensors").write_bytes(np.random.default_rng(0).bytes(500))
    latentzoo.PCA(2).fit(np.random.default_rng(0).random((30, 5))).save(tmp_path / "good.safetensors")
    raw = (tmp_path / "good.safetensors").read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(raw[: len(raw) // 2])
    return tmp_path


CASES = {
    "unknown-model": ["fit", "nope", "x.csv", "--out", "OUT"],
    "missing-data": ["fit", "pca", "missing.csv", "--out", "OUT"],
    "unknown-dataset": ["fit", "pca", "no-such-set", "--out", "OUT"],
    "string-cell": ["fit", "pca", "bad.csv", "--out", "OUT"],
    "binary-csv": ["fit", "pca", "binary.csv", "--out", "OUT"],
    "truncated-npy": ["fit", "pca", "trunc.npy", "--out", "OUT"],
    "n-components-too-big": ["fit", "pca", "x.csv", "--out", "OUT", "--n_components", "9"],
    "n-components-0": ["fit", "pca", "x.csv", "--out", "OUT", "--n_components", "0"],
    "unknown-param": ["fit", "pca", "x.csv", "--out", "OUT", "--bogus", "1"],
    "param-without-value": ["fit", "pca", "x.csv", "--out", "OUT", "--n_components"],
    "lr-negative": ["fit", "ae", "x.csv", "--out", "OUT", "--lr", "-1"],
    "batch-size-0": ["fit", "ae", "x.csv", "--out", "OUT", "--batch_size", "0"],
    "max-epochs-ten": ["fit", "ae", "x.csv", "--out", "OUT", "--max-epochs", "ten"],
    "beta-negative": ["fit", "vae", "x.csv", "--out", "OUT", "--beta", "-1"],
    "noise-negative": ["fit", "dae", "x.csv", "--out", "OUT", "--noise", "gaussian:-1"],
    "contractive-negative": ["fit", "cae", "x.csv", "--out", "OUT", "--contractive", "-1"],
    "unknown-likelihood": ["fit", "ae", "x.csv", "--out", "OUT", "--likelihood", "poisson"],
    "unknown-corruption": ["fit", "ae", "x.csv", "--out", "OUT", "--noise", "blur:0.1"],
    "bernoulli-out-of-range": ["fit", "vae", "wide.csv", "--out", "OUT", "--likelihood", "bernoulli", "--max-epochs", "1"],
    "evaluate-missing-model": ["evaluate", "nowhere", "x.csv"],
    "evaluate-random-bytes": ["evaluate", "random.safetensors", "x.csv"],
    "evaluate-truncated": ["evaluate", "trunc.safetensors", "x.csv"],
    "encode-wrong-features": ["encode", "good.safetensors", "digits", "--out", "OUT.npy"],
    "encode-truncated": ["encode", "trunc.safetensors", "x.csv", "--out", "OUT.npy"],
    "sample-pca": ["sample", "good.safetensors", "-n", "3", "--out", "OUT.npy"],
    "compare-unknown-model": ["compare", "x.csv", "--models", "pca,nope", "--out", "OUT"],
    "threads-0": ["--threads", "0", "fit", "pca", "x.csv", "--out", "OUT"],
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_cli_bad_input_is_one_error_line(case, work, capsys):
    before = sorted(p.name for p in work.iterdir())
    rc = main(CASES[case])
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert rc != 0
    assert len(lines) == 1 and lines[0].startswith("latentzoo: error:"), cap.err
    assert "Traceback" not in cap.err + cap.out
    after = sorted(p.name for p in work.iterdir())
    assert after == before, f"output left behind: {set(after) - set(before)}"


def test_compare_killed_mid_way_leaves_no_half_report(work):
    """SIGKILL at a random moment of `compare`: the report folder is absent or complete."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "latentzoo", "compare", "x.csv", "--models", "pca,ppca", "--epochs", "1",
           "--hidden", "8", "--n-importance", "10", "--out", "rep"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=work)
    t0 = time.monotonic()
    # kill once the temporary report folder appears (writing has begun), or after 20 s
    while proc.poll() is None and time.monotonic() - t0 < 20:
        if any(p.name.startswith(".rep.tmp-") for p in work.iterdir()):
            break
        time.sleep(0.002)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert killed or proc.returncode == 0, err.decode()[-2000:]
    rep = work / "rep"
    from latentzoo.experiment.store import MODEL_FILE, RUN_FILE
    from latentzoo.report.output import REPORT_FILES

    if (rep / "report.html").exists():  # the report was moved into place: then it is complete
        assert all((rep / f).stat().st_size > 0 for f in REPORT_FILES)
    else:  # whatever the moment, no half report: no report file at all, only finished runs
        assert not any((rep / f).exists() for f in REPORT_FILES)
    for run in (rep / "runs").glob("[!.]*"):  # every stored run is complete
        assert (run / RUN_FILE).stat().st_size > 0 and (run / MODEL_FILE).stat().st_size > 0
