"""``load_dataset``: one entry point from a name, a file, a folder or an array to a Dataset.

Every source ends in the same checks (:func:`finalize`): a 2-D (or 3-D image) numeric
array, no inf, no NaN unless ``allow_nan``, at least one row and one column, converted to
C-contiguous float32. The source kinds are chosen by a registry of predicates
(:data:`SOURCES`), the file formats by a registry keyed on the file suffix
(:data:`latentzoo.data.formats.READERS`), the embedded sets by name
(:data:`latentzoo.data.synthetic.EMBEDDED`).
"""
from __future__ import annotations

import inspect
import logging
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._validation import check_finite
from . import formats, synthetic
from ._memory import should_mmap
from ._tabular import frame_arrays
from .labels import describe_labels

__all__ = ["Dataset", "load_dataset", "finalize", "SOURCES"]

logger = logging.getLogger(__name__)


@dataclass
class Dataset:
    """Data ``X`` (float32, (n, d)), labels ``y`` (or None) and a ``meta`` dict.

    Unpacks as ``X, y, meta = load_dataset(...)`` and indexes like that tuple:
    ``ds[0]`` is ``X``, ``ds[-1]`` is ``meta``, ``ds[:2]`` is ``(X, y)``, ``len(ds) == 3``
    (the three fields, not the number of samples: that is ``len(ds.X)``).

    Examples
    --------
    >>> X, y, meta = load_dataset("digits")
    >>> X.shape, meta["image_shape"]
    ((1797, 64), (8, 8))
    """

    X: np.ndarray
    y: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    #: the rows' IDs (sample names of a table, ``obs_names`` of an AnnData file) or None
    row_ids: list | None = None

    def __iter__(self):
        return iter((self.X, self.y, self.meta))

    def __getitem__(self, index):
        return (self.X, self.y, self.meta)[index]

    def __len__(self) -> int:
        return 3


# ---------------------------------------------------------------------- validation
def _is_numeric_dtype(dtype: np.dtype) -> bool:
    return dtype == np.bool_ or (np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating))


def finalize(X, y, meta: dict, *, allow_nan: bool, mmap: bool = False,
             n_samples: int | None = None) -> Dataset:
    """Validate ``X``/``y`` and build the :class:`Dataset` with the common ``meta`` keys.

    ``meta`` must hold ``name`` and ``source``; readers may add ``image_shape``,
    ``columns`` (feature names), ``row_names`` (how to name row i in errors, e.g. a
    file line) and ``row_ids`` (the rows' IDs, kept as :attr:`Dataset.row_ids`); the
    last two are consumed here.
    """
    where = meta["source"]
    row_names = meta.pop("row_names", None)
    row_ids = meta.pop("row_ids", None)
    X = X if isinstance(X, np.ndarray) else np.asarray(X)
    if not _is_numeric_dtype(X.dtype):
        raise ValueError(f"{where}: data of dtype {X.dtype} is not numeric (object, string, "
                         "complex and structured arrays are not supported).")
    if X.ndim == 1:
        raise ValueError(f"{where}: data is a 1-D array of shape {X.shape}; pass a 2-D (n_samples, "
                         "n_features) array (reshape(-1, 1) for a single feature).")
    if X.ndim not in (2, 3):
        raise ValueError(f"{where}: data has {X.ndim} dimensions {X.shape}; expected 2-D "
                         "(n_samples, n_features) or 3-D (n_samples, height, width) images.")
    if X.ndim == 3:
        meta["image_shape"] = tuple(int(s) for s in X.shape[1:])
        X = X.reshape(X.shape[0], -1)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{where}: no data (shape {X.shape}); expected at least one row and one column.")
    if n_samples is not None:
        X = X[:n_samples]
        y = None if y is None else y[:n_samples]
        if row_names is not None:
            row_names = row_names[:n_samples]
        if row_ids is not None:
            row_ids = row_ids[:n_samples]
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"{where}: labels have shape {y.shape} but data has {X.shape[0]} rows.")
        meta.update(describe_labels(y))
    stored_dtype = str(X.dtype)
    if mmap:
        # stream-friendly: no conversion and no full pass over the data
        value_range = None
    else:
        with np.errstate(over="ignore"):
            X32 = np.ascontiguousarray(X, dtype=np.float32)
        if np.issubdtype(X.dtype, np.floating) and X.dtype.itemsize > 4:
            too_big = np.isinf(X32) & np.isfinite(X)
            if too_big.any():
                r, c = (int(v) for v in np.argwhere(too_big)[0])
                raise ValueError(f"{where}: value {X[r, c]!r} at row {r}, column {c} overflows float32 "
                                 "(rows and columns count from 0).")
        check_finite(X32, allow_nan=allow_nan, what=where, columns=meta.get("columns"), row_names=row_names,
                     nan_hint="; pass allow_nan=True to keep NaN as missing values")
        X = X32
        value_range = (float(np.nanmin(X)), float(np.nanmax(X))) if not np.isnan(X).all() else (np.nan, np.nan)
    meta.update(
        n_samples=int(X.shape[0]), n_features=int(X.shape[1]), value_range=value_range,
        has_labels=y is not None, mmap=bool(mmap), stored_dtype=stored_dtype,
        has_row_ids=row_ids is not None,
    )
    if not mmap:
        meta["n_missing"] = int(np.isnan(X).sum())
    meta.setdefault("image_shape", None)
    return Dataset(X, y, meta, row_ids)


