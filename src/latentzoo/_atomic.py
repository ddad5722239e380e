"""Atomic writes: a file or a folder appears whole at its destination, or not at all.

Used by the model file format (:mod:`latentzoo.persistence`), the training checkpoints,
the CLI's outputs and the report folder. Each helper builds its result under a temporary
name beside the destination and renames it into place on success only.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "atomic_folder"]


class atomic_write:
    """Context manager yielding a temporary path that replaces ``path`` on success only."""

    def __init__(self, path, suffix: str = ".tmp"):
        self.path = Path(path)
        self.suffix = suffix

    def __enter__(self) -> Path:
        parent = self.path.parent
        if not parent.exists():
            raise FileNotFoundError(f"cannot write {self.path}: folder {parent} does not exist")
        if self.path.is_dir():
            raise IsADirectoryError(f"cannot write {self.path}: it is a folder; give a file name")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=self.suffix, dir=parent)
        os.close(fd)
        self.tmp = Path(tmp)
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                with open(self.tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                os.replace(self.tmp, self.path)
            except BaseException:
                self.tmp.unlink(missing_ok=True)  # never leave debris behind, even when the rename fails
                raise
        else:
            self.tmp.unlink(missing_ok=True)


class atomic_folder:
    """Context manager yielding a temporary folder that becomes ``path`` on success only.

    The folder is built beside ``path`` and renamed into place; an existing ``path`` is
    moved aside first and deleted after the rename, so readers see the old folder or the
    new one, never a mix. On an error the temporary folder is removed.
    """

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.tmp-", dir=self.path.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        try:
            os.chmod(self.tmp, 0o755)  # mkdtemp makes it private
            old = None
            if self.path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.old-", dir=self.path.parent))
                os.rmdir(old)
                os.replace(self.path, old)
            os.replace(self.tmp, self.path)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
