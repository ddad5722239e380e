"""Peak anonymous memory of `latentzoo evaluate` and `latentzoo report` on the in-memory path.

A float32 ``.npy`` smaller than the memory-map threshold is read whole into memory; this
writes one of ``--rows`` x ``--features`` (random normal data, default 60000 x 200 = 48 MB)
to a temporary folder, fits a PPCA and a small AE on it with ``latentzoo fit`` (each as it is and with ``--preprocess
standard``, which evaluate and report then apply to the data), then runs
``evaluate`` and ``report`` on it, each in a child process (benchmarks/memory_probe.py:
a thread samples ``RssAnon`` of /proc/self/status every millisecond; the figure is the peak
above the level after the imports, so the file's bytes read into memory count, the page
cache does not), and on a 1000-row file of the same width (what does not grow with the data:
matplotlib's imports and figures, the model). Prints a table of peaks, file size and ratios; JSON goes to
``benchmarks/results/memory_inmemory.json`` (``--tag`` names the run inside it, so a
before/after pair can sit side by side). 1 thread.

    python benchmarks/bench_memory_inmemory.py --rows 60000 --features 200 --tag after
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PROBE = Path(__file__).with_name("memory_probe.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def probe(argv: list[str]) -> tuple[int, int]:
    """``(peak RssAnon above the imports, RssAnon after the imports)`` of one CLI command (bytes)."""
    res = subprocess.run([sys.executable, str(PROBE), *argv], capture_output=True, text=True, env=ENV)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("PEAK")), None)
    if line is None or not line.endswith("CODE 0"):
        raise SystemExit(f"{argv}: {res.stdout[-2000:]}{res.stderr[-2000:]}")
    parts = line.split()
    return int(parts[1]), int(parts[3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=60000)
    ap.add_argument("--features", type=int, default=200)
    ap.add_argument("--tag", default="run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="latentzoo-bench-inmem-") as tmp:
        folder = Path(tmp)
        path = folder / "data.npy"
        rng = np.random.default_rng(0)
        np.save(path, rng.standard_normal((args.rows, args.features), dtype=np.float32))
        size = path.stat().st_size
        tiny = folder / "tiny.npy"  # the same width, 1000 rows: what does not grow with the file
        np.save(tiny, rng.standard_normal((1000, args.features), dtype=np.float32))
        ppca = ["--n_components", "8"]
        ae = ["--n_components", "8", "--hidden", "(64,)", "--max_epochs", "1", "--batch_size", "1024"]
        fits = {"ppca": ppca, "ae": ae,  # float32 data: --preprocess auto leaves them as they are
                "ppca+std": [*ppca, "--preprocess", "standard"], "ae+std": [*ae, "--preprocess", "standard"]}
        rows = []
        for model, opts in fits.items():
            out = folder / model.replace("+", "_")
            subprocess.run([sys.executable, "-m", "latentzoo", "fit", model.split("+")[0], str(path), "--out", str(out), *opts],
                           check=True, capture_output=True, env=ENV)
            mapped = json.loads((out / "info.json").read_text())["data"]["mmap"]
            for cmd, extra in (("evaluate", []), ("report", ["--out", str(folder / f"{model}.html")])):
                peak, base = probe([cmd, str(out), str(path), *extra])
                fixed, _ = probe([cmd, str(out), str(tiny), *extra])
                rows.append({"model": model, "command": cmd, "mmap": mapped, "peak_anon_bytes": peak,
                             "ratio": round(peak / size, 2), "base_anon_bytes": base,
                             "tiny_file_peak_anon_bytes": fixed, "ratio_above_tiny": round((peak - fixed) / size, 2)})
    print(f"file {size / 1e6:.1f} MB ({args.rows} x {args.features} float32), in memory; 1 thread; tag {args.tag}")
    print("peak: RssAnon above the level after the imports (base); tiny: the same command on a 1000-row file")
    print(f"{'model':<9} {'command':<9} {'mmap':>5} {'peak':>10} {'x file':>7} {'tiny':>10} {'(peak-tiny)/file':>17} "
          f"{'base':>10}")
    for r in rows:
        print(f"{r['model']:<9} {r['command']:<9} {str(r['mmap']):>5} {r['peak_anon_bytes'] / 1e6:>7.1f} MB "
              f"{r['ratio']:>7.2f} {r['tiny_file_peak_anon_bytes'] / 1e6:>7.1f} MB {r['ratio_above_tiny']:>17.2f} "
              f"{r['base_anon_bytes'] / 1e6:>7.1f} MB")
    res_path = Path(__file__).parent / "results" / "memory_inmemory.json"
    res_path.parent.mkdir(exist_ok=True)
    saved = json.loads(res_path.read_text()) if res_path.is_file() else {}
    saved[args.tag] = {"file_bytes": size, "shape": [args.rows, args.features], "threads": 1, "runs": rows}
    res_path.write_text(json.dumps(saved, indent=2))


if __name__ == "__main__":
    main()
