"""Write a report to disk atomically: a folder (``compare``) or a single HTML file.

The folder is built next to its destination under a temporary name and renamed into
place only when every file is written, so an interrupted run never leaves a
half-written report; a previous report at the destination is replaced as a whole.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import shutil
from pathlib import Path

from .._atomic import atomic_folder, atomic_write
from ..experiment import REPORT_FILES, Comparison, check_destination
from ..experiment.store import RUNS
from .figures import build_figures
from .html import metrics_json, render_html

__all__ = ["write_report", "write_single_html", "REPORT_FILES", "metrics_csv", "csv_columns"]

logger = logging.getLogger(__name__)

RUN_COLUMNS = ("model", "latent_dim", "repeat", "seed", "fold")
TAIL_COLUMNS = ("fit_time_s", "epochs")


def csv_columns(comp: Comparison) -> list[str]:
    """``model, latent_dim, repeat, seed, fold``, every metric of the runs, ``fit_time_s, epochs``."""
    metric_keys = list(dict.fromkeys(k for r in comp.runs for k in r.metrics if k != "n_test"))
    return list(RUN_COLUMNS) + metric_keys + list(TAIL_COLUMNS)


def metrics_csv(comp: Comparison) -> str:
    """One line per run (see docs/metrics-json.md)."""
    cols = csv_columns(comp)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in comp.runs:
        row = {"model": r.model, "latent_dim": r.latent_dim, "repeat": r.repeat, "seed": r.seed, "fold": r.fold,
               **r.metrics, "fit_time_s": r.fit_time_s, "epochs": r.epochs}
        w.writerow({k: _cell(row.get(k)) for k in cols})
    return buf.getvalue()


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return ";".join(map(str, v))
    return v


def _carry_runs(out: Path, tmp: Path) -> None:
    """Hard-link (copy where links fail) the stored runs of ``out`` into the new folder."""
    src = out / RUNS
    if not src.is_dir():
        return

    def link(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    shutil.copytree(src, tmp / RUNS, copy_function=link,
                    ignore=lambda d, names: [n for n in names if n.startswith(".")])


def _figures(comp: Comparison, dpi: int):
    """The figures; they pass arrays to models that may carry the data's feature names."""
    import warnings

    from ..base import UNNAMED_INPUT_WARNING

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=UNNAMED_INPUT_WARNING, category=UserWarning)
        return build_figures(comp, dpi=dpi)


def write_report(comp: Comparison, out, *, dpi: int = 100, title: str | None = None) -> Path:
    """Write ``report.html``, the figure PNGs, ``metrics.json`` and ``metrics.csv`` into ``out``.

    Returns the path of ``report.html``.
    """
    out = check_destination(out)
    figures = _figures(comp, dpi)
    page = render_html(comp, figures, title=title)
    with atomic_folder(out) as tmp:
        for f in figures:
            if f.png is not None:
                (tmp / f.filename).write_bytes(f.png)
        (tmp / "report.html").write_text(page, encoding="utf-8")
        (tmp / "metrics.json").write_text(metrics_json(comp), encoding="utf-8")
        (tmp / "metrics.csv").write_text(metrics_csv(comp), encoding="utf-8")
        _carry_runs(out, tmp)  # the stored runs stay with the report (a rerun resumes from them)
    logger.info("report written to %s", out)
    return out / "report.html"


def write_single_html(comp: Comparison, path, *, dpi: int = 100, title: str | None = None) -> Path:
    """Write the self-contained page alone (figures embedded) to ``path``, atomically."""
    path = Path(path)
    figures = _figures(comp, dpi)
    page = render_html(comp, figures, title=title)
    with atomic_write(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
