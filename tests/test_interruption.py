"""Interruption: a fit or a save killed with SIGKILL never leaves a state that is accepted wrongly.

* A fit killed after its first checkpoint resumes (``fit(resume=True)``) and ends with
  exactly the weights of an uninterrupted fit (same seed, CPU: ``torch.equal``).
* ``save()`` killed at random moments leaves the target absent, the previous complete
  model or the new one; ``latentzoo.load`` never accepts a half-written file.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

import latentzoo

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL semantics")

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

AE_PARAMS = dict(n_components=2, hidden=(8,), max_epochs=40, batch_size=8, patience=None, verbose=0,
                 random_state=3, noise="gaussian:0.1", device="cpu")


def _spawn(script: str, tmp_path):
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(script))
    return subprocess.Popen([sys.executable, str(path)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _wait_for(pred, proc, timeout=60.0):
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"child exited early (rc {proc.returncode}): {err.decode()[-2000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out waiting for the child")
        time.sleep(0.005)


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def test_fit_killed_mid_way_resumes_to_the_uninterrupted_result(tmp_path):
    X = np.random.default_rng(0).random((32, 6)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    ckpt = tmp_path / "ckpt"
    proc = _spawn(f"""
        import numpy as np, torch
        torch.set_num_threads(1)
        from latentzoo import Autoencoder
        X = np.load({str(tmp_path / "X.npy")!r})
        Autoencoder(**{AE_PARAMS!r}, checkpoint_dir={str(ckpt)!r}).fit(X)
    """, tmp_path)
    _wait_for(lambda: (ckpt / "checkpoint.pt").exists(), proc)
    _kill(proc)  # the first checkpoint exists: the kill lands in the middle of training
    assert (ckpt / "checkpoint.pt").exists()

    done = torch.load(ckpt / "checkpoint.pt", weights_only=True)["epoch"]
    assert 1 <= done < AE_PARAMS["max_epochs"], "the kill must land mid-fit"

    resumed = latentzoo.Autoencoder(**AE_PARAMS, checkpoint_dir=str(ckpt)).fit(X, resume=True)
    reference = latentzoo.Autoencoder(**AE_PARAMS).fit(X)
    ref_state, res_state = reference.module_.state_dict(), resumed.module_.state_dict()
    assert ref_state.keys() == res_state.keys()
    for k in ref_state:
        assert torch.equal(ref_state[k], res_state[k]), k
    assert resumed.history_["train_loss"] == reference.history_["train_loss"]
    # a temporary file of a checkpoint being written when the kill came is cleared by the resumed fit
    assert not [p for p in ckpt.iterdir() if p.name != "checkpoint.pt"], "temporary checkpoint debris"


def test_resume_rejects_a_truncated_checkpoint(tmp_path):
    """A checkpoint cut short (e.g. copied while written) is a clear error, not a crash or a silent restart."""
    X = np.random.default_rng(0).random((32, 4)).astype(np.float32)
    ckpt = tmp_path / "ckpt"
    params = {**AE_PARAMS, "max_epochs": 2}
    latentzoo.Autoencoder(**params, checkpoint_dir=str(ckpt)).fit(X)
    f = ckpt / "checkpoint.pt"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(ValueError, match="checkpoint .* is unreadable"):
        latentzoo.Autoencoder(**params, checkpoint_dir=str(ckpt)).fit(X, resume=True)


N_KILLS = 12


def test_save_killed_at_random_moments_never_leaves_an_accepted_half_file(tmp_path):
    """One child imports latentzoo once, then forks a saver per round and SIGKILLs it at a random moment."""
    rng = np.random.default_rng(0)
    X = rng.random((120, 3000))
    models = {"a": latentzoo.PCA(100).fit(X), "b": latentzoo.PCA(100).fit(X + 1.0)}  # ~2.5 MB each
    for k, m in models.items():
        m.save(tmp_path / f"{k}.safetensors")
    rounds = [tmp_path / f"round{i}" for i in range(N_KILLS)]
    proc = _spawn(f"""
        import os, random, signal, time
        import latentzoo
        a = latentzoo.load({str(tmp_path / "a.safetensors")!r})
        b = latentzoo.load({str(tmp_path / "b.safetensors")!r})
        random.seed(0)
        for folder in {[str(r) for r in rounds]!r}:
            os.mkdir(folder)
            target = os.path.join(folder, "model.safetensors")
            pid = os.fork()
            if pid == 0:  # the saver: overwrite the target with a, b, a, ... until killed
                while True:
                    for m in (a, b):
                        m.save(target)
            while not os.path.exists(target):
                time.sleep(0.001)
            time.sleep(random.uniform(0.0, 0.05))
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    """, tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    means = {k: m.mean_ for k, m in models.items()}
    seen, debris = set(), 0
    for folder in rounds:
        target = folder / "model.safetensors"
        back = latentzoo.load(target)  # the target always holds a complete model
        which = [k for k, mu in means.items() if np.array_equal(back.mean_, mu)]
        assert len(which) == 1
        np.testing.assert_array_equal(back.components_, models[which[0]].components_)
        seen.add(which[0])
        for tmp in [p for p in folder.iterdir() if p != target]:
            # hidden temporary files only (ours: .model.safetensors.*.tmp; safetensors' own: .tmp*)
            assert tmp.name.startswith("."), tmp.name
            try:  # debris is either refused as truncated, or a complete copy of a or b
                d = latentzoo.load(tmp)
            except ValueError as e:
                assert "corrupted" in str(e)  # truncated, or a checksum mismatch (zeros not yet written)
            else:
                assert any(np.array_equal(d.mean_, mu) for mu in means.values())
            debris += 1
    assert seen
