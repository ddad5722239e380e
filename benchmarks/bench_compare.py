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

``--repeats N`` (with ``--reference-epochs``) also compares the two settings over N seeds:
after the timed single run, ``compare --repeats N`` of the default (resuming from the timed
run, in ``--default-out DIR``) and of the reference. One run of a q = 2 neural model is
noisy (the 100-epoch VAE's held-out log-likelihood moves by about 3% between seeds), so
the verdict on the 2% target is drawn from the mean over seeds: per model and metric the
relative difference of the means, and a 95% t-interval of the paired difference (repeat r
of both settings has the same seed and the same validation split), next to the
reference's own seed-to-seed spread.

One run of each (a run is many minutes); the thread count and the machine's load are
recorded with the figures, since a loaded machine is slower.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

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


def seed_values(doc: dict) -> dict:
    """``{model: {metric: {seed: value}}}`` from every run of a compare metrics.json."""
    out: dict = {}
    for run in doc["runs"]:
        per = out.setdefault(run["model"], {})
        for k in METRICS:
            v = (run.get("metrics") or {}).get(k)
            if v is not None:
                per.setdefault(k, {})[run["seed"]] = float(v)
    return out


def paired_differences(default: dict, reference: dict) -> list[dict]:
    """Per model and metric over the seeds both settings ran: the means, the relative
    difference of the means, a 95% t-interval of the mean paired difference (relative to
    |reference mean|) and the reference's own relative seed-to-seed sd."""
    a, b = seed_values(default), seed_values(reference)
    rows = []
    for model, metrics in a.items():
        for k, vals in metrics.items():
            ref = b.get(model, {}).get(k, {})
            seeds = sorted(set(vals) & set(ref))
            if not seeds:
                continue
            x, y = np.array([vals[s] for s in seeds]), np.array([ref[s] for s in seeds])
            scale = abs(y.mean())
            if scale == 0:
                continue
            d = x - y
            n = len(d)
            half = (stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
            rows.append({"model": model, "metric": k, "n_seeds": n, "default_mean": x.mean(),
                         "reference_mean": y.mean(), "relative_difference": d.mean() / scale,
                         "ci95": [(d.mean() - half) / scale, (d.mean() + half) / scale] if n > 1 else None,
                         "reference_relative_sd": (y.std(ddof=1) / scale) if n > 1 else None})
    return rows


def show_paired(rows: list[dict]) -> None:
    print(f"{'model':>10} {'metric':>24} {'n':>2} {'default':>10} {'reference':>10} {'rel diff':>9} "
          f"{'95% interval':>19} {'ref seed sd':>11}")
    for r in rows:
        ci = "" if r["ci95"] is None else f"[{r['ci95'][0]:+.1%}, {r['ci95'][1]:+.1%}]"
        sd = "" if r["reference_relative_sd"] is None else f"{r['reference_relative_sd']:.1%}"
        print(f"{r['model']:>10} {r['metric']:>24} {r['n_seeds']:>2} {r['default_mean']:>10.5g} "
              f"{r['reference_mean']:>10.5g} {r['relative_difference']:>+9.2%} {ci:>19} {sd:>11}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="a data folder, e.g. ../shared/data/mnist")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--models", default=None, help="comma-separated models (default: compare's default)")
    ap.add_argument("--reference-epochs", type=int, default=None,
                    help="also run with --epochs N and compare the metrics (e.g. 100)")
    ap.add_argument("--reference-out", default=None,
                    help="report folder of the reference run, kept and resumed (default: a temporary one)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="with --reference-epochs: also compare both settings over this many seeds")
    ap.add_argument("--default-out", default=None,
                    help="report folder of the default's repeats, kept and resumed (default: a temporary one)")
    ap.add_argument("--out", default="benchmarks/results/bench_compare.json")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    if args.repeats > 1 and not args.reference_epochs:
        ap.error("--repeats needs --reference-epochs")
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
            reps = ["--repeats", str(args.repeats)] if args.repeats > 1 else []
            rwall, ref = run_compare(args.data, Path(args.reference_out or Path(tmp) / "reference"),
                                     extra + reps + ["--epochs", str(args.reference_epochs)])
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
            if args.repeats > 1:
                dflt = Path(args.default_out or Path(tmp) / "default-repeats")
                shutil.copytree(Path(tmp) / "default", dflt, dirs_exist_ok=True)  # resume from the timed run
                _, many = run_compare(args.data, dflt, extra + reps)
                paired = paired_differences(many, ref)
                result["repeats"] = {"n": args.repeats, "paired": paired, "target": 0.02}
                print(f"\nover {args.repeats} seeds (repeat r: seed r in both settings): default vs "
                      f"--epochs {args.reference_epochs}, relative to |reference mean|:")
                show_paired(paired)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
