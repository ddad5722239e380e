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

__all__ = ["ExperimentData", "prepare_data", "fingerprint_arrays"]


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
        """``(X_train, y_train, X_test, y_test)`` of a :class:`~.plan.Split`."""
        y = self.y
        if sp.test is None:
            return self.X, y, self.X_test, self.y_test
        return (self.X[sp.train], None if y is None else y[sp.train],
                self.X[sp.test], None if y is None else y[sp.test])


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
            X = pre.transform(X).astype(np.float32)
            if not np.isnan(X).all():  # the figures' grey levels follow the data the models see
                meta["value_range"] = (float(np.nanmin(X)), float(np.nanmax(X)))
            X_test = None if X_test is None else pre.transform(X_test).astype(np.float32)
    fp = fingerprint_arrays(X, y, X_test, None if test is None else test_y)
    out = ExperimentData(X, y, dict(meta), test_source=source, fingerprint=fp)
    if test is not None:
        out.X_test, out.y_test = X_test, test_y
    return out
