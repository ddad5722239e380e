"""The runs of an experiment on disk, so an interrupted experiment resumes where it stopped.

Layout of the report folder ``DIR``::

    DIR/runs/<model>-q<q>-r<repeat>/run.json            the run's record (metrics, fingerprint)
    DIR/runs/<model>-q<q>-r<repeat>/model.safetensors   the fitted model (latentzoo.load)
    DIR/report.html, metrics.json, metrics.csv, *.png   the report, written at the end

Each run folder is written atomically as soon as its run finishes. A stored run is reused
only when its fingerprint (data, parameters, split, evaluation settings, latentzoo's
version) equals the planned one; otherwise it is stale and refitted.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from .._atomic import atomic_folder
from .runner import RunRecord

__all__ = ["RunStore", "check_destination", "REPORT_FILES", "RUNS", "RUN_FILE", "MODEL_FILE"]

logger = logging.getLogger(__name__)

#: files every report folder holds (besides the figure PNGs)
REPORT_FILES = ("report.html", "metrics.json", "metrics.csv")
RUNS = "runs"
RUN_FILE = "run.json"
MODEL_FILE = "model.safetensors"


def check_destination(out) -> Path:
    """Refuse ``out`` unless it is absent, an empty folder or a latentzoo report folder.

    Called before any fit, so a bad ``--out`` costs seconds, not the whole experiment.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if out.is_dir():
        entries = [p for p in out.iterdir() if not p.name.startswith(".")]
        if entries and not (any((out / f).exists() for f in REPORT_FILES) or (out / RUNS).is_dir()):
            raise ValueError(f"refusing to replace folder {out}: it is not empty and holds no latentzoo report")
    parent = out.parent if str(out.parent) else Path(".")
    if not out.exists() and parent.exists() and not parent.is_dir():
        raise ValueError(f"--out {out}: {parent} is not a folder")
    return out


class RunStore:
    """Finished runs under ``DIR/runs`` (``out=None``: nothing is stored)."""

    def __init__(self, out=None):
        self.out = None if out is None else Path(out)

    def _dir(self, name: str) -> Path:
        return self.out / RUNS / name

    def load(self, task) -> RunRecord | None:
        """The stored record of ``task`` if it is complete and its fingerprint matches."""
        if self.out is None:
            return None
        d = self._dir(task.name)
        try:
            rec = RunRecord.from_json(json.loads((d / RUN_FILE).read_text("utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        failed = bool(rec.metrics.get("error"))  # a failed fit has no model to store
        if rec.fingerprint != task.fingerprint or not (failed or (d / MODEL_FILE).is_file()):
            logger.info("stored run %s is stale: refitting", task.name)
            return None
        return rec

    def save(self, rec: RunRecord, estimator) -> RunRecord:
        """Write the run's folder atomically (model file and record)."""
        if self.out is None:
            return rec
        name = f"{rec.model}-q{rec.latent_dim}-r{rec.repeat}"
        rec.dir = f"{RUNS}/{name}"
        with atomic_folder(self._dir(name)) as tmp:
            if not rec.metrics.get("error"):  # a failed fit (e.g. diverged) has no fitted model
                estimator.save(tmp / MODEL_FILE)
            (tmp / RUN_FILE).write_text(json.dumps(rec.to_json(), indent=2), encoding="utf-8")
        return rec

    def model(self, rec: RunRecord):
        """The fitted estimator of a stored run (None for a failed one)."""
        from ..persistence import load

        if rec.metrics.get("error"):
            return None
        return load(self.out / rec.dir / MODEL_FILE)

    def stale_names(self, tasks) -> list[str]:
        """Stored run folders that no planned task claims (left alone, listed for the log)."""
        if self.out is None or not (self.out / RUNS).is_dir():
            return []
        planned = {t.name for t in tasks}
        return sorted(p.name for p in (self.out / RUNS).iterdir() if p.is_dir() and not p.name.startswith(".")
                      and p.name not in planned)
