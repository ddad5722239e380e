"""``latentzoo compare``: fit the ladder on one dataset and write the HTML report."""
from __future__ import annotations

from ._common import (MAX_N_IMPORTANCE, Command, UsageError, add_data_args, add_preprocess_arg, data_options,
                      echo, n_importance_type, parse_value, seed_type, warnings_as_lines)


def _models(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"--hidden {text!r}: expected comma-separated layer widths, e.g. 256,128") from None
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--hidden {text!r}: expected positive layer widths, e.g. 256,128")
    return sizes


def parse_model_params(items: list[str] | None, models: list[str]) -> dict:
    """``--param MODEL.NAME=VALUE`` (repeatable) -> ``{model: {name: value}}``, each checked (the
    model compared, the name a constructor parameter, the value by the estimator's own
    validation) before any data is read or model fitted."""
    from ..registry import MODELS
    from .fit import constructor_params

    out: dict[str, dict] = {}
    for item in items or []:
        target, eq, value = item.partition("=")
        model, dot, name = target.partition(".")
        if not (eq and dot and model and name):
            raise UsageError(f"compare: --param {item!r}: expected MODEL.NAME=VALUE, e.g. vae.beta=4")
        if model not in models:
            known = f"compared models: {', '.join(models)}" if model in MODELS else f"known models: {', '.join(MODELS)}"
            raise UsageError(f"compare: --param {item!r}: model {model!r} is not compared ({known})")
        key = name.replace("-", "_")
        valid = constructor_params(MODELS[model].cls)
        if key not in valid:
            raise UsageError(f"compare: --param {item!r}: {model} has no parameter {name!r}; valid parameters: "
                             f"{', '.join(valid)}")
        out.setdefault(model, {})[key] = parse_value(value)
        try:
            MODELS[model].make(**out[model])._validate_params()
        except (TypeError, ValueError) as e:
            raise UsageError(f"compare: --param {item!r}: {e}") from None
    return out


def _likelihood(spec: str) -> str:
    from ..neural.likelihoods import LIKELIHOODS, is_valid_likelihood

    if spec != "auto" and not is_valid_likelihood(spec):
        raise UsageError(f"compare: --likelihood {spec!r} is not a registered likelihood spec; known: auto, "
                         f"{', '.join(LIKELIHOODS)} (e.g. gaussian:0.1)")
    return spec


def _epochs(text: str):
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"--epochs {text!r}: expected a positive integer or auto") from None


def add_arguments(p):
    from ..experiment import DEFAULT_EPOCHS, DEFAULT_HIDDEN, DEFAULT_MODELS, DEFAULT_N_IMPORTANCE

    add_data_args(p, optional=True)
    add_preprocess_arg(p)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help="comma-separated registry names (default: %(default)s)")
    p.add_argument("--latent-dim", type=int, default=None, help="latent dimensions of every model (default: 2, or 1 for data "
                   "with 2 features or fewer)")
    p.add_argument("--latent-dims", default=None,
                   help="comma-separated latent dimensions to sweep, e.g. 2,8,32 (the one-value case: --latent-dim)")
    p.add_argument("--repeats", type=int, default=1,
                   help="repeats, each with its own seed and split (repeated stratified holdout; default: 1)")
    p.add_argument("--cv", type=int, default=None, help="K-fold cross-validation instead of holdout")
    p.add_argument("--test-data", default=None,
                   help="an explicit test set (file or folder); MNIST/binarised-MNIST folders use their own")
    p.add_argument("--jobs", type=int, default=1, help="fits at once, in separate processes (default: 1)")
    p.add_argument("--backend", default="local", choices=("local", "dask"),
                   help="local processes or a Dask distributed cluster (default: local)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://HOST:8786")
    p.add_argument("--out", default="report", help="report folder (default: report/)")
    p.add_argument("--epochs", type=_epochs, default=DEFAULT_EPOCHS,
                   help="max epochs of the neural models, or auto: about 12000 optimiser steps, 10 to 100 "
                        "epochs; when shortened, a learning rate of 3e-3 (VAEs: 1e-3) held for 85%% of the epochs, "
                        "then annealed (cosine); twice the epochs for input noise (the DAE), 1.5 times for the VAEs "
                        "(default: %(default)s)")
    p.add_argument("--hidden", default=",".join(map(str, DEFAULT_HIDDEN)),
                   help="hidden layer widths of the neural models (default: %(default)s)")
    p.add_argument("--test-size", type=float, default=0.2, help="held-out fraction (default: 0.2)")
    p.add_argument("--seed", type=seed_type, default=0, help="seed of the split and of every model (default: 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--n-importance", type=n_importance_type, default=DEFAULT_N_IMPORTANCE,
                   help=f"importance samples per point for VAE log-likelihoods, at most {MAX_N_IMPORTANCE} "
                        "(default: %(default)s)")
    p.add_argument("--n-samples", type=int, default=None, help="use only the first N samples of the data")
    p.add_argument("--likelihood", default="auto",
                   help="decoder likelihood of every neural rung: auto (binary data: Bernoulli; discrete levels: "
                        "uniform dequantisation and a learned-variance Gaussian; continuous data: learned-variance "
                        "Gaussian) or a registered spec, e.g. bernoulli, gaussian:0.1, gaussian-learned, laplace "
                        "(default: auto)")
    p.add_argument("--param", action="append", default=[], metavar="MODEL.NAME=VALUE",
                   help="a constructor parameter of one model, repeatable: --param vae.beta=4 "
                        "--param dae.noise=masking:0.3 --param cae.contractive=1.0")


