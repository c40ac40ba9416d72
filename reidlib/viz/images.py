"""Images on matplotlib axes: de-normalising, showing, saliency overlays, grids and rank rows.

The book's pages draw person crops in a handful of ways; they all go through these functions:

* :func:`denormalize` / :func:`normalize` — between the network's ImageNet-normalised tensors
  ``(3, H, W)`` / ``(B, 3, H, W)`` and RGB in ``[0, 1]``.
* :func:`to_rgb_array` — anything image-like (tensor, PIL image, array, path) as the ``(H, W, 3)``
  (or ``(H, W)`` for a mask) float array ``imshow`` wants.
* :func:`overlay_heatmap` — a saliency map ``(h, w)`` upsampled (bilinear) and blended onto an image.
* :func:`show_image` — one image on an axis, no ticks, with an optional title, caption below,
  coloured border and heat map.
* :func:`image_grid` — a figure of images in rows (``None`` leaves a cell blank).
* :func:`rank_row` — a query followed by its top-k gallery images, with green / red borders for
  the right / wrong identity (:data:`RANK_COLORS`).

Images given as tensors are in ``[0, 1]`` unless ``normalized=True``, which de-normalises them
with :data:`~reidlib.data.transforms.IMAGENET_MEAN` / :data:`~reidlib.data.transforms.IMAGENET_STD`
first (the output of ``build_transforms(..., train=False)``).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image as PILImage
from torch import Tensor

from reidlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from reidlib.saliency.besm import upsample_saliency

__all__ = ["RANK_COLORS", "denormalize", "image_grid", "normalize", "overlay_heatmap", "rank_row",
           "set_border", "show_image", "to_rgb_array"]

#: Border colours of :func:`rank_row`: a match (same identity), a non-match, and an item that is
#: not counted (``None``: junk, same identity and camera as the query); ``"query"`` for the query.
RANK_COLORS: dict[Any, str] = {True: "tab:green", False: "tab:red", None: "0.55", "query": "black"}


# ---------------------------------------------------------------------------------------------
# tensors
def _stats(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> tuple[Tensor, Tensor]:
    if images.dim() not in (3, 4) or images.shape[-3] != len(mean):
        raise ValueError(f"expected images (C, H, W) or (B, C, H, W) with C = {len(mean)}, "
                         f"got {tuple(images.shape)}")
    m = torch.as_tensor(mean, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    return m, s


def denormalize(images: Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                *, clamp: bool = True) -> Tensor:
    """``x * std + mean`` per channel: the inverse of ``Normalize(mean, std)``.

    ``images``: ``(3, H, W)`` or ``(B, 3, H, W)``, normalised. Returns a new tensor of the same
    shape, RGB in ``[0, 1]`` (clamped unless ``clamp=False``); the input is not modified.
    """
    m, s = _stats(images, mean, std)
    out = images.detach() * s + m
    return out.clamp(0, 1) if clamp else out


def normalize(images: Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """``(x - mean) / std`` per channel, for ``(3, H, W)`` / ``(B, 3, H, W)`` RGB in ``[0, 1]``:
    what the test-time pipeline feeds the network. The inverse of :func:`denormalize`."""
    m, s = _stats(images, mean, std)
    return (images - m) / s


def to_rgb_array(image: Any, *, normalized: bool = False) -> np.ndarray:
    """An image as a float array for ``imshow``: ``(H, W, 3)`` RGB in ``[0, 1]``, or ``(H, W)`` for
    a one-channel image or a mask.

    ``image``: a tensor ``(3, H, W)`` (float in ``[0, 1]``, uint8, or ImageNet-normalised with
    ``normalized=True``) or ``(H, W)`` (float, or bool for a mask); a numpy array ``(H, W, 3)`` or
    ``(H, W)`` (uint8 or float); a PIL image; or the path of an image file.
    """
    if isinstance(image, (str, Path)):
        with PILImage.open(image) as img:
            image = img.convert("RGB")
    if isinstance(image, PILImage.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    if isinstance(image, np.ndarray):
        arr = image.astype(np.float32) / 255 if image.dtype == np.uint8 else image.astype(np.float32)
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = arr.transpose(1, 2, 0)       # channels first
        return np.clip(arr, 0, 1)
    if not isinstance(image, Tensor):
        raise TypeError(f"not an image: {type(image).__name__} (tensor, array, PIL image or path)")
    x = image.detach().cpu()
    if x.dim() == 2:
        return (x.float() if x.dtype == torch.bool else x.float() / 255 if x.dtype == torch.uint8
                else x.float()).clamp(0, 1).numpy()
    if x.dim() != 3 or x.shape[0] != 3:
        raise ValueError(f"expected an image (3, H, W) or a map (H, W), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.float() / 255
    x = denormalize(x.float()) if normalized else x.float().clamp(0, 1)
    return x.permute(1, 2, 0).numpy()


def overlay_heatmap(image: Tensor, heat: Tensor, *, alpha: float = 0.45, cmap: str = "jet",
                    normalized: bool = False, vmin: float | None = None, vmax: float | None = None) -> Tensor:
    """Blend a heat map onto an image: ``(1 - alpha) * image + alpha * cmap(heat*)``.

    ``image``: ``(3, H, W)`` (or a batch ``(B, 3, H, W)``) in ``[0, 1]``, or normalised with
    ``normalized=True``. ``heat``: ``(h, w)`` (``(B, h, w)``), any size, upsampled bilinearly to
    ``(H, W)`` as BESM does (:func:`~reidlib.saliency.besm.upsample_saliency`), then scaled to
    ``[0, 1]`` between ``vmin`` and ``vmax`` (default: its own min and max, as ``imshow`` does; a
    constant map becomes 0). Returns ``(3, H, W)`` (``(B, 3, H, W)``) float in ``[0, 1]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    batched = image.dim() == 4
    img = image.detach().float().cpu()
    img = denormalize(img) if normalized else img.clamp(0, 1)
    imgs, heats = (img, heat) if batched else (img[None], heat[None])
    if heats.dim() != 3 or heats.shape[0] != imgs.shape[0] or imgs.shape[1] != 3:
        raise ValueError(f"expected image (3, H, W) with heat (h, w), or (B, 3, H, W) with (B, h, w); "
                         f"got {tuple(image.shape)} and {tuple(heat.shape)}")
    up = upsample_saliency(heats.detach().float().cpu(), tuple(imgs.shape[-2:]))
    lo = up.flatten(1).amin(1).view(-1, 1, 1) if vmin is None else torch.full((len(up), 1, 1), float(vmin))
    hi = up.flatten(1).amax(1).view(-1, 1, 1) if vmax is None else torch.full((len(up), 1, 1), float(vmax))
    scaled = torch.where(hi > lo, (up - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(up)).clamp(0, 1)
    colours = torch.from_numpy(matplotlib.colormaps[cmap](scaled.numpy())[..., :3]).float().permute(0, 3, 1, 2)
    out = ((1 - alpha) * imgs + alpha * colours).clamp(0, 1)
    return out if batched else out[0]


# ---------------------------------------------------------------------------------------------
# axes
def set_border(ax: plt.Axes, color: Any, width: float = 3.0) -> plt.Axes:
    """Draw a frame of ``color`` and line ``width`` (points) around ``ax`` (its spines)."""
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(color)
        spine.set_linewidth(width)
    return ax


def show_image(ax: plt.Axes, image: Any, *, title: str | None = None, label: str | None = None,
               heat: Tensor | None = None, border: Any = None, normalized: bool = False, alpha: float = 0.45,
               cmap: str | None = None, fontsize: float = 8, interpolation: str = "nearest") -> plt.Axes:
    """Show one image on ``ax`` without ticks.

    ``image``: anything :func:`to_rgb_array` takes (a tensor ``(3, H, W)`` in ``[0, 1]``, or
    normalised with ``normalized=True``; a mask ``(H, W)``, drawn in ``cmap``, default grey).
    ``heat``: a map ``(h, w)`` overlaid with :func:`overlay_heatmap` (``alpha``). ``title`` above,
    ``label`` below (e.g. a rank and a distance), ``border`` a colour for a frame (none by default).
    """
    arr = to_rgb_array(image, normalized=normalized)
    if heat is not None:
        if arr.ndim != 3:
            raise ValueError("a heat map needs an RGB image, not a mask")
        arr = overlay_heatmap(torch.from_numpy(arr).permute(2, 0, 1), torch.as_tensor(heat), alpha=alpha)
        arr = arr.permute(1, 2, 0).numpy()
    ax.imshow(arr, cmap=cmap or ("gray" if arr.ndim == 2 else None), interpolation=interpolation,
              vmin=0 if arr.ndim == 2 else None, vmax=1 if arr.ndim == 2 else None)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if border is not None:
        set_border(ax, border)
    if title is not None:
        ax.set_title(title, fontsize=fontsize)
    if label is not None:
        ax.set_xlabel(label, fontsize=fontsize)
    return ax


def _rows(items: Any, ncols: int | None) -> list[list[Any]]:
    """A flat sequence (cut into rows of ``ncols``, default one row) or a list of rows."""
    items = list(items)
    if items and all(isinstance(r, (list, tuple)) for r in items):
        return [list(r) for r in items]
    ncols = ncols or max(len(items), 1)
    return [items[i:i + ncols] for i in range(0, len(items), ncols)] or [[]]


def _like(values: Any, rows: list[list[Any]], name: str) -> list[list[Any]]:
    if values is None:
        return [[None] * len(r) for r in rows]
    out = _rows(values, len(rows[0]) if rows and rows[0] else None)
    if [len(r) for r in out] != [len(r) for r in rows]:
        raise ValueError(f"{name} must have the images' shape {[len(r) for r in rows]}, got {[len(r) for r in out]}")
    return out


def image_grid(images: Sequence[Any], *, ncols: int | None = None, titles: Sequence[Any] | None = None,
               labels: Sequence[Any] | None = None, heats: Sequence[Any] | None = None,
               borders: Sequence[Any] | None = None, row_labels: Sequence[str] | None = None,
               normalized: bool = False, panel_size: tuple[float, float] = (1.2, 2.3), fontsize: float = 8,
               axes: np.ndarray | None = None, **show: Any) -> plt.Figure:
    """A figure of images in rows; returns it (its axes: ``fig.axes`` or ``fig.grid_axes``,
    an array ``(rows, cols)``).

    ``images``: a list of rows (each a list; rows may differ in length) or a flat list, cut into
    rows of ``ncols`` (default: one row). Each item is anything :func:`show_image` takes, or
    ``None`` for a blank cell. ``titles``, ``labels`` (below), ``heats`` and ``borders`` have the
    images' shape (``None`` entries for none). ``row_labels``: one per row, at the left.
    ``panel_size``: inches per cell (width, height). ``axes``: draw into these instead of a new
    figure. Other keywords go to :func:`show_image` (e.g. ``alpha``, ``interpolation``).
    """
    rows = _rows(images, ncols)
    titles_, labels_ = _like(titles, rows, "titles"), _like(labels, rows, "labels")
    heats_, borders_ = _like(heats, rows, "heats"), _like(borders, rows, "borders")
    nrows, width = len(rows), max(len(r) for r in rows) or 1
    if axes is None:
        fig, axes = plt.subplots(nrows, width, figsize=(panel_size[0] * width, panel_size[1] * nrows),
                                 squeeze=False)
    else:
        axes = np.asarray(axes, dtype=object).reshape(nrows, -1)
        fig = axes[0, 0].figure
    for r, row in enumerate(rows):
        for c in range(axes.shape[1]):
            ax = axes[r, c]
            if c >= len(row) or row[c] is None:
                ax.axis("off")
                continue
            show_image(ax, row[c], title=titles_[r][c], label=labels_[r][c], heat=heats_[r][c],
                       border=borders_[r][c], normalized=normalized, fontsize=fontsize, **show)
        if row_labels is not None and row_labels[r]:
            first = next((axes[r, c] for c in range(len(row)) if row[c] is not None), axes[r, 0])
            first.set_ylabel(row_labels[r], fontsize=fontsize)
    fig.grid_axes = axes
    return fig


def rank_row(query: Any, gallery: Sequence[Any], matches: Sequence[bool | None], *, axes: Sequence[plt.Axes] | None = None,
             query_title: str = "query", titles: Sequence[str] | None = None, labels: Sequence[str] | None = None,
             query_label: str | None = None, heats: Sequence[Any] | None = None, query_heat: Any = None,
             normalized: bool = False, width: float = 3.0, panel_size: tuple[float, float] = (1.2, 2.3),
             fontsize: float = 8, **show: Any) -> list[plt.Axes]:
    """A query and its top-k gallery images, in rank order, on ``k + 1`` axes.

    ``query``: an image (anything :func:`show_image` takes); ``gallery``: ``k`` images (a list, or
    a tensor ``(k, 3, H, W)``); ``matches``: ``k`` flags, True for the query's identity (green
    border), False for another (red), None for an item not counted (grey, e.g. junk): the colours
    of :data:`RANK_COLORS`; the query gets a black one. ``titles`` / ``labels`` (above / below),
    ``heats``: ``k`` entries for the gallery images, ``query_*`` for the query. ``axes``: ``k + 1``
    axes to draw into (default: a new figure, one row). Returns the ``k + 1`` axes used.
    """
    gallery = list(gallery)
    k = len(gallery)
    if len(matches) != k:
        raise ValueError(f"got {len(matches)} match flags for {k} gallery images")
    for name, seq in (("titles", titles), ("labels", labels), ("heats", heats)):
        if seq is not None and len(seq) != k:
            raise ValueError(f"{name} must have one entry per gallery image ({k}), got {len(seq)}")
    if axes is None:
        _, axes = plt.subplots(1, k + 1, figsize=(panel_size[0] * (k + 1), panel_size[1]), squeeze=False)
        axes = axes[0]
    axes = list(np.asarray(axes, dtype=object).ravel())
    if len(axes) != k + 1:
        raise ValueError(f"rank_row needs k + 1 = {k + 1} axes, got {len(axes)}")
    show = dict(normalized=normalized, fontsize=fontsize, **show)
    show_image(axes[0], query, title=query_title, label=query_label, heat=query_heat, **show)
    set_border(axes[0], RANK_COLORS["query"], width)
    for i, (ax, img, match) in enumerate(zip(axes[1:], gallery, matches)):
        show_image(ax, img, title=None if titles is None else titles[i], label=None if labels is None else labels[i],
                   heat=None if heats is None else heats[i], **show)
        set_border(ax, RANK_COLORS[None if match is None else bool(match)], width)
    return axes
