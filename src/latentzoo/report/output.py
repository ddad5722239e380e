"""Write a report to disk atomically: a folder (``compare``) or a single HTML file.

The folder is built next to its destination under a temporary name and renamed into
place only when every file is written, so an interrupted run never leaves a
half-written report; a previous report at the destination is replaced as a whole.
"""
from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from .._atomic import atomic_folder, atomic_write
from ..experiment import COLUMNS, Comparison
from .figures import build_figures
from .html import metrics_json, render_html

__all__ = ["write_report", "write_single_html", "REPORT_FILES"]

logger = logging.getLogger(__name__)

#: files every report folder holds (besides the figure PNGs)
REPORT_FILES = ("report.html", "metrics.json", "metrics.csv")


def metrics_csv(comp: Comparison) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in comp.results:
        w.writerow({k: ("" if v is None else v) for k, v in r.row().items()})
    return buf.getvalue()


def _check_destination(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if out.is_dir():
        entries = list(out.iterdir())
        if entries and not any((out / f).exists() for f in REPORT_FILES):
            raise ValueError(f"refusing to replace folder {out}: it is not empty and holds no latentzoo report")


def write_report(comp: Comparison, out, *, dpi: int = 100, title: str | None = None) -> Path:
    """Write ``report.html``, the figure PNGs, ``metrics.json`` and ``metrics.csv`` into ``out``.

    Returns the path of ``report.html``.
    """
    out = Path(out)
    _check_destination(out)
    figures = build_figures(comp, dpi=dpi)
    page = render_html(comp, figures, title=title)
    with atomic_folder(out) as tmp:
        for f in figures:
            if f.png is not None:
                (tmp / f.filename).write_bytes(f.png)
        (tmp / "report.html").write_text(page, encoding="utf-8")
        (tmp / "metrics.json").write_text(metrics_json(comp), encoding="utf-8")
        (tmp / "metrics.csv").write_text(metrics_csv(comp), encoding="utf-8")
    logger.info("report written to %s", out)
    return out / "report.html"


def write_single_html(comp: Comparison, path, *, dpi: int = 100, title: str | None = None) -> Path:
    """Write the self-contained page alone (figures embedded) to ``path``, atomically."""
    path = Path(path)
    figures = build_figures(comp, dpi=dpi)
    page = render_html(comp, figures, title=title)
    with atomic_write(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
