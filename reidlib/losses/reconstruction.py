"""The reconstruction loss of HENet's recovery branch, Eq. (9): ``L_Rec = Σ_i (ŷ_i - y_i)^2`` over the
pixels of the reconstructed low-resolution image ``ŷ`` and the real one ``y``.

The paper writes a sum; here it is the **mean** over pixels, channels and the batch (a choice: a sum
over 3·48·16 pixels would outweigh the cross-entropy terms by three orders of magnitude). The target
``y`` is the network's input batch (after augmentation, in the same normalisation) reduced to the
decoder's output size by area averaging (:func:`low_resolution`).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from reidlib.nn import check_shape

from .criterion import register_term

__all__ = ["low_resolution", "reconstruction_loss"]


def low_resolution(images: Tensor, size: tuple[int, int]) -> Tensor:
    """``(B, C, H, W) -> (B, C, h, w)``: each output pixel the mean of the input pixels it covers
    (adaptive average pooling; for ``H/h``, ``W/w`` whole numbers exactly the area average of blocks)."""
    check_shape(images, "B C H W", who="low_resolution", what="images")
    h, w = size
    if not (isinstance(h, int) and isinstance(w, int)) or not (1 <= h <= images.shape[2] and 1 <= w <= images.shape[3]):
        raise ValueError(f"low_resolution: size must be whole numbers no larger than the images "
                         f"({images.shape[2]}x{images.shape[3]}), got {size!r}")
    return F.adaptive_avg_pool2d(images, (h, w))


def reconstruction_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Eq. (9) as a mean: ``mean((pred - target)^2)``, both ``(B, C, h, w)`` of the same size."""
    check_shape(pred, "B C H W", who="reconstruction_loss", what="pred")
    if target.shape != pred.shape:
        raise ValueError(f"reconstruction_loss: target must have pred's shape {tuple(pred.shape)} (reduce the "
                         f"images to the decoder's size with low_resolution), got {tuple(target.shape)}")
    return F.mse_loss(pred, target)


@register_term("reconstruction")
def reconstruction_term(num_classes: int, *, pred: str = "recovery", target: str = "recovery_target"):
    """The criterion's ``"reconstruction"`` term: Eq. (9) on the branch's ``pred`` and ``target`` entries."""
    def term(out, pids, outputs):
        return reconstruction_loss(out[pred], out[target])
    return term
