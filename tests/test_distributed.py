"""Data-parallel training with torch.distributed (gloo, 2 CPU processes) on a tiny dataset.

Oracle: the mathematics of DDP. Averaging the gradients of two ranks that each take B
rows equals one process taking 2B rows, so a 2-rank fit must (a) leave both ranks with
bit-identical weights (gradients synchronised, early stopping agreed) and (b) reach the
quality of a single process with batch 2B.
"""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import latentzoo

pytestmark = pytest.mark.distributed

EPOCHS, BATCH = 8, 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    X, _, _ = latentzoo.load_dataset("digits")
    return X[:600], X[600:900]


def _model(**kw):
    from latentzoo import Autoencoder

    return Autoencoder(n_components=4, hidden=(32,), likelihood="bernoulli", max_epochs=EPOCHS,
                       batch_size=BATCH, patience=3, random_state=0, verbose=0, device="cpu", **kw)


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from latentzoo import distributed

    assert distributed.init_from_env(backend="gloo")
    X, _ = _data()
    est = _model(checkpoint_dir=os.path.join(out_dir, "ckpt")).fit(X)
    flat = torch.cat([p.detach().flatten() for p in est.module_.parameters()]).numpy()
    np.save(os.path.join(out_dir, f"params{rank}.npy"), flat)
    est.save(os.path.join(out_dir, "model.safetensors"))  # rank 0 only
    np.save(os.path.join(out_dir, f"history{rank}.npy"), np.array(est.history_["val_loss"]))
    distributed.shutdown()


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ddp"))
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    return out


def _late_shutdown_worker(rank, world, port, out_dir):
    # rank 0 arrives late at shutdown; rank 1 must not tear the group down before it arrives
    import time

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    from latentzoo import distributed

    assert distributed.init_from_env(backend="gloo")
    marker = os.path.join(out_dir, "rank0-arrived")
    if rank == 0:
        time.sleep(1.0)
        open(marker, "w").close()
    distributed.shutdown()
    if rank == 1:
        np.save(os.path.join(out_dir, "seen.npy"), np.array(os.path.exists(marker)))


def test_shutdown_waits_for_every_rank_before_destroying_the_group(tmp_path):
    mp.spawn(_late_shutdown_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    assert bool(np.load(tmp_path / "seen.npy"))


def test_ranks_hold_identical_weights(ddp_run):
    p0 = np.load(os.path.join(ddp_run, "params0.npy"))
    p1 = np.load(os.path.join(ddp_run, "params1.npy"))
    np.testing.assert_array_equal(p0, p1)
    # early stopping agreed: both ranks saw the same (all-reduced) validation curve
    np.testing.assert_array_equal(np.load(os.path.join(ddp_run, "history0.npy")),
                                  np.load(os.path.join(ddp_run, "history1.npy")))


def test_only_rank0_wrote_model_and_checkpoint(ddp_run):
    files = sorted(os.listdir(ddp_run))
    assert "model.safetensors" in files
    assert [f for f in files if f.endswith(".safetensors")] == ["model.safetensors"]
    assert os.listdir(os.path.join(ddp_run, "ckpt")) == ["checkpoint.pt"]


def test_same_quality_as_single_process_with_the_global_batch(ddp_run):
    X, Xte = _data()
    torch.set_num_threads(1)
    single = _model().set_params(batch_size=2 * BATCH).fit(X)
    ddp = latentzoo.load(os.path.join(ddp_run, "model.safetensors"))
    e_single, e_ddp = single.reconstruction_error(Xte), ddp.reconstruction_error(Xte)
    assert abs(e_ddp - e_single) / e_single < 0.1, (e_ddp, e_single)
    # and clearly better than the untrained network: training happened on both ranks
    untrained = _model().set_params(max_epochs=1, lr=1e-9).fit(X)
    assert e_ddp < 0.8 * untrained.reconstruction_error(Xte)


def test_torchrun_launches_the_module(tmp_path):
    """`torchrun --nproc-per-node 2` runs a latentzoo fit script end to end (gloo)."""
    script = tmp_path / "fit.py"
    script.write_text(
        "import sys, numpy as np, torch\n"
        "torch.set_num_threads(1)\n"
        "from latentzoo import Autoencoder, load_dataset, distributed\n"
        "assert distributed.init_from_env()\n"
        "X = load_dataset('digits').X[:200]\n"
        "est = Autoencoder(2, hidden=(16,), max_epochs=2, random_state=0, verbose=0).fit(X)\n"
        f"est.save({str(tmp_path / 'm.safetensors')!r})\n"
        f"open({str(tmp_path)!r} + f'/rank{{distributed.rank()}}', 'w').write(str(distributed.world_size()))\n"
        "distributed.shutdown()\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                        "--master-port", str(_free_port()), str(script)],
                       capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert [(tmp_path / f"rank{i}").read_text() for i in (0, 1)] == ["2", "2"]
    assert latentzoo.load(tmp_path / "m.safetensors").transform(np.zeros((1, 64))).shape == (1, 2)


def test_torchrun_runs_the_cli_fit(tmp_path):
    """`torchrun --nproc-per-node 2 -m latentzoo fit ...`: both ranks train, rank 0 writes
    the model folder (exactly the two files), and the model is usable."""
    data = tmp_path / "X.npy"
    np.save(data, latentzoo.load_dataset("digits").X[:300])
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                        "--master-port", str(_free_port()), "-m", "latentzoo", "fit", "ae", str(data),
                        "--out", str(out), "--max_epochs", "2", "--hidden", "(16,)", "--random_state", "0"],
                       capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["info.json", "model.safetensors"]
    assert r.stdout.count("saved") == 1  # one report line: rank 0's
    model = latentzoo.load(out / "model.safetensors")
    assert model.transform(np.zeros((1, 64), np.float32)).shape == (1, 2)
