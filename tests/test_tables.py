"""Real-world tables: sample IDs, NA tokens, numeric-ID headers, label gaps, continuous
labels, AnnData and Parquet files; each quirk with a small file."""
import warnings

import numpy as np
import pytest

from latentzoo import load_dataset
from latentzoo.data.labels import label_kind, labelled_mask


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_sample_id_column_is_detected_and_never_data(tmp_path):
    p = _write(tmp_path, "ids.csv", "sample,g1,g2\nS0000,1.5,2\nS0001,3,4.25\nS0002,5,6\n")
    ds = load_dataset(p)
    np.testing.assert_array_equal(ds.X, [[1.5, 2], [3, 4.25], [5, 6]])
    assert ds.row_ids == ["S0000", "S0001", "S0002"]
    assert ds.meta["columns"] == ["g1", "g2"] and ds.meta["id_column"] == "sample"


def test_id_column_by_name_or_index_and_not_unique_ids_are_not_detected(tmp_path):
    p = _write(tmp_path, "ids.csv", "a,id,b\n1,x,2\n3,y,4\n")
    for key in ("id", 1, -2):
        ds = load_dataset(p, id_column=key)
        np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])
        assert ds.row_ids == ["x", "y"]
    dup = _write(tmp_path, "dup.csv", "k,v\nA,1\nA,2\n")
    with pytest.raises(ValueError, match="non-numeric value 'A' at line 2.*id_column"):
        load_dataset(dup)


def test_r_style_header_one_field_short_means_row_names(tmp_path):
    p = _write(tmp_path, "r.tsv", "g1\tg2\nS1\t1\t2\nS2\t3\t4\n")
    ds = load_dataset(p)
    assert ds.row_ids == ["S1", "S2"] and ds.meta["columns"] == ["g1", "g2"]
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])


@pytest.mark.parametrize("token", ["NA", "NaN", "nan", "N/A", "", "?", "na"])
def test_na_tokens_are_missing_values(tmp_path, token):
    p = _write(tmp_path, "na.csv", f"a,b,c\n1,{token},3\n4,5,6\n")
    X = load_dataset(p, allow_nan=True).X
    assert np.isnan(X[0, 1]) and np.isnan(X).sum() == 1 and X[1, 2] == 6
    with pytest.raises(ValueError, match="NaN"):
        load_dataset(p)


def test_numeric_id_header_is_a_header_with_a_warning(tmp_path):
    rng = np.random.default_rng(0)
    ids = [7157, 1956, 672, 7422, 3845]
    body = "\n".join(",".join(f"{v:.3f}" for v in row) for row in rng.lognormal(size=(6, 5)))
    p = _write(tmp_path, "genes.csv", ",".join(map(str, ids)) + "\n" + body + "\n")
    with pytest.warns(UserWarning, match="7157,1956,672,7422,... read as a header.*--no-header"):
        ds = load_dataset(p)
    assert ds.meta["columns"] == [str(i) for i in ids] and ds.X.shape == (6, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_dataset(p, header=False).X.shape == (7, 5)
        assert load_dataset(p, header=True).meta["columns"][0] == "7157"


def test_numeric_ids_over_counts_detected_by_range_and_unsure_rows_warn(tmp_path):
    rng = np.random.default_rng(1)
    counts = rng.poisson(3, size=(12, 6))
    ids = [7157, 1956, 672, 7422, 3845, 5290]
    p = _write(tmp_path, "counts.csv", ",".join(map(str, ids)) + "\n"
               + "\n".join(",".join(map(str, r)) for r in counts) + "\n")
    with pytest.warns(UserWarning, match="read as a header"):
        np.testing.assert_array_equal(load_dataset(p).X, counts)
    # distinct integers like the rows below: kept as data, with a warning naming --header
    q = _write(tmp_path, "plain.csv", "0,1,2,3,4,5\n" + "\n".join(",".join(map(str, r)) for r in counts) + "\n")
    with pytest.warns(UserWarning, match="read as data.*--header"):
        assert load_dataset(q).X.shape == (13, 6)


def test_empty_label_cells_are_unlabelled_not_a_class(tmp_path):
    p = _write(tmp_path, "lab.csv", "x,y,cls\n1,2,a\n3,4,\n5,6,b\n7,8,NA\n")
    ds = load_dataset(p, label_column="cls")
    assert labelled_mask(ds.y).tolist() == [True, False, True, False]
    assert ds.meta["n_unlabelled"] == 2 and ds.meta["label_kind"] == "classes"
    q = _write(tmp_path, "num.csv", "x,y,cls\n1,2,0\n3,4,\n5,6,1\n")
    y = load_dataset(q, label_column="cls").y
    assert np.isnan(y[1]) and y[0] == 0 and y[2] == 1


def test_continuous_label_column(tmp_path):
    rng = np.random.default_rng(0)
    rows = "\n".join(f"{a:.3f},{b:.3f},{20 + 40 * rng.random():.2f}" for a, b in rng.normal(size=(40, 2)))
    ds = load_dataset(_write(tmp_path, "age.csv", "a,b,age\n" + rows + "\n"), label_column="age")
    assert ds.meta["label_kind"] == "continuous" == label_kind(ds.y)
    assert label_kind(np.arange(30)) == "continuous" and label_kind(np.array([1, 2, 2])) == "classes"


def test_dataframe_index_and_string_first_column_are_row_ids():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"g1": [1.0, 2.0], "g2": [3.0, np.nan]}, index=["c1", "c2"])
    ds = load_dataset(df, allow_nan=True)
    assert ds.row_ids == ["c1", "c2"] and ds.meta["columns"] == ["g1", "g2"] and np.isnan(ds.X[1, 1])
    ds = load_dataset(pd.DataFrame({"id": ["a", "b"], "v": [1, 2], "t": ["x", None]}), label_column="t")
    assert ds.row_ids == ["a", "b"] and ds.X.tolist() == [[1.0], [2.0]]
    assert labelled_mask(ds.y).tolist() == [True, False]


