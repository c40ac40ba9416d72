"""P-pooling, ES-Net Eq. (6)-(7): gradients (gradcheck and the paper's Eq. (7)), limits GAP/GMP."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.models.p_pooling import PPooling, p_pooling, p_pooling_grad_input, p_pooling_grad_l


def _maps(seed: int, shape=(2, 3, 4, 5), zeros: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 3 + 0.05
    if zeros:  # post-ReLU maps hold exact zeros
        x = torch.where(torch.rand(shape, generator=g, dtype=torch.float64) < 0.3, torch.zeros_like(x), x)
    return x


def test_default_construction_and_shape():
    pool = PPooling()
    assert isinstance(pool.l, torch.nn.Parameter) and float(pool.l.detach()) == 3.0
    out = pool(torch.rand(4, 7, 6, 3))
    assert out.shape == (4, 7)
    out.sum().backward()
    assert pool.l.grad is not None and torch.isfinite(pool.l.grad)


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        PPooling()(torch.rand(3, 4))
    with pytest.raises(ValueError, match="eps"):
        PPooling(eps=0.0)


def test_gradcheck_input_and_l_float64():
    x = _maps(0).requires_grad_()
    l = torch.tensor(2.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, l: p_pooling(x, l), (x, l))
    assert torch.autograd.gradgradcheck(lambda x, l: p_pooling(x, l), (x, l))


def test_module_gradcheck_float64():
    pool = PPooling(l=4.0).double()
    x = _maps(1).requires_grad_()
    assert torch.autograd.gradcheck(pool, (x,))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), l=st.floats(-2.0, 12.0), zeros=st.booleans())
def test_autograd_matches_eq7_and_input_derivative(seed, l, zeros):
    x = _maps(seed, zeros=zeros).requires_grad_()
    lt = torch.tensor(l, dtype=torch.float64, requires_grad=True)
    F = p_pooling(x, lt)
    w = torch.randn(F.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    gx, gl = torch.autograd.grad((F * w).sum(), (x, lt))
    # Eq. (7) of the paper, per channel, contracted with the same weights
    torch.testing.assert_close(gl, (p_pooling_grad_l(x.detach(), l) * w).sum(), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(gx, p_pooling_grad_input(x.detach(), l) * w[:, :, None, None], rtol=1e-9, atol=1e-9)


def test_value_is_eq6():
    x = _maps(2)
    l = 2.5
    a = x.flatten(2)
    torch.testing.assert_close(p_pooling(x, l), (a**l).sum(2) / (a ** (l - 1)).sum(2))


def test_gap_at_l_equal_1_including_zeros():
    x = _maps(3, zeros=True)
    torch.testing.assert_close(p_pooling(x, 1.0), x.clamp(min=1e-6).mean((2, 3)), rtol=1e-12, atol=1e-12)
    # with the clamp's eps a zero is 1e-6, i.e. GAP up to 1e-6
    torch.testing.assert_close(p_pooling(x, 1.0), x.mean((2, 3)), rtol=0, atol=1e-6)


def test_gmp_as_l_grows():
    x = _maps(4, zeros=True)
    gmp = x.amax((2, 3))
    errs = [float((p_pooling(x, l) - gmp).abs().max()) for l in (2, 8, 32, 128, 1024)]
    assert all(b < a for a, b in zip(errs, errs[1:])), errs  # monotone approach
    assert errs[-1] < 1e-2 * float(gmp.min())
    assert (p_pooling(x, 1024) <= gmp + 1e-9).all()  # F is a weighted mean of a: never above the max


def test_monotone_in_l_between_mean_and_max():
    x = _maps(5)
    ls = torch.linspace(1, 50, 30, dtype=torch.float64)
    F = torch.stack([p_pooling(x, l) for l in ls])  # (L, B, C)
    assert (F.diff(dim=0) >= -1e-12).all()
    assert (p_pooling_grad_l(x, 3.0) >= 0).all()  # Eq. (7) is a covariance: non-negative


def test_float32_large_values_do_not_overflow():
    x = torch.rand(2, 3, 8, 8) * 100
    out = p_pooling(x, 40.0)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, x.amax((2, 3)), rtol=0.05, atol=0)