# ---------------------------------------------------------------------- sources
def _call_reader(func: Callable, what: str, args: tuple, options: dict[str, Any]):
    """Call ``func(*args, **options)``; an option it does not take is a clear ValueError."""
    accepted = inspect.signature(func).parameters
    unknown = sorted(k for k in options if k not in accepted)
    if unknown:
        takes = sorted(k for k, p in accepted.items() if p.kind == p.KEYWORD_ONLY)
        raise ValueError(f"{what}: option(s) {', '.join(unknown)} do not apply here; "
                         f"accepted: {', '.join(takes) or 'none'}.")
    return func(*args, **options)


def _from_array(source, options: dict):
    options = dict(options)
    if options.pop("label_column", None) is not None:
        raise ValueError("numpy array: label_column applies to CSV files and DataFrames only; pass y yourself.")
    if options.get("mmap") == "auto":
        options.pop("mmap")
    _no_extra(options, "numpy array")
    return np.asarray(source), None, {"name": "array", "source": "numpy array", "format": "array"}


def _from_dataframe(df, options: dict):
    options = dict(options)
    label_column = options.pop("label_column", None)
    id_column = options.pop("id_column", None)
    if options.get("mmap") == "auto":
        options.pop("mmap")
    _no_extra(options, "DataFrame")
    X, y, extra = frame_arrays(df, "DataFrame", label_column=label_column, id_column=id_column)
    return X, y, {"name": "DataFrame", "source": "DataFrame", "format": "dataframe", **extra}


def _no_extra(options: dict, what: str) -> None:
    extra = sorted(k for k, v in options.items() if v not in (None, False))
    if extra:
        raise ValueError(f"{what}: option(s) {', '.join(extra)} do not apply here.")


def _from_embedded(name: str, options: dict, n_samples, random_state):
    options = dict(options)
    if options.get("mmap") == "auto":
        options.pop("mmap")
    _no_extra({k: options.pop(k, None) for k in ("label_column", "mmap", "split", "id_column", "header", "layer")},
              f"embedded dataset {name!r}")
    func = synthetic.EMBEDDED[name]
    return _call_reader(func, f"embedded dataset {name!r}", (),
                        dict(options, n_samples=n_samples, random_state=random_state))


def _from_path(source, options: dict):
    path = Path(source)
    if options.get("mmap") == "auto":  # map a .npy file too large to read comfortably
        if path.is_file() and formats.READERS.get(".npy") is formats.reader_for(path):
            options = dict(options, mmap=should_mmap(path))
        else:
            options = {k: v for k, v in options.items() if k != "mmap"}
        if not options.get("mmap", True):
            options.pop("mmap")
    if not path.exists():
        if isinstance(source, str) and not (set(source) & set("/\\.")):
            raise ValueError(f"unknown dataset {source!r}: not a file and not an embedded dataset; "
                             f"embedded datasets: {', '.join(sorted(synthetic.EMBEDDED))}.")
        raise FileNotFoundError(f"{path}: no such file or folder.")
    if path.is_dir():
        return _call_reader(formats.read_folder, str(path), (path,), options)
    reader = formats.reader_for(path)
    return _call_reader(reader, str(path), (path,), options)


def _is_dataframe(obj) -> bool:
    return type(obj).__module__.startswith("pandas") and type(obj).__name__ == "DataFrame"


#: (predicate, loader) tried in order after the embedded names; the first that holds loads
SOURCES: list[tuple[Callable[[Any], bool], Callable]] = [
    (_is_dataframe, _from_dataframe),
    (lambda s: isinstance(s, (str, os.PathLike)), _from_path),
    (lambda s: isinstance(s, (np.ndarray, list, tuple)), _from_array),
]


