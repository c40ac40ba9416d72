"""reidlib.viz: figures and interactive widgets (the top layer: may import any other layer).

Images (:mod:`reidlib.viz.images`):

* :func:`denormalize` / :func:`normalize` — ImageNet-normalised ``(3, H, W)`` / ``(B, 3, H, W)``
  tensors to RGB in ``[0, 1]`` and back.
* :func:`show_image` — one image on an axis, no ticks (title, label below, border, heat map).
* :func:`overlay_heatmap` — a saliency map ``(h, w)`` upsampled and blended onto an image.
* :func:`image_grid` — a figure of images in rows; :func:`rank_row` — a query and its top-k
  gallery images with green / red borders (:data:`RANK_COLORS`).

Widgets (:mod:`reidlib.viz.widgets`):

* :func:`erasing_explorer` — ipywidgets app over the erasing augmentations; methods are
  registered in :data:`ERASING_METHODS` with :func:`register_erasing_method`.
* :func:`besm_explorer` — ES-Net's BESM in the explorer, with its batch version.
* :func:`rpe_explorer` — HENet's random polygon erasing beside random erasing (``n``, ``p``, area
  range), a row of training-time draws each (:func:`rpe_draws`).
* Each explorer has a static mode (``static=True``): frames precomputed on a grid of control
  values, picked in the browser without a kernel (:mod:`reidlib.viz.frames`: :class:`FrameGrid`,
  :class:`Axis`, :class:`StaticExplorer`).
"""
from .frames import Axis, FrameGrid, StaticExplorer
from .images import (
    RANK_COLORS,
    denormalize,
    image_grid,
    normalize,
    overlay_heatmap,
    rank_row,
    set_border,
    show_image,
    to_rgb_array,
)
from .widgets import (
    ERASING_METHODS,
    BESMExplorer,
    Control,
    ErasingExplorer,
    ErasingMethod,
    RPEDraws,
    RPEExplorer,
    besm_explorer,
    erasing_explorer,
    register_erasing_method,
    rpe_draws,
    rpe_explorer,
    synthped_images,
    to_png,
)

__all__ = ["Axis", "BESMExplorer", "ERASING_METHODS", "Control", "ErasingExplorer", "ErasingMethod", "FrameGrid",
           "RANK_COLORS", "RPEDraws", "RPEExplorer", "StaticExplorer", "besm_explorer", "denormalize",
           "erasing_explorer", "image_grid", "normalize", "overlay_heatmap", "rank_row", "register_erasing_method",
           "rpe_draws", "rpe_explorer", "set_border", "show_image", "synthped_images", "to_png", "to_rgb_array"]
