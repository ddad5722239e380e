"""The bad-input catalogue through the CLI: one ``latentzoo: error:`` line, non-zero exit,
no traceback, no output left behind. A ``compare`` killed mid-way leaves no half report."""
import os
import re
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
    from latentzoo.neural import resources

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(resources, "available_memory", lambda device: 16 * 10**9)  # the guard's cases: any machine
    (tmp_path / "text.npy").write_text("a,b\n1,2\n")
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
    # second round (issue 17): each was silently accepted, misleading, or ran out of memory
    "param-given-twice": ["fit", "pca", "x.csv", "--out", "OUT", "--n_components", "2", "--n-components", "3"],
    "param-given-twice-eq": ["fit", "ae", "x.csv", "--out", "OUT", "--lr=0.1", "--lr", "0.2"],
    "option-given-twice": ["compare", "x.csv", "--models", "pca", "--seed", "1", "--seed", "2", "--out", "OUT"],
    "models-twice": ["compare", "x.csv", "--models", "pca,ppca,pca", "--out", "OUT"],
    "compare-seed-negative": ["compare", "x.csv", "--models", "pca", "--seed", "-1", "--out", "OUT"],
    "evaluate-seed-negative": ["evaluate", "good.safetensors", "x.csv", "--seed", "-1"],
    "sample-seed-too-big": ["sample", "good.safetensors", "-n", "3", "--out", "OUT.npy", "--seed", str(2**32)],
    "compare-n-importance-huge": ["compare", "x.csv", "--models", "vae", "--n-importance", "100000000", "--out", "OUT"],
    "evaluate-n-importance-huge": ["evaluate", "good.safetensors", "x.csv", "--n-importance", "100000000"],
    "fit-hidden-huge": ["fit", "ae", "x.csv", "--out", "OUT", "--hidden", "(100000000,)", "--likelihood", "gaussian"],
    "compare-hidden-huge": ["compare", "x.csv", "--models", "pca,ae", "--hidden", "100000000", "--epochs", "1",
                            "--out", "OUT"],
    "resume-without-checkpoint-dir": ["fit", "ae", "x.csv", "--out", "OUT", "--resume"],
    "resume-linear": ["fit", "pca", "x.csv", "--out", "OUT", "--resume"],
    "resume-unseeded": ["fit", "ae", "x.csv", "--out", "OUT", "--checkpoint_dir", "ck", "--random_state", "None",
                        "--resume"],
    "text-named-npy": ["fit", "pca", "text.npy", "--out", "OUT"],
}

#: what the one line must say, for the cases whose message was misleading or missing
FRAGMENTS = {
    "param-given-twice": r"parameter 'n_components' given twice \(--n_components and --n-components\)",
    "param-given-twice-eq": r"parameter 'lr' given twice",
    "option-given-twice": r"option --seed given twice",
    "models-twice": r"--models names 'pca' more than once",
    "compare-seed-negative": r"argument --seed: expected an integer seed in \[0, 2\*\*32 - 1\], got -1",
    "evaluate-seed-negative": r"argument --seed: .*got -1",
    "sample-seed-too-big": r"argument --seed: .*got 4294967296",
    "compare-n-importance-huge": r"argument --n-importance: 100000000 .* past the bound of 100000",
    "evaluate-n-importance-huge": r"argument --n-importance: 100000000 .* past the bound of 100000",
    "fit-hidden-huge": r"Autoencoder\(hidden=\(100000000,\)\) on 5 features has 1,600,000,007 parameters .* "
                       r"training needs about 32 GB .* 16 GB available",
    "compare-hidden-huge": r"has 1,600,000,007 parameters .* use smaller hidden layers",
    "resume-without-checkpoint-dir": r"--resume needs --checkpoint_dir DIR",
    "resume-linear": r"--resume: model 'pca' trains in one step",
    "resume-unseeded": r"needs an integer random_state",
    "text-named-npy": r"text.npy: not a .npy file: it starts with text .*'a,b'.*\.csv",
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
    if case in FRAGMENTS:
        assert re.search(FRAGMENTS[case], lines[0]), lines[0]
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


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)],
                         ids=["umask-022", "umask-027"])
