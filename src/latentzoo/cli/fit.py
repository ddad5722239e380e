"""``latentzoo fit MODEL DATA --out DIR [--param value ...]``: fit one model and save it."""
from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path

import numpy as np

from .. import distributed
from ..base import name_features
from .._atomic import atomic_folder
from ._common import INFO_FILE, MODEL_FILE, PREPROCESS_FILE, Command, UsageError, add_data_args, \
    add_preprocess_arg, echo, fit_preprocessor, load_data, parse_value, write_json


def add_arguments(p):
    p.add_argument("model", help="registry name: pca, ppca, ae, dae, cae, vae, beta-vae, ...")
    add_data_args(p)
    add_preprocess_arg(p)
    p.add_argument("--out", required=True, help="folder to write model.safetensors and info.json into "
                   "(and preprocess.json when the data are preprocessed)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted fit from the checkpoint in --checkpoint_dir (run the same "
                        "command again with --resume)")


#: constructor parameters the CLI sets itself: ``--verbose`` is the CLI's own flag
RESERVED = ("verbose",)


def constructor_params(cls) -> list[str]:
    return [k for k in inspect.signature(cls.__init__).parameters if k != "self" and k not in RESERVED]


def parse_params(extra: list[str], model: str, valid: list[str]) -> dict:
    """``--name value`` / ``--name=value`` pairs -> {name: literal}; names are the estimator's own."""
    out, spelled, i = {}, {}, 0
    while i < len(extra):
        tok = extra[i]
        if not tok.startswith("--") or tok == "--":
            raise UsageError(f"fit: unexpected argument {tok!r}; model parameters are given as --name value")
        name, eq, value = tok[2:].partition("=")
        key = name.replace("-", "_")
        if key not in valid:
            raise UsageError(f"fit: unknown parameter {name!r} for model {model!r}; valid parameters: "
                             f"{', '.join(valid)}")
        if key in spelled:  # `--n_components 2 --n-components 3` would silently keep the 3
            raise UsageError(f"fit: parameter {key!r} given twice (--{spelled[key]} and --{name}); give it once")
        if not eq:
            if i + 1 >= len(extra):
                raise UsageError(f"fit: parameter --{name} needs a value")
            i += 1
            value = extra[i]
        out[key] = parse_value(value)
        spelled[key] = name
        i += 1
    return out


def _versions():
    from ..experiment import versions

    return versions()


def run(args, extra) -> int:
    from ..evaluation import reconstruction_error
    from ..experiment import choose_likelihood
    from ..registry import MODELS

    if args.model not in MODELS:
        raise UsageError(f"fit: unknown model {args.model!r}; known models: {', '.join(MODELS)}")
    spec = MODELS[args.model]
    valid = constructor_params(spec.cls)
    params = parse_params(extra, args.model, valid)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"fit: --out {out} exists and is not a folder")
    notes = _checkpoint_options(args, params, valid)
    X, y, meta = load_data(args)
    X, pre = fit_preprocessor(args, X, meta)
    _missing_values(spec, args.model, params, X, meta, notes)
    if "likelihood" in valid and "likelihood" not in params:
        params["likelihood"], notes["likelihood_choice"] = choose_likelihood(X)
    if "verbose" in inspect.signature(spec.cls.__init__).parameters:
        params["verbose"] = 1 if args.verbose else 0  # training progress with -v
    est = spec.make(**params)
    try:
        est._validate_params()
    except (ValueError, TypeError) as e:
        raise UsageError(f"fit: {e}") from None
    ddp = distributed.init_from_env()  # under torchrun: DDP over the ranks (gloo on CPU, NCCL on GPU)
    fitted = False
    try:
        t0 = time.perf_counter()
        est.fit(X, **({"resume": True} if args.resume else {}))
        fit_time = time.perf_counter() - t0
        fitted = True
        if not distributed.is_main_process():
            return 0  # every rank holds the same model: rank 0 writes and reports it
    finally:
        if ddp:
            distributed.shutdown(wait=fitted)
    name_features(est, meta.get("columns"))  # a table's header, an .h5ad's var_names, Parquet columns
    info = {"model": args.model, "class": f"{type(est).__module__}.{type(est).__qualname__}",
            "params": est.get_params(deep=False), "data": meta, "fit_time_s": fit_time,
            "train_reconstruction_error": reconstruction_error(est, X), **notes,
            "versions": _versions(), "command": ["latentzoo", *sys.argv[1:]]}
    _write(out, est, info, pre)
    echo(f"{args.model}: fitted on {X.shape[0]} x {X.shape[1]} in {fit_time:.1f}s; saved {out / MODEL_FILE}")
    return 0


