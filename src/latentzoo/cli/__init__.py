"""The ``latentzoo`` console script: ``main(argv=None) -> int``.

Subcommands come from a registry (:data:`COMMANDS`), one small module each. Every error
is one line ``latentzoo: error: <message>`` on stderr and a non-zero exit status (2 for
usage errors, 1 otherwise); ``--verbose`` adds the traceback for debugging. Like other
Unix tools, a closed output pipe (``latentzoo ... | head``) ends the command quietly with
status 141 (128 + SIGPIPE) and Ctrl-C (SIGINT) with status 130 (128 + SIGINT).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import traceback
import warnings

from ..base import UNNAMED_INPUT_WARNING
from ._common import CLIError, Command, Parser, UsageError
from . import compare, encode, evaluate, fit, report, sample

__all__ = ["main", "COMMANDS", "build_parser"]

#: subcommand name -> Command, in the order ``--help`` lists them
COMMANDS: dict[str, Command] = {c.name: c for c in (compare.COMMAND, fit.COMMAND, evaluate.COMMAND,
                                                    encode.COMMAND, sample.COMMAND, report.COMMAND)}

_EPILOG = """examples:
  latentzoo compare --out report              # the whole ladder on the digits, HTML report
  latentzoo fit vae digits --out runs/vae --max-epochs 50
  latentzoo evaluate runs/vae digits --json
  latentzoo sample runs/vae -n 16 --out samples.npy

run `latentzoo COMMAND --help` for the options and examples of each command."""


_THREADS_HELP = ("torch CPU threads (default: 1; the small networks gain little from more, and "
                 "oversubscribed threads on a busy machine slow training down many times)")


def _set_threads(n: int) -> None:
    if n < 1:
        raise UsageError(f"--threads must be a positive integer, got {n}")
    import torch

    torch.set_num_threads(n)


def build_parser() -> Parser:
    from latentzoo import __version__

    parser = Parser(prog="latentzoo", description="The ladder of latent-variable models: PCA, PPCA, AE, DAE, "
                    "CAE, VAE, beta-VAE behind one API, fitted, measured and compared.", epilog=_EPILOG)
    parser.add_argument("--version", action="version", version=f"latentzoo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and show tracebacks of errors")
    parser.add_argument("--threads", type=int, default=1, help=_THREADS_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parser.subcommands = {}
    for cmd in COMMANDS.values():
        p = parser.subcommands[cmd.name] = sub.add_parser(
            cmd.name, help=cmd.help, description=cmd.help[0].upper() + cmd.help[1:] + ".", epilog=cmd.examples)
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="log progress and show tracebacks of errors")
        p.add_argument("--threads", type=int, default=argparse.SUPPRESS, help=_THREADS_HELP)
        cmd.add_arguments(p)
    return parser


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) if str(e) else type(e).__name__
    if isinstance(e, KeyError):  # KeyError's str is the repr of the key
        msg = f"missing key {msg}"
    if not isinstance(e, (CLIError, ValueError, FileNotFoundError, PermissionError, NotImplementedError)):
        msg = f"{type(e).__name__}: {msg}"
    return msg


def _check_repeats(parser: Parser, command: str, argv: list[str]) -> None:
    """Refuse an option given twice (argparse would silently keep the last value)."""
    dests = {}
    for p in (parser, parser.subcommands[command]):
        for action in p._actions:
            # flags (-v, --json) may repeat harmlessly, and so may options that collect every
            # value (action="append": compare's --param); other values may not
            if action.nargs != 0 and not isinstance(action, argparse._AppendAction):
                dests.update({o: action.dest for o in action.option_strings})
    seen: dict[str, str] = {}
    for tok in argv:
        if tok == "--":
            break
        opt = tok.split("=", 1)[0]
        dest = dests.get(opt)
        if dest is None:
            continue
        if dest in seen:
            raise UsageError(f"{command}: option {seen[dest]} given twice ({seen[dest]} and {opt}); give it once")
        seen[dest] = opt


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning during a command (e.g. EM not converged) as one line, without the source line."""
    print(f"latentzoo: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _exit_on_broken_pipe() -> int:
    """stdout's reader went away (``| head``): end quietly, as Unix tools do on SIGPIPE."""
    try:  # later flushes (at interpreter exit) must not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (captured): nothing to redirect
        pass
    return 128 + signal.SIGPIPE


def main(argv=None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(a in ("-v", "--verbose") for a in argv)
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        parser = build_parser()
        try:
            args, extra = parser.parse_known_args(argv)
        except SystemExit as e:  # --help / --version
            return int(e.code or 0)
        cmd = COMMANDS[args.command]
        _check_repeats(parser, cmd.name, argv)
        _set_threads(args.threads)
        if extra and not cmd.takes_extra:
            raise UsageError(f"{cmd.name}: unrecognized arguments: {' '.join(extra)}")
        with warnings.catch_warnings():  # arrays in the checked column order (check_fits), not DataFrames
            warnings.filterwarnings("ignore", message=UNNAMED_INPUT_WARNING, category=UserWarning)
            warnings.showwarning = _warning_line
            rc = cmd.run(args, extra)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return rc
    except KeyboardInterrupt:
        print("latentzoo: error: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:
        return _exit_on_broken_pipe()
    except Exception as e:  # noqa: BLE001  -- the CLI's one place that turns errors into one line
        if verbose:
            traceback.print_exc()
        print(f"latentzoo: error: {_one_line(e)}", file=sys.stderr)
        return e.exit_code if isinstance(e, CLIError) else 1
