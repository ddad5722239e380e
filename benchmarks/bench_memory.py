"""Anonymous memory of `latentzoo fit vae BIG.npy`: a file above the mmap threshold is streamed.

Writes a float32 ``.npy`` of ``--gb`` gigabytes (random normal data, ``--features`` columns)
to ``--dir``, runs ``latentzoo fit vae`` on it in a child process whose thread samples
``/proc/self/status`` every millisecond, and prints the peak ``RssAnon`` (memory the process
allocated itself; the file's pages in the page cache are not counted) above the level after
the imports, with the default threshold (5 % of available memory) and, with ``--loaded``,
with the file read into memory (``LATENTZOO_MMAP_BYTES`` above its size). JSON goes to
``benchmarks/results/memory.json``.

    python benchmarks/bench_memory.py --gb 2.2 --dir /tmp
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PROBE = Path(__file__).with_name("memory_probe.py")


def write(path: Path, gb: float, d: int) -> int:
    n = int(gb * 1e9 / (4 * d))
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    rng = np.random.default_rng(0)
    step = max(1, 2**24 // d)
    for i in range(0, n, step):
        X[i:i + step] = rng.standard_normal((min(step, n - i), d), dtype=np.float32)
    X.flush()
    del X
    return n


def run(path: Path, out: Path, env_extra: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_extra}
    argv = ["fit", "vae", str(path), "--out", str(out), "--max_epochs", "1", "--hidden", "(64,)",
            "--batch_size", "1024", "--likelihood", "gaussian"]
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, str(PROBE), *argv], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("PEAK")), None)
    if line is None or not line.endswith("CODE 0"):
        raise SystemExit(res.stdout + res.stderr)
    parts = line.split()
    info = json.loads((out / "info.json").read_text())
    return {"peak_anon_bytes": int(parts[1]), "base_anon_bytes": int(parts[3]), "mmap": info["data"]["mmap"],
            "wall_s": round(wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=2.2)
    ap.add_argument("--features", type=int, default=1000)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--loaded", action="store_true", help="also fit with the file read into memory")
    args = ap.parse_args()
    folder = Path(args.dir) / "latentzoo-bench-memory"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "big.npy"
    n = write(path, args.gb, args.features)
    size = path.stat().st_size
    from latentzoo.data._memory import available_memory, mmap_threshold

    rows = {"mapped (default threshold)": run(path, folder / "run_mapped", {})}
    if args.loaded:
        rows["read into memory"] = run(path, folder / "run_loaded", {"LATENTZOO_MMAP_BYTES": str(10 * size)})
    print(f"file {size / 1e9:.2f} GB ({n} x {args.features} float32); threshold {mmap_threshold() / 1e9:.2f} GB "
          f"(5% of {available_memory() / 1e9:.1f} GB available); 1 thread, VAE hidden (64,), 1 epoch")
    print(f"{'run':<28} {'mmap':>5} {'peak RssAnon above imports':>28} {'wall':>8}")
    for name, r in rows.items():
        print(f"{name:<28} {str(r['mmap']):>5} {r['peak_anon_bytes'] / 1e9:>25.3f} GB {r['wall_s']:>7.1f}s")
    result = {"file_bytes": size, "shape": [n, args.features], "threshold_bytes": mmap_threshold(),
              "available_bytes": available_memory(), "threads": 1, "runs": rows}
    out = Path(__file__).parent / "results" / "memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    path.unlink()


if __name__ == "__main__":
    main()
