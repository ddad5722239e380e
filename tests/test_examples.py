"""Every example a user copies must run: the README's shell and Python blocks and every
``--help`` epilog of the CLI, parsed from the text itself (a new example is tested the
moment it is written).

Each command runs in a fresh folder with what a user would have: files it names (data.csv,
X.npy, an MNIST IDX file or folder) get small stand-ins made from the embedded digits, a
model folder (``runs/NAME``) it reads is fitted first with ``latentzoo fit NAME``. Small
settings are appended where the command accepts them (``--epochs 1``, ``--models pca,vae``
when no models are named, ...; see :data:`FAST`), so the suite stays fast. ``HOST``
placeholders become a local Dask scheduler or a local torchrun rendezvous. A command fails
the test when it exits non-zero or prints that a figure could not be drawn.
"""
from __future__ import annotations

import gzip
import os
import re
import shlex
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from latentzoo.cli import build_parser, main
from latentzoo.data import synthetic
from latentzoo.registry import MODELS

README = Path(__file__).resolve().parents[1] / "README.md"

#: small settings appended to a latentzoo subcommand when it accepts the option; the
#: second value: False = always (argparse keeps the last), True = only if the example
#: does not give the option itself (it is what the example shows)
FAST = {"--epochs": ("1", False), "--hidden": ("8", False), "--n-importance": ("4", False),
        "--n-samples": ("150", False), "--models": ("pca,vae", True)}
#: estimator parameters appended to `latentzoo fit MODEL` when the model has them
FAST_FIT = {"max_epochs": "1", "hidden": "(8,)"}
#: programs shown in the README that this test does not run, and why
NOT_RUN = {"make": "sets up .venv and runs the suite (make test) or `latentzoo compare --out report` "
                   "(make demo), which the main --help epilog shows and this test runs",
           "dask": "starts a Dask scheduler or workers on a cluster; the dask_scheduler fixture (a local "
                   "cluster) stands in for them when the example's `--scheduler tcp://HOST:8786` runs"}
#: ranks per node a torchrun example is run with (the examples show 4 or 8 GPUs)
MAX_NPROC = 2


# ---------------------------------------------------------------------- collecting examples
def _fenced(md: str, languages: tuple[str, ...]) -> list[str]:
    """The fenced blocks of the given languages (at any indentation, e.g. inside a list item)."""
    pat = re.compile(r"^([ \t]*)```(\w*)[ \t]*\n(.*?)^\1```", re.M | re.S)
    return [textwrap.dedent(m.group(3)) for m in pat.finditer(md) if m.group(2) in languages]


