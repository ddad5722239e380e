"""``latentzoo encode DIR DATA --out FILE``: latent codes of data (.npy or .csv)."""
from __future__ import annotations

import numpy as np

from ._common import Command, check_fits, add_data_args, check_array_suffix, echo, load_data, load_model, write_array


def add_arguments(p):
    p.add_argument("model_dir", metavar="DIR", help="folder written by `latentzoo fit` (or a .safetensors file)")
    add_data_args(p)
    p.add_argument("--out", required=True, help="codes file: .npy or .csv")


def run(args, extra) -> int:
    check_array_suffix(args.out)
    model = load_model(args.model_dir)
    X, _, meta = load_data(args)
    check_fits(model, X, meta)
    Z = np.asarray(model.transform(X))
    path = write_array(args.out, Z)
    echo(f"wrote {Z.shape[0]} x {Z.shape[1]} codes to {path}")
    return 0


COMMAND = Command(
    "encode", "write the latent codes of data (.npy or .csv)",
    """the codes are transform(X): projections for PCA, posterior means for PPCA and VAEs,
encoder outputs for the autoencoders.

examples:
  latentzoo encode runs/vae digits --out codes.npy
  latentzoo encode runs/pca data.csv --out codes.csv""",
    add_arguments, run)
