"""Row blocks of a data matrix that may be memory-mapped: streamed passes, small subsets.

A ``.npy`` file above the mmap threshold (:mod:`._memory`) reaches the metrics, the
experiment and the CLI as a read-only :class:`numpy.memmap`; its pages are file-backed,
so reading them costs no anonymous memory, but any whole-array copy (``np.asarray(X,
dtype=float64)``, ``X[idx]`` over most rows, ``astype``) does. Everything here keeps to
blocks of about :data:`BLOCK_VALUES` values:

* :func:`row_blocks` / :func:`map_rows`: one pass, a sum or the per-row outputs (codes,
  log-likelihoods: ``n x q`` or ``n`` numbers, not ``n x D``);
* :func:`take_rows`: a small subset (a trustworthiness subsample, the rows a figure shows)
  materialised in memory;
* :func:`gather_to_memmap` / :func:`map_to_memmap`: a large subset (a training split) or a
  transformed copy (dequantised data) written block by block to a temporary ``.npy`` and
  mapped read-only; the file is removed when the mapping is garbage-collected (or at exit).

In-memory arrays go through the same code (one block for a small array).
"""
from __future__ import annotations

import os
import tempfile
import weakref

import numpy as np

__all__ = ["BLOCK_VALUES", "is_mapped", "block_rows", "row_blocks", "map_rows", "take_rows",
           "column_means", "value_range", "filler", "gather_to_memmap", "map_to_memmap", "map_to_array"]

#: values per block (2 MiB of float32, 4 MiB of float64)
BLOCK_VALUES = 2**19


def is_mapped(X) -> bool:
    """Whether ``X`` is a memory map (a file-backed array never to be read whole)."""
    return isinstance(X, np.memmap)


def block_rows(n_features: int, values: int | None = None) -> int:
    """Rows per block of ``values`` values (default :data:`BLOCK_VALUES`; at least 1 row)."""
    return max(1, int(BLOCK_VALUES if values is None else values) // max(1, int(n_features)))


def row_blocks(X, *, values: int | None = None, dtype=None):
    """``(start, block)`` over the rows of ``X``: plain ndarrays (a memmap's slices become
    ndarray views, converted to ``dtype`` when given), memory bounded by ``values``."""
    rows = block_rows(X.shape[1], values)
    for i in range(0, X.shape[0], rows):
        yield i, np.asarray(X[i:i + rows], dtype=dtype)


def map_rows(fn, X, *, values: int | None = None, dtype=None) -> np.ndarray:
    """``fn`` applied to every row block of ``X``, the outputs concatenated along rows."""
    outs = [np.asarray(fn(b)) for _, b in row_blocks(X, values=values, dtype=dtype)]
    return np.concatenate(outs) if outs else np.empty((0,))


def map_to_array(fn, X, *, dtype=np.float32, values: int | None = None) -> np.ndarray:
    """``fn`` applied block by block to the rows of ``X`` (same shape out), written into one
    in-memory ``dtype`` array: no whole-table intermediate (``fn``'s float64 temporaries are a
    block's size), so the peak is ``X`` plus the output."""
    out = np.empty(X.shape, dtype=dtype)
    for i, b in row_blocks(X, values=values):
        out[i:i + len(b)] = fn(b)
    return out


def take_rows(X, idx, *, dtype=np.float64) -> np.ndarray:
    """The rows ``idx`` of ``X`` as an in-memory array (for small subsets: a memmap reads
    those rows only)."""
    return np.asarray(X[np.asarray(idx, dtype=np.intp)], dtype=dtype)


def column_means(X, *, values: int | None = None) -> tuple[np.ndarray, bool]:
    """``(observed mean of every column (0 for an empty one), whether any entry is NaN)``,
    float64, in one blockwise pass (:func:`latentzoo.data.missing.fill_column_means`'s means)."""
    total = np.zeros(X.shape[1], dtype=np.float64)
    count = np.zeros(X.shape[1], dtype=np.int64)
    for _, b in row_blocks(X, values=values, dtype=np.float64):
        seen = ~np.isnan(b)
        total += np.where(seen, b, 0.0).sum(axis=0)
        count += seen.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return means, bool((count < X.shape[0]).any())


def value_range(X, *, values: int | None = None) -> tuple[float, float] | None:
    """``(min, max)`` over the non-NaN entries of ``X`` block by block; None when all are NaN."""
    lo, hi = np.inf, -np.inf
    for _, b in row_blocks(X, values=values):
        if b.size and not np.isnan(b).all():
            lo, hi = min(lo, float(np.nanmin(b))), max(hi, float(np.nanmax(b)))
    return (lo, hi) if lo <= hi else None


def filler(means):
    """``A -> A`` (float64) with each NaN replaced by its column's entry of ``means`` (the
    identity for ``means`` None)."""
    if means is None:
        return lambda A: A

    def fill(A):
        A = np.array(A, dtype=np.float64)
        miss = np.isnan(A)
        A[miss] = np.take(means, np.nonzero(miss)[1])
        return A
    return fill


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _new_map(shape, dtype, prefix: str):
    fd, path = tempfile.mkstemp(suffix=".npy", prefix=f"latentzoo-{prefix}-")
    os.close(fd)
    try:
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=tuple(shape)), path
    except BaseException:
        _unlink(path)
        raise


def _finish(out: np.memmap, path: str) -> np.memmap:
    out.flush()
    del out
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    weakref.finalize(mapped, _unlink, path)  # the file lives as long as its mapping (or the process)
    return mapped


def gather_to_memmap(X, idx, *, values: int | None = None, prefix: str = "rows") -> np.memmap:
    """The rows ``idx`` of ``X``, in that order, as a read-only memmap of a temporary file,
    copied block by block (anonymous memory bounded by ``values``)."""
    idx = np.asarray(idx, dtype=np.intp)
    out, path = _new_map((len(idx), X.shape[1]), X.dtype, prefix)
    try:
        rows = block_rows(X.shape[1], values)
        for i in range(0, len(idx), rows):
            out[i:i + rows] = X[idx[i:i + rows]]
    except BaseException:
        del out
        _unlink(path)
        raise
    return _finish(out, path)


def map_to_memmap(fn, X, *, dtype=np.float32, values: int | None = None, prefix: str = "mapped") -> np.memmap:
    """``fn`` applied block by block to the rows of ``X`` (same shape out), written to a
    temporary file and mapped read-only."""
    out, path = _new_map(X.shape, dtype, prefix)
    try:
        for i, b in row_blocks(X, values=values):
            out[i:i + len(b)] = fn(b)
    except BaseException:
        del out
        _unlink(path)
        raise
    return _finish(out, path)
