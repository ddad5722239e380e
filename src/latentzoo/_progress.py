"""Progress of long loops: a tqdm bar on a terminal, a log line every tenth of the way otherwise.

Without a terminal (logs, CI, a notebook's stderr) a bar is noise, so :func:`progress`
returns a :class:`LogProgress` that writes ``desc: i/total, elapsed, ETA`` through
:mod:`logging` (INFO) about ten times; ``verbose=0`` shows nothing either way.
"""
from __future__ import annotations

import logging
import sys
import time

__all__ = ["progress", "LogProgress", "SinkProgress", "set_sink"]

logger = logging.getLogger("latentzoo.progress")

#: where bars report instead of drawing, in a worker process whose parent draws them
#: (:func:`set_sink`); None: draw here
_SINK = None


def set_sink(sink) -> None:
    """Send every bar's state to ``sink((desc, n, total, unit))`` instead of drawing it (None: draw).

    A worker of ``compare --jobs N`` sets this so its running fit's epoch bar is drawn by
    the parent, one line per worker, under the overall bar.
    """
    global _SINK
    _SINK = sink


class SinkProgress:
    """A tqdm-like counter that reports its state to a sink (:func:`set_sink`)."""

    def __init__(self, sink, total: int, desc: str, *, initial: int = 0, unit: str = "it"):
        self.sink, self.total, self.desc, self.n, self.unit = sink, int(total), desc, int(initial), unit
        self.sink((self.desc, self.n, self.total, self.unit))

    def set_postfix(self, **kw) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def update(self, k: int = 1) -> None:
        self.n += k
        self.sink((self.desc, self.n, self.total, self.unit))

    def close(self) -> None:
        pass


def _duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class LogProgress:
    """A tqdm-like counter that logs about ``lines`` times over ``total`` steps."""

    def __init__(self, total: int, desc: str, *, initial: int = 0, unit: str = "it", lines: int = 10):
        self.total, self.desc, self.n, self.unit = int(total), desc, int(initial), unit
        self.every = max(1, self.total // max(1, lines))
        self.t0 = time.perf_counter()
        self.start = self.n
        self.postfix = ""

    def set_postfix(self, **kw) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.n % self.every and self.n != self.total:
            return
        elapsed = time.perf_counter() - self.t0
        done = self.n - self.start
        eta = elapsed / done * (self.total - self.n) if done else 0.0
        extra = f" ({self.postfix})" if self.postfix else ""
        logger.info("%s: %d/%d %s, %s elapsed, ETA %s%s", self.desc, self.n, self.total, self.unit,
                    _duration(elapsed), _duration(eta), extra)

    def close(self) -> None:
        pass


def progress(total: int, desc: str, *, verbose: int = 1, initial: int = 0, unit: str = "it", leave: bool = False):
    """A tqdm bar on a terminal (stderr), log lines otherwise, nothing for ``verbose=0``."""
    from tqdm.auto import tqdm

    if verbose and _SINK is not None:
        return SinkProgress(_SINK, total, desc, initial=initial, unit=unit)
    if verbose and sys.stderr.isatty():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, dynamic_ncols=True,
                    file=sys.stderr)
    if verbose:
        return LogProgress(total, desc, initial=initial, unit=unit)
    return tqdm(total=total, disable=True)


class WorkerBars:
    """The parent's side of :func:`set_sink`: one tqdm line per worker, under the overall bar.

    ``handle((worker, run, desc, n, total, unit))`` draws worker ``worker``'s running fit
    (``run``: the run's name) at its own line; a worker's line is reused by its next fit.
    """

    def __init__(self, n_workers: int):
        self.n_workers = int(n_workers)
        self.bars: dict = {}

    def handle(self, msg) -> None:
        from tqdm.auto import tqdm

        worker, run, desc, n, total, unit = msg
        bar = self.bars.get(worker)
        if bar is None:
            if len(self.bars) >= self.n_workers:  # a replaced worker (should not happen): not drawn
                return
            bar = self.bars[worker] = tqdm(total=total, position=len(self.bars) + 1, unit=unit, leave=False,
                                           dynamic_ncols=True, file=sys.stderr)
        label = f"{run} {desc}".strip()
        if bar.total != total or bar.desc != label:
            bar.reset(total=total)
            bar.set_description_str(label, refresh=False)
        bar.n = n
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
