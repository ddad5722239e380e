"""``latentzoo sample DIR -n N --out FILE``: draws from a generative model."""
from __future__ import annotations

import numpy as np

from ._common import CLIError, Command, check_array_suffix, echo, load_model, load_preprocessor, model_name, \
    positive_int_type, seed_type, write_array


def add_arguments(p):
    p.add_argument("model_dir", metavar="DIR", help="folder written by `latentzoo fit` (or a .safetensors file)")
    p.add_argument("-n", "--n-samples", type=positive_int_type, required=True, help="number of samples")
    p.add_argument("--out", required=True, help="samples file: .npy or .csv")
    p.add_argument("--seed", type=seed_type, default=0, help="random seed (default: 0)")


def run(args, extra) -> int:
    from ..registry import MODELS

    check_array_suffix(args.out)
    model = load_model(args.model_dir)
    if not model.has_prior:
        able = [s.name for s in MODELS.values() if s.cls.has_prior]
        raise CLIError(f"model {model_name(model)!r} ({type(model).__name__}) cannot sample: it has no "
                       f"generative prior; models that can: {', '.join(able)}")
    S = np.asarray(model.sample(args.n_samples, random_state=args.seed))
    pre = load_preprocessor(args.model_dir)
    if pre is not None:  # on the data's own scale, as given to `latentzoo fit`
        S = pre.inverse_transform(S)
    path = write_array(args.out, S)
    echo(f"wrote {S.shape[0]} samples of {S.shape[1]} features to {path}")
    return 0


COMMAND = Command(
    "sample", "draw samples from a generative model (PPCA, VAE, beta-VAE)",
    """examples:
  latentzoo sample runs/vae -n 64 --out samples.npy
  latentzoo sample runs/ppca -n 10 --out samples.csv --seed 3""",
    add_arguments, run)
