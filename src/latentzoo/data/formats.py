"""File readers, one function per format, chosen by :data:`READERS` keyed on the file suffix.

A reader takes the path (and only the keyword options it understands) and returns
``(X, y, meta)`` with ``X`` an ndarray (2-D, or 3-D images), ``y`` labels or None, and
``meta`` holding at least ``name``, ``source`` and ``format``. The common checks
(dtype, NaN/inf, empty) happen afterwards in :func:`latentzoo.data.dataset.finalize`.

References
----------
LeCun, Cortes & Burges, "The MNIST database" (IDX format, big-endian headers).
Larochelle & Murray, "The Neural Autoregressive Distribution Estimator", AISTATS 2011
(binarised MNIST ``.amat`` text files).
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from ._tabular import read_h5ad, read_parquet
from ._text import parse_table, resolve_column

__all__ = ["READERS", "FOLDER_LAYOUTS", "reader_for", "read_folder", "resolve_column"]

_IDX_IMAGES, _IDX_LABELS = 2051, 2049


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when its name ends in ``.gz``."""
    if path.name.lower().endswith(".gz"):
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read()
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupted or truncated gzip file ({e}).") from None
    return path.read_bytes()


def _meta(path: Path, fmt: str, **extra) -> dict:
    name = path.name
    for suffix in sorted(READERS, key=len, reverse=True):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)] or name
            break
    return {"name": name.rstrip("-."), "source": str(path), "format": fmt, **extra}


# ---------------------------------------------------------------------- text
def read_csv(path: Path, *, label_column=None, delimiter="auto", id_column=None, header=None):
    """Delimited text; ``label_column`` (name or index) becomes ``y``, ``id_column`` the row
    IDs; ``header`` True/False/None (detected); NA tokens are missing; see :mod:`._text`."""
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e}).") from None
    if "\x00" in text:
        raise ValueError(f"{path}: binary content (NUL bytes) in a text file.")
    t = parse_table(text, str(path), delimiter=delimiter, label_column=label_column, id_column=id_column,
                    header=header)
    meta = _meta(path, "csv", columns=t.columns, row_names=[f"line {n}" for n in t.lines], row_ids=t.row_ids)
    if label_column is not None:
        meta["label_column"] = label_column
    if t.id_column is not None:
        meta["id_column"] = t.id_column
    return t.X, t.y, meta


def read_amat(path: Path):
    """Binarised-MNIST ``.amat``: one image per line, 784 values ``0``/``1`` separated by spaces.

    The standard layout (single spaces, ``\\n``) is decoded straight from the bytes
    (``np.frombuffer``, ~0.2 s for 50,000 images); anything else goes through the text parser.
    """
    raw = _read_bytes(path)
    X = _amat_fast(raw)
    row_names = None
    if X is None:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not an ASCII .amat text file.") from None
        t = parse_table(text, str(path), delimiter=None, id_column=False)
        if t.columns is not None:
            raise ValueError(f"{path}: non-numeric first line {', '.join(t.columns[:5])!r} in an .amat file.")
        X, row_names = t.X, [f"line {n}" for n in t.lines]
    side = int(round(np.sqrt(X.shape[1])))
    image_shape = (28, 28) if X.shape[1] == 784 else ((side, side) if side * side == X.shape[1] else None)
    meta = _meta(path, "amat", image_shape=image_shape)
    if row_names is not None:
        meta["row_names"] = row_names
    return X, None, meta


def _amat_fast(raw: bytes) -> np.ndarray | None:
    b = np.frombuffer(raw, dtype=np.uint8)
    nl = np.flatnonzero(b == ord("\n"))
    if nl.size == 0:
        return None
    width = int(nl[0]) + 1
    if width % 2 or b.size % width or not np.all(nl == np.arange(width - 1, b.size, width)):
        return None
    rows = b.reshape(-1, width)
    values, spaces = rows[:, 0:width - 1:2], rows[:, 1:width - 1:2]
    if not (np.all(spaces == ord(" ")) and np.all((values == ord("0")) | (values == ord("1")))):
        return None
    return (values - ord("0")).astype(np.float32)


