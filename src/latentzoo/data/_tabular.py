"""Tables held by pandas and AnnData: DataFrames, Parquet files and ``.h5ad`` files.

A DataFrame's columns are the feature names, its index (unless the default
``0..n-1``) the row IDs; a first column of unique strings is taken as the row IDs
(as in text files); ``label_column`` / ``id_column`` pick columns by name or index.
An AnnData file gives ``X`` (or ``layers[layer]``), ``var_names`` as the feature names,
``obs_names`` as the row IDs and labels from an ``obs`` column.

References
----------
Virshup et al. (2021), anndata: Annotated data, bioRxiv 10.1101/2021.12.16.473007.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ._text import parse_labels, resolve_column

__all__ = ["frame_arrays", "read_parquet", "read_h5ad", "OMICS_EXTRA"]

OMICS_EXTRA = "pip install 'latentzoo[omics]'"


def _need(module: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"{what} needs the {module} package, which is not installed; "
                         f"install the omics extra: {OMICS_EXTRA}") from None


def _labels_from_series(s) -> np.ndarray:
    """A pandas Series of labels -> the loaders' label array (missing = NaN or '')."""
    from pandas.api.types import is_numeric_dtype

    if is_numeric_dtype(s.dtype) and not s.dtype == bool:
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isnan(v).any() and np.all(v == np.round(v)):
            return v.astype(np.int64)
        return v
    return parse_labels(["" if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v)
                         for v in s.astype(object).tolist()])


def frame_arrays(df, where: str, *, label_column=None, id_column=None):
    """``(X float64, y, meta)`` of a DataFrame; meta holds ``columns`` and ``row_ids``."""
    from pandas.api.types import is_complex_dtype, is_numeric_dtype

    cols = [str(c) for c in df.columns]
    row_ids = None
    if not (df.index.dtype.kind in "iu" and np.array_equal(df.index.to_numpy(), np.arange(len(df)))):
        row_ids = [str(v) for v in df.index]
    drop = []
    if id_column is None and df.shape[1] > 1 and df.shape[0] > 0:
        first = df.iloc[:, 0]
        if not is_numeric_dtype(first.dtype) and first.notna().all() and first.is_unique:
            id_column = 0
    if id_column is not None:
        k = resolve_column(id_column, cols, len(cols), where, "id_column")
        row_ids = [str(v) for v in df.iloc[:, k]]
        drop.append(k)
    y = None
    if label_column is not None:
        k = resolve_column(label_column, cols, len(cols), where)
        if k in drop:
            raise ValueError(f"{where}: label_column {label_column!r} is the id column.")
        y = _labels_from_series(df.iloc[:, k])
        drop.append(k)
    keep = [j for j in range(len(cols)) if j not in drop]
    data = df.iloc[:, keep]
    for col in data.columns:
        if not is_numeric_dtype(data[col].dtype) or is_complex_dtype(data[col].dtype):
            raise ValueError(f"{where}: column {col!r} has non-numeric dtype {data[col].dtype}.")
    X = data.to_numpy(dtype=np.float64, na_value=np.nan) if keep else np.empty((len(df), 0))
    meta = {"columns": [cols[j] for j in keep], "row_ids": row_ids}
    return X, y, meta


def read_parquet(path: Path, *, label_column=None, id_column=None):
    """Parquet through pandas (pyarrow): numeric columns are the data."""
    from .formats import _meta

    pd = _need("pandas", f"{path}: reading Parquet")
    _need("pyarrow", f"{path}: reading Parquet")
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises its own error types for damaged files
        raise ValueError(f"{path}: not a valid Parquet file ({type(e).__name__}: {e}).") from None
    X, y, extra = frame_arrays(df, str(path), label_column=label_column, id_column=id_column)
    return X, y, {**_meta(path, "parquet"), **extra, "label_column": label_column}


def read_h5ad(path: Path, *, label_column=None, layer=None):
    """AnnData ``.h5ad``: ``X`` (or ``layers[layer]``), ``var_names``, ``obs[label_column]``."""
    from .formats import _meta

    ad = _need("anndata", f"{path}: reading .h5ad")
    try:
        adata = ad.read_h5ad(path)
    except Exception as e:  # h5py / anndata raise many types for damaged files
        raise ValueError(f"{path}: not a valid .h5ad file ({type(e).__name__}: {e}).") from None
    if layer is None:
        M = adata.X
        if M is None:
            raise ValueError(f"{path}: the AnnData object has no X; pick a layer ({_names(adata.layers)}).")
    else:
        if layer not in adata.layers:
            raise ValueError(f"{path}: no layer {layer!r}; layers: {_names(adata.layers)}.")
        M = adata.layers[layer]
    X = M.toarray() if hasattr(M, "toarray") else np.asarray(M)
    y = None
    if label_column is not None:
        if label_column not in adata.obs.columns:
            raise ValueError(f"{path}: label_column {label_column!r} is not an obs column; obs columns: "
                             f"{_names(adata.obs.columns)}.")
        y = _labels_from_series(adata.obs[label_column])
    meta = {**_meta(path, "h5ad"), "columns": [str(v) for v in adata.var_names],
            "row_ids": [str(v) for v in adata.obs_names], "layer": layer, "label_column": label_column}
    return X, y, meta


def _names(keys) -> str:
    keys = [str(k) for k in keys]
    return ", ".join(keys) if keys else "none"
