"""Large .npy files are memory-mapped by default (above a fraction of available memory,
overridable by LATENTZOO_MMAP_BYTES / LATENTZOO_MMAP_FRACTION), and a CLI fit of one keeps
its anonymous memory (RssAnon, what the process allocates itself) bounded."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latentzoo import load_dataset
from latentzoo.data._memory import MMAP_FRACTION, available_memory, mmap_threshold

#: benchmarks/memory_probe.py: runs the CLI in this process and prints its peak RssAnon above the
#: level after the imports (bytes)
_PROBE = Path(__file__).parents[1] / "benchmarks" / "memory_probe.py"


def _peak(argv, threshold, tmpdir=None) -> int:
    """Peak anonymous memory (bytes above the imports) of one CLI command, run by the probe
    (``tmpdir``: its temporary files' folder)."""
    env = {**os.environ, "LATENTZOO_MMAP_BYTES": str(threshold), "OMP_NUM_THREADS": "1",
           **({"TMPDIR": str(tmpdir)} if tmpdir else {}),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, str(_PROBE), *map(str, argv)], capture_output=True, text=True, env=env,
                         timeout=600)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("PEAK")]
    assert line and line[0].endswith("CODE 0"), res.stdout + res.stderr
    return int(line[0].split()[1])


def _fit_peak(tmp_path, data, out, threshold) -> int:
    return _peak(["fit", "vae", data, "--out", out, "--max_epochs", "1", "--hidden", "(16,)",
                  "--batch_size", "1024", "--validation_fraction", "0.0", "--likelihood", "gaussian"], threshold)


def test_threshold_is_a_fraction_of_available_memory_and_overridable(monkeypatch, tmp_path):
    monkeypatch.delenv("LATENTZOO_MMAP_BYTES", raising=False)
    monkeypatch.delenv("LATENTZOO_MMAP_FRACTION", raising=False)
    assert abs(mmap_threshold() - MMAP_FRACTION * available_memory()) < 0.02 * available_memory()
    monkeypatch.setenv("LATENTZOO_MMAP_FRACTION", "0.5")
    assert abs(mmap_threshold() - 0.5 * available_memory()) < 0.05 * available_memory()
    monkeypatch.setenv("LATENTZOO_MMAP_BYTES", "1000")
    assert mmap_threshold() == 1000
    A = np.arange(600, dtype=np.float32).reshape(100, 6)  # 2400 bytes of data > 1000
    np.save(tmp_path / "a.npy", A)
    ds = load_dataset(tmp_path / "a.npy")
    assert isinstance(ds.X, np.memmap) and ds.meta["mmap"] is True
    monkeypatch.setenv("LATENTZOO_MMAP_BYTES", str(10**9))
    assert not isinstance(load_dataset(tmp_path / "a.npy").X, np.memmap)
    assert isinstance(load_dataset(tmp_path / "a.npy", mmap=True).X, np.memmap)
    monkeypatch.setenv("LATENTZOO_MMAP_BYTES", "lots")
    with pytest.raises(ValueError, match="LATENTZOO_MMAP_BYTES='lots' is not a number"):
        load_dataset(tmp_path / "a.npy")


def _write_npy(path, n, d):
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(0)
    for i in range(0, n, 8000):
        X[i:i + 8000] = rng.normal(size=(min(8000, n - i), d)).astype(np.float32)
    X.flush()
    del X
    return path.stat().st_size


def test_cli_fit_of_a_file_above_the_threshold_keeps_memory_bounded(tmp_path):
    small = _write_npy(tmp_path / "small.npy", 24000, 500)  # 48 MB of float32
    big = _write_npy(tmp_path / "big.npy", 72000, 500)      # 144 MB
    mapped_small = _fit_peak(tmp_path, tmp_path / "small.npy", tmp_path / "run_s", threshold=small // 10)
    mapped_big = _fit_peak(tmp_path, tmp_path / "big.npy", tmp_path / "run_b", threshold=small // 10)
    loaded = _fit_peak(tmp_path, tmp_path / "small.npy", tmp_path / "run_l", threshold=big * 10)
    info = json.loads((tmp_path / "run_b" / "info.json").read_text())
    assert info["data"]["mmap"] is True and np.isfinite(info["train_reconstruction_error"])
    assert json.loads((tmp_path / "run_l" / "info.json").read_text())["data"]["mmap"] is False
    # streamed: three times the file, (almost) the same memory, far below the file's size
    assert mapped_big - mapped_small < 0.25 * (big - small), (mapped_small, mapped_big)
    assert mapped_big < 0.75 * big, (mapped_big, big)
    assert loaded > 0.9 * small, loaded  # the same fit read into memory holds the data at least once


def _streamed(run, small: int, big: int, *, below: float) -> tuple[int, int]:
    """``run(name, threshold)`` -> peak on the mapped small and big files: (almost) the same
    memory for three times the file, and below ``below`` bytes. Returns both peaks."""
    mapped_small, mapped_big = run("small", small // 10), run("big", small // 10)
    assert mapped_big - mapped_small < 0.25 * (big - small), (mapped_small, mapped_big)
    assert mapped_big < below, (mapped_big, below)
    return mapped_small, mapped_big


def test_cli_evaluate_report_and_compare_of_a_file_above_the_threshold_keep_memory_bounded(tmp_path):
    small = _write_npy(tmp_path / "small.npy", 24000, 500)  # 48 MB of float32
    big = _write_npy(tmp_path / "big.npy", 72000, 500)      # 144 MB
    from latentzoo.cli import main

    tmp = tmp_path / "tmp"  # the commands' temporary files (preprocessed data, the splits' copies)
    tmp.mkdir()
    assert main(["fit", "pca", str(tmp_path / "small.npy"), "--out", str(tmp_path / "pca"), "--n_components", "2",
                 "--preprocess", "standard"]) == 0  # preprocessing is replayed on the mapped file too

    def evaluate(name, threshold):
        return _peak(["evaluate", tmp_path / "pca", tmp_path / f"{name}.npy", "--json"], threshold, tmp)

    def report(name, threshold):
        return _peak(["report", tmp_path / "pca", tmp_path / f"{name}.npy", "--out", tmp_path / f"{name}.html"],
                     threshold)

    def compare(name, threshold):
        return _peak(["compare", tmp_path / f"{name}.npy", "--models", "pca,ae", "--epochs", "1", "--hidden", "16",
                      "--latent-dim", "2", "--out", tmp_path / f"cmp-{name}-{threshold}"], threshold, tmp)

    _streamed(evaluate, small, big, below=0.5 * big)  # ~30 MB (imports of the metrics) whatever the file
    assert evaluate("small", big * 10) > 0.9 * small  # read into memory: the probe sees the data
    _streamed(report, small, big, below=big)  # the figures: ~80 MB whatever the file
    _streamed(compare, small, big, below=big)  # two fits, the figures: ~105 MB whatever the file
    assert not list(tmp.glob("latentzoo-*"))  # every temporary copy is removed
    html = (tmp_path / "big.html").read_text()
    assert "memory-mapped: the figures show a random subset of the rows (2000 of 72000 rows)" in html
    metrics = json.loads((tmp_path / f"cmp-big-{small // 10}" / "metrics.json").read_text())
    assert {r["model"] for r in metrics["runs"]} == {"pca", "ae"}
    assert all(r["metrics"]["reconstruction_error"] is not None for r in metrics["runs"])
    assert metrics["setup"]["n_test"] == 14400 and "2000 of 57600" in metrics["setup"]["figure_rows"]