# ---------------------------------------------------------------------- numpy
_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK"


def _check_numpy_magic(path: Path, kind: str) -> None:
    """A file that is neither .npy nor a zip archive: say what it looks like. (``np.load``
    would take it for a pickle and report "pickled data", which misleads for a text file.)"""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.startswith(_NPY_MAGIC) or head.startswith(_ZIP_MAGIC) or not head:
        return
    text = None
    for cut in range(4):  # the 64 bytes may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        first = text.splitlines()[0][:40]
        raise ValueError(f"{path}: not a {kind} file: it starts with text ({first!r}), not the NumPy magic "
                         "bytes; a CSV/TSV file? name it .csv or .tsv")
    raise ValueError(f"{path}: not a valid {kind} file: it starts with neither the NumPy magic bytes nor a zip "
                     "header (a damaged file, or another format under a .npy/.npz name?)")


def _np_load(path: Path, kind: str, **kw):
    """``np.load`` without pickle; any parse failure of a damaged file becomes a ValueError."""
    _check_numpy_magic(path, kind)
    try:
        return np.load(path, allow_pickle=False, **kw)
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise ValueError(f"{path}: object arrays / pickled data are not supported ({e}).") from None
        raise ValueError(f"{path}: not a valid {kind} file ({e}).") from None
    except Exception as e:  # numpy's header parser raises many types (TokenError, BadZipFile, ...)
        raise ValueError(f"{path}: not a valid {kind} file ({type(e).__name__}: {e}).") from None


def read_npy(path: Path, *, mmap: bool = False):
    """``.npy`` (2-D, or 3-D images); ``mmap=True`` maps it read-only without reading it."""
    X = _np_load(path, ".npy", mmap_mode="r" if mmap else None)
    if not isinstance(X, np.ndarray):
        if hasattr(X, "close"):
            X.close()
        raise ValueError(f"{path}: not a .npy array (got {type(X).__name__}; an .npz archive?).")
    return X, None, _meta(path, "npy")


_NPZ_DATA_KEYS = ("X", "x", "data", "arr_0")
_NPZ_LABEL_KEYS = ("y", "labels", "target")


def read_npz(path: Path):
    """``.npz`` with data under ``X``/``x``/``data``/``arr_0`` and labels under ``y``/``labels``/``target``."""
    z = _np_load(path, ".npz")
    if isinstance(z, np.ndarray):  # a plain .npy saved under an .npz name
        return z, None, _meta(path, "npz", data_key=None, label_key=None)
    try:
        keys = list(z.keys())
        data_key = next((k for k in _NPZ_DATA_KEYS if k in keys), None)
        if data_key is None:
            raise ValueError(f"{path}: no data array; expected one of the keys "
                             f"{', '.join(_NPZ_DATA_KEYS)}, found {', '.join(keys) or 'none'}.")
        label_key = next((k for k in _NPZ_LABEL_KEYS if k in keys), None)
        X = z[data_key]
        y = z[label_key] if label_key else None
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a valid .npz file ({e}).") from None
    except Exception as e:  # damaged members: BadZipFile, zlib.error, EOFError, TokenError, ...
        raise ValueError(f"{path}: not a valid .npz file ({type(e).__name__}: {e}).") from None
    finally:
        z.close()
    if y is not None and y.ndim != 1:
        raise ValueError(f"{path}: labels {label_key!r} have shape {y.shape}; expected 1-D.")
    return X, y, _meta(path, "npz", data_key=data_key, label_key=label_key)


