"""Quantization to ±1 codes and the relaxations of the hashing paper's Table 6 (Jin et al. 2021, "Hashing person
re-ID with self-distilling smooth relaxation", Eq. (1), Sec. 4.2, 7.4).

* :func:`sign`: Eq. (1), ``+1`` where ``s > 0``, ``-1`` where ``s <= 0`` (so ``0 -> -1``, unlike
  :func:`torch.sign`, which maps 0 to 0). The SSR teacher's target and every test-time code.
* :data:`RELAXATIONS`: the binary-like activation each Table 6 row appends to the reduced vector during
  training, and the threshold its output is quantized at: ``'sigmoid'`` and ``'hardsigmoid'`` (range
  [0, 1]) at **0.5**, not 0 (Eq. (1) at 0 would map every sigmoid output to +1); ``'tanh'`` and
  ``'hardtanh'`` (range [-1, 1]) at 0; ``'dsh'`` (DSH, Liu et al. 2016: no activation, plus
  :func:`dsh_regulariser` in the loss) at 0; ``'ssr'`` (the paper's self-distilling smooth relaxation: no
  activation, the L1 distillation to the teacher's ``sign`` does the relaxing) and its alias ``'none'`` at 0.
* :func:`quantize`: a relaxation's *output* to ±1 codes at that relaxation's threshold.
* :class:`HashHead`: the reduction of one pooled vector to its bit budget (1x1 conv as a linear map, optional
  BN, then the relaxation; **no ReLU**).

**CHOICE** ``'hardsigmoid'`` is PyTorch's ``relu6(x + 3) / 6`` (slope 1/6, as :class:`torch.nn.Hardsigmoid`);
the paper does not say which hard sigmoid it used. ``'hardtanh'`` is ``clamp(x, -1, 1)``.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.nn import check_shape

__all__ = ["DSH_WEIGHT", "RELAXATIONS", "HashHead", "Relaxation", "dsh_regulariser", "quantize", "sign"]

#: DSH's regulariser weight (Liu et al., CVPR 2016, alpha = 0.01); the hashing paper does not give its own.
DSH_WEIGHT = 0.01


def _identity(x: Tensor) -> Tensor:
    return x


class Relaxation(NamedTuple):
    """A Table 6 relaxation: ``activation`` applied to the reduced vector, ``threshold`` its output is quantized at."""

    activation: Callable[[Tensor], Tensor]
    threshold: float


#: name -> (activation, threshold). ``'dsh'`` also adds :func:`dsh_regulariser` to the loss (the caller's part);
#: ``'none'`` is an alias of ``'ssr'`` (identity, threshold 0).
RELAXATIONS: dict[str, Relaxation] = {
    "sigmoid": Relaxation(torch.sigmoid, 0.5),
    "hardsigmoid": Relaxation(F.hardsigmoid, 0.5),
    "tanh": Relaxation(torch.tanh, 0.0),
    "hardtanh": Relaxation(F.hardtanh, 0.0),
    "dsh": Relaxation(_identity, 0.0),
    "ssr": Relaxation(_identity, 0.0),
    "none": Relaxation(_identity, 0.0),
}


def _relaxation(name: str, who: str) -> Relaxation:
    if not isinstance(name, str) or name not in RELAXATIONS:
        raise ValueError(f"{who}: relaxation must be one of {sorted(RELAXATIONS)}, got {name!r}")
    return RELAXATIONS[name]


def _check_finite(x: Tensor, who: str, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{who}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype == torch.bool or (not x.is_floating_point() and not x.is_signed()):
        raise TypeError(f"{who}: {name} must have a floating-point or signed integer dtype (codes hold -1), got {x.dtype}")
    if x.is_floating_point():
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise ValueError(f"{who}: {name} must hold finite values, got {bad} NaN/inf of {x.numel()} entries "
                             f"(a diverged descriptor has no code)")


def _binarise(x: Tensor, threshold: float) -> Tensor:
    one = x.new_ones(())
    return torch.where(x > threshold, one, -one)


def sign(x: Tensor) -> Tensor:
    """Eq. (1): ``+1`` where ``x > 0``, ``-1`` where ``x <= 0`` (``0 -> -1``); same shape, dtype and device.

    Piecewise constant, so its derivative is 0 wherever it exists: the result carries no autograd graph
    (``requires_grad`` is False even for an ``x`` that requires grad), and there is no straight-through
    estimator (the paper uses none; the SSR teacher learns only from its own losses). Callers that keep ``x``
    for other losses need not detach anything for the target.

    Raises:
        ValueError: ``x`` holds NaN or inf (finite values expected).
        TypeError: ``x`` is not a tensor, or its dtype cannot hold -1 (bool, unsigned).
    """
    _check_finite(x, "sign", "x")
    return _binarise(x.detach(), 0.0)


def quantize(x: Tensor, relaxation: str = "ssr") -> Tensor:
    """A relaxation's output ``x`` (any shape) to ±1 codes at that relaxation's threshold.

    ``+1`` where ``x > t``, ``-1`` where ``x <= t``, with ``t = RELAXATIONS[relaxation].threshold``: 0.5 for
    ``'sigmoid'`` / ``'hardsigmoid'`` (outputs in [0, 1]), 0 for the others (where this is :func:`sign`).
    ``x`` is what :class:`HashHead` returns, i.e. *after* the activation. Same shape, dtype and device; no
    autograd graph (see :func:`sign`).

    Raises:
        ValueError: unknown ``relaxation`` (the message lists the valid names), or ``x`` holds NaN or inf.
    """
    threshold = _relaxation(relaxation, "quantize").threshold
    _check_finite(x, "quantize", "x")
    return _binarise(x.detach(), threshold)


def dsh_regulariser(x: Tensor, weight: float = DSH_WEIGHT) -> Tensor:
    """DSH's regulariser pulling real-valued outputs to ±1: ``weight * mean(| |x| - 1 |)``, a scalar.

    **Mean** over all elements (bits and batch), the same normalisation as the L1 distillation (Eq. (2),
    PyTorch's ``l1_loss`` default). DSH itself sums ``|| |b| - 1 ||_1`` over a code's bits, so with the mean
    the same weight is ``1 / bits`` as strong per bit. **CHOICE** ``weight = 0.01``, DSH's own setting: the
    hashing paper gives no value.
    """
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        raise ValueError(f"dsh_regulariser: weight must be a finite number >= 0, got {weight!r}")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"dsh_regulariser: x must be a floating-point tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    return weight * (x.abs() - 1).abs().mean()


class HashHead(nn.Module):
    """One pooled vector reduced to its bit budget: ``relaxation(BN(W f + b))``, with **no ReLU**.

    A ReLU before the quantization (PCB's reduction head has one) would make every bit encode only
    "zero vs positive"; the hashing paper's head is a 1x1 conv, optionally BN, then the relaxation's
    activation (none for SSR / DSH).

    Args:
        in_dim: ``D``, the pooled vector's size.
        bits: the code length of this vector (256 per stripe and 512 global at 2048 bits).
        relaxation: a name of :data:`RELAXATIONS` (default ``'ssr'``: no activation).
        bn: a BatchNorm1d after the reduction, before the activation (Table 6's "with BN").

    Choices, stated: the 1x1 conv is an :class:`torch.nn.Linear` on the pooled ``(B, D)`` vector (the same map
    as a 1x1 conv on a 1x1 feature map), in PyTorch's default initialisation. It has a bias without BN, none
    with BN (BN's mean subtraction would cancel it). The BN is in the sense of BNNeck (the paper's [24]): its
    shift is frozen at 0 (weight 1, bias 0 at start), so each bit is centred at the threshold 0 of Eq. (1).
    All losses act on the vector :meth:`forward` returns.

    Shapes: ``forward``: ``(B, D) -> (B, bits)``, the real-valued (relaxed) vector; :meth:`codes`:
    ``(B, D) -> (B, bits)`` ±1 codes by :func:`quantize` at the relaxation's threshold (call it in eval mode,
    where BN uses its running statistics).
    """

    def __init__(self, in_dim: int, bits: int, relaxation: str = "ssr", bn: bool = False) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("bits", bits)):
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"HashHead: {name} must be an integer >= 1, got {name}={value!r}")
        self.threshold = _relaxation(relaxation, "HashHead").threshold
        self.in_dim, self.bits, self.relaxation = int(in_dim), int(bits), relaxation
        self.reduction = nn.Linear(self.in_dim, self.bits, bias=not bn)
        self.bn: nn.BatchNorm1d | None = None
        if bn:
            self.bn = nn.BatchNorm1d(self.bits)
            self.bn.bias.requires_grad_(False)  # no shift, as BNNeck

    def forward(self, feat: Tensor) -> Tensor:
        check_shape(feat, "B D", who="HashHead", what="pooled features", D=self.in_dim)
        z = self.reduction(feat)
        if self.bn is not None:
            z = self.bn(z)
        return RELAXATIONS[self.relaxation].activation(z)

    @torch.no_grad()
    def codes(self, feat: Tensor) -> Tensor:
        """±1 codes ``(B, bits)``: :func:`quantize` of :meth:`forward` at this head's relaxation."""
        return quantize(self(feat), self.relaxation)

    def extra_repr(self) -> str:
        return f"relaxation={self.relaxation!r}, threshold={self.threshold:g}"
