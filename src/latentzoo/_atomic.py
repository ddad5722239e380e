"""Atomic writes: a file or a folder appears whole at its destination, or not at all.

Used by the model file format (:mod:`latentzoo.persistence`), the training checkpoints,
the CLI's outputs and the report folder. Each helper builds its result under a temporary
name beside the destination and renames it into place on success only. The result gets
the permissions an ordinary ``open(path, "w")`` / ``mkdir`` would give under the
process's umask (``0o666 & ~umask``, ``0o777 & ~umask``), not ``mkstemp``'s private 0600,
so colleagues on a shared server can read what latentzoo writes.

:func:`check_readable` is the one check before reading a user's file: a missing file, a
folder and a permission problem each get their own message.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "atomic_folder", "umask_mode", "check_readable"]


def current_umask() -> int:
    """The process's umask, read without changing it where ``/proc`` tells it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (the only portable way to read it)
    os.umask(mask)
    return mask


def umask_mode(folder: bool = False) -> int:
    """Permissions of a new file (0o666) or folder (0o777) under the current umask."""
    return (0o777 if folder else 0o666) & ~current_umask()


def check_readable(path, what: str = "file") -> None:
    """Raise a clear error unless ``path`` is a file this process may read.

    ``FileNotFoundError`` when nothing is there, ``ValueError`` for a folder,
    ``PermissionError`` naming the path when the file (or a folder above it) denies access,
    instead of the "no such file" some checks would report.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {path}") from None
    except PermissionError:
        raise PermissionError(f"cannot read {path}: permission denied (a folder above it is not "
                              "accessible to this user)") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path} is a folder, not a latentzoo {what}")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise PermissionError(f"cannot read {path}: permission denied (the {what} exists, but this user "
                              f"may not read it; mode {stat.filemode(st.st_mode)})") from None


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
                os.chmod(self.tmp, umask_mode())  # mkstemp makes it 0600
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
            os.chmod(self.tmp, umask_mode(folder=True))  # mkdtemp makes it private (0700)
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
