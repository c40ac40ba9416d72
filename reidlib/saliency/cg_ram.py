"""CG-RAM: Confidence Gradient-weighted Ranking Activation Mapping (ES-Net, Sec. III-B/C, Eqs. (2)-(5)).

Given the feature maps ``A`` (shape ``(C, h, w)``) of any layer of any model and the confidence
score of a query/gallery pair,

    S(q, g) = <f_q, f_g> / (|f_q| |f_g|)                                      (2)
    phi^k_ij = dS / dA^k_ij                                                   (3)
    M_ij = ReLU( sum_k phi^k_ij A^k_ij )                                      (4)

``phi`` keeps its spatial index (element-wise weights, unlike Grad-CAM's channel means). During
training there is no gallery: each sample ``x_i`` of a P x K batch is paired with its easiest
positive ``x_p`` (the same-id sample nearest to it, itself excluded) and

    S_batch = sum_i exp(S(x_i, x_p)) S(x_i, x_p)                              (5)

is differentiated instead of ``S``, one extra backward from the features to layer ``L`` only.

The layer is read with a forward hook; the model is not changed. The part of the network before
the layer runs without autograd (only ``dS/dA`` is needed), the part after it with autograd.

Choices the paper leaves open (stated in the book):

* test time (:func:`cg_ram`): the model is put in eval mode for the pass (BatchNorm uses its
  running statistics, so a pair's map does not depend on the other pairs in the batch) and
  restored afterwards;
* training time (:func:`cg_ram_batch`): the model keeps its mode (``mode='keep'``), i.e. in
  training BatchNorm normalises with the statistics of the current batch, as the loss forward
  does; the running statistics are not updated by the pass, so the extra pass leaves no trace.
* the distance that picks the easiest positive is the cosine distance ``1 - S`` (the same score
  Eq. (5) weighs), on detached features.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.losses import easiest_positive  # nearest same-id sample, itself excluded
from reidlib.nn import Mode, capture_activation, model_mode  # shared helpers; re-exported here (old home)

__all__ = [
    "CGRAMResult",
    "BatchCGRAMResult",
    "cg_ram",
    "cg_ram_batch",
    "confidence_score",
    "batch_confidence_score",
    "easiest_positive",
    "saliency_map",
    "capture_activation",
    "model_mode",
    "resolve_layer",
]

@dataclass
class CGRAMResult:
    """Test-time CG-RAM of ``B`` query/gallery pairs.

    ``query_map``/``gallery_map``: ``(B, h, w)`` Eq. (4); ``score``: ``(B,)`` Eq. (2);
    ``activation``/``gradient``: ``A`` and ``phi`` of the layer, ``(2B, C, h, w)``, queries first.
    """

    query_map: Tensor
    gallery_map: Tensor
    score: Tensor
    activation: Tensor
    gradient: Tensor


@dataclass
class BatchCGRAMResult:
    """Training-time CG-RAM of a P x K batch.

    ``maps``: ``(B, h, w)``; ``positive``: ``(B,)`` index of each sample's easiest positive;
    ``pair_score``: ``(B,)`` ``S(x_i, x_p)``; ``score``: scalar ``S_batch`` of Eq. (5);
    ``activation``/``gradient``: ``(B, C, h, w)``; ``features``: ``(B, D)`` the features ``S`` used.
    """

    maps: Tensor
    positive: Tensor
    pair_score: Tensor
    score: Tensor
    activation: Tensor
    gradient: Tensor
    features: Tensor


def resolve_layer(model: Any, layer: nn.Module | str) -> nn.Module:
    """The module ``layer`` names in ``model`` (a dotted name such as ``"layer4"``) or ``layer`` itself."""
    if isinstance(layer, nn.Module):
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"layer must be an nn.Module or a dotted submodule name, got {type(layer).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"layer={layer!r} is a name, so model must be an nn.Module, got {type(model).__name__}")
    try:
        return model.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in model.named_children()]
        raise ValueError(
            f"layer {layer!r} is not a submodule of {type(model).__name__}; its children are {names}"
        ) from None


def _as_ids(name: str, ids: Any, images: Tensor) -> Tensor:
    """``ids`` as an integer tensor ``(B,)`` matching ``images (B, ...)``, or a ValueError naming ``name``."""
    if not isinstance(images, Tensor) or images.dim() < 1:
        raise ValueError(f"images must be a tensor (B, ...), got {type(images).__name__}")
    if not isinstance(ids, Tensor):
        try:
            ids = torch.as_tensor(ids)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be integer identities (B,), got {type(ids).__name__}") from None
    if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.dtype.is_complex:
        raise ValueError(f"{name} must be integer identities (B,), got dtype {ids.dtype}")
    if ids.dim() != 1 or ids.numel() != images.shape[0]:
        raise ValueError(f"{name} must be (B,) with B={images.shape[0]}, got shape {tuple(ids.shape)}")
    return ids.long()


def single_branch(output: Any) -> Any:
    """A training output's one branch (``{"branches": {name: {...}}}`` with one name), else ``output``."""
    if isinstance(output, dict) and isinstance(output.get("branches"), dict) and len(output["branches"]) == 1:
        return next(iter(output["branches"].values()))
    return output


def _features(output: Any, output_fn: Callable[[Any], Tensor] | None) -> Tensor:
    if output_fn is not None:
        return output_fn(output)
    output = single_branch(output)
    if isinstance(output, Tensor):
        return output
    if isinstance(output, dict) and "feat_bn" in output:
        return output["feat_bn"]
    raise TypeError(
        f"the model returned {type(output).__name__}; pass output_fn to pick the retrieval feature (B, D) from it"
    )


