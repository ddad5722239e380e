"""``latentzoo encode DIR DATA --out FILE``: latent codes of data (.npy or .csv)."""
from __future__ import annotations

from ._common import Command, check_fits, add_data_args, check_array_suffix, echo, load_data, load_model, \
    load_preprocessor, preprocessed, row_ids_path, write_array


def add_arguments(p):
    p.add_argument("model_dir", metavar="DIR", help="folder written by `latentzoo fit` (or a .safetensors file)")
    add_data_args(p)
    p.add_argument("--out", required=True, help="codes file: .npy or .csv")


def run(args, extra) -> int:
    from ..data.blocks import map_rows

    check_array_suffix(args.out)
    model = load_model(args.model_dir)
    data = load_data(args)
    X, meta = preprocessed(load_preprocessor(args.model_dir), data.X), data.meta
    check_fits(model, X, meta)
    Z = map_rows(model.transform, X)  # row blocks: a memory-mapped file is never read whole
    id_name = meta.get("id_column")
    id_name = id_name if isinstance(id_name, str) and id_name else "id"
    path = write_array(args.out, Z, row_ids=data.row_ids, id_name=id_name)
    where = "" if data.row_ids is None else (" (row IDs in the first column)" if path.suffix.lower() == ".csv"
                                            else f" (row IDs in {row_ids_path(path).name})")
    echo(f"wrote {Z.shape[0]} x {Z.shape[1]} codes to {path}{where}")
    return 0


COMMAND = Command(
    "encode", "write the latent codes of data (.npy or .csv)",
    """the codes are transform(X): projections for PCA, posterior means for PPCA and VAEs,
encoder outputs for the autoencoders. Rows keep their IDs (a table's ID column, an
.h5ad file's obs_names): the first column of a .csv output (with a header z0, z1, ...),
NAME.row_ids.txt beside a .npy output.

examples:
  latentzoo encode runs/vae digits --out codes.npy
  latentzoo encode runs/pca data.csv --out codes.csv""",
    add_arguments, run)
