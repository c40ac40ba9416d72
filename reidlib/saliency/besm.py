"""BESM: Batch Erasing Salient Method (ES-Net, Sec. III-C-2, Algorithm 1).

For each image of the batch, with probability ``P`` (step 1-2: ``P' = rand(0, 1) <= P``), the
saliency map ``M`` of layer ``L`` (CG-RAM, step 3; any ``(B, h, w)`` map works, e.g. Grad-CAM
for Grad-CAM erasing) is resized to the image size (step 4, bilinear), its pixels ranked in
descending order (step 5) and the top ``R`` fraction set to 0 (steps 6-10).

Choices the paper leaves open (stated in the book):

* **Exact count and ties.** ``round(R * H * W)`` pixels (Python's ``round``) are erased in every
  selected image. Equal saliency values are ranked by a stable sort, i.e. by raster order
  (top-left first), so the count is exact and the result deterministic. An all-zero map (ReLU
  cut everything) therefore erases the first rows; :class:`BESMResult` reports such images.
* **0 after normalisation.** BESM runs inside the training step on the normalised batch (the
  saliency comes from the current model, so it cannot run in the data loader); the erased value
  0 there is the dataset mean colour (the per-channel mean of the normalisation), a neutral value
  in the input distribution, rather than black (``-mean/std``, about -2 per channel), which would
  be an out-of-distribution edge the network could key on. ``fill`` changes it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BESMResult", "besm", "draw_selection", "erase_top", "upsample_saliency"]


@dataclass
class BESMResult:
    """``images``: the erased batch ``(B, 3, H, W)``; ``mask``: ``(B, H, W)`` bool, True where erased;
    ``selected``: ``(B,)`` bool, the images Algorithm 1 erased; ``flat``: ``(B,)`` bool, selected
    images whose saliency map was constant (ties everywhere: the raster-order tie-break decided)."""

    images: Tensor
    mask: Tensor
    selected: Tensor
    flat: Tensor


def _check(images: Tensor, saliency: Tensor, ratio: float) -> None:
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if saliency.dim() != 3 or saliency.shape[0] != images.shape[0]:
        raise ValueError(
            f"saliency must be (B, h, w) with B={images.shape[0]}, got shape {tuple(saliency.shape)}"
        )
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"erasing ratio R must be in [0, 1], got {ratio}")


def draw_selection(batch: int, prob: float, *, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> Tensor:
    """Steps 1-2 of Algorithm 1: ``(B,)`` bool, True where ``P' = rand(0, 1) <= P``."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"erasing probability P must be in [0, 1], got {prob}")
    draw = torch.rand(batch, generator=generator)
    return (draw <= prob).to(device) if device is not None else draw <= prob


def upsample_saliency(saliency: Tensor, size: tuple[int, int]) -> Tensor:
    """Step 4: ``M (B, h, w) -> M* (B, H, W)``, bilinear (``align_corners=False``)."""
    return F.interpolate(saliency[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def erase_top(images: Tensor, saliency: Tensor, ratio: float, *, selected: Tensor | None = None,
              fill: float | Sequence[float] = 0.0) -> tuple[Tensor, Tensor]:
    """Steps 4-10: set the ``round(R H W)`` most salient pixels of each selected image to ``fill``.

    ``images``: ``(B, C, H, W)``; ``saliency``: ``(B, h, w)``; ``selected``: ``(B,)`` bool (all if None);
    ``fill``: one value, or one per channel (e.g. black in normalised space: ``-mean / std``).
    Returns ``(erased images, mask (B, H, W) bool)``; the input is not modified.
    """
    _check(images, saliency, ratio)
    b, _, h, w = images.shape
    if selected is None:
        selected = torch.ones(b, dtype=torch.bool, device=images.device)
    selected = selected.to(images.device, torch.bool)
    count = round(ratio * h * w)
    scores = upsample_saliency(saliency.detach(), (h, w)).flatten(1)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :count]
    mask = torch.zeros(b, h * w, dtype=torch.bool, device=images.device)
    mask.scatter_(1, order.to(images.device), True)
    mask = (mask & selected[:, None]).view(b, h, w)
    if isinstance(fill, (int, float)):
        return images.masked_fill(mask[:, None], fill), mask
    value = torch.as_tensor(fill, dtype=images.dtype, device=images.device)
    if value.numel() != images.shape[1]:
        raise ValueError(f"fill has {value.numel()} values; expected 1 or one per channel ({images.shape[1]})")
    return torch.where(mask[:, None], value.view(1, -1, 1, 1), images), mask


def besm(images: Tensor, saliency: Tensor, ratio: float, prob: float, *, selected: Tensor | None = None,
         generator: torch.Generator | None = None, fill: float | Sequence[float] = 0.0) -> BESMResult:
    """Algorithm 1 on a batch, given the saliency maps ``M`` ``(B, h, w)`` of layer ``L``.

    Args:
        images: normalised batch ``(B, C, H, W)``.
        saliency: ``(B, h, w)``, from :func:`~reidlib.saliency.cg_ram_batch` (BESM) or Grad-CAM.
        ratio: erasing ratio ``R`` (fraction of the image's pixels).
        prob: erasing probability ``P``; ignored where ``selected`` is given.
        selected: ``(B,)`` bool, the images to erase (drawn with :func:`draw_selection` if None).
        generator: random generator of the draw.
        fill: erased value in normalised space (0 = the mean colour; see the module docstring).
    """
    if selected is None:
        selected = draw_selection(images.shape[0], prob, generator=generator)
    erased, mask = erase_top(images, saliency, ratio, selected=selected, fill=fill)
    flat_map = saliency.flatten(1).amax(1) == saliency.flatten(1).amin(1)
    return BESMResult(erased, mask, selected.to(images.device), flat_map.to(images.device) & selected.to(images.device))
