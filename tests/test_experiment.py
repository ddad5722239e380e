"""The experiment: plan and splits, resume after kill -9, stale runs, a bad --out, parallel backends."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from latentzoo.experiment import run_experiment
from latentzoo.experiment.plan import make_splits

FAST = dict(epochs=2, hidden=(8,), n_importance=10, progress=False)
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _metrics(doc):
    """What must agree between two reports: every run's identity and metrics, the verdicts."""
    runs = sorted((r["model"], r["latent_dim"], r["repeat"], r["seed"], json.dumps(r["metrics"], sort_keys=True))
                  for r in doc["runs"])
    return runs, doc["comparisons"], doc["ppca_evidence_q"]


def test_repeats_have_their_own_stratified_splits_and_cv_covers_every_row_once():
    y = np.repeat(np.arange(3), 20)
    splits = make_splits(60, y, repeats=3, test_size=0.25, seed=5)
    assert [s.seed for s in splits] == [5, 6, 7]
    tests = [set(s.test) for s in splits]
    assert len({frozenset(t) for t in tests}) == 3  # three different held-out sets
    for s in splits:  # stratified: 5 of each class held out, train and test disjoint, all rows used
        assert np.bincount(y[s.test]).tolist() == [5, 5, 5]
        assert not set(s.train) & set(s.test) and len(s.train) + len(s.test) == 60
    folds = make_splits(60, y, repeats=1, cv=4, seed=0)
    assert [f.fold for f in folds] == [0, 1, 2, 3]
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(60))


