"""P-pooling (polynomial pooling), ES-Net Eq. (6)-(7); Wei et al., CVPR 2019 [13] of the ES-Net paper.

    F^k = sum_{a in A^k} a^l / sum_{a in A^k} a^(l-1)                        (6)

with one learnable exponent ``l`` shared by all channels (the paper's "the learnable pooling
parameter"). ``l = 1`` gives global average pooling; ``l -> inf`` gives global max pooling.

Two choices the paper leaves open, made here and stated in the book:

* **Clamp.** Eq. (6) needs ``a > 0`` (``a^(l-1)`` and ``ln a`` in Eq. (7)), while feature maps
  after a ReLU hold exact zeros. We clamp ``a = max(x, eps)`` with ``eps = 1e-6``, the clamp GeM
  pooling uses. A clamped zero adds ``eps^l ~ 0`` to the numerator and ``eps^(l-1)`` to the
  denominator, which vanishes for ``l > 1`` and counts as one element at ``l = 1`` (so ``l = 1``
  is exactly the mean over all positions, zeros included, as GAP). Inputs below ``eps`` get zero
  gradient, as they already do through the ReLU before.
* **Initial l.** ``l = 3`` (GeM's usual initial exponent): between the mean (``l = 1``) and the
  max, so training starts from a pooling that already leans to salient positions and can move
  either way.

Computed in log space, ``ln F = LSE(l ln a) - LSE((l-1) ln a)`` (LSE = log-sum-exp over the
spatial positions), so that ``a^l`` never overflows or underflows for any ``l``; the value and
both derivatives are those of Eq. (6)-(7) exactly.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from reidlib.nn import check_shape, scalar_parameter

__all__ = ["PPooling", "p_pooling", "p_pooling_grad_l", "p_pooling_grad_input"]

DEFAULT_L = 3.0
DEFAULT_EPS = 1e-6


def p_pooling(x: Tensor, l: Tensor | float, eps: float = DEFAULT_EPS) -> Tensor:
    """Eq. (6): ``(B, C, H, W) -> (B, C)``, ``F^k = sum a^l / sum a^(l-1)`` with ``a = max(x, eps)``."""
    check_shape(x, "B C H W", who="p_pooling", what="a feature map")
    l = torch.as_tensor(l, dtype=x.dtype, device=x.device)
    log_a = x.clamp(min=eps).flatten(2).log()  # (B, C, HW)
    return torch.exp(torch.logsumexp(l * log_a, dim=2) - torch.logsumexp((l - 1) * log_a, dim=2))


def p_pooling_grad_l(x: Tensor, l: float, eps: float = DEFAULT_EPS) -> Tensor:
    """Eq. (7) written out: ``dF^k/dl = F^k [sum a^l ln a / sum a^l - sum a^(l-1) ln a / sum a^(l-1)]``.

    Plain sums, no log-space tricks, so that it checks :func:`p_pooling` independently. ``(B, C)``.
    """
    check_shape(x, "B C H W", who="p_pooling_grad_l", what="a feature map")
    a = x.clamp(min=eps).flatten(2)
    F = (a**l).sum(2) / (a ** (l - 1)).sum(2)
    ln_a = a.log()
    return F * ((a**l * ln_a).sum(2) / (a**l).sum(2) - (a ** (l - 1) * ln_a).sum(2) / (a ** (l - 1)).sum(2))


def p_pooling_grad_input(x: Tensor, l: float, eps: float = DEFAULT_EPS) -> Tensor:
    """``dF^k/da_j = (l a_j^(l-1) - (l-1) F^k a_j^(l-2)) / sum_a a^(l-1)`` (quotient rule on Eq. (6)).

    Zero where the clamp is active (``x < eps``). Same shape as ``x``: ``(B, C, H, W)``.
    """
    check_shape(x, "B C H W", who="p_pooling_grad_input", what="a feature map")
    a = x.clamp(min=eps)
    N = (a**l).sum((2, 3), keepdim=True)
    D = (a ** (l - 1)).sum((2, 3), keepdim=True)
    F = N / D
    grad = (l * a ** (l - 1) - (l - 1) * F * a ** (l - 2)) / D
    return torch.where(x >= eps, grad, torch.zeros_like(grad))


class PPooling(nn.Module):
    """P-pooling, Eq. (6), with a learnable scalar exponent ``l`` (attribute ``l``).

    Args:
        l: initial exponent (default 3; ``1`` = GAP, large = GMP).
        eps: clamp ``a = max(x, eps)`` keeping ``a > 0`` (default 1e-6).
        learnable: whether ``l`` is an ``nn.Parameter`` (True) or a fixed buffer.

    Shapes: ``(B, C, H, W) -> (B, C)``.
    """

    def __init__(self, l: float = DEFAULT_L, eps: float = DEFAULT_EPS, learnable: bool = True) -> None:
        super().__init__()
        if not eps > 0:
            raise ValueError(f"PPooling: eps must be > 0 (it keeps a > 0 in Eq. (6)), got eps={eps}")
        self.eps = float(eps)
        scalar_parameter(self, "l", l, learnable)

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, "B C H W", who="PPooling", what="a feature map")
        return p_pooling(x, self.l.to(x.dtype), self.eps)

    def extra_repr(self) -> str:
        return f"l={float(self.l.detach()):.4g}, eps={self.eps:g}, learnable={isinstance(self.l, nn.Parameter)}"
