"""What the subcommands share: errors, the parser class, data/model loading, atomic writes."""
from __future__ import annotations

import argparse
import ast
import contextlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["CLIError", "UsageError", "Parser", "Command", "add_data_args", "load_data", "load_model",
           "write_array", "write_json", "check_fits", "parse_value", "MODEL_FILE", "INFO_FILE", "ARRAY_SUFFIXES"]

MODEL_FILE = "model.safetensors"
INFO_FILE = "info.json"
ARRAY_SUFFIXES = (".npy", ".csv")


class CLIError(Exception):
    """An error the CLI reports in one line; ``exit_code`` 1."""

    exit_code = 1


class UsageError(CLIError):
    """A usage error (bad option, unknown model or parameter); ``exit_code`` 2."""

    exit_code = 2


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors raise :class:`UsageError` (one line, no usage dump)."""

    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kw.setdefault("allow_abbrev", False)  # model parameters must never match a CLI option by prefix
        super().__init__(*args, **kw)

    def error(self, message):
        raise UsageError(f"{self.prog.split()[-1]}: {message}" if " " in self.prog else message)


@dataclass(frozen=True)
class Command:
    """A subcommand: its help line, examples, how to add its arguments and how to run it."""

    name: str
    help: str
    examples: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, list], int]
    takes_extra: bool = False


#: the largest --n-importance the CLI accepts: 20x the k = 5000 of Burda et al. (2016)'s
#: evaluation; the cost grows linearly in k (a 64-feature VAE at k = 1e8 would run for days)
MAX_N_IMPORTANCE = 100_000


def seed_type(text: str) -> int:
    """``--seed``: an integer in [0, 2**32 - 1] (the range numpy and scikit-learn seed from)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed in [0, 2**32 - 1], got {text!r}") from None
    if not 0 <= n < 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer seed in [0, 2**32 - 1], got {n}")
    return n


def positive_int_type(text: str) -> int:
    """An argparse type: a positive integer, else the one-line usage error."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def n_importance_type(text: str) -> int:
    """``--n-importance``: a positive integer up to :data:`MAX_N_IMPORTANCE`."""
    n = positive_int_type(text)
    if n > MAX_N_IMPORTANCE:
        raise argparse.ArgumentTypeError(
            f"{n} importance samples per point is past the bound of {MAX_N_IMPORTANCE} (the cost grows linearly "
            f"in k; Burda et al. evaluate at k = 5000); use latentzoo.VAE.score_samples in Python for more")
    return n


def _label_column(s: str):
    return int(s) if s.lstrip("-").isdigit() else s


def add_data_args(p: argparse.ArgumentParser, *, optional: bool = False) -> None:
    help_ = ("data: an embedded name (digits, gaussian-mixture, moons, swiss-roll) or a file/folder "
             "(.csv/.tsv, .parquet, .h5ad, .npy, .npz, MNIST IDX, .amat); empty/NA/NaN/N/A/? cells are "
             "missing values; a .npy file above 5%% of available memory is memory-mapped")
    if optional:
        p.add_argument("data", nargs="?", default="digits", help=help_ + " (default: digits)")
    else:
        p.add_argument("data", help=help_)
    p.add_argument("--label-column", type=_label_column, default=None,
                   help="table column holding labels (name or 0-based index; .h5ad: an obs column); "
                        "empty cells are unlabelled rows")
    p.add_argument("--id-column", type=_label_column, default=None,
                   help="table column of row IDs (name or 0-based index; default: a first column of "
                        "unique non-numeric cells)")
    hdr = p.add_mutually_exclusive_group()
    hdr.add_argument("--header", dest="header", action="store_const", const=True, default=None,
                     help="the first row of a text table holds column names (default: detected)")
    hdr.add_argument("--no-header", dest="header", action="store_const", const=False,
                     help="the first row of a text table is data")
    p.add_argument("--layer", default=None, help=".h5ad only: read this layer instead of X")


PREPROCESS_FILE = "preprocess.json"


def add_preprocess_arg(p: argparse.ArgumentParser) -> None:
    from ..preprocessing import METHODS

    p.add_argument("--preprocess", default="auto", choices=("auto", *METHODS), metavar="METHOD",
                   help="auto, none, minmax, standard, log1p, log1p+standard or scale255 (default: auto: "
                        "uint8 data divided by 255, non-negative integer counts log1p, columns whose ranges are "
                        "more than 100x apart standard, other data as they are)")


def fit_preprocessor(args, X, meta):
    """``(X preprocessed, Preprocessor or None)``: the ``--preprocess`` method fitted on ``X``;
    None (and ``X`` itself) when it leaves the data as they are."""
    from ..preprocessing import Preprocessor, describe

    pre = Preprocessor(args.preprocess).fit(X, stored_dtype=meta.get("stored_dtype"))
    meta["preprocess"] = describe(pre.method_, pre.reason_)
    if pre.method_ == "none":
        return X, None
    return _apply(pre, X), pre


def _apply(pre, X):
    """``pre.transform(X)`` as float32, block by block (the float64 transform of the whole table
    and its temporaries would be 6x a float32 table's size); a memory map stays one (preprocessed
    into a temporary file, removed with the mapping), in-memory data stay in memory."""
    from ..data.blocks import is_mapped, map_to_array, map_to_memmap

    if is_mapped(X):
        return map_to_memmap(pre.transform, X, prefix="preprocessed")
    return map_to_array(pre.transform, X)


def load_preprocessor(where):
    """The preprocessing saved beside a model by ``latentzoo fit`` (``preprocess.json``), or None."""
    from ..preprocessing import Preprocessor

    p = model_path(where).parent / PREPROCESS_FILE
    if not p.is_file():
        return None
    try:
        return Preprocessor.from_json(p.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{p}: not a valid preprocessing file ({e})") from None


def preprocessed(pre, X):
    """``X`` through the saved preprocessing (as it was for the fit), or ``X`` itself."""
    if pre is None:
        return X
    if pre.n_features_in_ != X.shape[1]:
        return X  # check_fits names the mismatch
    return _apply(pre, X)


def data_options(args) -> dict:
    """``load_dataset`` keywords of the data arguments; missing values (NaN) are kept: the
    models that cannot take them say so."""
    opts = {k: getattr(args, k) for k in ("label_column", "id_column", "header", "layer")
            if getattr(args, k, None) is not None}
    return {**opts, "allow_nan": True}


@contextlib.contextmanager
def warnings_as_lines():
    """Data warnings (e.g. how a header was read) as one ``latentzoo: warning:`` line each."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, UserWarning):
                    print(f"latentzoo: warning: {w.message}", file=sys.stderr)


