"""Grad-CAM (Selvaraju et al., ICCV 2017; [10] of ES-Net) and Grad-CAM erasing (ES-Net Table V).

Grad-CAM weights each channel of the layer's feature maps by the spatial mean of the gradient
of the classification score and keeps the positive part:

    alpha^k = (1 / hw) sum_ij d y / d A^k_ij,     M^Grad-CAM = ReLU( sum_k alpha^k A^k )

Here ``y = log softmax(logits)[target] = -CE`` (the classification loss's gradient, sign
flipped so that evidence for the true id is positive), as ES-Net's Grad-CAM erasing uses "the
cross-entropy loss". Unlike CG-RAM it needs the training ids, so it exists only at training time.
Grad-CAM erasing is BESM's erasing (:func:`~reidlib.saliency.besm`) with this map instead of CG-RAM.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .besm import BESMResult, besm
from .cg_ram import Mode, _as_ids, _forward, model_mode, resolve_layer, single_branch

__all__ = ["GradCAMResult", "grad_cam", "grad_cam_erasing", "logits_of"]


@dataclass
class GradCAMResult:
    """``maps``: ``(B, h, w)``; ``weights``: ``(B, C)`` channel weights alpha; ``activation``/``gradient``:
    ``(B, C, h, w)``; ``logits``: ``(B, N)``."""

    maps: Tensor
    weights: Tensor
    activation: Tensor
    gradient: Tensor
    logits: Tensor


def logits_of(output: Any) -> Tensor:
    """The id logits ``(B, N)`` in a model's training output (a dict's ``"logits"``)."""
    output = single_branch(output)
    if isinstance(output, dict) and "logits" in output:
        return output["logits"]
    raise TypeError(
        f"Grad-CAM needs id logits; the model returned {type(output).__name__} "
        f"(run it in train mode, or pass output_fn that returns the logits (B, N))"
    )


def grad_cam(
    model: Callable[[Tensor], Any],
    images: Tensor,
    targets: Tensor,
    layer: nn.Module | str,
    *,
    output_fn: Callable[[Any], Tensor] | None = None,
    mode: Mode = "keep",
) -> GradCAMResult:
    """Grad-CAM of ``layer`` for the true ids ``targets`` ``(B,)``; ``images`` ``(B, 3, H, W)``.

    ``output_fn`` picks the logits ``(B, N)`` from the model's output (default: a dict's ``"logits"``).
    Same forward/backward scheme and mode handling as :func:`~reidlib.saliency.cg_ram_batch`.
    """
    targets = _as_ids("targets", targets, images)
    module = resolve_layer(model, layer)
    with model_mode(model, mode):
        logits, act = _forward(model, images, module, output_fn or logits_of)
        bad = (targets < 0) | (targets >= logits.shape[1])
        if bool(bad.any()):
            raise ValueError(f"targets must be class indices in [0, {logits.shape[1]}) (the model's num_classes), "
                             f"got {targets[bad][:5].tolist()}")
        with torch.enable_grad():
            score = -F.cross_entropy(logits, targets.to(logits.device), reduction="sum")
        (grad,) = torch.autograd.grad(score, act)
    weights = grad.mean((2, 3))
    maps = torch.relu((weights[:, :, None, None] * act.detach()).sum(1))
    return GradCAMResult(maps, weights, act.detach(), grad, logits.detach())


def grad_cam_erasing(
    model: Callable[[Tensor], Any],
    images: Tensor,
    targets: Tensor,
    layer: nn.Module | str,
    ratio: float,
    prob: float,
    *,
    inputs: Tensor | None = None,
    generator: torch.Generator | None = None,
    fill: float = 0.0,
    **kwargs: Any,
) -> BESMResult:
    """Grad-CAM erasing: Algorithm 1 with the Grad-CAM map in place of CG-RAM.

    ``inputs`` is what ``model`` takes when it is not the images themselves (e.g. a branch fed by a
    shared trunk); ``images`` ``(B, 3, H, W)`` are always what gets erased.
    """
    cam = grad_cam(model, images if inputs is None else inputs, targets, layer, **kwargs)
    return besm(images, cam.maps, ratio, prob, generator=generator, fill=fill)
