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


def _fit_peak(tmp_path, data, out, threshold) -> int:
    env = {**os.environ, "LATENTZOO_MMAP_BYTES": str(threshold), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    argv = ["fit", "vae", str(data), "--out", str(out), "--max_epochs", "1", "--hidden", "(16,)",
            "--batch_size", "1024", "--validation_fraction", "0.0", "--likelihood", "gaussian"]
    res = subprocess.run([sys.executable, str(_PROBE), *argv], capture_output=True, text=True, env=env,
                         timeout=600)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("PEAK")]
    assert line and line[0].endswith("CODE 0"), res.stdout + res.stderr
    return int(line[0].split()[1])


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
