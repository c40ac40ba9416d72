"""Attribute-guided attention block, AAB (Jin et al. 2021, "Hashing person re-ID with self-distilling smooth
relaxation", Sec. 5.2, Fig. 4, Eqs. (8)-(10)).

AAB refines the global feature map ``F_In`` (B, C, H, W) of a branch with two attention blocks side by side,
each reducing the channels by ``r`` (the paper's r = 8, so 2048 -> 256). With ``X = H * W``:

* **SAAB** (position attention). Three 1x1 convs C -> C/r give ``F^S1, F^S2, F^S3``, read as (C/r, X). The
  spatial relation (X, X) is the row-wise softmax over positions of ``(F^S1)^T F^S2``::

      R^S_ij = exp(f_i^T f_j) / sum_p exp(f_i^T f_p),   f_i = F^S1[:, i],  f_j = F^S2[:, j]   (8)

  aggregated as ``F^S3 (R^S)^T`` (C/r, X) -> (C/r, H, W) and raised by a 1x1 conv C/r -> C to ``F^S_Out``.
* **CAAB** (channel attention). Three more 1x1 convs C -> C/r give ``F^C1, F^C2, F^C3`` (C/r, X). The channel
  relation (C/r, C/r) is the row-wise softmax over channels of ``F^C2 (F^C1)^T``::

      R^C_nm = exp(f_n^T f_m) / sum_l exp(f_n^T f_l),   f_n = F^C2[n, :],  f_m = F^C1[m, :]   (9)

  aggregated as ``R^C F^C3`` (C/r, X) -> (C/r, H, W) and raised by a 1x1 conv C/r -> C to ``F^C_Out``.
* **AAB** (fusion): the sum of the two outputs is a 3-D mask multiplied element-wise with the input, plus a
  residual::

      F^ref = (F^S_Out + F^C_Out) * F_In + F_In                                               (10)

Two typos of the paper, read as the spec does: Eqs. (8)-(9) write the feature dimension as R^C (it is
R^(C/r) for SAAB's columns and R^X for CAAB's rows), and "multiply F^S1 and transposed F^S2" taken literally
gives a C/r x C/r matrix, against the stated X x X size of R^S; we use ``(F^S1)^T F^S2``.

As in the paper: no 1/sqrt(d) scaling inside the softmaxes, no sigmoid on the mask, no BN in the block.
Without the scaling, dot products of 256-d features can saturate the softmax (rows close to one-hot);
:meth:`SAAB.relation` / :meth:`CAAB.relation` let a reader look.

**CHOICE** (not in the paper): both raising convs (weights and biases) are zero-initialised, so
``F^S_Out = F^C_Out = 0`` and AAB starts as the identity, ``F^ref = F_In``. The reducing convs keep
PyTorch's default initialisation. At the first step only the raising convs get a gradient (the zero raising
weights block every path to the reducing convs); once they have moved, from the second step on, the reducing
convs get theirs.

"Attribute-guided" has no attribute input: the guidance is only the attribute loss on the global vector
back-propagating through the block.

Size: 6 reducing convs ``C * C/r + C/r`` and 2 raising convs ``C/r * C + C``; at C = 2048, r = 8 that is
4,199,936 parameters (4.20 M) per AAB (:func:`aab_parameter_count`).
"""
from __future__ import annotations

from numbers import Integral

import torch
from torch import Tensor, nn

from reidlib.nn import check_shape

__all__ = ["AAB", "CAAB", "SAAB", "aab_parameter_count"]

DEFAULT_REDUCTION = 8


def _check_sizes(channels: int, reduction: int, who: str) -> tuple[int, int]:
    for name, value in (("channels", channels), ("reduction", reduction)):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise ValueError(f"{who}: {name} must be an integer, got {value!r}")
    if reduction < 1:
        raise ValueError(f"{who}: reduction must be >= 1, got reduction={reduction}")
    if channels < 1:
        raise ValueError(f"{who}: channels must be >= 1, got channels={channels}")
    if channels % reduction:
        raise ValueError(f"{who}: channels must be divisible by reduction (C/r reduced channels), "
                         f"got channels={channels}, reduction={reduction}")
    return int(channels), int(reduction)