# ---------------------------------------------------------------------- MNIST IDX
def _idx_array(path: Path, magic: int, what: str) -> np.ndarray:
    """Parse an IDX ubyte file: big-endian int32 magic, dims, then the bytes, row-major."""
    raw = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 * (1 + ndim)
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX file: {len(raw)} bytes, shorter than the {header}-byte header.")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(f"{path}: wrong IDX magic number {found} (expected {magic} for an MNIST {what} file).")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims))
    have = len(raw) - header
    if have < expected:
        raise ValueError(f"{path}: truncated IDX file: the header says {dims[0]} {what} of shape "
                         f"{dims[1:]} ({expected} bytes) but the file holds only {have} bytes of data.")
    if have > expected:
        raise ValueError(f"{path}: {have - expected} unexpected trailing bytes after the IDX data.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _labels_path(path: Path) -> Path | None:
    """``train-images-idx3-ubyte[.gz]`` -> an existing ``train-labels-idx1-ubyte[.gz]``."""
    stem = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    stem = stem.replace("images", "labels").replace("idx3", "idx1")
    return next((p for p in (path.with_name(stem), path.with_name(stem + ".gz")) if p.exists()), None)


def read_idx(path: Path):
    """MNIST IDX images (magic 2051, uint8 scaled to [0, 1]) plus the matching labels file if present."""
    images = _idx_array(path, _IDX_IMAGES, "images")
    y, lpath = None, _labels_path(path)
    if lpath is not None:
        y = _idx_array(lpath, _IDX_LABELS, "labels").astype(np.int64)
        if y.shape[0] != images.shape[0]:
            raise ValueError(f"{lpath}: {y.shape[0]} labels for {images.shape[0]} images in {path}.")
    X = images.astype(np.float32) / np.float32(255.0)
    return X, y, _meta(path, "idx", labels_source=None if lpath is None else str(lpath))


#: file suffix (lower case) -> reader; the longest matching suffix wins
READERS: dict[str, Callable] = {
    ".csv": read_csv, ".tsv": read_csv, ".txt": read_csv,
    ".csv.gz": read_csv, ".tsv.gz": read_csv, ".txt.gz": read_csv,
    ".npy": read_npy, ".npz": read_npz,
    "idx3-ubyte": read_idx, "idx3-ubyte.gz": read_idx,
    ".amat": read_amat, ".amat.gz": read_amat,
    ".parquet": read_parquet, ".pq": read_parquet, ".h5ad": read_h5ad,
}


def reader_for(path: Path) -> Callable:
    """The reader registered for the longest suffix of ``path``'s name."""
    name = path.name.lower()
    match = max((s for s in READERS if name.endswith(s)), key=len, default=None)
    if match is None:
        raise ValueError(f"{path}: unknown file format; known suffixes: {', '.join(READERS)} "
                         "(or a folder of MNIST IDX / binarised-MNIST .amat files).")
    return READERS[match]


# ---------------------------------------------------------------------- folders
def _find(folder: Path, names: list[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).exists()), None)


def _mnist_idx_file(folder: Path, split: str) -> Path | None:
    prefix = {"train": "train", "test": "t10k"}.get(split)
    if prefix is None:
        return None
    return _find(folder, [f"{prefix}-images{sep}idx3-ubyte{gz}" for sep in "-." for gz in ("", ".gz")])


def _binarized_mnist_file(folder: Path, split: str) -> Path | None:
    return _find(folder, [f"binarized_mnist_{split}.amat{gz}" for gz in ("", ".gz")])


#: layout name -> (splits, function (folder, split) -> file or None)
FOLDER_LAYOUTS: dict[str, tuple[tuple[str, ...], Callable]] = {
    "mnist-idx": (("train", "test"), _mnist_idx_file),
    "binarized-mnist": (("train", "valid", "test"), _binarized_mnist_file),
}


def read_folder(path: Path, *, split: str = "train"):
    """A folder holding a known layout (MNIST IDX files, binarised-MNIST ``.amat``); one split."""
    for layout, (splits, find) in FOLDER_LAYOUTS.items():
        if find(path, "train") is None and find(path, "test") is None:
            continue
        if split not in splits:
            raise ValueError(f"{path}: unknown split {split!r} for the {layout} layout; "
                             f"known splits: {', '.join(splits)}.")
        file = find(path, split)
        if file is None:
            raise FileNotFoundError(f"{path}: no file for split {split!r} of the {layout} layout.")
        X, y, meta = reader_for(file)(file)
        meta.update(name=f"{path.name}-{split}", split=split, layout=layout)
        return X, y, meta
    raise ValueError(f"{path}: folder holds no known dataset layout; expected MNIST IDX files "
                     "(train-images-idx3-ubyte[.gz], ...) or binarized_mnist_{train,valid,test}.amat[.gz].")
