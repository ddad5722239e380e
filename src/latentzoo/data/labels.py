"""What labels are: classes or a continuous covariate, and which rows have none.

Loaders keep unlabelled rows (an empty or ``NA`` label cell) with a missing label: NaN
in a numeric label array, ``""`` in a string one (``None`` in an object one). Every
consumer asks the same two questions here: :func:`labelled_mask` (which rows carry a
label: kNN metrics use only those, plots draw the others grey) and :func:`label_kind`
(``"classes"``, coloured by a qualitative map and scored by kNN accuracy, or
``"continuous"``, coloured on a scale and scored by kNN regression R²).

Examples
--------
>>> import numpy as np
>>> labelled_mask(np.array(["a", "", "b"])).tolist()
[True, False, True]
>>> label_kind(np.linspace(0, 1, 50)), label_kind(np.array([0, 1, 1, 2]))
('continuous', 'classes')
"""
from __future__ import annotations

import numpy as np

__all__ = ["labelled_mask", "label_kind", "MAX_CLASSES", "describe_labels"]

#: a numeric label with more distinct values than this (or with non-integer values) is continuous
#: (all-distinct integer or string labels are IDs, for which the metrics skip kNN altogether)
MAX_CLASSES = 20


def labelled_mask(y) -> np.ndarray:
    """Boolean mask of the rows that carry a label (NaN, ``""`` and ``None`` do not)."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        return ~np.isnan(y)
    if y.dtype.kind in "US":
        return np.char.strip(y.astype(str)) != ""
    if y.dtype.kind == "O":
        return np.array([v is not None and not (isinstance(v, float) and np.isnan(v)) and str(v).strip() != ""
                         for v in y], dtype=bool)
    return np.ones(y.shape, dtype=bool)


def label_kind(y) -> str:
    """``"continuous"`` for numeric labels with non-integer values or more than
    :data:`MAX_CLASSES` distinct values, else ``"classes"`` (strings are always classes)."""
    y = np.asarray(y)
    if y.dtype.kind not in "fiu":
        return "classes"
    v = y[labelled_mask(y)].astype(np.float64)
    if v.size == 0:
        return "classes"
    if np.any(v != np.round(v)) or len(np.unique(v)) > MAX_CLASSES:
        return "continuous"
    return "classes"


def describe_labels(y) -> dict:
    """``{"label_kind", "n_labelled", "n_unlabelled"}`` (the dataset's ``meta`` keys)."""
    mask = labelled_mask(y)
    return {"label_kind": label_kind(y), "n_labelled": int(mask.sum()), "n_unlabelled": int((~mask).sum())}