def load_dataset(source, *, label_column=None, allow_nan: bool = False, mmap: bool | str = "auto",
                 random_state=0, n_samples: int | None = None, split: str | None = None,
                 id_column=None, header: bool | None = None, layer: str | None = None,
                 **kw) -> Dataset:
    """Load a dataset as float32 ``X`` (n, d), labels ``y`` and ``meta``.

    Parameters
    ----------
    source : str, path, numpy array or pandas DataFrame
        An embedded name (``"digits"``, ``"gaussian-mixture"``, ``"moons"``,
        ``"swiss-roll"``), a file (``.csv``/``.tsv``/``.txt``, ``.npy``, ``.npz``, MNIST
        IDX ``*-idx3-ubyte[.gz]``, ``.amat[.gz]``), a folder holding the MNIST IDX files
        or the binarised-MNIST ``.amat`` files, or an array / DataFrame.
    label_column : str or int, optional
        Tables (CSV/TSV, Parquet, DataFrame): the column (name or index, negative allowed)
        holding ``y``; ``.h5ad``: an ``obs`` column. Empty / ``NA`` cells are unlabelled rows
        (see :mod:`latentzoo.data.labels`).
    allow_nan : bool, default=False
        Keep NaN (missing values: empty, ``NA``, ``NaN``, ``N/A``, ``?`` cells); inf is always
        rejected.
    mmap : bool or "auto", default="auto"
        ``.npy`` only: True returns ``X`` memory-mapped read-only, in its stored dtype,
        unread; ``"auto"`` does so for files larger than a fraction of available memory
        (:func:`latentzoo.data._memory.mmap_threshold`: 5 %, or the environment variables
        ``LATENTZOO_MMAP_BYTES`` / ``LATENTZOO_MMAP_FRACTION``).
    random_state : int, default=0
        Seed of the synthetic sets.
    n_samples : int, optional
        Size of a synthetic set; for other sources keep the first ``n_samples`` rows.
    split : str, optional
        Folder only: ``"train"`` (default), ``"test"`` (and ``"valid"`` for binarised MNIST).
    id_column : str or int, optional
        Tables: the column of row IDs (kept as ``Dataset.row_ids``, never data). Default:
        a first column of unique non-numeric cells (and a DataFrame's non-default index).
    header : bool, optional
        Text tables: whether the first row holds column names (default: detected).
    layer : str, optional
        ``.h5ad`` only: the layer to read instead of ``X``.
    **kw
        Options of the reader or generator (e.g. ``delimiter=`` for CSV, ``noise=`` for moons).

    Returns
    -------
    Dataset
        ``meta`` holds ``name``, ``source``, ``format``, ``n_samples``, ``n_features``,
        ``image_shape`` ((h, w) or None), ``value_range`` ((min, max), None when mmap),
        ``has_labels``, ``mmap``, ``stored_dtype``, ``n_missing`` (NaN count; not when
        mapped), ``columns`` (feature names, tables), ``label_kind``/``n_unlabelled``
        (labelled data); the row IDs are ``Dataset.row_ids``.
    """
    if n_samples is not None and (isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral)
                                  or n_samples < 1):
        raise ValueError(f"load_dataset: n_samples must be a positive integer or None, got {n_samples!r}.")
    if split is not None and not isinstance(split, str):
        raise ValueError(f"load_dataset: split must be a string, got {split!r}.")
    if mmap not in (True, False, "auto"):
        raise ValueError(f"load_dataset: mmap must be True, False or 'auto', got {mmap!r}.")
    options = {"label_column": label_column, "mmap": mmap or None, "split": split, "id_column": id_column,
               "header": header, "layer": layer, **kw}
    if isinstance(source, Dataset):
        source = source.X
    if isinstance(source, str) and source in synthetic.EMBEDDED:
        X, y, meta = _from_embedded(source, options, n_samples, random_state)
        meta.setdefault("format", "embedded")
        return finalize(X, y, meta, allow_nan=allow_nan)
    options = {k: v for k, v in options.items() if v is not None}
    for predicate, loader in SOURCES:
        if predicate(source):
            X, y, meta = loader(source, options)
            ds = finalize(X, y, meta, allow_nan=allow_nan, mmap=isinstance(X, np.memmap), n_samples=n_samples)
            logger.debug("loaded %s: %s", meta["source"], X.shape)
            return ds
    raise ValueError(f"load_dataset: cannot load a source of type {type(source).__name__}; "
                     "expected a name, a path, a numpy array or a pandas DataFrame.")