def _conv1x1(cin: int, cout: int, zero: bool = False) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel_size=1)
    if zero:
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    return conv


def aab_parameter_count(channels: int, reduction: int = DEFAULT_REDUCTION, position: bool = True,
                        channel: bool = True) -> int:
    """Parameters of an AAB: per enabled block, 3 reducing 1x1 convs ``C * C/r + C/r`` and 1 raising
    1x1 conv ``C/r * C + C`` (weights + biases). ``aab_parameter_count(2048, 8) == 4_199_936``."""
    _check_sizes(channels, reduction, "aab_parameter_count")
    d = channels // reduction
    per_block = 3 * (channels * d + d) + (d * channels + channels)
    return per_block * (int(bool(position)) + int(bool(channel)))


class _RelationBlock(nn.Module):
    """Shared part of SAAB and CAAB: three reducing 1x1 convs C -> C/r and one raising 1x1 conv C/r -> C
    (zero-initialised)."""

    who = "_RelationBlock"

    def __init__(self, channels: int, reduction: int = DEFAULT_REDUCTION) -> None:
        super().__init__()
        self.channels, self.reduction = _check_sizes(channels, reduction, self.who)
        self.reduced = self.channels // self.reduction
        self.reduce1 = _conv1x1(self.channels, self.reduced)
        self.reduce2 = _conv1x1(self.channels, self.reduced)
        self.reduce3 = _conv1x1(self.channels, self.reduced)
        self.raising = _conv1x1(self.reduced, self.channels, zero=True)

    def _check(self, x: Tensor) -> tuple[int, ...]:
        return check_shape(x, "B C H W", who=self.who, what="a feature map", C=self.channels)

    def _features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``F^1, F^2, F^3`` as (B, C/r, X)."""
        return self.reduce1(x).flatten(2), self.reduce2(x).flatten(2), self.reduce3(x).flatten(2)

    def _relation(self, f1: Tensor, f2: Tensor) -> Tensor:
        raise NotImplementedError

    def _aggregate(self, relation: Tensor, f3: Tensor) -> Tensor:
        raise NotImplementedError

    def relation(self, x: Tensor) -> Tensor:
        """The block's relation matrix for ``x`` (each row a softmax, summing to 1)."""
        self._check(x)
        f1, f2, _ = self._features(x)
        return self._relation(f1, f2)

    def forward(self, x: Tensor, return_relation: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        b, _, h, w = self._check(x)
        f1, f2, f3 = self._features(x)
        relation = self._relation(f1, f2)
        out = self.raising(self._aggregate(relation, f3).reshape(b, self.reduced, h, w))
        return (out, relation) if return_relation else out

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"


class SAAB(_RelationBlock):
    """Position attention, Eq. (8): ``F^S_Out = raise(F^S3 (R^S)^T)`` with
    ``R^S = softmax_rows((F^S1)^T F^S2)``.

    Args:
        channels: ``C`` of the input map.
        reduction: ``r`` (default 8); ``C`` must be divisible by it.

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``; the relation ``R^S`` is ``(B, X, X)``, ``X = H * W``, row ``i``
    (query position i) a softmax over the positions ``j``. ``forward(x, return_relation=True)`` returns
    ``(F^S_Out, R^S)``; :meth:`relation` returns ``R^S`` alone. The raising conv starts at zero, so
    ``F^S_Out`` is 0 at initialisation. (The paper's "F^S1 times transposed F^S2" would give C/r x C/r; the
    stated X x X size needs ``(F^S1)^T F^S2``.)
    """

    who = "SAAB"

    def _relation(self, f1: Tensor, f2: Tensor) -> Tensor:
        return torch.softmax(torch.bmm(f1.transpose(1, 2), f2), dim=-1)  # (B, X, X)

    def _aggregate(self, relation: Tensor, f3: Tensor) -> Tensor:
        return torch.bmm(f3, relation.transpose(1, 2))  # (B, C/r, X)


class CAAB(_RelationBlock):
    """Channel attention, Eq. (9): ``F^C_Out = raise(R^C F^C3)`` with ``R^C = softmax_rows(F^C2 (F^C1)^T)``.

    Args:
        channels: ``C`` of the input map.
        reduction: ``r`` (default 8); ``C`` must be divisible by it.

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``; the relation ``R^C`` is ``(B, C/r, C/r)``, row ``n`` a softmax
    over the reduced channels ``m`` (the paper writes the rows' space as R^C; they are in R^X).
    ``forward(x, return_relation=True)`` returns ``(F^C_Out, R^C)``; :meth:`relation` returns ``R^C``.
    The raising conv starts at zero, so ``F^C_Out`` is 0 at initialisation.
    """

    who = "CAAB"

    def _relation(self, f1: Tensor, f2: Tensor) -> Tensor:
        return torch.softmax(torch.bmm(f2, f1.transpose(1, 2)), dim=-1)  # (B, C/r, C/r)

    def _aggregate(self, relation: Tensor, f3: Tensor) -> Tensor:
        return torch.bmm(relation, f3)  # (B, C/r, X)


class AAB(nn.Module):
    """Attribute-guided attention block, Eq. (10): ``F^ref = (F^S_Out + F^C_Out) * F_In + F_In``.

    Args:
        channels: ``C`` of the input map (2048 for ResNet-50's ``layer4``).
        reduction: ``r`` of both blocks (default 8, the paper's).
        position: include SAAB (``F^S_Out``; default True).
        channel: include CAAB (``F^C_Out``; default True). At least one of the two.

    Attributes ``saab`` / ``caab`` hold the blocks (``None`` where disabled; a disabled block adds 0 to the
    mask). **CHOICE:** both raising convs are zero-initialised, so the block starts as the identity.

    Shapes: ``(B, C, H, W) -> (B, C, H, W)``. ``forward(x, return_relation=True)`` returns
    ``(F^ref, relations)`` and :meth:`relation` returns ``relations``: a dict ``{"position": R^S (B, X, X),
    "channel": R^C (B, C/r, C/r)}`` of the enabled blocks. Parameters: :func:`aab_parameter_count`
    (4,199,936 at C = 2048, r = 8).
    """

    def __init__(self, channels: int, reduction: int = DEFAULT_REDUCTION, position: bool = True,
                 channel: bool = True) -> None:
        super().__init__()
        self.channels, self.reduction = _check_sizes(channels, reduction, "AAB")
        if not (position or channel):
            raise ValueError("AAB: at least one of position (SAAB) and channel (CAAB) must be True, "
                             f"got position={position}, channel={channel}")
        self.saab = SAAB(self.channels, self.reduction) if position else None
        self.caab = CAAB(self.channels, self.reduction) if channel else None

    def _check(self, x: Tensor) -> None:
        check_shape(x, "B C H W", who="AAB", what="a feature map", C=self.channels)

    def _blocks(self) -> list[tuple[str, _RelationBlock]]:
        return [(name, block) for name, block in (("position", self.saab), ("channel", self.caab)) if block is not None]

    def relation(self, x: Tensor) -> dict[str, Tensor]:
        """``{"position": R^S (B, X, X), "channel": R^C (B, C/r, C/r)}`` for the enabled blocks."""
        self._check(x)
        return {name: block.relation(x) for name, block in self._blocks()}

    def forward(self, x: Tensor, return_relation: bool = False) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        self._check(x)
        outs: list[Tensor] = []
        relations: dict[str, Tensor] = {}
        for name, block in self._blocks():
            out, relations[name] = block(x, return_relation=True)
            outs.append(out)
        mask = outs[0] if len(outs) == 1 else outs[0] + outs[1]  # F^S_Out + F^C_Out (__init__ enables >= 1)
        refined = mask * x + x  # Eq. (10)
        return (refined, relations) if return_relation else refined

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, reduction={self.reduction}, "
                f"position={self.saab is not None}, channel={self.caab is not None}")
