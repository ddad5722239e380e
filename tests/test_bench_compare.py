"""benchmarks/bench_compare.py's paired comparison over seeds, against scipy's paired t-test."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_compare.py"
spec = importlib.util.spec_from_file_location("bench_compare", _PATH)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def _doc(values: dict) -> dict:
    """A metrics.json with runs ``{(model, seed): {metric: value}}``."""
    return {"runs": [{"model": m, "seed": s, "metrics": dict(v)} for (m, s), v in values.items()]}


def test_paired_interval_is_scipys_paired_t_interval():
    rng = np.random.default_rng(0)
    ref = -2250 + 30 * rng.standard_normal(4)
    dflt = ref + 10 + 5 * rng.standard_normal(4)
    a = _doc({("vae", s): {"log_likelihood": dflt[s]} for s in range(4)})
    b = _doc({("vae", s): {"log_likelihood": ref[s]} for s in range(4)})
    (row,) = bench.paired_differences(a, b)
    ci = stats.ttest_rel(dflt, ref).confidence_interval(0.95)
    scale = abs(ref.mean())
    assert row["n_seeds"] == 4
    assert row["relative_difference"] == pytest.approx((dflt.mean() - ref.mean()) / scale)
    assert row["ci95"] == pytest.approx([ci.low / scale, ci.high / scale])
    assert row["reference_relative_sd"] == pytest.approx(ref.std(ddof=1) / scale)


def test_pairs_only_shared_seeds_and_skips_missing_metrics():
    a = _doc({("ae", 0): {"reconstruction_error": 10.0, "log_likelihood": None},
              ("ae", 1): {"reconstruction_error": 12.0}, ("ae", 2): {"reconstruction_error": 99.0}})
    b = _doc({("ae", 0): {"reconstruction_error": 9.0}, ("ae", 1): {"reconstruction_error": 11.0}})
    (row,) = bench.paired_differences(a, b)  # no log_likelihood row: the default has none
    assert row["n_seeds"] == 2  # seed 2 has no reference partner
    assert row["relative_difference"] == pytest.approx(1.0 / 10.0)
    assert row["ci95"][0] == pytest.approx(row["ci95"][1])  # identical differences: a zero-width interval
