"""Where the runs execute: a registry of backends, each yielding results as runs finish.

* ``local`` with ``jobs=1``: one run after the other in this process.
* ``local`` with ``jobs=N``: N runs at once in separate processes (``spawn``), each
  limited to ``cpu_count // N`` CPU threads so the machine is not oversubscribed.
* ``dask``: the runs are submitted to a Dask distributed scheduler (``scheduler=
  "tcp://HOST:8786"``) with ``Client.submit``; the data are scattered to the workers once.
  Install with ``pip install latentzoo[cluster]``; every worker needs latentzoo installed.

Every backend runs the same function, :func:`latentzoo.experiment.runner.execute`.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Iterator

from .runner import execute

__all__ = ["BACKENDS", "register_backend", "run_all", "cpu_count"]

logger = logging.getLogger(__name__)

#: name -> function (calls, data, *, jobs, scheduler, n_importance) -> iterator of (RunRecord, estimator)
BACKENDS: dict[str, Callable[..., Iterator]] = {}


def register_backend(name: str):
    def deco(fn):
        BACKENDS[name] = fn
        return fn
    return deco


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_WORKER: dict = {}


def _init_worker(data, threads: int, log_level: int) -> None:
    from .runner import limit_threads

    if log_level <= logging.INFO:  # -v: the workers' epoch lines reach the same stderr
        logging.basicConfig(level=log_level, format="%(name)s: %(message)s")

    _WORKER["data"] = data
    _WORKER["threads"] = threads
    _WORKER["limits"] = limit_threads(threads)


def _run_in_worker(task, split, n_importance: int):
    return execute(task, split, _WORKER["data"], n_importance=n_importance, threads=_WORKER["threads"])


@register_backend("local")
def _local(calls, data, *, jobs: int = 1, scheduler=None, n_importance: int):
    if scheduler is not None:
        raise ValueError("scheduler is for the dask backend; the local backend takes jobs")
    if jobs == 1:
        for task, split in calls:
            yield execute(task, split, data, n_importance=n_importance)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, cpu_count() // jobs)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                               initializer=_init_worker,
                               initargs=(data, threads, logging.getLogger().getEffectiveLevel()))
    try:
        futures = [pool.submit(_run_in_worker, task, split, n_importance) for task, split in calls]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@register_backend("dask")
def _dask(calls, data, *, jobs: int = 1, scheduler=None, n_importance: int):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ImportError("the dask backend needs dask.distributed: pip install latentzoo[cluster]") from None
    if not scheduler:
        raise ValueError("the dask backend needs a scheduler address, e.g. tcp://HOST:8786")
    client = Client(scheduler, timeout="20s", set_as_default=False)
    try:
        remote = client.scatter(data, broadcast=True)
        futures = [client.submit(execute, task, split, remote, n_importance=n_importance, threads=1,
                                 pure=False, key=f"latentzoo-{task.name}-{task.fingerprint[:12]}")
                   for task, split in calls]
        for fut in as_completed(futures, loop=client.loop):
            yield fut.result()
    finally:
        client.close()


def run_all(calls, data, *, backend: str = "local", jobs: int = 1, scheduler=None,
            n_importance: int) -> Iterator:
    """Run every ``(task, split)`` of ``calls`` on ``backend``; yield results as they finish."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if not calls:
        return iter(())
    return BACKENDS[backend](calls, data, jobs=jobs, scheduler=scheduler, n_importance=n_importance)