def _latent_dims(args) -> list[int] | None:
    """The latent dimensions asked for; None when neither flag is given (the data decide)."""
    if args.latent_dims is not None and args.latent_dim is not None:
        raise UsageError("give --latent-dim or --latent-dims, not both")
    if args.latent_dims is None:
        return None if args.latent_dim is None else [args.latent_dim]
    try:
        dims = [int(s) for s in args.latent_dims.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--latent-dims {args.latent_dims!r}: expected comma-separated integers, e.g. 2,8,32") from None
    if not dims or min(dims) < 1 or len(set(dims)) != len(dims):
        raise UsageError(f"--latent-dims {args.latent_dims!r}: expected distinct positive integers, e.g. 2,8,32")
    return dims


def _check(args) -> None:
    from ..registry import MODELS

    for flag, v in (("--epochs", None if args.epochs == "auto" else args.epochs), ("--n-importance", args.n_importance), ("--repeats", args.repeats),
                    ("--jobs", args.jobs), ("--latent-dim", args.latent_dim)):
        if v is not None and v < 1:
            raise UsageError(f"{flag} must be a positive integer, got {v}")
    if args.cv is not None and args.cv < 2:
        raise UsageError(f"--cv must be at least 2 (the number of folds), got {args.cv}")
    if args.backend == "dask" and not args.scheduler:
        raise UsageError("--backend dask needs --scheduler tcp://HOST:8786")
    if args.scheduler and args.backend != "dask":
        raise UsageError("--scheduler is for --backend dask")
    if args.jobs > 1 and args.backend == "dask":
        raise UsageError("--jobs is for the local backend; a Dask cluster runs as many fits as it has workers")
    unknown = [m for m in _models(args.models) if m not in MODELS]
    if unknown or not _models(args.models):
        raise UsageError(f"compare: unknown model(s) {', '.join(map(repr, unknown))} in --models; known models: "
                         f"{', '.join(MODELS)}" if unknown else f"compare: --models is empty; known models: "
                         f"{', '.join(MODELS)}")
    twice = sorted({m for m in _models(args.models) if _models(args.models).count(m) > 1})
    if twice:
        raise UsageError(f"compare: --models names {', '.join(map(repr, twice))} more than once; give each model once")


def _num(v, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def _line(rec, done, total, reused):
    """One stdout line per run: reconstruction, log-likelihood in nats and bits/dim, realism, flags;
    the first one is preceded by the report's log-likelihood measure."""
    m = rec.metrics
    if done == 1 and m.get("log_likelihood_measure"):
        echo(f"log-likelihood measure: {m['log_likelihood_measure']}")
    width = len(str(total))
    fit = "stored" if reused else f"fit {rec.fit_time_s:6.1f}s"
    head = f"[{done:>{width}}/{total}] {rec.model:<9} q={rec.latent_dim:<3} r{rec.repeat}  {fit}  "
    flags = f"  [{', '.join(m['flags'])}]" if m.get("flags") else ""
    if m.get("error"):
        echo(f"{head}FAILED: {m['error']}{flags}")
        return
    ll = m.get("log_likelihood")
    ll = f"log-lik {ll:.4g} nats ({m['bits_per_dim']:.3g} bits/dim)" if ll is not None else "log-lik n/a"
    knn = "" if m.get("knn_accuracy") is None else f"  kNN {m['knn_accuracy']:.3f}"
    echo(f"{head}recon {_num(m.get('reconstruction_error'), '.4g')}  {ll}{knn}"
         f"  realism {_num(m.get('sample_realism'), '.3f')}{flags}")


def run(args, extra) -> int:
    from ..experiment import check_destination, run_experiment
    from ..report import write_report

    _check(args)
    dims = _latent_dims(args)
    hidden = _hidden(args.hidden)
    likelihood = _likelihood(args.likelihood)
    params = parse_model_params(args.param, _models(args.models))
    try:
        check_destination(args.out)  # a bad --out fails now, before any fit
    except ValueError as e:
        raise UsageError(str(e)) from None
    load_kw = data_options(args)
    with warnings_as_lines():
        comp = run_experiment(args.data, _models(args.models), latent_dims=dims, repeats=args.repeats, cv=args.cv,
                              epochs=args.epochs, hidden=hidden, test_size=args.test_size, seed=args.seed,
                              device=args.device, n_importance=args.n_importance, n_samples=args.n_samples,
                              test_data=args.test_data, out=args.out, jobs=args.jobs, backend=args.backend,
                              scheduler=args.scheduler, verbose=int(getattr(args, "verbose", False) or 0),
                              load_kw=load_kw, likelihood=likelihood, params=params, preprocess=args.preprocess,
                              on_run=_line)
    path = write_report(comp, args.out)
    echo(f"likelihood policy: {comp.setup.get('likelihood_reason')}")
    flagged = sorted({f for row in comp.summary for f in row.get("flags") or []})
    if flagged:
        echo(f"health flags raised: {', '.join(flagged)} (explained under the report's table)")
    for sentence in comp.verdict:
        echo(sentence)
    echo(f"report written to {path}")
    return 0


COMMAND = Command(
    "compare", "fit the model ladder on one dataset and write an HTML report",
    """examples:
  latentzoo compare                                  # digits, all seven models, into report/
  latentzoo compare moons --models pca,ae,dae,vae --out moons-report
  latentzoo compare data.csv --label-column label --latent-dim 2 --epochs 30 --seed 1
  latentzoo compare data.npy --latent-dims 2,8 --cv 3 --out cv-report
  latentzoo compare data.npy --test-data test.npy --repeats 3 --out with-test-set
  latentzoo compare digits --models pca,ppca,dae,vae --likelihood bernoulli --param vae.beta=4 --param dae.noise=masking:0.3

the log-likelihoods of one report are all in one measure (printed first, and in the table's
header): binary data -> log-probabilities (Bernoulli decoders, PPCA dequantised); discrete levels
-> uniform-dequantisation lower bounds on the log-probability; continuous data -> log-densities.
Failed training is flagged (posterior-collapse, not-converged, diverged, overfit, degenerate),
each flag explained under the report's table.

every (model, q, repeat) run is stored in OUT/runs as it finishes: run the same command
again after an interruption and only the missing (or stale) runs are fitted.

writes OUT/report.html (self-contained), OUT/*.png, OUT/metrics.json and OUT/metrics.csv;
the report is built under a temporary name and moved into place when complete.""",
    add_arguments, run)
