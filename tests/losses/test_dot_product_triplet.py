"""Eq. (1) of "Re-ID done right": the dot-product margin, its squared-Euclidean twin, its gradients."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.losses import DotProductTripletLoss, dot_product_triplet, split_triplets


def _unit(*shape: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=dtype), dim=-1)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), b=st.integers(1, 12), d=st.integers(2, 40), m=st.floats(0.0, 1.0))
def test_dot_product_margin_is_half_a_squared_euclidean_margin_of_twice_m(seed, b, d, m):
    q, p, n = _unit(3, b, d, seed=seed)
    euclid = 0.5 * torch.relu(2 * m + (q - p).pow(2).sum(1) - (q - n).pow(2).sum(1))
    torch.testing.assert_close(dot_product_triplet(q, p, n, m, reduction="none"), euclid, rtol=0, atol=1e-12)
    # and it is not a plain (non-squared) Euclidean margin
    plain = torch.relu(m + (q - p).norm(dim=1) - (q - n).norm(dim=1))
    if b >= 4 and m > 0.05:
        assert not torch.allclose(dot_product_triplet(q, p, n, m, reduction="none"), plain)


def test_range_and_gradients_where_active():
    m = 0.1
    q, p, n = (t.requires_grad_() for t in _unit(3, 64, 16, seed=3))
    losses = dot_product_triplet(q, p, n, m, reduction="none")
    assert losses.min() >= 0 and losses.max() <= 2 + m
    losses.sum().backward()
    active = (losses > 0).unsqueeze(1).double()
    assert 0 < active.mean() < 1  # both cases occur
    torch.testing.assert_close(q.grad, active * (n - p).detach())
    torch.testing.assert_close(p.grad, -active * q.detach())
    torch.testing.assert_close(n.grad, active * q.detach())


def test_extremes_of_the_range():
    q = torch.tensor([[1.0, 0.0]])
    assert dot_product_triplet(q, -q, q, 0.1).item() == pytest.approx(2.1)   # positive opposite, negative equal
    assert dot_product_triplet(q, q, -q, 0.1).item() == 0.0


def test_gradcheck_float64_through_l2():
    def loss(y):
        x = F.normalize(y, dim=1)
        return DotProductTripletLoss(0.3)(x)

    y = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (y,))


def test_split_triplets_reads_consecutive_rows():
    feats = torch.arange(12.0).view(6, 2)
    q, p, n = split_triplets(feats)
    assert q.tolist() == [[0, 1], [6, 7]] and p.tolist() == [[2, 3], [8, 9]] and n.tolist() == [[4, 5], [10, 11]]


def test_mean_is_the_reduction_of_the_module():
    feats = _unit(30, 8, seed=5)
    q, p, n = split_triplets(feats)
    assert DotProductTripletLoss(0.1)(feats).item() == pytest.approx(dot_product_triplet(q, p, n).item())
    assert dot_product_triplet(q, p, n, reduction="sum").item() == pytest.approx(10 * dot_product_triplet(q, p, n).item())


@pytest.mark.parametrize("call, match", [
    (lambda: split_triplets(torch.zeros(4, 3)), r"\(3b, D\)"),
    (lambda: dot_product_triplet(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, 3)), "one shape"),
    (lambda: dot_product_triplet(*torch.zeros(3, 2, 3), margin=-0.1), "margin"),
    (lambda: dot_product_triplet(*torch.zeros(3, 2, 3), reduction="max"), "reduction"),
    (lambda: DotProductTripletLoss(-1), "margin"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
