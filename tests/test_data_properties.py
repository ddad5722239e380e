"""Property-based tests of latentzoo.data loaders (hypothesis, few examples each)."""
import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from latentzoo.data import load_dataset

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

finite_floats = st.floats(min_value=-1e30, max_value=1e30, allow_nan=False, allow_infinity=False, width=64)
shapes_2d = array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6)


def _elements(dtype):
    if dtype == np.bool_:
        return None
    if np.issubdtype(dtype, np.integer):
        return st.integers(0, 100)
    return st.floats(-100, 100, width=16 if dtype == np.float16 else 32)


@SETTINGS
@given(arrays(np.float64, shapes_2d, elements=finite_floats))
def test_npy_round_trip(tmp_path, A):
    path = tmp_path / "a.npy"
    np.save(path, A)
    X, y, meta = load_dataset(path)
    assert X.dtype == np.float32 and X.flags.c_contiguous and y is None
    np.testing.assert_array_equal(X, A.astype(np.float32))
    assert (meta["n_samples"], meta["n_features"]) == A.shape


@SETTINGS
@given(arrays(np.float64, shapes_2d, elements=finite_floats), st.sampled_from([",", "\t", ";", " "]))
@example(np.array([[2.0, 0.0, 1.0], [0.5, 0.5, 0.5]]), ",")  # found by hypothesis: the header case
@example(np.array([[2.0, 0.0, 1.0], [3.0, 4.0, 5.0]]), ",")  # integers below too: data
def test_csv_round_trip(tmp_path, A, delimiter):
    """With ``header=False`` every table comes back; with header detection too, unless the
    first row is what the loader documents as a numeric-name header (3 or more distinct
    integers, e.g. wavelengths, above real-valued rows), and then it says so in a warning."""
    import warnings

    path = tmp_path / "a.csv"
    np.savetxt(path, A, delimiter=delimiter, fmt="%.17g")
    np.testing.assert_array_equal(load_dataset(path, header=False).X, A.astype(np.float32))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X = load_dataset(path).X
    first = A[0]
    if X.shape == (A.shape[0] - 1, A.shape[1]):  # read as a header: only ever the documented case
        assert A.shape[1] >= 3 and np.all(first == np.round(first)) and len(set(first)) == len(first)
        assert any("read as a header" in str(w.message) for w in caught)
        np.testing.assert_array_equal(X, A[1:].astype(np.float32))
    else:
        np.testing.assert_array_equal(X, A.astype(np.float32))


dtypes = st.sampled_from([np.uint8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_])


@SETTINGS
@given(st.data(), dtypes, array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4))
def test_shape_and_dtype_handling_is_consistent(tmp_path, data, dtype, shape):
    A = data.draw(arrays(dtype, shape, elements=_elements(dtype)))
    path = tmp_path / "a.npy"
    np.save(path, A)
    ok = A.ndim in (2, 3) and A.shape[0] > 0 and int(np.prod(A.shape[1:])) > 0
    for source in (A, path):
        if not ok:
            try:
                load_dataset(source)
            except ValueError:
                continue
            raise AssertionError(f"shape {A.shape} was accepted")
        X, _, meta = load_dataset(source)
        flat = A.reshape(A.shape[0], -1)
        np.testing.assert_array_equal(X, flat.astype(np.float32))
        assert meta["image_shape"] == (A.shape[1:] if A.ndim == 3 else None)
        assert meta["value_range"] == (float(flat.min()), float(flat.max()))
    if ok:  # mmap keeps the stored dtype and agrees with the converted load
        Xm = load_dataset(path, mmap=True).X
        assert Xm.dtype == A.dtype
        np.testing.assert_array_equal(Xm.astype(np.float32), load_dataset(path).X)


suffixes = st.sampled_from(["a.csv", "a.tsv", "a.txt", "a.csv.gz", "a.npy", "a.npz", "x-idx3-ubyte",
                            "x-idx3-ubyte.gz", "a.amat", "a.amat.gz"])


@SETTINGS
@given(st.binary(max_size=200), suffixes)
def test_junk_bytes_raise_value_error(tmp_path, blob, name):
    path = tmp_path / name
    path.write_bytes(blob)
    try:
        load_dataset(path)
    except ValueError:
        return
    # junk that happens to be a valid file must then give a valid dataset
    X, _, meta = load_dataset(path)
    assert X.ndim == 2 and X.dtype == np.float32 and np.isfinite(X).all()


@SETTINGS
@given(st.lists(st.text(alphabet="0123456789.,-e abc\t;\n", max_size=12), min_size=1, max_size=6))
def test_junk_text_csv_raises_value_error_only(tmp_path, lines):
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines))
    try:
        X = load_dataset(path).X
    except ValueError:
        return
    assert X.ndim == 2 and np.isfinite(X).all()
