"""When a ``.npy`` file is memory-mapped instead of read: a fraction of available memory.

An in-memory fit holds the data at least twice (the float32 array and the model's
validated copy), so a file above :data:`MMAP_FRACTION` (5 %) of the memory available
when it is loaded is mapped read-only and streamed chunk by chunk instead
(``load_dataset(..., mmap="auto")``, the default, and every CLI command). Two
environment variables override the threshold: ``LATENTZOO_MMAP_BYTES`` (an absolute
size in bytes) and ``LATENTZOO_MMAP_FRACTION`` (a fraction of available memory).
"""
from __future__ import annotations

import os

__all__ = ["MMAP_FRACTION", "available_memory", "mmap_threshold", "should_mmap"]

MMAP_FRACTION = 0.05


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable`` on Linux)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 * 2**30


def _env_number(name: str, cast):
    text = os.environ.get(name)
    if text is None or not text.strip():
        return None
    try:
        v = cast(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} is not a number") from None
    if v <= 0:
        raise ValueError(f"environment variable {name}={text!r} must be positive")
    return v


def mmap_threshold() -> int:
    """File size in bytes above which ``mmap="auto"`` maps a ``.npy`` file."""
    nbytes = _env_number("LATENTZOO_MMAP_BYTES", lambda s: int(float(s)))
    if nbytes is not None:
        return nbytes
    fraction = _env_number("LATENTZOO_MMAP_FRACTION", float) or MMAP_FRACTION
    return int(fraction * available_memory())


def should_mmap(path) -> bool:
    """Whether the ``.npy`` file at ``path`` is larger than :func:`mmap_threshold`."""
    return os.path.getsize(path) > mmap_threshold()