def _checkpoint_options(args, params: dict, valid: list[str]) -> dict:
    """``--resume`` needs ``--checkpoint_dir``; a checkpointed fit gets a fixed seed (0 unless
    ``--random_state`` is given), so that the same command again with ``--resume`` replays the
    same run."""
    notes = {}
    if args.resume and not params.get("checkpoint_dir"):
        raise UsageError("fit: --resume needs --checkpoint_dir DIR, the folder of the interrupted fit's checkpoint"
                         if "checkpoint_dir" in valid else f"fit: --resume: model {args.model!r} trains in one "
                         "step and has no checkpoints")
    if params.get("checkpoint_dir") and "random_state" in valid and "random_state" not in params:
        params["random_state"] = 0
        notes["random_state_choice"] = "0: a checkpointed fit needs a fixed seed to resume"
    if args.resume:
        ckpt = Path(str(params["checkpoint_dir"])) / "checkpoint.pt"
        if not ckpt.exists():
            echo(f"fit: --resume: no checkpoint in {ckpt.parent} yet; training from the start")
    return notes


def _missing_values(spec, name: str, params: dict, X, meta: dict, notes: dict) -> None:
    """Data with NaN: the model's settings that fit them (PPCA: EM), or a clear error."""
    from ..data.missing import has_missing, missing_value_params
    from ..registry import MODELS

    if not has_missing(X):
        return
    n = int(np.isnan(X).sum())
    extra = missing_value_params(spec.cls, {**spec.params, **params}, user=set(params))
    if extra is None:
        able = [m for m, s in MODELS.items() if missing_value_params(s.cls, dict(s.params)) is not None]
        raise UsageError(f"fit: model {name!r} with these parameters cannot fit data with missing values "
                         f"({n} missing entries in {meta.get('source')}); models that can: "
                         f"{', '.join(able) or 'none'}")
    params.update(extra)
    notes["missing_values"] = (f"{n} missing entries ({n / X.size:.1%}); fitted with "
                               f"{', '.join(f'{k}={v!r}' for k, v in extra.items()) or 'its own parameters'}")


def _write(out: Path, est, info: dict, pre=None) -> None:
    """All files or none: a new folder is built aside and renamed; an existing one gets
    each file by atomic rename (and loses a stale preprocess.json)."""
    from .._atomic import atomic_write

    def files(folder: Path):
        est.save(folder / MODEL_FILE)
        if pre is not None:
            with atomic_write(folder / PREPROCESS_FILE) as tmp:
                Path(tmp).write_text(pre.to_json(), encoding="utf-8")
        else:
            (folder / PREPROCESS_FILE).unlink(missing_ok=True)
        write_json(folder / INFO_FILE, info)

    if out.is_dir():
        files(out)
        return
    with atomic_folder(out) as tmp:
        files(tmp)


COMMAND = Command(
    "fit", "fit one model on data and save it (model.safetensors + info.json)",
    """model parameters are the estimator's own constructor parameters, as --name value
(or --name=value; dashes or underscores); values are Python literals (2, 0.5, (64, 32),
None, True), anything else is a string. --preprocess (default auto) is saved beside the
model (preprocess.json) and applied again by evaluate, encode, report and sample. The model's own `verbose` follows the CLI's
-v/--verbose flag (training progress and logging).

multi-process data-parallel training (DDP, one process per GPU or CPU group), launched by
PyTorch's torchrun; rank 0 writes the model:
  torchrun --nproc-per-node 4 -m latentzoo fit vae data.npy --out runs/vae

examples:
  latentzoo fit pca digits --out runs/pca --n_components 10
  latentzoo fit vae digits --out runs/vae --n-components 2 --max-epochs 50 --hidden "(256, 128)"
  latentzoo fit dae moons --out runs/dae --noise gaussian:0.1 --likelihood gaussian

interrupted (Ctrl-C, a kill) while checkpointing? the same command with --resume continues:
  latentzoo fit vae digits --out runs/vae --checkpoint_dir runs/vae-ckpt
  latentzoo fit vae digits --out runs/vae --checkpoint_dir runs/vae-ckpt --resume""",
    add_arguments, run, takes_extra=True)
