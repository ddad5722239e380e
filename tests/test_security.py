"""Loading never executes code from a file, and the CLI takes its arguments as data.

A pickle payload whose ``__reduce__`` would create a marker file is offered as a training
checkpoint and as a model file: loading must fail with a clear error and the marker must
not appear. A source scan checks that the package has no unsafe deserialisation or
``eval``/``exec``. CLI arguments that look like shell or Python code stay strings.
"""
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import latentzoo

SRC = Path(latentzoo.__file__).parent


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file proves code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload_files(tmp_path):
    marker = tmp_path / "PWNED"
    evil = {"fingerprint": "x", "model": Payload(marker)}
    torch_file = tmp_path / "torch-payload.bin"
    torch.save(evil, torch_file)
    pickle_file = tmp_path / "pickle-payload.bin"
    pickle_file.write_bytes(pickle.dumps(evil))
    assert not marker.exists()
    return marker, {"torch.save": torch_file.read_bytes(), "pickle": pickle_file.read_bytes()}


@pytest.mark.parametrize("kind", ["torch.save", "pickle"])
def test_checkpoint_payload_is_refused_without_running(kind, tmp_path):
    marker, payloads = _payload_files(tmp_path)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "checkpoint.pt").write_bytes(payloads[kind])
    est = latentzoo.Autoencoder(hidden=(4,), max_epochs=1, verbose=0, random_state=0, checkpoint_dir=str(ckpt))
    with pytest.raises(ValueError, match="cannot resume: checkpoint .*checkpoint.pt is unreadable"):
        est.fit(np.random.default_rng(0).random((16, 3)), resume=True)
    assert not marker.exists(), "code from the checkpoint was executed"


@pytest.mark.parametrize("kind", ["torch.save", "pickle"])
@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".pkl"])
def test_model_payload_is_refused_without_running(kind, suffix, tmp_path):
    marker, payloads = _payload_files(tmp_path)
    path = tmp_path / f"model{suffix}"
    path.write_bytes(payloads[kind])
    with pytest.raises(ValueError, match=f"model{re.escape(suffix)} is not a readable latentzoo model file"):
        latentzoo.load(path)
    assert not marker.exists(), "code from the model file was executed"


def test_data_payload_is_refused_without_running(tmp_path):
    marker, payloads = _payload_files(tmp_path)
    for name in ("data.npy", "data.npz"):
        (tmp_path / name).write_bytes(payloads["pickle"])
        with pytest.raises(ValueError, match=name):
            latentzoo.load_dataset(tmp_path / name)
    np.save(tmp_path / "obj.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickled"):
        latentzoo.load_dataset(tmp_path / "obj.npy")
    assert not marker.exists()


# ---------------------------------------------------------------------------- source scan
def _sources():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 10
    return [(f, f.read_text()) for f in files]


def _calls(text, func):
    """Full argument text of every call ``func(...)`` (balanced parentheses)."""
    out = []
    for m in re.finditer(rf"(?<![\w.]){re.escape(func)}\s*\(", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        out.append(text[m.end(): i - 1])
    return out


@pytest.mark.parametrize("pattern", [r"\bpickle\.loads?\(", r"\bcPickle\b", r"\bdill\b", r"\bmarshal\.loads?\(",
                                     r"\byaml\.load\(", r"(?<![\w.])eval\(", r"(?<![\w.])exec\(",
                                     r"\bshelve\.", r"__import__\(", r"\bos\.system\(", r"shell\s*=\s*True"])
def test_package_source_has_no_unsafe_calls(pattern):
    bad = [f"{f.relative_to(SRC)}:{text[:m.start()].count(chr(10)) + 1}"
           for f, text in _sources() for m in re.finditer(pattern, text)]
    assert not bad, f"{pattern} found in {bad}"


def test_every_torch_load_is_weights_only():
    calls = [(f, c) for f, text in _sources() for c in _calls(text, "torch.load")]
    assert calls, "the checkpoint reader uses torch.load"
    bad = [str(f.relative_to(SRC)) for f, c in calls if not re.search(r"weights_only\s*=\s*True", c)]
    assert not bad, f"torch.load without weights_only=True in {bad}"


def test_every_numpy_load_refuses_pickles():
    calls = [(f, c) for f, text in _sources() for c in _calls(text, "np.load")]
    bad = [str(f.relative_to(SRC)) for f, c in calls if not re.search(r"allow_pickle\s*=\s*False", c)]
    assert not bad, f"np.load without allow_pickle=False in {bad}"


def test_the_scan_finds_what_it_looks_for():
    """The scan itself can fail: it flags a planted call and ignores the safe look-alikes."""
    text = "x = eval('1')\nm.eval()\nast.literal_eval('1')\ntorch.load(p, map_location='cpu')\n"
    assert re.findall(r"(?<![\w.])eval\(", text) == ["eval("]
    assert _calls(text, "torch.load") == ["p, map_location='cpu'"]


# ---------------------------------------------------------------------------- CLI arguments
HOSTILE = ["$(touch pwned1)", "`touch pwned2`", "__import__('os').system('touch pwned3')", "; touch pwned4"]


def _cli(argv, capsys):
    from latentzoo.cli import main

    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _no_marker(folder):
    assert not [p.name for p in folder.iterdir() if p.name.startswith("pwned")], "a shell/Python command ran"


@pytest.mark.parametrize("text", HOSTILE)
def test_cli_paths_are_data(text, tmp_path, monkeypatch, capsys):
    pytest.importorskip("latentzoo.cli")
    monkeypatch.chdir(tmp_path)
    for argv in (["fit", "pca", text, "--out", "run"], ["evaluate", text, "digits"], ["encode", text, "digits", "--out", "z.npy"]):
        rc, out, err = _cli(argv, capsys)
        assert rc != 0 and err.startswith("latentzoo: error:") and "Traceback" not in err
        _no_marker(tmp_path)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text", HOSTILE)
def test_cli_parameter_values_are_data(text, tmp_path, monkeypatch, capsys):
    pytest.importorskip("latentzoo.cli")
    monkeypatch.chdir(tmp_path)
    np.savetxt(tmp_path / "x.csv", np.random.default_rng(0).random((20, 4)), delimiter=",")
    for param in ("--n_components", "--whiten"):
        rc, out, err = _cli(["fit", "pca", "x.csv", "--out", "run", param, text], capsys)
        assert rc == 2 and err.startswith("latentzoo: error:") and "invalid value for parameter" in err
        assert repr(text)[1:-1][:10] in err  # the value is echoed back as the string it is
    _no_marker(tmp_path)
    assert not (tmp_path / "run").exists()


def test_cli_literal_values_are_parsed_but_never_evaluated():
    from latentzoo.cli._common import parse_value

    assert parse_value("(64, 32)") == (64, 32) and parse_value("None") is None and parse_value("0.5") == 0.5
    for text in HOSTILE + ["open('x', 'w')", "[x for x in ()]", "lambda: 1"]:
        assert parse_value(text) == text