def test_parquet_through_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"cell": ["c1", "c2", "c3"], "g1": [1.0, 2.0, None], "g2": [4, 5, 6],
                       "type": ["T", None, "B"]})
    df.to_parquet(tmp_path / "t.parquet")
    ds = load_dataset(tmp_path / "t.parquet", label_column="type", allow_nan=True)
    assert ds.meta["format"] == "parquet" and ds.meta["columns"] == ["g1", "g2"]
    assert ds.row_ids == ["c1", "c2", "c3"] and np.isnan(ds.X[2, 0]) and ds.X[1, 1] == 5
    assert labelled_mask(ds.y).tolist() == [True, False, True]


def test_h5ad_written_by_anndata(tmp_path):
    ad = pytest.importorskip("anndata")
    pd = pytest.importorskip("pandas")
    from scipy import sparse

    rng = np.random.default_rng(0)
    counts = rng.poisson(2, size=(8, 5)).astype(np.float32)
    obs = pd.DataFrame({"cell_type": pd.Categorical(["T", "B", None, "T", "B", "T", "B", "T"])},
                       index=[f"cell{i}" for i in range(8)])
    var = pd.DataFrame(index=["TP53", "EGFR", "MYC", "KRAS", "GAPDH"])
    adata = ad.AnnData(X=sparse.csr_matrix(counts), obs=obs, var=var, layers={"log": np.log1p(counts)})
    adata.write_h5ad(tmp_path / "cells.h5ad")
    ds = load_dataset(tmp_path / "cells.h5ad", label_column="cell_type")
    np.testing.assert_array_equal(ds.X, counts)
    assert ds.meta["columns"] == ["TP53", "EGFR", "MYC", "KRAS", "GAPDH"] and ds.row_ids[0] == "cell0"
    assert labelled_mask(ds.y).tolist() == [True, True, False, True, True, True, True, True]
    np.testing.assert_allclose(load_dataset(tmp_path / "cells.h5ad", layer="log").X, np.log1p(counts), rtol=1e-6)
    with pytest.raises(ValueError, match="no layer 'raw'; layers: log"):
        load_dataset(tmp_path / "cells.h5ad", layer="raw")
    with pytest.raises(ValueError, match="label_column 'tissue' is not an obs column; obs columns: cell_type"):
        load_dataset(tmp_path / "cells.h5ad", label_column="tissue")


def test_h5ad_without_anndata_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "anndata", None)  # as if not installed: import raises ImportError
    (tmp_path / "x.h5ad").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match=r"needs the anndata package.*latentzoo\[omics\]"):
        load_dataset(tmp_path / "x.h5ad")
