"""Corruptions: documented statistics on large tensors, fresh draws, registry errors."""
import math

import pytest
import torch

from latentzoo.neural.corruption import (
    CORRUPTIONS, Corruption, GaussianNoise, Masking, SaltAndPepper, make_corruption, register_corruption,
)

N = 200_000


def _binomial_tol(p, n, z=5.0):
    return z * math.sqrt(p * (1 - p) / n)


@pytest.fixture(autouse=True)
def _seed():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def test_gaussian_noise_mean_and_std():
    x = torch.full((N,), 0.3)
    e = GaussianNoise(0.2)(x) - x
    # sample mean ~ N(0, s^2/n); sample std within a few sqrt(1/(2n)) relative errors
    assert abs(float(e.mean())) < 5 * 0.2 / math.sqrt(N)
    assert abs(float(e.std()) / 0.2 - 1) < 5 / math.sqrt(2 * N)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.6])
def test_masking_fraction_and_no_rescaling(p):
    x = torch.rand(N) + 0.5  # strictly positive, so zeros are exactly the masked entries
    xt = Masking(p)(x)
    masked = xt == 0
    assert abs(float(masked.float().mean()) - p) < _binomial_tol(p, N)
    # survivors are kept as they are (classic DAE masking, no 1/(1-p) rescaling)
    assert torch.equal(xt[~masked], x[~masked])


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_salt_and_pepper_fraction_and_split(p):
    x = torch.full((N,), 0.5)
    xt = SaltAndPepper(p)(x)
    salt, pepper = xt == 1, xt == 0
    hit = salt | pepper
    assert torch.all((xt == 0.5) | hit)
    assert abs(float(hit.float().mean()) - p) < _binomial_tol(p, N)
    n_hit = int(hit.sum())
    assert abs(int(salt.sum()) / n_hit - 0.5) < _binomial_tol(0.5, n_hit)


@pytest.mark.parametrize("spec", ["gaussian:0.1", "masking:0.3", "salt-and-pepper:0.2"])
def test_fresh_each_call_and_seeded(spec):
    c = make_corruption(spec)
    x = torch.rand(1000)
    a, b = c(x), c(x)
    assert not torch.equal(a, b)
    torch.manual_seed(5)
    a2 = c(x)
    torch.manual_seed(5)
    assert torch.equal(a2, c(x))


def test_make_corruption_round_trips_specs():
    for spec, cls, arg in [("gaussian:0.1", GaussianNoise, 0.1), ("masking:0.25", Masking, 0.25),
                           ("salt-and-pepper:0.1", SaltAndPepper, 0.1)]:
        c = make_corruption(spec)
        assert type(c) is cls and c.spec() == spec
        assert make_corruption(c) is c and make_corruption(c.spec()) == c
    assert isinstance(make_corruption("masking"), Masking)


@pytest.mark.parametrize("spec, match", [
    ("blur:0.1", "unknown corruption 'blur:0.1'; known: gaussian, masking"),
    ("gaussian:abc", "must be a number"),
    ("gaussian:-1", "standard deviation must be > 0"),
    ("masking:1", r"probability must be in \[0, 1\)"),
    ("salt-and-pepper:1.5", r"probability must be in \[0, 1\]"),
    ("masking:0.1,0.2", "takes at most one number"),
    (3, "noise must be a corruption name"),
])
def test_bad_specs_are_clear_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        make_corruption(spec)


def test_register_corruption():
    class Flip(Corruption):
        name = "flip-test"

        def __init__(self, p=0.5):
            self.p = p

        def _arg(self):
            return self.p

        def __call__(self, x):
            return 1 - x

    register_corruption("flip-test", Flip)
    try:
        c = make_corruption("flip-test:0.3")
        assert c.p == 0.3 and torch.equal(c(torch.zeros(3)), torch.ones(3))
    finally:
        del CORRUPTIONS["flip-test"]
