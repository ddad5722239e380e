"""Parallel runs start longest first (Graham's LPT rule); one job keeps the plan's order."""
import itertools

import numpy as np
import pytest

from latentzoo.experiment import run_experiment
from latentzoo.experiment.plan import RunTask, longest_first, run_cost

LADDER = ["pca", "ppca", "ae", "dae", "cae", "vae", "beta-vae"]
#: seconds per run measured on MNIST (60000 x 784 train, 10000 test, 29 epochs, one thread,
#: fit plus held-out evaluation; benchmarks/bench_compare.py): the durations the order is for
MNIST_SECONDS = {"pca": 1, "ppca": 3, "ae": 93, "dae": 100, "cae": 152, "vae": 220, "beta-vae": 220}


def _task(model, **overrides):
    return RunTask(model, 2, 0, 0, None, overrides, model)


def _makespan(durations, workers=2):
    """List scheduling: each run goes to the worker that frees first, in the given order."""
    free = [0.0] * workers
    for d in durations:
        free[int(np.argmin(free))] += d
    return max(free)


def _best_makespan(durations, workers=2):
    best = float("inf")
    for assign in itertools.product(range(workers), repeat=len(durations)):
        loads = np.zeros(workers)
        for w, d in zip(assign, durations):
            loads[w] += d
        best = min(best, loads.max())
    return best


def test_the_cost_grows_with_epochs_rows_penalty_and_importance_samples():
    n = dict(n_train=60000, n_test=10000, n_importance=500)
    ae10, ae20 = run_cost(_task("ae", max_epochs=10), **n), run_cost(_task("ae", max_epochs=20), **n)
    assert ae20 == pytest.approx(2 * ae10)
    assert run_cost(_task("ae", max_epochs=10), 120000, 10000, 500) == pytest.approx(2 * ae10)
    assert run_cost(_task("cae", max_epochs=10), **n) > ae10  # the Jacobian penalty on top of the same steps
    vae = lambda k: run_cost(_task("vae", max_epochs=10), 60000, 10000, k)  # noqa: E731
    assert vae(1000) > vae(500) > ae10  # the log-likelihood's importance samples count
    assert run_cost(_task("ppca"), **n) < run_cost(_task("ae", max_epochs=1), **n)


def test_longest_first_schedules_the_mnist_ladder_near_the_best_makespan():
    """On the measured MNIST durations, two workers taking the runs in longest_first's order
    finish within Graham's 4/3 of the best possible schedule, and sooner than in plan order
    (which leaves the beta-VAE to run alone at the end)."""
    tasks = [_task(m, **({} if m in ("pca", "ppca") else {"max_epochs": 29})) for m in LADDER]
    order = [t.model for t in longest_first(tasks, 60000, 10000, 500)]
    assert sorted(order) == sorted(LADDER)
    secs = [MNIST_SECONDS[m] for m in order]
    best = _best_makespan(list(MNIST_SECONDS.values()))
    assert _makespan(secs) <= 4 / 3 * best
    assert _makespan(secs) < _makespan([MNIST_SECONDS[m] for m in LADDER])


def test_ties_keep_the_plan_order():
    tasks = [RunTask("ae", 2, r, r, None, {"max_epochs": 5}, str(r)) for r in range(4)]
    assert [t.repeat for t in longest_first(tasks, 100, 10, 5)] == [0, 1, 2, 3]


class _Planned(Exception):
    pass


def _submitted(monkeypatch, **kw):
    """The runs in the order run_experiment hands them to the backend (caught before any fit)."""
    from latentzoo.experiment import sweep

    def capture(calls, *a, **k):
        raise _Planned([t for t, _ in calls])

    monkeypatch.setattr(sweep, "run_all", capture)
    with pytest.raises(_Planned) as e:
        run_experiment("digits", LADDER, latent_dims=[2], n_samples=200, epochs=3, progress=False, **kw)
    return e.value.args[0]


def test_parallel_runs_are_handed_out_longest_first_and_one_job_keeps_the_ladder(monkeypatch):
    serial = _submitted(monkeypatch, jobs=1)
    assert [t.model for t in serial] == LADDER
    parallel = _submitted(monkeypatch, jobs=2)
    costs = [run_cost(t, 160, 40, 500) for t in parallel]
    assert costs == sorted(costs, reverse=True)
    assert parallel[0].model in ("vae", "beta-vae") and {t.model for t in parallel[-2:]} == {"pca", "ppca"}
    assert sorted(t.name for t in parallel) == sorted(t.name for t in serial)
