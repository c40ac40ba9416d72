"""Grad-CAM for retrieval descriptors (Almazán et al., "Re-ID done right", 2018, Sec. 4.4, Figs. 1, 5, 6).

A retrieval model has no class score to explain; what it has is a descriptor ``x`` ``(B, D)``,
l2-normalised, compared with a dot product. Sec. 4.4 explains single *dimensions* of it with
Grad-CAM (Selvaraju et al., 2017): for a scalar target ``y`` and the feature maps ``A``
``(B, C, h, w)`` of a convolutional layer,

    alpha_c = (1 / hw) sum_ij dy / dA_c(i, j),        map = ReLU( sum_c alpha_c A_c )

with three targets:

* Fig. 1, "localized responses": ``y = x_j``, one map per dimension (:func:`single_dimension_maps`);
* Fig. 5, "matching regions": for a query ``q`` and a gallery image ``d``, the ``top`` dimensions with
  the largest contributions ``q_j d_j`` to ``q . d`` (:func:`pair_dimensions`), and each image's map
  for each of those dimensions individually (:func:`matching_regions`);
* Fig. 6, "implicit attention": ``y = sum_{j in top 50} x_j``, the gradients of the top dimensions
  propagated and accumulated (:func:`implicit_attention`). Because ``alpha`` is linear in ``y``, its
  weights are the sums of the single dimensions' weights (the ReLU'd map is not the sum of maps).

The general form, ``y_b = sum_{j in dims_b} w_j x_{b, j}``, is :func:`embedding_grad_cam`.

With the paper's "good practices" head (global max pooling ``p = max_ij A`` ``(C,)``, then an FC
``z = W p + b``, then ``x = z / |z|``) the gradient is exact and sparse: ``dx_j / dA_c(i, j)`` is
non-zero only at channel ``c``'s argmax, so

    alpha_c = (1 / hw) dx_j / dp_c,      dx / dp = (I - x x^T) W / |W p + b|,

which :func:`max_pooled_channel_weights` computes from the head's parameters alone
(:func:`l2_normalize_jacobian` is the ``(I - x x^T) / |z|`` factor).

Choices the paper leaves open (stated in the book):

* the explained descriptor is always the l2-normalised one: the model's output ``f`` is normalised
  again (``x = f / |f|``). For a model that already normalises this changes neither the value nor the
  gradient (the projection ``I - x x^T`` is idempotent), and for one that does not, ``q . d`` is then the
  cosine similarity the ranking uses, so Fig. 5's contributions sum to the score;
* "top dimensions" of a descriptor (:func:`top_dimensions`, Fig. 6) are its largest *signed* values,
  i.e. the strongest positive responses, not the largest magnitudes;
* test-time explanation: the model runs in eval mode for the pass (``mode='eval'``; BatchNorm uses its
  running statistics, so the images of a batch do not interact and one backward of the summed
  per-image targets gives each image its own gradient); modes and statistics are restored afterwards;
* one map per (image, dimension) (:func:`single_dimension_maps`) is ``k`` backward passes from the
  descriptor to the layer through one retained graph, not one batched backward: a vmap'd backward
  (``is_grads_batched``) has no batching rule for some layers (it falls back to a slow loop or fails),
  and the loop never holds more than one ``(B, C, h, w)`` gradient at a time;
* :func:`attention_share` of an all-zero map (Grad-CAM found no positive evidence) is ``nan``, not 0:
  "no attention" is not "attention outside the mask"; average shares with ``torch.nanmean``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reidlib.nn import check_images

from .cg_ram import Mode, _forward, model_mode, resolve_layer

__all__ = [
    "EmbeddingGradCAMResult",
    "MatchingRegionsResult",
    "SingleDimensionResult",
    "TopDimensions",
    "attention_share",
    "embedding_grad_cam",
    "implicit_attention",
    "l2_normalize_jacobian",
    "matching_regions",
    "max_pooled_channel_weights",
    "pair_dimensions",
    "single_dimension_maps",
    "top_dimensions",
]


@dataclass
class EmbeddingGradCAMResult:
    """Grad-CAM of ``y_b = sum_t dim_weights[b, t] x[b, dims[b, t]]``.

    ``maps``: ``(B, h, w)``; ``weights``: ``(B, C)`` channel weights alpha; ``activation``/``gradient``:
    ``(B, C, h, w)``; ``descriptors``: ``(B, D)`` the l2-normalised ``x``; ``dims``/``dim_weights``:
    ``(B, k)`` the explained dimensions and their weights ``w``.
    """

    maps: Tensor
    weights: Tensor
    activation: Tensor
    gradient: Tensor
    descriptors: Tensor
    dims: Tensor
    dim_weights: Tensor


@dataclass
class SingleDimensionResult:
    """One Grad-CAM per (image, dimension), Fig. 1.

    ``maps``: ``(B, k, h, w)``, ``maps[b, t]`` for target ``x[b, dims[b, t]]``; ``weights``: ``(B, k, C)``;
    ``activation``: ``(B, C, h, w)``; ``descriptors``: ``(B, D)``; ``dims``: ``(B, k)``. The gradients
    themselves are not kept (``B k`` tensors of the activation's size).
    """

    maps: Tensor
    weights: Tensor
    activation: Tensor
    descriptors: Tensor
    dims: Tensor


@dataclass
class MatchingRegionsResult:
    """Fig. 5 for ``B`` query/gallery pairs (``query[b]`` with ``gallery[b]``).

    ``dims``/``contributions``: ``(B, top)`` the pair's dimensions by decreasing ``q_j d_j``;
    ``score``: ``(B,)`` ``q . d``; ``query_maps``/``gallery_maps``: ``(B, top, h, w)``, each image's map for
    target ``x_j`` of each of those dimensions; ``query_weights``/``gallery_weights``: ``(B, top, C)``;
    ``query_descriptors``/``gallery_descriptors``: ``(B, D)`` l2-normalised.
    """

    dims: Tensor
    contributions: Tensor
    score: Tensor
    query_maps: Tensor
    gallery_maps: Tensor
    query_weights: Tensor
    gallery_weights: Tensor
    query_descriptors: Tensor
    gallery_descriptors: Tensor


class TopDimensions(NamedTuple):
    """Selected descriptor dimensions, best first: ``dims`` (long) and their ``values``, ``(B, top)`` or ``(top,)``."""

    dims: Tensor
    values: Tensor


def _check_top(top: Any, size: int | None = None) -> int:
    if isinstance(top, bool) or not isinstance(top, int) or top < 1 or (size is not None and top > size):
        bound = f"[1, D={size}]" if size is not None else ">= 1"
        raise ValueError(f"top must be an int in {bound} (how many descriptor dimensions), got {top!r}")
    return top


def _check_descriptor(name: str, x: Any) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() not in (1, 2) or not x.dtype.is_floating_point:
        what = f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a float descriptor (D,) or a batch of them (B, D), got {what}")
    return x


def top_dimensions(x: Tensor, top: int = 50) -> TopDimensions:
    """The ``top`` largest signed values of descriptors ``x`` ``(B, D)`` or ``(D,)`` (Fig. 6's "top 50").

    Signed, not by magnitude: the strongest positive responses of the embedding. Returns
    :class:`TopDimensions` ``(dims, values)`` of shape ``(B, top)`` (or ``(top,)``), values decreasing.
    """
    x = _check_descriptor("x", x)
    top = _check_top(top, x.shape[-1])
    values, dims = torch.topk(x.detach(), top, dim=-1, largest=True, sorted=True)
    return TopDimensions(dims, values)


def pair_dimensions(q: Tensor, d: Tensor, top: int = 5) -> TopDimensions:
    """The ``top`` dimensions ``j`` with the largest contributions ``q_j d_j`` to ``q . d`` (Fig. 5).

    ``q``, ``d``: descriptors ``(D,)`` or paired batches ``(B, D)`` of equal shape (``q[b]`` with ``d[b]``).
    Returns :class:`TopDimensions` ``(dims, values)``, ``values`` the contributions ``q_j d_j``,
    decreasing, of shape ``(B, top)`` (or ``(top,)``). The contributions of all ``D`` dimensions sum to
    ``q . d``, the score the ranking uses for l2-normalised descriptors.
    """
    q = _check_descriptor("q", q)
    d = _check_descriptor("d", d)
    if q.shape != d.shape:
        raise ValueError(f"q and d must be descriptors of the same shape (D,) or (B, D), got q {tuple(q.shape)} "
                         f"and d {tuple(d.shape)}")
    top = _check_top(top, q.shape[-1])
    values, dims = torch.topk((q * d).detach(), top, dim=-1, largest=True, sorted=True)
    return TopDimensions(dims, values)


def l2_normalize_jacobian(z: Tensor) -> Tensor:
    """Jacobian of ``x = z / |z|``: ``dx / dz = (I - x x^T) / |z|``, ``(B, D) -> (B, D, D)`` (or ``(D,) -> (D, D)``)."""
    norm = z.norm(dim=-1, keepdim=True)
    x = z / norm
    eye = torch.eye(z.shape[-1], dtype=z.dtype, device=z.device)
    return (eye - x.unsqueeze(-1) * x.unsqueeze(-2)) / norm.unsqueeze(-1)


def max_pooled_channel_weights(
    pooled: Tensor,
    fc_weight: Tensor,
    fc_bias: Tensor | None,
    dims: Tensor,
    hw: int,
    dim_weights: Tensor | None = None,
) -> Tensor:
    """Closed-form Grad-CAM channel weights of a global-max-pooling -> FC -> l2 head (Sec. 4.4 model).

    ``pooled``: ``p`` ``(B, C)`` the max-pooled activation; ``fc_weight``: ``W`` ``(D, C)``; ``fc_bias``:
    ``b`` ``(D,)`` or None; ``dims``/``dim_weights``: ``(B, k)`` the target ``y_b = sum_t w_bt x_{b, dims_bt}``;
    ``hw``: the activation's ``h * w``. Max pooling sends ``dy/dp_c`` to channel ``c``'s argmax only, so
    the spatial mean of the gradient is ``alpha_c = (1 / hw) dy / dp_c``, with
    ``dx / dp = (I - x x^T) W / |W p + b|`` (:func:`l2_normalize_jacobian`). Returns ``(B, C)``.
    """
    z = F.linear(pooled, fc_weight, fc_bias)
    dx_dp = l2_normalize_jacobian(z) @ fc_weight  # (B, D, C)
    rows = dx_dp.gather(1, dims[:, :, None].expand(-1, -1, dx_dp.shape[2]))  # (B, k, C)
    w = torch.ones(dims.shape, dtype=rows.dtype, device=rows.device) if dim_weights is None else dim_weights
    return (w[:, :, None] * rows).sum(1) / hw


def _check_dims(dims: Any, batch: int, size: int) -> Tensor:
    """``dims`` as a long tensor ``(B, k)``; a ``(k,)`` row is shared by every image."""
    if not isinstance(dims, Tensor):
        try:
            dims = torch.as_tensor(dims)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"dims must be integer descriptor dimensions (B, k), got {type(dims).__name__}") from None
    if dims.dtype.is_floating_point or dims.dtype.is_complex or dims.dtype == torch.bool:
        raise ValueError(f"dims must be integer descriptor dimensions (B, k), got dtype {dims.dtype}")
    if dims.dim() == 1:
        dims = dims.expand(batch, -1)
    if dims.dim() != 2 or dims.shape[0] != batch or dims.shape[1] < 1:
        raise ValueError(f"dims must be (B, k) with B={batch} and k >= 1 (or (k,) for every image), "
                         f"got shape {tuple(dims.shape)}")
    bad = (dims < 0) | (dims >= size)
    if bool(bad.any()):
        raise ValueError(f"dims must be descriptor dimensions in [0, D={size}), got {dims[bad][:5].tolist()}")
    return dims.long().contiguous()


def _check_dim_weights(weights: Any, dims: Tensor, like: Tensor) -> Tensor:
    if weights is None:
        return torch.ones(dims.shape, dtype=like.dtype, device=like.device)
    if not isinstance(weights, Tensor) or not weights.dtype.is_floating_point or weights.shape != dims.shape:
        what = f"shape {tuple(weights.shape)}, dtype {weights.dtype}" if isinstance(weights, Tensor) else type(weights).__name__
        raise ValueError(f"weights must be a float tensor of the shape of dims {tuple(dims.shape)}, got {what}")
    return weights.to(like)


def _descriptor_forward(
    model: Callable[[Tensor], Any], images: Tensor, module: nn.Module, output_fn, normalize: bool
) -> tuple[Tensor, Tensor]:
    """(descriptors ``x`` (B, D) with autograd from the layer on, activation leaf (B, C, h, w))."""
    feats, act = _forward(model, images, module, output_fn)
    with torch.enable_grad():
        x = F.normalize(feats, dim=1) if normalize else feats
    return x, act


def _grad_cam(act: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
    """(channel weights alpha (B, C), maps ReLU(sum_c alpha_c A_c) (B, h, w))."""
    weights = grad.mean((2, 3))
    return weights, torch.relu(torch.einsum("bc,bchw->bhw", weights, act.detach()))


def _per_dimension(x: Tensor, act: Tensor, dims: Tensor) -> tuple[Tensor, Tensor]:
    """Weights ``(B, k, C)`` and maps ``(B, k, h, w)`` for the targets ``x[b, dims[b, t]]``, one backward per ``t``."""
    weights, maps = [], []
    k = dims.shape[1]
    for t in range(k):
        with torch.enable_grad():  # the caller may be under no_grad; the graph must reach the leaf
            y = x.gather(1, dims[:, t:t + 1].to(x.device)).sum()
        (grad,) = torch.autograd.grad(y, act, retain_graph=t < k - 1)
        w, m = _grad_cam(act, grad)
        weights.append(w)
        maps.append(m)
    return torch.stack(weights, 1), torch.stack(maps, 1)


def embedding_grad_cam(
    model: Callable[[Tensor], Any],
    images: Tensor,
    layer: nn.Module | str,
    dims: Tensor,
    *,
    weights: Tensor | None = None,
    output_fn: Callable[[Any], Tensor] | None = None,
    mode: Mode = "eval",
    normalize: bool = True,
) -> EmbeddingGradCAMResult:
    """Grad-CAM of ``layer`` for the target ``y_b = sum_t w_bt x_{b, dims_bt}`` of each image (Sec. 4.4).

    Args:
        model: maps images ``(B, 3, H, W)`` to descriptors ``(B, D)`` (or to an output from which
            ``output_fn`` picks them; a dict's ``"feat_bn"`` by default).
        images: ``(B, 3, H, W)``.
        layer: the module (or its dotted name in ``model``) whose output ``A`` ``(B, C, h, w)`` is explained.
        dims: ``(B, k)`` integer descriptor dimensions per image, in ``[0, D)`` (a ``(k,)`` row is shared by all).
        weights: ``(B, k)`` the ``w`` of each dimension (default 1: the plain sum).
        mode: ``"eval"`` (default), ``"train"`` or ``"keep"`` for the pass; restored afterwards.
        normalize: explain ``x = f / |f|`` (default; a no-op for a model that normalises) or the raw ``f``.

    Returns:
        :class:`EmbeddingGradCAMResult`, maps ``(B, h, w)``.
    """
    check_images(images, "images", reference=model if isinstance(model, nn.Module) else None)
    module = resolve_layer(model, layer)
    with model_mode(model, mode):
        x, act = _descriptor_forward(model, images, module, output_fn, normalize)
        dims = _check_dims(dims, images.shape[0], x.shape[1]).to(x.device)
        w = _check_dim_weights(weights, dims, x)
        with torch.enable_grad():
            y = (w * x.gather(1, dims)).sum()
        (grad,) = torch.autograd.grad(y, act)
    alpha, maps = _grad_cam(act, grad)
    return EmbeddingGradCAMResult(maps, alpha, act.detach(), grad, x.detach(), dims, w.detach())


def single_dimension_maps(
    model: Callable[[Tensor], Any],
    images: Tensor,
    layer: nn.Module | str,
    dims: Tensor,
    *,
    output_fn: Callable[[Any], Tensor] | None = None,
    mode: Mode = "eval",
    normalize: bool = True,
) -> SingleDimensionResult:
    """One Grad-CAM map per image and dimension, target ``x_{b, dims_bt}`` (Fig. 1's single-dimension heat maps).

    ``images``: ``(B, 3, H, W)``; ``dims``: ``(B, k)`` (or ``(k,)`` for every image). One forward, then ``k``
    backward passes from the descriptor to ``layer`` through one retained graph; ``maps[:, t]`` equals
    :func:`embedding_grad_cam` with ``dims[:, t:t+1]``. Other arguments as there.

    Returns:
        :class:`SingleDimensionResult`, maps ``(B, k, h, w)``.
    """
    check_images(images, "images", reference=model if isinstance(model, nn.Module) else None)
    module = resolve_layer(model, layer)
    with model_mode(model, mode):
        x, act = _descriptor_forward(model, images, module, output_fn, normalize)
        dims = _check_dims(dims, images.shape[0], x.shape[1]).to(x.device)
        alpha, maps = _per_dimension(x, act, dims)
    return SingleDimensionResult(maps, alpha, act.detach(), x.detach(), dims)


def matching_regions(
    model: Callable[[Tensor], Any],
    query_images: Tensor,
    gallery_images: Tensor,
    layer: nn.Module | str,
    top: int = 5,
    *,
    output_fn: Callable[[Any], Tensor] | None = None,
    mode: Mode = "eval",
    normalize: bool = True,
) -> MatchingRegionsResult:
    """Fig. 5: the ``top`` dimensions of each query/gallery pair and each image's map for each of them.

    ``query_images``, ``gallery_images``: ``(B, 3, H, W)`` each, paired by index. Both run in one forward;
    the pair's dimensions are :func:`pair_dimensions` of the l2-normalised descriptors (largest
    ``q_j d_j``), and each image gets the single-dimension map of target ``x_j`` (its own descriptor's
    ``j``-th value) for each of them, "for each image and each of these dimensions individually".

    Returns:
        :class:`MatchingRegionsResult`, maps ``(B, top, h, w)`` per side.
    """
    check_images(query_images, "query_images", reference=model if isinstance(model, nn.Module) else None)
    check_images(gallery_images, "gallery_images", reference=model if isinstance(model, nn.Module) else None)
    if query_images.shape != gallery_images.shape:
        raise ValueError(f"gallery_images must pair with query_images (same shape (B, 3, H, W)), got "
                         f"{tuple(gallery_images.shape)} for queries {tuple(query_images.shape)}")
    _check_top(top)
    module = resolve_layer(model, layer)
    b = query_images.shape[0]
    with model_mode(model, mode):
        x, act = _descriptor_forward(model, torch.cat([query_images, gallery_images]), module, output_fn, normalize)
        q, d = x.detach()[:b], x.detach()[b:]
        dims, contributions = pair_dimensions(q, d, top)
        alpha, maps = _per_dimension(x, act, torch.cat([dims, dims]))
    return MatchingRegionsResult(
        dims, contributions, (q * d).sum(1), maps[:b], maps[b:], alpha[:b], alpha[b:], q, d,
    )


def implicit_attention(
    model: Callable[[Tensor], Any],
    images: Tensor,
    layer: nn.Module | str,
    top: int = 50,
    *,
    output_fn: Callable[[Any], Tensor] | None = None,
    mode: Mode = "eval",
    normalize: bool = True,
) -> EmbeddingGradCAMResult:
    """Fig. 6: Grad-CAM of the sum of each image's ``top`` largest descriptor values, ``y_b = sum_{j in top_b} x_{b, j}``.

    "Propagate and accumulate the gradients" of the top dimensions (:func:`top_dimensions`, chosen on
    the image's own descriptor) in one backward: by linearity the channel weights are the sums of the
    single dimensions' weights. ``images``: ``(B, 3, H, W)``. Returns :class:`EmbeddingGradCAMResult`,
    maps ``(B, h, w)``, with ``dims`` ``(B, top)`` the chosen dimensions.
    """
    check_images(images, "images", reference=model if isinstance(model, nn.Module) else None)
    _check_top(top)
    module = resolve_layer(model, layer)
    with model_mode(model, mode):
        x, act = _descriptor_forward(model, images, module, output_fn, normalize)
        dims = top_dimensions(x.detach(), top).dims
        w = torch.ones(dims.shape, dtype=x.dtype, device=x.device)
        with torch.enable_grad():
            y = x.gather(1, dims).sum()
        (grad,) = torch.autograd.grad(y, act)
    alpha, maps = _grad_cam(act, grad)
    return EmbeddingGradCAMResult(maps, alpha, act.detach(), grad, x.detach(), dims, w)


def attention_share(maps: Tensor, masks: Tensor) -> Tensor:
    """Share of each heat map's mass inside a mask: ``sum(M * mask) / sum(M)``, ``(B, h, w), (B, H, W) -> (B,)``.

    ``maps`` are upsampled to the masks' size (bilinear, ``align_corners=False``, as overlays are drawn)
    and clamped at 0; ``masks`` are boolean (e.g. synthped's identity-specific part masks). The share is
    in ``[0, 1]``; it is ``nan`` for a map with no positive mass (nothing to share; use ``torch.nanmean``).
    """
    if not isinstance(maps, Tensor) or maps.dim() != 3 or not maps.dtype.is_floating_point:
        what = f"shape {tuple(maps.shape)}, dtype {maps.dtype}" if isinstance(maps, Tensor) else type(maps).__name__
        raise ValueError(f"maps must be float heat maps (B, h, w), got {what}")
    if not isinstance(masks, Tensor) or masks.dtype != torch.bool or masks.dim() != 3 or masks.shape[0] != maps.shape[0]:
        what = f"shape {tuple(masks.shape)}, dtype {masks.dtype}" if isinstance(masks, Tensor) else type(masks).__name__
        raise ValueError(f"masks must be boolean (B, H, W) with B={maps.shape[0]}, got {what}")
    size = tuple(masks.shape[1:])
    up = maps.detach()
    if tuple(up.shape[1:]) != size:
        up = F.interpolate(up[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    up = up.clamp_min(0)
    total = up.sum((1, 2))
    inside = (up * masks.to(up.device)).sum((1, 2))
    # an all-zero map has no mass to share: nan, not 0/0's warning or a silent 0
    return torch.where(total > 0, inside / total.where(total > 0, torch.ones_like(total)), torch.full_like(total, float("nan")))
