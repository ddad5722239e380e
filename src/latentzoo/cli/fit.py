"""``latentzoo fit MODEL DATA --out DIR [--param value ...]``: fit one model and save it."""
from __future__ import annotations

import inspect
import sys
import time
from pathlib import Path

from .. import distributed
from .._atomic import atomic_folder
from ._common import INFO_FILE, MODEL_FILE, Command, UsageError, add_data_args, echo, load_data, parse_value, \
    write_json


def add_arguments(p):
    p.add_argument("model", help="registry name: pca, ppca, ae, dae, cae, vae, beta-vae, ...")
    add_data_args(p)
    p.add_argument("--out", required=True, help="folder to write model.safetensors and info.json into")
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
    from ..registry import MODELS
    from ..experiment import choose_likelihood

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
    try:
        t0 = time.perf_counter()
        est.fit(X, **({"resume": True} if args.resume else {}))
        fit_time = time.perf_counter() - t0
        if not distributed.is_main_process():
            return 0  # every rank holds the same model: rank 0 writes and reports it
    finally:
        if ddp:
            distributed.shutdown()
    info = {"model": args.model, "class": f"{type(est).__module__}.{type(est).__qualname__}",
            "params": est.get_params(deep=False), "data": meta, "fit_time_s": fit_time,
            "train_reconstruction_error": float(est.reconstruction_error(X)), **notes,
            "versions": _versions(), "command": ["latentzoo", *sys.argv[1:]]}
    _write(out, est, info)
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


def _write(out: Path, est, info: dict) -> None:
    """Both files or neither: a new folder is built aside and renamed; an existing one gets
    each file by atomic rename."""
    if out.is_dir():
        est.save(out / MODEL_FILE)
        write_json(out / INFO_FILE, info)
        return
    with atomic_folder(out) as tmp:
        est.save(tmp / MODEL_FILE)
        write_json(tmp / INFO_FILE, info)


COMMAND = Command(
    "fit", "fit one model on data and save it (model.safetensors + info.json)",
    """model parameters are the estimator's own constructor parameters, as --name value
(or --name=value; dashes or underscores); values are Python literals (2, 0.5, (64, 32),
None, True), anything else is a string. The model's own `verbose` follows the CLI's
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
