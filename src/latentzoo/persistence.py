"""Safe persistence: one ``.safetensors`` file holding weights and JSON metadata.

``save(est, path)`` stores every fitted array as a safetensors tensor and the
estimator's class, parameters (``get_params``) and fitted metadata as JSON in the
safetensors header. Nothing is pickled, so loading never executes code from the file.
The file is written to a temporary name in the same folder and renamed into place, so
a crash never leaves a half-written file that :func:`load` would accept.

The header's ``sha256`` covers every other header entry and every tensor (format 2), so
an edit of any of them (``params.likelihood`` changed by hand, a flipped byte) is an
error at load, not a model that silently computes other numbers. Format 1 files (whose
checksum covered the tensors only) still load. A file written by a newer major
latentzoo version is refused, naming both versions.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_write

__all__ = ["save", "load"]

_FORMAT = "latentzoo"
_FORMAT_VERSION = 2  # 2: the checksum covers the header too (1: the tensors only)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"cannot save a parameter of type {type(v).__name__}: {v!r}")


def _digest(tensors: dict, header: dict | None = None) -> str:
    """SHA-256 of the header entries (but ``sha256``) and of every tensor's name, dtype,
    shape and bytes (sorted by name); ``header=None`` hashes the tensors only (format 1).

    Stored in the header at save and checked at load: safetensors writes the header
    first and the data after it into a file of the final size, so a file whose writer was
    killed half-way has a valid header and zeros where data are missing; only the
    checksum tells it from a complete file. Covering the header makes a hand-edited
    parameter (which would load and compute different numbers) an error too.
    """
    import hashlib

    import torch

    h = hashlib.sha256()
    if header is not None:
        entries = {k: v for k, v in header.items() if k != "sha256"}
        h.update(json.dumps(entries, sort_keys=True).encode() + b"|")
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save(estimator, path) -> None:
    """Save a fitted estimator to ``path`` (a ``.safetensors`` file), atomically.

    Under ``torchrun`` only rank 0 writes (every rank holds the same model).
    """
    import torch
    from safetensors.torch import save_file

    from .registry import MODELS
    from .distributed import is_main_process

    estimator._check_fitted()
    if not is_main_process():  # under torchrun every rank holds the same model: rank 0 writes it
        return
    tensors, meta = estimator._get_fitted_state()
    out = {}
    for k, v in tensors.items():
        t = v.detach().cpu() if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v))
        if not torch.isfinite(t).all() if t.is_floating_point() else False:
            raise ValueError(f"refusing to save {type(estimator).__name__}: fitted array {k!r} contains NaN or inf")
        out[k] = t.contiguous()
    cls = type(estimator)
    names = [s.name for s in MODELS.values() if s.cls is cls]
    try:
        params = _jsonable(estimator.get_params(deep=False))
    except TypeError as e:
        raise TypeError(f"cannot save {cls.__name__}: {e}") from None
    from . import __version__

    header = {
        "format": _FORMAT,
        "format_version": str(_FORMAT_VERSION),
        "latentzoo_version": __version__,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "model": names[0] if names else "",
        "params": json.dumps(params),
        "fitted": json.dumps(_jsonable(meta)),
    }
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:  # scikit-learn's input feature names (fitted on a DataFrame)
        header["feature_names_in"] = json.dumps([str(v) for v in names])
    header["sha256"] = _digest(out, header)
    with atomic_write(path) as tmp:
        save_file(out, str(tmp), metadata=header)


def _registered_classes() -> dict[str, type]:
    from .registry import MODELS  # populated when the package (its model modules) is imported

    return {f"{s.cls.__module__}.{s.cls.__qualname__}": s.cls for s in MODELS.values()}


def load(path):
    """Load an estimator written by :meth:`LatentModel.save`.

    Only classes in latentzoo's model registry can be created; the file's JSON names
    the class and its parameters, its tensors the fitted arrays. A missing, truncated,
    corrupted or foreign file raises ``FileNotFoundError``/``ValueError`` naming it.
    """
    from safetensors import safe_open

    from ._atomic import check_readable

    path = Path(path)
    check_readable(path, "model file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{path} is not a readable latentzoo model file (truncated or corrupted?): {e}") from None
    if header.get("format") != _FORMAT:
        raise ValueError(f"{path} is a safetensors file but not a latentzoo model (no latentzoo header)")
    version = header.get("format_version", "0")
    if not version.isdigit():
        raise ValueError(f"{path} has a corrupted latentzoo header: format_version {version!r} is not a number")
    if int(version) > _FORMAT_VERSION:
        raise ValueError(f"{path} was written by a newer latentzoo (format {version})")
    _check_writer_version(path, header.get("latentzoo_version"))
    if int(version) >= 2 and "sha256" not in header:
        raise ValueError(f"{path} has no checksum in its latentzoo header (format {version} always writes "
                         "one): the header was edited or the file is damaged")
    if "sha256" not in header:
        import warnings

        warnings.warn(f"{path} has no checksum (a format-1 file from an early latentzoo): its contents cannot "
                      "be verified; save it again to add one", UserWarning, stacklevel=2)
    if "sha256" in header and _digest(tensors, header if int(version) >= 2 else None) != header["sha256"]:
        raise ValueError(f"{path} is incomplete or corrupted: its header or data do not match the checksum in "
                         "its header (edited by hand, or a half-written file from an interrupted save?)")
    classes = _registered_classes()
    cls = classes.get(header.get("class", ""))
    if cls is None:
        raise ValueError(f"{path} names an unknown model class {header.get('class')!r}")
    try:
        params = json.loads(header["params"])
        meta = json.loads(header["fitted"])
    except (KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} has a corrupted latentzoo header: {e}") from None
    if not isinstance(params, dict) or not isinstance(meta, dict):
        raise ValueError(f"{path} has a corrupted latentzoo header: params/fitted are not JSON objects")
    for k, t in tensors.items():
        if t.is_floating_point() and not bool(t.isfinite().all()):
            raise ValueError(f"{path}: fitted array {k!r} contains NaN or inf (a corrupted model file)")
    est = _restore(path, cls, params, meta, tensors)
    if "feature_names_in" in header:
        try:
            names = json.loads(header["feature_names_in"])
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} has a corrupted latentzoo header: feature_names_in: {e}") from None
        if not isinstance(names, list) or len(names) != est.n_features_in_:
            raise ValueError(f"{path} has a corrupted latentzoo header: feature_names_in does not list "
                             f"{est.n_features_in_} names")
        est.feature_names_in_ = np.asarray([str(v) for v in names], dtype=object)
    return est


def _check_writer_version(path: Path, written_by) -> None:
    """Refuse a file from a newer major latentzoo; warn about one from a newer minor version."""
    import warnings

    from . import __version__

    if written_by is None:  # files written before the version was stored
        return
    ours = _version_tuple(__version__)
    theirs = _version_tuple(written_by)
    if theirs is None:
        raise ValueError(f"{path} has a corrupted latentzoo header: latentzoo_version {written_by!r} "
                         "is not a version number")
    if theirs[0] > ours[0]:
        raise ValueError(f"{path} was written by latentzoo {written_by}, a newer major version than this "
                         f"latentzoo {__version__}; upgrade latentzoo to load it")
    if theirs > ours:
        warnings.warn(f"{path} was written by latentzoo {written_by}, newer than this latentzoo "
                      f"{__version__}; it loads, but upgrade if anything looks wrong", UserWarning, stacklevel=3)


def _version_tuple(text) -> tuple[int, ...] | None:
    import re

    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", str(text))
    return tuple(int(g or 0) for g in m.groups()) if m else None


def _restore(path: Path, cls: type, params: dict, meta: dict, tensors: dict):
    """Build ``cls(**params)`` with the fitted state; a file that does not fit it is a ValueError.

    The file's parameters are validated like ``fit`` would, and its arrays and metadata must
    be exactly those the estimator itself saves (``_get_fitted_state``), so a tampered or
    mismatched file fails here, naming the problem, rather than later in ``transform``.
    """
    from sklearn.exceptions import NotFittedError

    name = cls.__name__
    try:
        est = cls(**params)
        est._validate_params()
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: invalid {name} parameters in the file: {e}") from None
    try:
        est._set_fitted_state(tensors, meta)
        est._check_fitted()
        got_tensors, got_meta = est._get_fitted_state()
        # arrays of inconsistent shapes: one encode/decode of a zero row finds them
        est.inverse_transform(est.transform(np.zeros((1, int(est.n_features_in_)))))
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, IndexError, NotFittedError) as e:
        raise ValueError(f"{path}: the fitted state does not match {name} (corrupted model file?): "
                         f"{type(e).__name__}: {e}") from None
    if set(got_tensors) != set(tensors) or set(got_meta) != set(meta):
        extra = sorted((set(tensors) ^ set(got_tensors)) | (set(meta) ^ set(got_meta)))
        raise ValueError(f"{path}: the fitted state does not match {name} (corrupted model file?): "
                         f"unexpected or missing entries {', '.join(extra)}")
    return est
