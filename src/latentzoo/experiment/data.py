"""The data of an experiment: the training data, the official test set if any, a fingerprint.

A folder in a known layout that holds a test split (an MNIST IDX folder with the t10k
files, binarised MNIST with its test file) is evaluated on that test set; ``test_data``
names one explicitly. Otherwise the repeats split the data themselves (:mod:`.plan`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.blocks import gather_to_memmap, is_mapped, map_to_array, map_to_memmap, take_rows, value_range

__all__ = ["ExperimentData", "prepare_data", "fingerprint_arrays", "figure_subset", "FIGURE_ROWS"]


@dataclass
class ExperimentData:
    """``X``/``y``: the data the repeats split (or train on, with an official test set)."""

    X: np.ndarray
    y: np.ndarray | None
    meta: dict
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    test_source: str = "split"
    fingerprint: str = ""
    #: the report's :class:`~.likelihood_policy.LikelihoodPolicy` (set by the experiment)
    policy: object = None

    @property
    def official_test(self) -> bool:
        return self.X_test is not None

    def split(self, sp):
        """``(X_train, y_train, X_test, y_test)`` of a :class:`~.plan.Split`.

        Memory-mapped data: the split's rows are copied block by block into two temporary
        memory maps (disk, not memory: about the data's size while the split is in use; the
        last split is kept for the next run of the same repeat)."""
        y = self.y
        if sp.test is None:
            return self.X, y, self.X_test, self.y_test
        y_tr, y_te = (None, None) if y is None else (y[sp.train], y[sp.test])
        if not is_mapped(self.X):
            return self.X[sp.train], y_tr, self.X[sp.test], y_te
        key = (sp.repeat, sp.seed, sp.fold)
        cached = self.__dict__.get("_split_cache")
        if cached is None or cached[0] != key:
            cached = (key, gather_to_memmap(self.X, sp.train, prefix="train"),
                      gather_to_memmap(self.X, sp.test, prefix="test"))
            self.__dict__["_split_cache"] = cached
        return cached[1], y_tr, cached[2], y_te

    def __getstate__(self):
        """Memory maps travel as their file (to worker processes), not as their bytes."""
        state = {k: v for k, v in self.__dict__.items() if k != "_split_cache"}
        for k in ("X", "X_test"):
            if is_mapped(state.get(k)) and state[k].filename and Path(state[k].filename).exists():
                m = state[k]
                state[k] = _MappedFile(str(m.filename), m.dtype.str, m.shape, int(m.offset))
        return state

    def __setstate__(self, state):
        for k, v in state.items():
            self.__dict__[k] = v.open() if isinstance(v, _MappedFile) else v


@dataclass(frozen=True)
class _MappedFile:
    """A read-only memory map, by file (see :meth:`ExperimentData.__getstate__`)."""

    filename: str
    dtype: str
    shape: tuple
    offset: int

    def open(self) -> np.memmap:
        if not Path(self.filename).is_file():  # a Dask worker on another machine
            raise FileNotFoundError(f"memory-mapped data {self.filename} cannot be read on this worker: put the "
                                    "file on a file system every worker shares (the same path)")
        return np.memmap(self.filename, dtype=np.dtype(self.dtype), mode="r", offset=self.offset,
                         shape=tuple(self.shape))


#: rows of memory-mapped data the report's figures draw (each of the training and the held-out rows)
FIGURE_ROWS = 2000


def figure_subset(*parts, seed: int = 0, rows: int = FIGURE_ROWS):
    """``(X, y)`` pairs cut to at most ``rows`` random rows each (in memory, float32), and the
    sentence the report's setup says: the figures of memory-mapped data show such a subset."""
    rng = np.random.default_rng([seed, 0x6669_6773])
    out, sizes = [], []
    for X, y in parts:
        idx = np.arange(len(X)) if len(X) <= rows else np.sort(rng.choice(len(X), size=rows, replace=False))
        out.append((take_rows(X, idx, dtype=np.float32), None if y is None else np.asarray(y)[idx]))
        sizes.append(f"{len(idx)} of {len(X)}")
    return (*out, f"the data are memory-mapped: the figures show a random subset of the rows ({', '.join(sizes)}"
                  f"{' training and held-out rows' if len(parts) == 2 else ' rows'}); the metrics use every row")


def fingerprint_arrays(*arrays) -> str:
    """SHA-256 (32 hex digits) of the arrays' dtypes, shapes and bytes (None allowed)."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none;")
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()[:32]


def _official_test_of(source, load_kw: dict):
    """The test split of a folder in a known layout, or None."""
    from ..data import load_dataset
    from ..data.formats import FOLDER_LAYOUTS

    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_dir():
        return None
    path = Path(source)
    for _, (splits, find) in FOLDER_LAYOUTS.items():
        if "test" in splits and find(path, "train") is not None and find(path, "test") is not None:
            return load_dataset(path, split="test", **load_kw)
    return None


def prepare_data(data, *, test_data=None, seed: int = 0, n_samples: int | None = None,
                 load_kw: dict | None = None, preprocess: str = "none") -> ExperimentData:
    """Load ``data`` (anything :func:`latentzoo.load_dataset` takes) and its test set.

    ``test_data`` (a path or array) is the test set when given; else a folder's official
    test split is used when its layout has one. ``n_samples`` keeps the first rows of the
    training data only. ``preprocess`` (a :mod:`latentzoo.preprocessing` method) is fitted
    on the training data and applied to them and to the test set; ``meta["preprocess"]``
    says what was done.
    """
    from ..data import Dataset, load_dataset

    load_kw = dict(load_kw or {})
    ds = data if isinstance(data, Dataset) else load_dataset(data, random_state=seed, n_samples=n_samples,
                                                             **load_kw)
    X, y, meta = ds
    test, source = None, "split"
    if test_data is not None:
        test = test_data if isinstance(test_data, Dataset) else load_dataset(test_data, **load_kw)
        source = f"--test-data {test.meta.get('source', test_data)}"
    elif not isinstance(data, Dataset):
        test = _official_test_of(data, load_kw)
        if test is not None:
            source = "official"
    if test is not None:
        if test.X.shape[1] != X.shape[1]:
            raise ValueError(f"test data {test.meta.get('source')} have {test.X.shape[1]} features but the "
                             f"training data {meta.get('source')} have {X.shape[1]}")
        if (y is None) != (test.y is None):
            y = test_y = None  # labels on one side only: kNN accuracy cannot be measured
        else:
            test_y = test.y
    X_test = None if test is None else test.X
    if preprocess != "none":
        from ..preprocessing import Preprocessor, describe

        pre = Preprocessor(preprocess).fit(X, stored_dtype=meta.get("stored_dtype"))
        meta = {**meta, "preprocess": describe(pre.method_, pre.reason_)}
        if pre.method_ != "none":
            X, X_test = (None if A is None else map_to_memmap(pre.transform, A, prefix="preprocessed")
                         if is_mapped(A) else map_to_array(pre.transform, A) for A in (X, X_test))
            vr = value_range(X)
            if vr is not None:  # the figures' grey levels follow the data the models see
                meta["value_range"] = vr
    fp = fingerprint_arrays(X, y, X_test, None if test is None else test_y)
    out = ExperimentData(X, y, dict(meta), test_source=source, fingerprint=fp)
    if test is not None:
        out.X_test, out.y_test = X_test, test_y
    return out
