"""Delimited text (CSV/TSV/whitespace) to a float array, with errors that name line and column.

Parsed with the ``csv`` module and numpy only (pandas is not needed). Rules:

* delimiter: the one of ``, \\t ; |`` that splits the first lines into the same number
  (> 1) of fields, else whitespace;
* blank lines and lines starting with ``#`` are skipped;
* missing values: the cells of :data:`NA_TOKENS` (``NA``, ``NaN``, ``nan``, ``N/A``,
  ``?``, empty; any case) are NaN in the data and unlabelled rows in a label column;
* header (``header=None``, detected): a first row with a cell that is neither a number
  nor a missing-value token is a header (column names). A first row of distinct
  integers above a body whose values do not look like it (``7157,1956,...`` over
  expression values) is a header of numeric IDs, with a warning; a row of distinct
  integers over integer data is kept as data, with a warning saying how to say otherwise;
* row IDs: ``id_column`` (name or index), or, when not given, a first column whose
  cells are all non-numeric and unique (sample IDs such as ``S0001``); they name the
  rows and are never data. A header one field shorter than the data rows (R's
  ``write.table``) means the first column holds the row names.
"""
from __future__ import annotations

import csv
import io
import re
import warnings

import numpy as np

__all__ = ["parse_table", "sniff_delimiter", "resolve_column", "NA_TOKENS", "Table"]

_CANDIDATES = (",", "\t", ";", "|")
#: cells read as missing values (compared after ``strip().lower()``)
NA_TOKENS = frozenset({"", "na", "nan", "n/a", "?", "null", "none"})
_INT = re.compile(r"[+-]?\d+$")


def sniff_delimiter(lines: list[str]) -> str | None:
    """The candidate delimiter that splits ``lines`` consistently, else None (whitespace)."""
    best, best_count = None, 1
    for d in _CANDIDATES:
        counts = {len(next(csv.reader([ln], delimiter=d))) for ln in lines}
        if len(counts) == 1 and (n := counts.pop()) > best_count:
            best, best_count = d, n
    if best is None:  # ragged files: fall back to the delimiter of the first line
        first = lines[0]
        hits = [(first.count(d), d) for d in _CANDIDATES if d in first]
        best = max(hits)[1] if hits else None
    return best


def _is_na(cell: str) -> bool:
    return cell.strip().lower() in NA_TOKENS


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return _is_na(cell)


def resolve_column(key, columns: list[str] | None, n_columns: int, where: str, what: str = "label_column") -> int:
    """Index of column ``key`` (a name, or an int that may be negative)."""
    n = n_columns
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if not -n <= key < n:
            raise ValueError(f"{where}: {what} {key} is out of range for {n} columns.")
        return int(key) % n
    if columns is None:
        raise ValueError(f"{where}: {what} {key!r} is a name but the data has no header row; "
                         "pass a column index.")
    if key not in columns:
        shown = ", ".join(columns[:20]) + (f", ... ({len(columns)} columns)" if len(columns) > 20 else "")
        raise ValueError(f"{where}: {what} {key!r} is not a column; columns: {shown}.")
    return columns.index(key)


def parse_labels(cells) -> np.ndarray:
    """Label cells to an array: integers, floats (NaN = unlabelled) or strings ('' = unlabelled)."""
    cells = [str(c).strip() for c in cells]
    missing = [_is_na(c) for c in cells]
    try:
        v = np.array([np.nan if m else float(c) for c, m in zip(cells, missing)])
    except ValueError:
        return np.array(["" if m else c for c, m in zip(cells, missing)])
    if not any(missing) and np.all(np.isfinite(v)) and np.all(v == np.round(v)):
        return v.astype(np.int64)
    return v


class Table:
    """What :func:`parse_table` returns: data, labels, names and provenance of one table."""

    def __init__(self, X, y, columns, lines, row_ids, id_column):
        self.X, self.y, self.columns, self.lines = X, y, columns, lines
        self.row_ids, self.id_column = row_ids, id_column


def _float_rows(body: list[list[str]]) -> np.ndarray | None:
    try:
        return np.array([[np.nan if _is_na(c) else float(c) for c in r] for r in body], dtype=np.float64)
    except ValueError:  # a non-numeric cell: the parser names it later
        return None


def _numeric_header(first: list[str], body: list[list[str]]) -> bool | None:
    """Whether an all-numeric first row is a header of numeric IDs: True (confident),
    False (data), None (unsure: distinct integers over integer data, wide tables only)."""
    cells = [c.strip() for c in first]
    if len(cells) < 3 or not all(_INT.match(c) for c in cells) or len(set(cells)) < len(cells):
        return False
    vals = _float_rows([r for r in body[:200] if len(r) == len(first)])
    if vals is None or not np.isfinite(vals).any():
        return False
    finite = vals[np.isfinite(vals)]
    if np.mean(finite != np.round(finite)) > 0.5:
        return True  # integer IDs above real-valued data
    head = np.array([float(c) for c in cells])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanmin(vals, axis=0), np.nanmax(vals, axis=0)
    spread = np.where(np.isfinite(hi - lo), hi - lo, 0.0)
    outside = (spread > 0) & ((head > hi + spread) | (head < lo - spread))
    if len(vals) >= 5 and np.mean(outside) > 0.8:
        return True  # every "value" of the first row lies far outside its column
    return None if len(cells) >= 5 else False


