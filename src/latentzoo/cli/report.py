"""``latentzoo report DIR DATA``: a single-model HTML report (figures and metrics)."""
from __future__ import annotations

import json
from pathlib import Path

from ._common import INFO_FILE, Command, check_fits, add_data_args, echo, load_data, load_model, \
    load_preprocessor, model_name, model_path, preprocessed


def add_arguments(p):
    p.add_argument("model_dir", metavar="DIR", help="folder written by `latentzoo fit` (or a .safetensors file)")
    add_data_args(p)
    p.add_argument("--out", default=None, help="HTML file to write (default: DIR/report.html)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsampled metrics (default: 0)")


def run(args, extra) -> int:
    from ..experiment import evaluate_fitted
    from ..report import write_single_html

    out = Path(args.out) if args.out else model_path(args.model_dir).parent / "report.html"
    if not out.parent.is_dir():
        raise FileNotFoundError(f"--out {out}: folder {out.parent} does not exist")
    model = load_model(args.model_dir)
    data = load_data(args)
    pre = load_preprocessor(args.model_dir)
    if pre is not None:  # as the model was fitted; the report's setup says so
        from ..data import Dataset
        from ..preprocessing import describe

        data = Dataset(preprocessed(pre, data.X), data.y, {**data.meta, "preprocess": describe(pre.method_, pre.reason_)},
                       data.row_ids)
    check_fits(model, data.X, data.meta)
    name = model_name(model)
    comp = evaluate_fitted({name: model}, data, seed=args.seed,
                           extra_setup={"preprocess": data.meta["preprocess"]} if pre is not None else None)
    info = model_path(args.model_dir).parent / INFO_FILE
    if info.is_file():  # the fit time recorded by `latentzoo fit`, when the folder has it
        try:
            comp.results[0].fit_time_s = json.loads(info.read_text()).get("fit_time_s")
        except (OSError, ValueError):
            pass
    path = write_single_html(comp, out, title=f"latentzoo: {name} on {data.meta.get('name')}")
    echo(f"report written to {path}")
    return 0


COMMAND = Command(
    "report", "write a single-model HTML report (figures and metrics)",
    """examples:
  latentzoo report runs/vae digits                 # writes runs/vae/report.html
  latentzoo report runs/pca data.csv --out pca.html""",
    add_arguments, run)