def _forward(model: Callable[[Tensor], Any], x: Tensor, layer: nn.Module, output_fn) -> tuple[Tensor, Tensor]:
    """(features (B, D), activation leaf (B, C, h, w)) with autograd recorded from the layer on."""
    with torch.no_grad(), capture_activation(layer) as store:
        output = model(x)
        if not store:
            raise RuntimeError(f"layer {type(layer).__name__} did not run in the model's forward")
        if store[0].dim() != 4:
            raise ValueError(f"layer {type(layer).__name__} outputs shape {tuple(store[0].shape)}; saliency needs a "
                             "convolutional layer whose output is a feature map (B, C, h, w), e.g. 'layer4'")
        with torch.enable_grad():
            feats = _features(output, output_fn)
    if feats.dim() != 2 or feats.shape[0] != x.shape[0]:
        raise ValueError(f"retrieval features must be (B, D) with B={x.shape[0]}, got {tuple(feats.shape)}")
    return feats, store[0]


def confidence_score(f_q: Tensor, f_g: Tensor) -> Tensor:
    """Eq. (2): cosine similarity of paired features, ``(B, D), (B, D) -> (B,)``."""
    return F.cosine_similarity(f_q, f_g, dim=1)


def saliency_map(activation: Tensor, gradient: Tensor) -> Tensor:
    """Eq. (4): ``M_ij = ReLU(sum_k phi^k_ij A^k_ij)``, ``(B, C, h, w) x2 -> (B, h, w)``."""
    return torch.relu((gradient * activation).sum(1))


def batch_confidence_score(feats: Tensor, pids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Eq. (5): ``S_batch = sum_i exp(S(x_i, x_p)) S(x_i, x_p)`` with ``x_p`` the easiest positive of ``x_i``.

    ``feats``: ``(B, D)``; returns ``(S_batch scalar, positive (B,), pair scores (B,))``. The weight
    ``exp(S)`` is part of the differentiated expression, as Eq. (5) is written.
    """
    with torch.no_grad():
        normed = F.normalize(feats.detach(), dim=1)
        positive = easiest_positive(1 - normed @ normed.t(), pids.to(feats.device))
    pair = confidence_score(feats, feats[positive])
    return (pair.exp() * pair).sum(), positive, pair


def cg_ram(
    model: Callable[[Tensor], Any],
    query: Tensor,
    gallery: Tensor,
    layer: nn.Module | str,
    *,
    output_fn: Callable[[Any], Tensor] | None = None,
    mode: Mode = "eval",
) -> CGRAMResult:
    """Test-time CG-RAM, Eqs. (2)-(4), of ``B`` query/gallery pairs (``query[b]`` with ``gallery[b]``).

    Args:
        model: maps images ``(N, 3, H, W)`` to retrieval features ``(N, D)`` (or to an output from which
            ``output_fn`` picks them; a dict's ``"feat_bn"`` is used by default).
        query, gallery: ``(B, 3, H, W)`` each.
        layer: the module (or its dotted name in ``model``) whose output ``A`` ``(N, C, h, w)`` is explained.
        mode: ``"eval"`` (default), ``"train"`` or ``"keep"`` for the pass; the model's modes and
            BatchNorm statistics are restored afterwards.

    Returns:
        :class:`CGRAMResult` with maps ``(B, h, w)`` for the queries and the gallery images.
    """
    if query.shape != gallery.shape or query.dim() != 4:
        raise ValueError(
            f"query and gallery must be paired image batches of equal shape (B, 3, H, W), "
            f"got {tuple(query.shape)} and {tuple(gallery.shape)}"
        )
    module = resolve_layer(model, layer)
    b = query.shape[0]
    with model_mode(model, mode):
        feats, act = _forward(model, torch.cat([query, gallery]), module, output_fn)
        with torch.enable_grad():
            score = confidence_score(feats[:b], feats[b:])
        (grad,) = torch.autograd.grad(score.sum(), act)
    maps = saliency_map(act.detach(), grad)
    return CGRAMResult(maps[:b], maps[b:], score.detach(), act.detach(), grad)


def cg_ram_batch(
    model: Callable[[Tensor], Any],
    images: Tensor,
    pids: Tensor,
    layer: nn.Module | str,
    *,
    output_fn: Callable[[Any], Tensor] | None = None,
    mode: Mode = "keep",
) -> BatchCGRAMResult:
    """Training-time CG-RAM of a P x K batch: easiest positives, Eq. (5), then Eqs. (3)-(4).

    One forward without autograd up to ``layer``, then one backward from ``S_batch`` to the layer's
    output only (``torch.autograd.grad``; no parameter gradient is touched). ``images`` is whatever
    ``model`` takes, e.g. the shared trunk's output when ``model`` is one branch of a network.

    Returns:
        :class:`BatchCGRAMResult`, maps ``(B, h, w)``.
    """
    pids = _as_ids("pids", pids, images)
    module = resolve_layer(model, layer)
    with model_mode(model, mode):
        feats, act = _forward(model, images, module, output_fn)
        with torch.enable_grad():
            s_batch, positive, pair = batch_confidence_score(feats, pids)
        (grad,) = torch.autograd.grad(s_batch, act)
    return BatchCGRAMResult(
        saliency_map(act.detach(), grad), positive, pair.detach(), s_batch.detach(), act.detach(), grad,
        feats.detach(),
    )
