"""Where the runs execute: a registry of backends, each yielding results as runs finish.

* ``local`` with ``jobs=1``: one run after the other in this process.
* ``local`` with ``jobs=N``: N runs at once in separate processes (``spawn``), each
  limited to ``cpu_count // N`` CPU threads so the machine is not oversubscribed. The
  workers ignore SIGINT: a Ctrl-C (or ``kill -INT`` of the parent alone) reaches the parent,
  which stops them at once; a worker whose parent dies (``kill -9``, SIGTERM) exits within a
  second; with ``bars=True`` each worker's epoch bar is drawn by the
  parent (:func:`latentzoo._progress.set_sink`).
* ``dask``: the runs are submitted to a Dask distributed scheduler (``scheduler=
  "tcp://HOST:8786"``) with ``Client.submit``; the data are scattered to the workers once.
  Install with ``pip install latentzoo[cluster]``; every worker needs latentzoo installed.

Every backend runs the same function, :func:`latentzoo.experiment.runner.execute`.
"""
from __future__ import annotations

import contextlib
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


def _init_worker(data, threads: int, log_level: int, bar_queue=None) -> None:
    import signal

    from .._progress import set_sink
    from .runner import limit_threads

    # Ctrl-C is the parent's to handle: it stops the workers (they hold nothing unsaved,
    # the parent stores every finished run), so a SIGINT sent to the process group or to
    # the parent alone ends the command the same way
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # tqdm's default lock is a named multiprocessing semaphore; a worker stopped by the
    # parent could not release it (a "leaked semaphore" warning at exit): a thread lock will do
    import threading

    from tqdm.std import tqdm

    tqdm.set_lock(threading.RLock())
    if bar_queue is not None:  # the running fit's epoch bar, drawn by the parent
        pid = os.getpid()
        set_sink(lambda state: bar_queue.put((pid, _WORKER.get("run", ""), *state)))

    if log_level <= logging.INFO:  # -v: the workers' epoch lines reach the same stderr
        logging.basicConfig(level=log_level, format="%(name)s: %(message)s")

    _watch_parent()
    _WORKER["data"] = data
    _WORKER["threads"] = threads
    _WORKER["limits"] = limit_threads(threads)


def _watch_parent(every: float = 0.5) -> None:
    """End this worker soon after its parent dies (``kill -9``, SIGTERM, a crash).

    The parent stores every finished run; a worker whose parent is gone only burns CPU on a
    fit nobody will read (for minutes, on large data) and competes with the rerun that
    resumes the experiment. A dead parent's children are re-parented, so ``getppid``
    changes: the watching thread then exits the process at once.
    """
    import threading
    import time

    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, name="latentzoo-parent-watch", daemon=True).start()


def _run_in_worker(task, split, n_importance: int):
    _WORKER["run"] = task.name
    return execute(task, split, _WORKER["data"], n_importance=n_importance, threads=_WORKER["threads"])


def _draw_bars(bar_queue, n_workers: int) -> None:
    """The parent's thread drawing the workers' epoch bars until it reads None."""
    from .._progress import WorkerBars

    bars = WorkerBars(n_workers)
    try:
        for msg in iter(bar_queue.get, None):
            bars.handle(msg)
    finally:
        bars.close()


@contextlib.contextmanager
def _sigint_deferred():
    """Hold a Ctrl-C (SIGINT) until the block ends, then raise it (KeyboardInterrupt)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if caught:
        raise KeyboardInterrupt


def _finished(futures):
    """Yield the futures as they finish, waking twice a second so a Ctrl-C is seen at once
    (a signal that lands on another thread would not end a wait without a timeout)."""
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        yield from done


def _stop_workers(pool) -> None:
    """Stop the pool's worker processes now (a fit in progress is not waited for)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


@register_backend("local")
def _local(calls, data, *, jobs: int = 1, scheduler=None, n_importance: int, bars: bool = False):
    if scheduler is not None:
        raise ValueError("scheduler is for the dask backend; the local backend takes jobs")
    if jobs == 1:
        for task, split in calls:
            yield execute(task, split, data, n_importance=n_importance)
        return
    import multiprocessing as mp
    import threading
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, cpu_count() // jobs)
    ctx = mp.get_context("spawn")
    bar_queue = ctx.Queue() if bars else None
    drawer = None
    if bar_queue is not None:
        drawer = threading.Thread(target=_draw_bars, args=(bar_queue, jobs), daemon=True)
        drawer.start()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                               initargs=(data, threads, logging.getLogger().getEffectiveLevel(), bar_queue))
    finished = False
    try:
        # the submits start the workers and write the data to them: a Ctrl-C in the middle of
        # a write would leave a worker reading a truncated pickle (a traceback on the way out),
        # so SIGINT waits until every worker has its data
        with _sigint_deferred():
            futures = [pool.submit(_run_in_worker, task, split, n_importance) for task, split in calls]
        for fut in _finished(futures):
            yield fut.result()
        finished = True
    finally:
        if finished:
            pool.shutdown(wait=True)
        else:  # Ctrl-C, a failed run, or the consumer stopped early: do not wait for running fits
            _stop_workers(pool)
        if drawer is not None:
            bar_queue.put(None)
            drawer.join(timeout=5)


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
            n_importance: int, bars: bool = False) -> Iterator:
    """Run every ``(task, split)`` of ``calls`` on ``backend``; yield results as they finish.

    ``bars``: with ``jobs > 1`` on the local backend, draw each worker's running fit (its
    epoch bar) on this process's terminal, under the overall bar.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if not calls:
        return iter(())
    kw = {"bars": bars} if backend == "local" else {}
    return BACKENDS[backend](calls, data, jobs=jobs, scheduler=scheduler, n_importance=n_importance, **kw)
