"""Global pooling of a feature map to a descriptor: ``(B, C, H, W) -> (B, C)``.

* GAP, global average pooling (the "Bag of tricks" baseline).
* GMP, global max pooling ("Re-ID done right" uses a max-pooled global descriptor).
* GeM, generalized-mean pooling (Radenović et al., TPAMI 2018):
  ``f_k = (1/|X_k| sum_{x in X_k} x^p)^(1/p)`` with a learnable ``p``; ``p = 1`` is GAP,
  ``p -> inf`` tends to GMP. The input is clamped to ``x >= eps`` so that ``x^p`` and its
  gradient exist for non-integer ``p``.

P-pooling (ES-Net) lives in :mod:`reidlib.models.p_pooling`; :func:`build_pooling` builds it too.
"""
from __future__ import annotations

from torch import Tensor, nn

from reidlib.nn import check_shape, scalar_parameter

from .p_pooling import PPooling

__all__ = ["GAP", "GMP", "GeM", "build_pooling", "gem"]


class GAP(nn.Module):
    """Global average pooling, ``(B, C, H, W) -> (B, C)``."""

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, "B C H W", who="GAP", what="a feature map")
        return x.mean(dim=(2, 3))


class GMP(nn.Module):
    """Global max pooling, ``(B, C, H, W) -> (B, C)``."""

    def forward(self, x: Tensor) -> Tensor:
        check_shape(x, "B C H W", who="GMP", what="a feature map")
        return x.amax(dim=(2, 3))


def gem(x: Tensor, p: Tensor | float, eps: float = 1e-6) -> Tensor:
    """Generalized mean ``(mean_{h,w} max(x, eps)^p)^(1/p)``: ``(B, C, H, W) -> (B, C)``."""
    check_shape(x, "B C H W", who="GeM", what="a feature map")
    return x.clamp(min=eps).pow(p).mean(dim=(2, 3)).pow(1.0 / p)


class GeM(nn.Module):
    """Generalized-mean pooling with exponent ``p`` (learnable by default, initial 3).

    Shapes: ``(B, C, H, W) -> (B, C)``.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learnable: bool = True) -> None:
        super().__init__()
        if not p > 0:
            raise ValueError(f"GeM: p must be > 0, got p={p}")
        if not eps > 0:
            raise ValueError(f"GeM: eps must be > 0 (it keeps x^p differentiable), got eps={eps}")
        self.eps = float(eps)
        scalar_parameter(self, "p", p, learnable)

    def forward(self, x: Tensor) -> Tensor:
        return gem(x, self.p.to(x.dtype), self.eps)

    def extra_repr(self) -> str:
        return f"p={float(self.p.detach()):.4g}, eps={self.eps:g}, learnable={isinstance(self.p, nn.Parameter)}"


def build_pooling(name: str | nn.Module = "gap", **kwargs) -> nn.Module:
    """A pooling module by name: ``gap`` (``avg``), ``gmp`` (``max``), ``gem``, ``p_pooling`` (``p``).

    ``kwargs`` go to the constructor (e.g. ``p=3`` for GeM, ``l=3`` for P-pooling). A module is
    returned as is.
    """
    if isinstance(name, nn.Module):
        return name
    key = str(name).lower()
    if key in ("gap", "avg"):
        return GAP(**kwargs)
    if key in ("gmp", "max"):
        return GMP(**kwargs)
    if key == "gem":
        return GeM(**kwargs)
    if key in ("p_pooling", "p", "ppooling"):
        return PPooling(**kwargs)
    raise ValueError(f"unknown pooling {name!r}; choose one of 'gap', 'gmp', 'gem', 'p_pooling' or pass an nn.Module")
