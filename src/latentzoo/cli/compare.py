"""``latentzoo compare``: fit the ladder on one dataset and write the HTML report."""
from __future__ import annotations

from ._common import Command, UsageError, add_data_args, echo, load_data


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


def add_arguments(p):
    from ..experiment import DEFAULT_EPOCHS, DEFAULT_HIDDEN, DEFAULT_MODELS, DEFAULT_N_IMPORTANCE

    add_data_args(p, optional=True)
    p.add_argument("--models", default=",".join(DEFAULT_MODELS),
                   help="comma-separated registry names (default: %(default)s)")
    p.add_argument("--latent-dim", type=int, default=2, help="latent dimensions of every model (default: 2)")
    p.add_argument("--out", default="report", help="report folder (default: report/)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS,
                   help="max epochs of the neural models (default: %(default)s)")
    p.add_argument("--hidden", default=",".join(map(str, DEFAULT_HIDDEN)),
                   help="hidden layer widths of the neural models (default: %(default)s)")
    p.add_argument("--test-size", type=float, default=0.2, help="held-out fraction (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of every model (default: 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--n-importance", type=int, default=DEFAULT_N_IMPORTANCE,
                   help="importance samples per point for VAE log-likelihoods (default: %(default)s)")
    p.add_argument("--n-samples", type=int, default=None, help="use only the first N samples of the data")


def run(args, extra) -> int:
    from ..experiment import run_comparison
    from ..report import write_report

    from ..registry import MODELS

    if args.epochs < 1 or args.n_importance < 1 or args.latent_dim < 1:
        raise UsageError("--epochs, --n-importance and --latent-dim must be positive integers")
    unknown = [m for m in _models(args.models) if m not in MODELS]
    if unknown or not _models(args.models):
        raise UsageError(f"compare: unknown model(s) {', '.join(map(repr, unknown))} in --models; known models: "
                         f"{', '.join(MODELS)}" if unknown else f"compare: --models is empty; known models: "
                         f"{', '.join(MODELS)}")
    hidden = _hidden(args.hidden)
    data = load_data(args, random_state=args.seed, n_samples=args.n_samples)

    def line(r):
        m = r.metrics
        ll = "" if m.get("log_likelihood") is None else f"  log-lik {m['log_likelihood']:.4g}"
        knn = "" if m.get("knn_accuracy") is None else f"  kNN {m['knn_accuracy']:.3f}"
        echo(f"{r.name:<9} fit {r.fit_time_s:6.1f}s  recon {m['reconstruction_error']:.4g}{ll}{knn}"
             f"  prior-realism {m['prior_realism']:.4g}")

    comp = run_comparison(data, _models(args.models), latent_dim=args.latent_dim, epochs=args.epochs,
                          hidden=hidden, test_size=args.test_size, seed=args.seed,
                          device=args.device, n_importance=args.n_importance, on_result=line)
    path = write_report(comp, args.out)
    echo(f"report written to {path}")
    return 0


COMMAND = Command(
    "compare", "fit the model ladder on one dataset and write an HTML report",
    """examples:
  latentzoo compare                                  # digits, all seven models, into report/
  latentzoo compare moons --models pca,ae,dae,vae --out moons-report
  latentzoo compare data.csv --label-column label --latent-dim 2 --epochs 30 --seed 1

writes OUT/report.html (self-contained), OUT/*.png, OUT/metrics.json and OUT/metrics.csv;
the folder is built under a temporary name and moved into place when complete.""",
    add_arguments, run)
