"""Delimited text (CSV/TSV/whitespace) to a float array, with errors that name line and column.

Parsed with the ``csv`` module and numpy only (pandas is not needed). Rules:

* delimiter: the one of ``, \\t ; |`` that splits the first lines into the same number
  (> 1) of fields, else whitespace;
* blank lines and lines starting with ``#`` are skipped;
* header: a first row with a cell that is not a number is a header (column names);
* an empty cell is a missing value (NaN, kept only with ``allow_nan=True``).
"""
from __future__ import annotations

import csv
import io

import numpy as np

__all__ = ["parse_table", "sniff_delimiter", "resolve_column"]

_CANDIDATES = (",", "\t", ";", "|")


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


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return cell.strip() == ""


def resolve_column(key, columns: list[str] | None, n_columns: int, where: str) -> int:
    """Index of column ``key`` (a name, or an int that may be negative)."""
    n = n_columns
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if not -n <= key < n:
            raise ValueError(f"{where}: label_column {key} is out of range for {n} columns.")
        return int(key) % n
    if columns is None:
        raise ValueError(f"{where}: label_column {key!r} is a name but the data has no header row; "
                         "pass a column index.")
    if key not in columns:
        raise ValueError(f"{where}: label_column {key!r} is not a column; columns: {', '.join(columns)}.")
    return columns.index(key)


def _labels(cells: list[str]) -> np.ndarray:
    try:
        v = np.array([float(c) for c in cells])
    except ValueError:
        return np.array([c.strip() for c in cells])
    return v.astype(np.int64) if np.all(np.isfinite(v)) and np.all(v == np.round(v)) else v


def parse_table(text: str, where: str, *, delimiter: str | None = "auto", label_column=None):
    """Parse ``text``; return ``(X float64, y or None, columns or None, line numbers)``."""
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
    if not all(_is_number(c) for c in rows[0]):
        columns = [c.strip() for c in rows[0]]
        rows, numbers = rows[1:], numbers[1:]
        if not rows:
            raise ValueError(f"{where}: the file has a header ({', '.join(columns)}) but zero data rows.")
    width = len(columns) if columns is not None else len(rows[0])
    for r, ln in zip(rows, numbers):
        if len(r) != width:
            raise ValueError(f"{where}: ragged rows: line {ln} has {len(r)} fields, expected {width} "
                             "(as in the first row).")
    y = None
    if label_column is not None:
        k = resolve_column(label_column, columns, width, where)
        y = _labels([r[k] for r in rows])
        rows = [r[:k] + r[k + 1:] for r in rows]
        columns = None if columns is None else columns[:k] + columns[k + 1:]
        width -= 1
    cells = np.array(rows, dtype=str).reshape(len(rows), width)
    cells = np.where(np.char.strip(cells) == "", "nan", cells)
    try:
        X = cells.astype(np.float64)
    except ValueError:
        _raise_first_bad(cells, numbers, columns, where)
    return X, y, columns, numbers


def _raise_first_bad(cells: np.ndarray, numbers: list[int], columns, where: str):
    for i, row in enumerate(cells):
        for j, c in enumerate(row):
            try:
                float(c)
            except ValueError:
                col = f"column {columns[j]!r} (index {j})" if columns is not None else f"column {j}"
                raise ValueError(f"{where}: non-numeric value {str(c)!r} at line {numbers[i]}, {col} "
                                 "(lines 1-based, columns 0-based).") from None
    raise ValueError(f"{where}: could not parse the numbers.")  # pragma: no cover
