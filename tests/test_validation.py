"""The one finite-value check: every path names the first bad entry the same way,
rows and columns counted from 0 (numpy's ``X[row, column]``)."""
import numpy as np
import pytest

from latentzoo import PCA, Autoencoder, load_dataset
from latentzoo._validation import check_finite


@pytest.mark.parametrize("kind, value", [("NaN", np.nan), ("inf", np.inf), ("inf", -np.inf)])
def test_estimator_data_file_and_stream_name_the_same_entry(tmp_path, kind, value):
    X = np.random.default_rng(0).random((40, 5)).astype(np.float32)
    X[[31, 35], [3, 1]] = value  # the first bad entry in row order is X[31, 3]
    where = rf"{kind} first at row 31, column 3; rows and columns count from 0"
    with pytest.raises(ValueError, match=r"X contains 2 non-finite value\(s\) \(" + where):
        PCA(2).fit(X)
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(ValueError, match=r"x\.npy contains 2 non-finite value\(s\) \(" + where):
        load_dataset(tmp_path / "x.npy")
    stream = np.load(tmp_path / "x.npy", mmap_mode="r")
    with pytest.raises(ValueError, match=r"X contains non-finite values \(" + where):
        Autoencoder(2, hidden=(4,), max_epochs=1, verbose=0).fit(stream)


def test_a_chunk_counts_rows_from_the_start_of_the_whole_array():
    chunk = np.zeros((4, 2))
    chunk[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN first at row 1002, column 1"):
        check_finite(chunk, row_offset=1000, counted=False)


def test_text_rows_are_named_by_their_line_and_columns_by_name():
    X = np.array([[1.0, 2.0], [3.0, np.inf]])
    with pytest.raises(ValueError, match=r"inf first at line 3, column 'b' \(index 1\); columns count from 0"):
        check_finite(X, what="t.csv", columns=["a", "b"], row_names=["line 2", "line 3"])


def test_nan_allowed_inf_never_and_the_hint_only_for_nan():
    X = np.array([[np.nan, 1.0], [2.0, 3.0]])
    check_finite(X, allow_nan=True)  # NaN kept as missing: no error
    with pytest.raises(ValueError, match=r"NaN first at row 0, column 0.*; keep them"):
        check_finite(X, nan_hint="; keep them")
    X[1, 1] = np.inf
    with pytest.raises(ValueError, match=r"inf first at row 1, column 1") as err:
        check_finite(X, allow_nan=True, nan_hint="; keep them")
    assert "keep them" not in str(err.value)
    check_finite(np.array([[1, 2]]))  # integers are always finite