def test_outputs_respect_the_umask(umask, file_mode, dir_mode, work, capsys):
    """Every file the CLI writes gets the mode an ordinary file would (0o666 & ~umask), not 0600."""
    old = os.umask(umask)
    try:
        assert main(["fit", "vae", "x.csv", "--out", "run", "--hidden", "(4,)", "--max_epochs", "2",
                     "--likelihood", "gaussian", "--checkpoint_dir", "ck", "--random_state", "0"]) == 0
        assert main(["encode", "run", "x.csv", "--out", "z.npy"]) == 0
        assert main(["sample", "run", "-n", "3", "--out", "s.csv"]) == 0
        assert main(["fit", "pca", "x.csv", "--out", "run"]) == 0  # an existing folder: files replaced in place
        assert main(["compare", "x.csv", "--models", "pca", "--out", "rep"]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    for f in ("run/model.safetensors", "run/info.json", "ck/checkpoint.pt", "z.npy", "s.csv", "rep/report.html",
              "rep/metrics.json", "rep/runs/pca-q2-r0/model.safetensors"):
        assert (work / f).stat().st_mode & 0o777 == file_mode, f
    for d in ("run", "rep", "rep/runs/pca-q2-r0"):
        assert (work / d).stat().st_mode & 0o777 == dir_mode, d


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}


def test_a_closed_pipe_ends_quietly(work):
    """`latentzoo evaluate ... --json | head -c 10`: the reader is gone before the output is
    written; exit 141 (128 + SIGPIPE) with nothing on stderr, like other Unix tools."""
    cmd = [sys.executable, "-m", "latentzoo", "evaluate", "good.safetensors", "x.csv", "--json"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
    proc.stdout.close()  # the reader exits at once: every write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 128 + signal.SIGPIPE and err == "", err


def test_ctrl_c_exits_130_and_resume_continues_the_fit(work):
    """Ctrl-C during `fit --checkpoint_dir DIR` exits 130 (128 + SIGINT) and writes no model;
    the same command with --resume continues from the checkpoint and ends with exactly the
    weights of an uninterrupted fit (CPU, same seed)."""
    import torch

    args = ["fit", "ae", "x.csv", "--out", "run", "--hidden", "(4,)", "--likelihood", "gaussian", "--patience",
            "None", "--batch_size", "8", "--checkpoint_dir", "ck"]
    proc = subprocess.Popen([sys.executable, "-m", "latentzoo", *args, "--max_epochs", "1000000"], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=work,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a foreground job:
    t0 = time.monotonic()  # a background `pytest &` has SIGINT ignored, which the child would inherit (and keep)
    while not (work / "ck" / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() - t0 < 120:
        time.sleep(0.01)
    time.sleep(0.2)  # some epochs later
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.decode().strip() == "latentzoo: error: interrupted", err.decode()[-2000:]
    assert not (work / "run").exists()
    done = torch.load(work / "ck" / "checkpoint.pt", weights_only=True)["epoch"]
    assert main([*args, "--max_epochs", str(done + 3), "--resume"]) == 0
    resumed = latentzoo.load(work / "run" / "model.safetensors")
    X, _, _ = latentzoo.load_dataset(work / "x.csv")
    ref = latentzoo.Autoencoder(hidden=(4,), likelihood="gaussian", patience=None, batch_size=8, max_epochs=done + 3,
                                random_state=0, verbose=0, device="cpu").fit(X)
    assert len(resumed.history_["train_loss"]) == done + 3
    for k, v in ref.module_.state_dict().items():
        assert torch.equal(v, resumed.module_.state_dict()[k]), k


def test_labels_that_look_like_ids_are_named_and_skip_knn(work, capsys, caplog, monkeypatch):
    """The message goes through logging (stderr in a terminal: logging's last-resort handler)."""
    from latentzoo import evaluation

    monkeypatch.setattr(evaluation, "_WARNED", set())
    rows = np.random.default_rng(0).random((30, 4))
    text = "a,b,c,d,sample\n" + "".join(",".join(f"{v:.6f}" for v in r) + f",S{i:04d}\n" for i, r in enumerate(rows))
    (work / "ids.csv").write_text(text)
    with caplog.at_level("WARNING"):
        assert main(["compare", "ids.csv", "--label-column", "sample", "--models", "pca", "--out", "rep"]) == 0
    assert "labels look like sample IDs" in caplog.text and "kNN" not in capsys.readouterr().out