def _detect_header(rows: list[list[str]], header, where: str) -> bool:
    if header is not None:
        return bool(header)
    first = rows[0]
    if not all(_is_number(c) for c in first):
        return True
    verdict = _numeric_header(first, rows[1:])
    shown = ",".join(c.strip() for c in first[:4]) + (",..." if len(first) > 4 else "")
    if verdict:
        warnings.warn(f"{where}: first row {shown} read as a header of numeric column names (distinct integers "
                      "unlike the rows below); pass header=False (CLI: --no-header) if it is data.", stacklevel=4)
    elif verdict is None:
        warnings.warn(f"{where}: first row {shown} (distinct integers) read as data; pass header=True "
                      "(CLI: --header) if these are column names.", stacklevel=4)
    return bool(verdict)


def _auto_id_column(rows: list[list[str]]) -> bool:
    """A first column of non-numeric, unique, non-empty cells is a column of row IDs."""
    cells = [r[0].strip() for r in rows if r]
    return (len(rows[0]) > 1 and all(cells) and not any(_is_number(c) for c in cells)
            and len(set(cells)) == len(cells))


def parse_table(text: str, where: str, *, delimiter: str | None = "auto", label_column=None,
                id_column=None, header: bool | None = None) -> Table:
    """Parse ``text`` into a :class:`Table` (``X`` float64 with NaN for missing cells)."""
    lines, numbers = [], []
    for i, ln in enumerate(text.splitlines(), start=1):
        if ln.strip() and not ln.lstrip().startswith("#"):
            lines.append(ln)
            numbers.append(i)
    if not lines:
        raise ValueError(f"{where}: empty file (no data rows).")
    if delimiter == "auto":
        delimiter = sniff_delimiter(lines[:20])
    if delimiter is None:
        rows = [ln.split() for ln in lines]
    else:
        rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter))
    columns = None
    if _detect_header(rows, header, where):
        columns = [c.strip() for c in rows[0]]
        rows, numbers = rows[1:], numbers[1:]
        if not rows:
            raise ValueError(f"{where}: the file has a header ({', '.join(columns[:10])}) but zero data rows.")
        if len(columns) == len(rows[0]) - 1 and all(len(r) == len(rows[0]) for r in rows):
            columns = [""] + columns  # R's write.table: the header has no cell above the row names
            id_column = 0 if id_column in (None, False) else id_column
    width = len(columns) if columns is not None else len(rows[0])
    for r, ln in zip(rows, numbers):
        if len(r) != width:
            raise ValueError(f"{where}: ragged rows: line {ln} has {len(r)} fields, expected {width} "
                             "(as in the first row).")
    if id_column is None and _auto_id_column(rows):
        id_column = 0
    elif id_column is False:  # no row IDs, and no detection
        id_column = None
    drop, y, row_ids, id_name = [], None, None, None
    if id_column is not None:
        k = resolve_column(id_column, columns, width, where, "id_column")
        row_ids = [r[k].strip() for r in rows]
        id_name = columns[k] if columns is not None else k
        drop.append(k)
    if label_column is not None:
        k = resolve_column(label_column, columns, width, where)
        if k in drop:
            raise ValueError(f"{where}: label_column {label_column!r} is the id column.")
        y = parse_labels([r[k] for r in rows])
        drop.append(k)
    keep = [j for j in range(width) if j not in drop]
    if drop:
        rows = [[r[j] for j in keep] for r in rows]
        columns = None if columns is None else [columns[j] for j in keep]
    if not keep:
        raise ValueError(f"{where}: no data columns left after the id and label columns.")
    cells = np.array(rows, dtype=str).reshape(len(rows), len(keep))
    na = np.isin(np.char.lower(np.char.strip(cells)), list(NA_TOKENS))
    cells = np.where(na, "nan", cells)
    try:
        X = cells.astype(np.float64)
    except ValueError:
        _raise_first_bad(cells, numbers, columns, where)
    return Table(X, y, columns, numbers, row_ids, id_name)


def _raise_first_bad(cells: np.ndarray, numbers: list[int], columns, where: str):
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            try:
                float(c)
            except ValueError:
                col = f"column {columns[j]!r} (index {j})" if columns is not None else f"column {j}"
                hint = (" (a column of sample IDs? pass id_column= / --id-column)" if j == 0 else
                        " (a column of labels? pass label_column= / --label-column)")
                raise ValueError(f"{where}: non-numeric value {str(c)!r} at line {numbers[i]}, {col} "
                                 f"(lines 1-based, columns 0-based){hint}.") from None
    raise ValueError(f"{where}: could not parse the numbers.")  # pragma: no cover