def _foreground_sigint():
    """In the child: SIGINT at its default, as in a terminal's foreground job. A test run in
    a background job (``pytest ... &``) has SIGINT ignored, which children inherit, and a
    Python started so keeps ignoring it, rightly: a background job is not Ctrl-C'd."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(args, cwd, **kw):
    return subprocess.Popen([sys.executable, "-m", "latentzoo", "compare", *args], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_foreground_sigint, **kw)


ARGS = ["moons", "--n-samples", "160", "--models", "pca,ppca,ae,vae", "--repeats", "2", "--epochs", "3",
        "--hidden", "8", "--n-importance", "10", "--latent-dim", "1"]


def test_resume_after_kill_9_ends_with_the_uninterrupted_report(tmp_path):
    ref = _cli(ARGS + ["--out", "ref"], tmp_path)
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err.decode()[-2000:]
    proc = _cli(ARGS + ["--out", "rep"], tmp_path)
    runs = tmp_path / "rep" / "runs"
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < 120:  # kill -9 once some runs are stored
        if runs.is_dir() and len([p for p in runs.iterdir() if not p.name.startswith(".")]) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    stored = {p.name for p in runs.iterdir() if not p.name.startswith(".")}
    assert 3 <= len(stored) < 8 and not (tmp_path / "rep" / "report.html").exists()
    again = _cli(ARGS + ["--out", "rep"], tmp_path)
    out2, err2 = again.communicate(timeout=300)
    assert again.returncode == 0, err2.decode()[-2000:]
    lines = out2.decode().splitlines()
    assert sum("stored" in line for line in lines) == len(stored)  # only the missing runs were fitted
    assert sum(" fit " in line for line in lines) == 8 - len(stored)
    a = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    b = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert _metrics(a) == _metrics(b) and a["verdict"] == b["verdict"]
    assert (tmp_path / "rep" / "metrics.csv").read_text().count("\n") == 9


def _stamps(out):
    return {p.name: (p / "run.json").stat().st_mtime_ns for p in (out / "runs").iterdir()}


def test_stale_runs_are_refitted_after_a_parameter_or_data_change(tmp_path):
    kw = dict(models=["pca", "ae"], latent_dims=[2], n_samples=120, out=tmp_path / "r", **FAST)
    run_experiment("digits", **kw)
    first = _stamps(tmp_path / "r")
    run_experiment("digits", **kw)  # the same experiment: everything reused
    assert _stamps(tmp_path / "r") == first
    run_experiment("digits", **{**kw, "epochs": 3})  # epochs change the AE only
    second = _stamps(tmp_path / "r")
    assert second["pca-q2-r0"] == first["pca-q2-r0"] and second["ae-q2-r0"] != first["ae-q2-r0"]
    comp = run_experiment("digits", **{**kw, "epochs": 3, "n_samples": 130})  # other data: all refitted
    third = _stamps(tmp_path / "r")
    assert all(third[k] != second[k] for k in third)
    assert comp.setup["n_train"] + comp.setup["n_test"] == 130


def test_runs_stored_by_another_latentzoo_version_are_refitted(tmp_path, monkeypatch):
    import latentzoo

    kw = dict(models=["pca", "ae"], latent_dims=[2], n_samples=120, out=tmp_path / "r", **FAST)
    run_experiment("digits", **kw)
    first = _stamps(tmp_path / "r")
    monkeypatch.setattr(latentzoo, "__version__", latentzoo.__version__ + ".post1")
    run_experiment("digits", **kw)
    second = _stamps(tmp_path / "r")
    assert sorted(second) == sorted(first) and all(second[k] != first[k] for k in first)


def test_a_bad_out_fails_before_any_fit(tmp_path, monkeypatch, capsys):
    from latentzoo.cli import main
    from latentzoo.experiment import backends

    def no_fit(*a, **k):
        raise AssertionError("a model was fitted")

    monkeypatch.setattr(backends, "execute", no_fit)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    (tmp_path / "file").write_text("x")
    for out in ("mine", "file"):
        code = main(["compare", "digits", "--models", "pca,ae", "--out", str(tmp_path / out)])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("latentzoo: error:") and str(tmp_path / out) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine"]
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["thesis.tex"]


@pytest.fixture(scope="module")
def reference():
    return run_experiment("digits", ["pca", "ppca", "ae", "vae"], latent_dims=[2, 3], repeats=2, n_samples=150,
                          **FAST)


def _run_metrics(comp):
    return {(r.model, r.latent_dim, r.repeat): r.metrics for r in comp.runs}


def _assert_same_metrics(a, b):
    ma, mb = _run_metrics(a), _run_metrics(b)
    assert ma.keys() == mb.keys()
    for k in ma:
        for key, v in ma[k].items():
            if isinstance(v, float):
                assert mb[k][key] == pytest.approx(v, rel=1e-5, abs=1e-7), (k, key)
            else:
                assert mb[k][key] == v, (k, key)


def test_two_jobs_give_the_one_job_metrics(reference):
    comp = run_experiment("digits", ["pca", "ppca", "ae", "vae"], latent_dims=[2, 3], repeats=2, n_samples=150,
                          jobs=2, **FAST)
    _assert_same_metrics(reference, comp)
    assert comp.comparisons == reference.comparisons or set(comp.comparisons) == set(reference.comparisons)


def test_a_real_dask_cluster_gives_the_one_job_metrics(reference):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as cluster:
        comp = run_experiment("digits", ["pca", "ppca", "ae", "vae"], latent_dims=[2, 3], repeats=2,
                              n_samples=150, backend="dask", scheduler=cluster.scheduler_address, **FAST)
    _assert_same_metrics(reference, comp)
    assert comp.setup["backend"] == "dask"


def _idx(path, arr, magic):
    import gzip
    import struct

    head = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(head + arr.astype(np.uint8).tobytes())


def test_an_mnist_folder_is_measured_on_its_official_test_set(tmp_path, digits):
    X, y = digits
    img = (X.reshape(-1, 8, 8) * 255).round()
    _idx(tmp_path / "train-images-idx3-ubyte.gz", img[:150], 2051)
    _idx(tmp_path / "train-labels-idx1-ubyte.gz", y[:150], 2049)
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", img[150:190], 2051)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", y[150:190], 2049)
    comp = run_experiment(str(tmp_path), ["pca", "ppca"], latent_dims=[2], repeats=2, **FAST)
    assert comp.setup["test_source"] == "official" and comp.meta["test_source"] == "official"
    assert comp.setup["n_test"] == 40 and comp.setup["n_train"] == 150 and len(comp.X_test) == 40
    np.testing.assert_array_equal(comp.y_test, y[150:190])
    assert all(r.metrics["n_test"] == 40 for r in comp.runs) and [r.seed for r in comp.runs] == [0, 0, 1, 1]
    # PCA fitted on all 150 training images, measured on the 40 test images
    from latentzoo import PCA

    direct = PCA(2).fit(comp.X_train).reconstruction_error(comp.X_test)
    assert comp.runs[0].metrics["reconstruction_error"] == pytest.approx(direct, rel=1e-6)


def test_test_data_gives_the_test_set_explicitly(tmp_path, digits):
    X, y = digits
    np.save(tmp_path / "train.npy", X[:120])
    np.save(tmp_path / "test.npy", X[120:150])
    comp = run_experiment(str(tmp_path / "train.npy"), ["pca"], latent_dims=[2], test_data=str(tmp_path / "test.npy"),
                          **FAST)
    assert comp.setup["test_source"].startswith("--test-data ") and comp.setup["n_test"] == 30
    with pytest.raises(ValueError, match="features"):
        np.save(tmp_path / "bad.npy", X[:30, :10])
        run_experiment(str(tmp_path / "train.npy"), ["pca"], test_data=str(tmp_path / "bad.npy"), **FAST)


class _Planned(Exception):
    pass


def _planned(monkeypatch, data, **kw):
    """The tasks run_experiment would fit (caught before any fit)."""
    from latentzoo.experiment import sweep

    def capture(calls, *a, **k):
        raise _Planned([t for t, _ in calls])

    monkeypatch.setattr(sweep, "run_all", capture)
    with pytest.raises(_Planned) as e:
        run_experiment(data, progress=False, **kw)
    return e.value.args[0]


def test_auto_epochs_scale_training_with_the_data(monkeypatch):
    """About 12000 optimiser steps: 36000 training rows (254 steps an epoch) get 48 epochs at
    the higher peak rate, held and then annealed ("constant-cosine"; the denoising autoencoder
    twice as many, the VAEs 1.5 times); small data keep 100 epochs at the models' constant default rate; an
    explicit count stays."""
    from latentzoo import make_model
    from latentzoo.data import Dataset

    X = np.random.default_rng(0).standard_normal((40000, 4)).astype(np.float32)
    big = Dataset(X, None, {"name": "big", "source": "array", "n_samples": len(X), "n_features": 4})
    (task,) = _planned(monkeypatch, big, models=["ae"], latent_dims=[1], test_size=0.1)
    steps_per_epoch = -(-int(36000 * 0.9) // 128)
    assert task.overrides["max_epochs"] == -(-12000 // steps_per_epoch) == 48
    assert task.overrides["lr_schedule"] == "constant-cosine" and task.overrides["lr"] == 3e-3
    ae = make_model("ae", **task.overrides)  # the estimator that would be fitted
    assert ae.max_epochs == 48 and ae.lr_schedule == "constant-cosine" and ae.lr == 3e-3
    # the VAEs (beta-VAE is a VAE preset) start lower; PCA takes no rate
    tasks = _planned(monkeypatch, big, models=["pca", "dae", "vae", "beta-vae"], latent_dims=[1], test_size=0.1)
    assert {t.model: t.overrides.get("lr") for t in tasks} == {"pca": None, "dae": 3e-3, "vae": 1e-3,
                                                               "beta-vae": 1e-3}
    assert {t.model: t.overrides.get("lr_schedule") for t in tasks} == {
        "pca": None, "dae": "constant-cosine", "vae": "constant-cosine", "beta-vae": "constant-cosine"}
    assert make_model("beta-vae", **tasks[-1].overrides).lr_schedule == "constant-cosine"
    # the denoising autoencoder (input noise) gets twice the epochs, the VAEs (a sampled latent)
    # 1.5 times, at most 100; --param wins
    assert {t.model: t.overrides.get("max_epochs") for t in tasks} == {"pca": None, "dae": 96, "vae": 72,
                                                                       "beta-vae": 72}
    assert make_model("beta-vae", **tasks[-1].overrides).max_epochs == 72
    (dae,) = _planned(monkeypatch, big, models=["dae"], latent_dims=[1], test_size=0.1,
                      params={"dae": {"max_epochs": 7}})
    assert dae.overrides["max_epochs"] == 7 and dae.overrides["lr_schedule"] == "constant-cosine"
    X2 = np.random.default_rng(0).standard_normal((20000, 4)).astype(np.float32)  # 127 steps an epoch: 95, 100
    mid = Dataset(X2, None, {"name": "mid", "source": "array", "n_samples": len(X2), "n_features": 4})
    tasks = _planned(monkeypatch, mid, models=["ae", "dae", "vae"], latent_dims=[1], test_size=0.1)
    assert -(-12000 // -(-int(18000 * 0.9) // 128)) == 95
    assert {t.model: t.overrides["max_epochs"] for t in tasks} == {"ae": 95, "dae": 100, "vae": 100}
    X3 = np.random.default_rng(0).standard_normal((75000, 4)).astype(np.float32)  # MNIST's 60000 training rows
    mnist = Dataset(X3, None, {"name": "mnist", "source": "array", "n_samples": len(X3), "n_features": 4})
    tasks = _planned(monkeypatch, mnist, models=["ae", "dae", "vae"], latent_dims=[1], test_size=0.2)
    assert -(-12000 // -(-int(60000 * 0.9) // 128)) == 29
    assert {t.model: t.overrides["max_epochs"] for t in tasks} == {"ae": 29, "dae": 58, "vae": 44}  # ceil(43.5)
    (small,) = _planned(monkeypatch, "digits", models=["vae"], latent_dims=[2], n_samples=300)
    assert small.overrides["max_epochs"] == 100 and "lr_schedule" not in small.overrides
    assert "lr" not in small.overrides
    (fixed,) = _planned(monkeypatch, big, models=["ae"], latent_dims=[1], epochs=7)
    assert fixed.overrides["max_epochs"] == 7 and "lr_schedule" not in fixed.overrides


def test_setup_records_each_models_epochs_of_a_shortened_fit(monkeypatch):
    from latentzoo.experiment import ladder

    monkeypatch.setattr(ladder, "STEP_BUDGET", 30)  # 240 training rows: 2 steps an epoch, 15 epochs
    comp = run_experiment("digits", ["pca", "ae", "dae"], latent_dims=[2], n_samples=300, hidden=(8,),
                          n_importance=10, progress=False)
    assert comp.setup["max_epochs"] == 15 and comp.setup["lr_schedule"] == "constant-cosine"
    assert comp.setup["max_epochs_by_model"] == {"ae": 15, "dae": 30}
    assert comp.setup["lr_schedule_by_model"] == {"ae": "constant-cosine", "dae": "constant-cosine"}
    assert {r.model: r.params.get("max_epochs") for r in comp.runs} == {"pca": None, "ae": 15, "dae": 30}


def test_setup_records_the_schedule_and_rate_each_run_used(monkeypatch):
    """A --param of one model is what its runs use and what setup says; "per model" where the
    schedules differ (each model's in lr_schedule_by_model)."""
    from latentzoo.experiment import ladder

    monkeypatch.setattr(ladder, "STEP_BUDGET", 30)  # a shortened fit of 15 epochs
    comp = run_experiment("digits", ["ae", "vae"], latent_dims=[2], n_samples=300, hidden=(8,), n_importance=2,
                          progress=False, params={"ae": {"lr": 0.01, "lr_schedule": "cosine"}})
    used = {r.model: (r.params["lr_schedule"], r.params["lr"]) for r in comp.runs}
    assert used == {"ae": ("cosine", 0.01), "vae": ("constant-cosine", 1e-3)}
    assert comp.setup["lr_schedule"] == "per model"
    assert comp.setup["lr_schedule_by_model"] == {m: s for m, (s, _) in used.items()}
    assert comp.setup["lr"] == {m: lr for m, (_, lr) in used.items()}
    plain = run_experiment("digits", ["ae", "vae"], latent_dims=[2], n_samples=300, hidden=(8,), n_importance=2,
                           progress=False)
    assert plain.setup["lr_schedule"] == "constant-cosine"
    assert {r.model: r.params["lr_schedule"] for r in plain.runs} == plain.setup["lr_schedule_by_model"] == {
        "ae": "constant-cosine", "vae": "constant-cosine"}


def _children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (from /proc)."""
    kids = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.add(int(d))
    return kids


def _two_fitting_workers(tmp_path):
    """``compare --jobs 2`` on two fits that cannot end within a test (5000 epochs, no early
    stopping): the process and its two worker pids, once both workers are fitting."""
    models = ["ae", "dae"]
    args = ["digits", "--models", ",".join(models), "--epochs", "5000", "--hidden", "32", "--jobs", "2",
            "--out", "rep"] + [a for m in models for a in ("--param", f"{m}.patience=None")]
    proc = _cli(args, tmp_path)
    t0 = time.monotonic()
    workers: set[int] = set()
    while proc.poll() is None and time.monotonic() - t0 < 240 and len(workers) < 2:
        workers = {k for k in _children(proc.pid) if b"spawn_main" in _cmdline(k)}  # not the resource tracker
        time.sleep(0.05)
    # a worker stopped while still starting dies anyway (its data pipe closes): wait until both
    # are fitting (10 s of CPU each: more than importing torch and reading the data)
    while proc.poll() is None and time.monotonic() - t0 < 240 and min(map(_cpu_seconds, workers), default=0) < 10:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be stopped"
    assert len(workers) >= 2 and min(map(_cpu_seconds, workers)) >= 10
    return proc, workers


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads child processes from /proc")
def test_sigint_to_the_parent_alone_stops_running_jobs_at_once(tmp_path):
    # SIGINT goes to the parent only (as `kill -INT`, a job controller or a notebook's
    # interrupt send it), not to the process group
    proc, workers = _two_fitting_workers(tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=180)  # a fit left to finish would take many minutes
    assert proc.returncode == 130, err.decode()[-2000:]
    assert "Traceback" not in err.decode() and "leaked" not in err.decode(), err.decode()[-2000:]
    deadline = time.monotonic() + 10
    while {w for w in workers if _alive(w)} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not {w for w in workers if _alive(w)}, "worker processes left running"
    runs = tmp_path / "rep" / "runs"
    assert not runs.is_dir() or not [p for p in runs.iterdir() if not p.name.startswith(".")]
    assert not (tmp_path / "rep" / "report.html").exists()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads child processes from /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_end_when_their_parent_is_killed(tmp_path, sig):
    # a parent killed by kill -9 (or a SIGTERM, which Python does not turn into an exception)
    # cannot stop its workers; they must notice and exit instead of finishing fits nobody reads
    proc, workers = _two_fitting_workers(tmp_path)
    proc.send_signal(sig)
    proc.wait(timeout=60)  # not communicate(): live workers would hold its pipes open
    deadline = time.monotonic() + 15
    while {w for w in workers if _alive(w)} and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {w for w in workers if _alive(w)}
    for w in left:  # do not leave them to the rest of the suite
        os.kill(w, signal.SIGKILL)
    proc.stdout.close()
    proc.stderr.close()
    assert not left, "worker processes outlived their parent"


def _cmdline(pid: int) -> bytes:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return b""


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first); None once gone."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` (0 once it is gone)."""
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def test_workers_report_their_running_fit_epochs_to_the_parent(monkeypatch):
    # the parent draws each worker's epoch bar: every message it receives names the run and
    # counts that fit's epochs 0..max_epochs
    from latentzoo import _progress
    from latentzoo.experiment import backends

    seen = []
    monkeypatch.setattr(_progress.WorkerBars, "handle", lambda self, msg: seen.append(msg))
    from latentzoo.experiment.data import prepare_data
    from latentzoo.experiment.plan import make_plan

    ds = prepare_data("moons", test_data=None, seed=0, n_samples=120, load_kw={}, preprocess="none")
    splits = make_splits(len(ds.X), ds.y, repeats=1, test_size=0.25, seed=0)
    over = lambda name, q, seed: {"n_components": q, "max_epochs": 4, "hidden": (8,), "random_state": seed,  # noqa: E731
                                  "verbose": 1, "patience": None}
    tasks = make_plan(["ae", "dae"], [1], splits, overrides=over, data_fingerprint=ds.fingerprint, settings={})
    recs = list(backends.run_all([(t, splits[0]) for t in tasks], ds, jobs=2, n_importance=5, bars=True))
    assert sorted(r.model for r, _ in recs) == ["ae", "dae"]
    for t in tasks:
        counts = [m[3] for m in seen if m[1] == t.name]
        assert counts == list(range(5)), (t.name, counts)  # 0, 1, .., 4 of 4 epochs
        assert {m[4] for m in seen if m[1] == t.name} == {4}
