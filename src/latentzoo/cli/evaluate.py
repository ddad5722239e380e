"""``latentzoo evaluate DIR DATA``: the metrics of a saved model on data."""
from __future__ import annotations

import json

from ._common import MAX_N_IMPORTANCE, Command, check_fits, add_data_args, echo, load_data, load_model, \
    load_preprocessor, model_name, n_importance_type, preprocessed, seed_type


def add_arguments(p):
    from ..experiment import DEFAULT_N_IMPORTANCE

    p.add_argument("model_dir", metavar="DIR", help="folder written by `latentzoo fit` (or a .safetensors file)")
    add_data_args(p)
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--n-importance", type=n_importance_type, default=DEFAULT_N_IMPORTANCE,
                   help=f"importance samples per point for VAE log-likelihoods, at most {MAX_N_IMPORTANCE} "
                        "(default: %(default)s)")
    p.add_argument("--seed", type=seed_type, default=0, help="seed of the subsampled metrics (default: 0)")


def run(args, extra) -> int:
    from ..evaluation import evaluate

    model = load_model(args.model_dir)
    X, y, meta = load_data(args)
    X = preprocessed(load_preprocessor(args.model_dir), X)  # as the model was fitted (metrics on that scale)
    check_fits(model, X, meta)
    m = evaluate(model, X, y, n_importance=args.n_importance, random_state=args.seed)
    m = {"model": model_name(model), "data": meta.get("name"), **m}
    if args.json:
        echo(json.dumps(m))
    else:
        for k, v in m.items():
            echo(f"{k:<26} {'-' if v is None else (f'{v:.6g}' if isinstance(v, float) else v)}")
    return 0


COMMAND = Command(
    "evaluate", "print the metrics of a saved model on data",
    """without a training split, the kNN accuracy is cross-validated on the codes of DATA and
the code Gaussian of sample realism (models without a prior) is fitted on DATA itself.

examples:
  latentzoo evaluate runs/pca digits
  latentzoo evaluate runs/vae test.csv --label-column label --json""",
    add_arguments, run)