def load_data(args, **kw):
    """The command's data (:func:`data_options`), data warnings as one line each."""
    from ..data import load_dataset

    with warnings_as_lines():
        return load_dataset(args.data, **data_options(args), **kw)


def model_path(where) -> Path:
    """A saved model: ``DIR/model.safetensors`` for a folder, else the file itself."""
    p = Path(where)
    try:
        if p.is_dir():
            return p / MODEL_FILE
        exists = p.exists()
    except PermissionError:  # a folder on the way that this user may not enter
        raise PermissionError(f"cannot read {p}: permission denied (a folder above it is not accessible "
                              "to this user)") from None
    if not exists:
        raise FileNotFoundError(f"{p}: no such model folder or file")
    return p


def load_model(where):
    from ..persistence import load

    p = model_path(where)
    try:
        exists = p.exists()
    except PermissionError:
        raise PermissionError(f"cannot read {p}: permission denied (its folder is not accessible to this "
                              "user)") from None
    if not exists:
        raise FileNotFoundError(f"{p.parent}: no {MODEL_FILE} in this folder (write one with `latentzoo fit`)")
    return load(p)


def check_fits(model, X, meta) -> None:
    """Data must have the feature count the model was fitted on (named in the error)."""
    d = getattr(model, "n_features_in_", None)
    if d is not None and X.shape[1] != d:
        raise ValueError(f"data {meta.get('source')!s} has {X.shape[1]} features but the model "
                         f"({type(model).__name__}) was fitted on {d}")
    fitted, given = getattr(model, "feature_names_in_", None), meta.get("columns")
    if fitted is not None and given is not None and list(map(str, fitted)) != list(map(str, given)):
        j = next(i for i, (a, b) in enumerate(zip(fitted, given)) if str(a) != str(b))
        raise ValueError(f"data {meta.get('source')!s} have other feature names than the model was fitted on: "
                         f"column {j} is {str(given[j])!r}, the model's is {str(fitted[j])!r}")


def model_name(model) -> str:
    from ..registry import MODELS

    params = model.get_params(deep=False)
    for spec in MODELS.values():  # the most specific preset that matches the parameters
        if spec.cls is type(model) and spec.params and all(params.get(k) == v for k, v in spec.params.items()):
            return spec.name
    for spec in MODELS.values():
        if spec.cls is type(model):
            return spec.name
    return type(model).__name__


def check_array_suffix(path) -> Path:
    p = Path(path)
    if p.suffix.lower() not in ARRAY_SUFFIXES:
        raise UsageError(f"--out {p}: unsupported file type {p.suffix!r}; use one of {', '.join(ARRAY_SUFFIXES)}")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"--out {p}: folder {p.parent} does not exist")
    return p


def row_ids_path(path) -> Path:
    """Where the row IDs of an ``.npy`` output go: ``codes.npy`` -> ``codes.row_ids.txt``."""
    p = Path(path)
    return p.with_name(p.stem + ".row_ids.txt")


def write_array(path, arr: np.ndarray, *, row_ids=None, columns=None, id_name: str = "id") -> Path:
    """Write ``arr`` as .npy or .csv, atomically (temporary file, then rename).

    With ``row_ids``, a CSV gets a header (``id_name``, then ``columns``) and the IDs as
    its first column; an ``.npy`` file gets them one per line in ``NAME.row_ids.txt``.
    """
    import csv

    from .._atomic import atomic_write

    p = check_array_suffix(path)
    if p.suffix.lower() == ".npy":
        with atomic_write(p) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
        if row_ids is not None:
            with atomic_write(row_ids_path(p)) as tmp:
                Path(tmp).write_text("".join(f"{r}\n" for r in row_ids), encoding="utf-8")
        return p
    with atomic_write(p) as tmp:
        if row_ids is None:
            np.savetxt(tmp, arr, delimiter=",", fmt="%.9g")
        else:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow([id_name, *(columns or [f"z{j}" for j in range(arr.shape[1])])])
                for r, row in zip(row_ids, arr):
                    w.writerow([r, *(f"{v:.9g}" for v in row)])
    return p


def write_json(path, obj) -> None:
    from .._atomic import atomic_write

    with atomic_write(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, default=_json_default), encoding="utf-8")


def _json_default(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return repr(v)


def parse_value(text: str):
    """A Python literal (``ast.literal_eval``: numbers, tuples, None, ...) else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def echo(line: str) -> None:
    """One line of CLI output on stdout (kept clear of a running progress bar)."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stdout)
