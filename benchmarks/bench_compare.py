"""The default `latentzoo compare` on a large image set: wall time and held-out metrics per model.

Runs the CLI as a user would (``latentzoo compare DATA_DIR --jobs 2``, every other option at
its default: the seven models, q = 2, ``--epochs auto``), times the whole command (data
loading, fits, evaluation, figures, report), and prints per model the fit time, the epochs
trained and the held-out metrics from metrics.json. With ``--reference-epochs 100`` it
also runs the same comparison with ``--epochs 100`` (the pre-budget default) and prints the
relative difference of every metric (target: within 2%). The target of the default run
is 10 minutes wall time on a 2-core CPU with ``--jobs 2`` for 60 000 x 784 images.

    python benchmarks/bench_compare.py ../shared/data/mnist [--jobs 2] [--reference-epochs 100]
                                        [--reference-out DIR] [--models ...]
                                        [--out benchmarks/results/bench_compare.json]

``--reference-out DIR`` keeps the reference's report folder: compare is resumable, so a
second call reuses its stored runs (the reference takes about an hour on 2 cores) and
refits only runs whose data or parameters changed.

One run of each (a run is many minutes); the thread count and the machine's load are
recorded with the figures, since a loaded machine is slower.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METRICS = ("reconstruction_error", "log_likelihood", "elbo", "knn_accuracy", "trustworthiness", "sample_realism",
           "interpolation_smoothness")


def run_compare(data: str, out: Path, extra: list[str]) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "latentzoo", "compare", data, "--out", str(out), *extra]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    print(proc.stdout[-4000:], flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"compare failed (exit {proc.returncode})")
    return wall, json.loads((out / "metrics.json").read_text())


def table(doc: dict) -> list[dict]:
    return [{"model": m["model"], "fit_time_s": m.get("fit_time_s"), "epochs": m.get("epochs"),
             **{k: m.get(k) for k in METRICS}} for m in doc["models"]]


def show(rows: list[dict]) -> None:
    head = ["model", "fit s", "epochs"] + [k[:14] for k in METRICS]
    print(" | ".join(f"{h:>14}" for h in head))
    for r in rows:
        vals = [r["model"], r["fit_time_s"], r["epochs"]] + [r[k] for k in METRICS]
        print(" | ".join(f"{v:>14.5g}" if isinstance(v, float) else f"{str(v):>14}" for v in vals))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="a data folder, e.g. ../shared/data/mnist")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--models", default=None, help="comma-separated models (default: compare's default)")
    ap.add_argument("--reference-epochs", type=int, default=None,
                    help="also run with --epochs N and compare the metrics (e.g. 100)")
    ap.add_argument("--reference-out", default=None,
                    help="report folder of the reference run, kept and resumed (default: a temporary one)")
    ap.add_argument("--out", default="benchmarks/results/bench_compare.json")
    args = ap.parse_args()
    extra = ["--jobs", str(args.jobs)] + (["--models", args.models] if args.models else [])
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        wall, doc = run_compare(args.data, Path(tmp) / "default", extra)
        result = {"data": args.data, "jobs": args.jobs, "cpu_count": os.cpu_count(),
                  "load_average_before": load, "wall_s": wall, "target_wall_s": 600,
                  "setup": {k: doc["setup"].get(k) for k in ("epochs", "max_epochs", "lr_schedule", "n_train",
                                                               "n_test", "test_source", "n_importance", "device")},
                  "models": table(doc), "verdict": doc.get("verdict")}
        print(f"\ndefault compare: {wall:.0f} s wall (target <= 600 s), {args.jobs} jobs, "
              f"max_epochs {doc['setup'].get('max_epochs')}, load average before {load[0]:.1f}")
        show(result["models"])
        if args.reference_epochs:
            rwall, ref = run_compare(args.data, Path(args.reference_out or Path(tmp) / "reference"),
                                     extra + ["--epochs", str(args.reference_epochs)])
            rows = {r["model"]: r for r in table(ref)}
            diffs = []
            for r in result["models"]:
                base = rows[r["model"]]
                d = {k: (None if r[k] is None or base[k] in (None, 0) else (r[k] - base[k]) / abs(base[k]))
                     for k in METRICS}
                diffs.append({"model": r["model"], **d})
            result["reference"] = {"epochs": args.reference_epochs, "wall_s": rwall, "models": table(ref),
                                   "relative_difference": diffs, "target": 0.02}
            print(f"\nreference --epochs {args.reference_epochs}: {rwall:.0f} s wall; relative differences "
                  f"(default - reference) / |reference|, target within 2%:")
            for d in diffs:
                print(f"{d['model']:>10}: " + ", ".join(f"{k} {v:+.2%}" for k, v in d.items()
                                                         if k != "model" and v is not None))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