def _shell_commands(text: str) -> list[str]:
    """One string per command line: backslash continuations joined, comments dropped."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if argv:
            out.append(shlex.join(argv))
    return out


def _epilogs() -> dict[str, str]:
    """``--help`` epilog of the CLI and of each subcommand, as argparse holds them."""
    parser = build_parser()
    out = {"latentzoo --help": parser.epilog or ""}
    for action in parser._subparsers._group_actions:  # the subcommands
        for name, sub in action.choices.items():
            out[f"latentzoo {name} --help"] = sub.epilog or ""
    return out


def _epilog_commands(epilog: str) -> list[str]:
    lines = [ln for ln in epilog.replace("\\\n", " ").splitlines()
             if ln.strip().startswith(("latentzoo ", "torchrun "))]
    return _shell_commands("\n".join(lines))


def _readme_commands() -> list[str]:
    return [c for block in _fenced(README.read_text(), ("bash", "sh", "shell", "console"))
            for c in _shell_commands(block)]


def _program(command: str) -> str:
    return Path(shlex.split(command)[0]).name


CLI_EXAMPLES = [pytest.param(c, id=f"README: {c}") for c in _readme_commands() if _program(c) not in NOT_RUN] + \
    [pytest.param(c, id=f"{where}: {c}") for where, text in _epilogs().items() for c in _epilog_commands(text)]
PY_EXAMPLES = [pytest.param(b, id=f"README python block {i + 1}")
               for i, b in enumerate(_fenced(README.read_text(), ("python",)))]


def _subcommand(command: str) -> str:
    argv = shlex.split(command)
    i = next(i for i, t in enumerate(argv) if Path(t).name == "latentzoo")
    return argv[i + 1]


def test_the_examples_are_found():
    # the parsing itself: the README and the epilogs show examples of every subcommand
    shown = {_subcommand(p.values[0]) for p in CLI_EXAMPLES}
    assert {"compare", "fit", "evaluate", "encode", "sample", "report"} <= shown, shown
    assert PY_EXAMPLES
    assert {_program(c) for c in _readme_commands()} <= {"latentzoo", "torchrun", *NOT_RUN}, \
        "a README command this test does not know how to run"


# ---------------------------------------------------------------------- stand-ins
def _digits(n: int, seed: int = 0):
    X, y, _ = synthetic.EMBEDDED["digits"]()
    idx = np.random.default_rng(seed).permutation(len(X))[:n]
    return X[idx], y[idx]


def _idx_bytes(arr: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_idx(path: Path, n: int, seed: int) -> None:
    """MNIST IDX images (28 x 28, the digits scaled up) and the labels file beside them."""
    X, y = _digits(n, seed)
    imgs = np.pad(np.kron(X.reshape(-1, 8, 8), np.ones((3, 3))), ((0, 0), (2, 2), (2, 2)))
    gz = path.name.endswith(".gz")
    labels = path.with_name(path.name.replace("images", "labels").replace("idx3", "idx1"))
    for p, data in ((path, _idx_bytes(np.round(imgs * 255), 2051)), (labels, _idx_bytes(y, 2049))):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(gzip.compress(data) if gz else data)


def _stand_in(token: str, root: Path, label_column) -> None:
    """A small file of the form ``token`` names, as a user would have it."""
    p = root / token
    name = p.name.lower()
    X, y = _digits(200)
    if token.endswith("/") or not p.suffix:  # a folder: the four MNIST IDX files
        _write_idx(p / "train-images-idx3-ubyte.gz", 160, 0)
        _write_idx(p / "t10k-images-idx3-ubyte.gz", 60, 1)
    elif "idx3-ubyte" in name:
        _write_idx(p, 160, 0)
    elif name.endswith((".csv", ".tsv")):
        sep = "," if name.endswith(".csv") else "\t"
        cols = [f"f{j}" for j in range(X.shape[1])] + ([str(label_column)] if label_column is not None else [])
        rows = [sep.join(f"{v:.4g}" for v in x) + (f"{sep}{c}" if label_column is not None else "")
                for x, c in zip(X, y)]
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(sep.join(cols) + "\n" + "\n".join(rows) + "\n")
    elif name.endswith(".parquet"):
        pd = pytest.importorskip("pandas")
        pytest.importorskip("pyarrow", reason="the [omics] extra (pyarrow) is not installed")
        df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
        if label_column is not None:
            df[str(label_column)] = y
        p.parent.mkdir(parents=True, exist_ok=True)
        df.to_parquet(p)
    elif name.endswith(".h5ad"):
        ad = pytest.importorskip("anndata", reason="the [omics] extra (anndata) is not installed")
        pd = pytest.importorskip("pandas")
        obs = pd.DataFrame({str(label_column or "cell_type"): pd.Categorical(y.astype(str))},
                           index=[f"cell{i}" for i in range(len(X))])
        counts = np.round(X * 16)
        adata = ad.AnnData(X=np.log1p(counts), obs=obs, var=pd.DataFrame(index=[f"gene{j}" for j in range(X.shape[1])]),
                           layers={"counts": counts})
        p.parent.mkdir(parents=True, exist_ok=True)
        adata.write_h5ad(p)
    elif name.endswith(".npy"):
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, X)
    elif name.endswith(".npz"):
        p.parent.mkdir(parents=True, exist_ok=True)
        np.savez(p, X=X, y=y)
    else:
        raise AssertionError(f"no stand-in for the data file {token!r}: teach _stand_in its format")


def _fast_fit_params(model: str) -> list[str]:
    from latentzoo.cli.fit import constructor_params

    params = constructor_params(MODELS[model].cls)
    return [t for k, v in FAST_FIT.items() if k in params for t in (f"--{k}", v)]


def _set_option(argv: list[str], names: list[str], value: str) -> list[str]:
    """``argv`` with the option's value replaced where the example gives it (as ``--x v`` or
    ``--x=v``; the CLI refuses an option given twice), else with ``names[0] value`` appended."""
    argv = list(argv)
    for i, tok in enumerate(argv):
        name, eq, _ = tok.partition("=")
        if name in names:
            if eq:
                argv[i] = f"{name}={value}"
            else:
                argv[i + 1] = value
            return argv
    return argv + [names[0], value]


def _prepare(argv: list[str], root: Path) -> list[str]:
    """Stand-ins for the files a latentzoo command reads, and its fast settings set."""
    parser = build_parser()
    args, _ = parser.parse_known_args(argv)
    for attr in ("data", "test_data"):
        token = getattr(args, attr, None)
        if token and token not in synthetic.EMBEDDED and not (root / token).exists():
            _stand_in(token, root, getattr(args, "label_column", None))
    model_dir = getattr(args, "model_dir", None)
    if model_dir and not (root / model_dir).exists():  # a folder the user made with `latentzoo fit`
        name = Path(model_dir).name
        assert name in MODELS, f"{model_dir}: name the folder after a registered model to let the test fit it"
        assert main(["fit", name, "digits", "--out", model_dir, *_fast_fit_params(name)]) == 0
    sub = next(a for a in parser._subparsers._group_actions).choices[args.command]
    for flag, (value, only_if_absent) in FAST.items():
        if flag in sub._option_string_actions and not (only_if_absent and flag in argv):
            argv = _set_option(argv, [flag, *sub._option_string_actions[flag].option_strings], value)
    if args.command == "fit":
        fast = _fast_fit_params(args.model)
        for flag, value in zip(fast[::2], fast[1::2]):
            argv = _set_option(argv, [flag, flag.replace("_", "-")], value)
    return argv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_scheduler():
    pytest.importorskip("distributed", reason="the [cluster] extra (dask.distributed) is not installed")
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


# ---------------------------------------------------------------------- running them
def _run_latentzoo(argv, root, capsys, request) -> None:
    if any("HOST" in t for t in argv):
        address = request.getfixturevalue("dask_scheduler")
        argv = [re.sub(r"tcp://HOST:\d+", address, t) for t in argv]
        assert not any("HOST" in t for t in argv), f"unknown placeholder in {argv}"
    argv = _prepare(argv, root)
    rc = main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, f"exit {rc}: {shlex.join(argv)}\n{err[-2000:]}"
    assert "could not be drawn" not in out + err, out + err


def _torchrun_nodes(argv: list[str], root: Path) -> list[list[str]]:
    """The torchrun example as local launches: ranks per node capped, HOST the local machine,
    a free port, one launch per node (``--nnodes K``: K launches with their own --node-rank)."""
    cut = argv.index("-m")
    opts, cli = argv[1:cut], argv[cut + 2:]
    assert argv[cut + 1] == "latentzoo", argv
    cli = _prepare(cli, root)
    nnodes, port, out = 1, _free_port(), []
    i = 0
    while i < len(opts):
        key, val = opts[i], opts[i + 1]
        if key == "--nnodes":
            nnodes = int(val)
        elif key == "--nproc-per-node":
            out += [key, str(min(int(val), MAX_NPROC if nnodes == 1 else 1))]
        elif key == "--rdzv-endpoint":
            out += [key, f"127.0.0.1:{port}"]
        elif key != "--node-rank":
            out += [key, val]
        i += 2
    if "--rdzv-endpoint" not in opts:
        out += ["--master-port", str(port)]
    if nnodes > 1:  # every node a launch on this machine, one rank each
        out = [t if j == 0 or out[j - 1] != "--nproc-per-node" else "1" for j, t in enumerate(out)]
        return [[sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nnodes), "--node-rank", str(r),
                 *out, "-m", "latentzoo", *cli] for r in range(nnodes)]
    return [[sys.executable, "-m", "torch.distributed.run", *out, "-m", "latentzoo", *cli]]


def _run_torchrun(argv, root) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in _torchrun_nodes(argv, root)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"exit {p.returncode}: {shlex.join(p.args)}\n{err[-2000:]}"


@pytest.mark.parametrize("command", CLI_EXAMPLES)
def test_cli_example_runs(command, tmp_path, monkeypatch, capsys, request):
    monkeypatch.chdir(tmp_path)
    argv = shlex.split(command)
    if _program(command) == "torchrun":
        request.applymarker(pytest.mark.distributed)
        _run_torchrun(argv, tmp_path)
    else:
        _run_latentzoo(argv[1:], tmp_path, capsys, request)


@pytest.fixture
def fast_neural_fits(monkeypatch):
    """The README's Python blocks as written, with every neural fit cut to 1 epoch."""
    from latentzoo.neural.base import NeuralEstimator

    fit = NeuralEstimator.fit

    def one_epoch(self, X, y=None, **kw):
        self.max_epochs = min(self.max_epochs, 1)
        return fit(self, X, y, **kw)

    monkeypatch.setattr(NeuralEstimator, "fit", one_epoch)


@pytest.mark.parametrize("block", PY_EXAMPLES)
def test_readme_python_block_runs(block, tmp_path, monkeypatch, fast_neural_fits):
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
