"""Interactive widgets (ipywidgets).

:func:`erasing_explorer` — pick an image, an erasing method and its parameters, and see the
original, the mask and the erased image. Methods come from :data:`ERASING_METHODS`, a registry
that other chapters extend with :func:`register_erasing_method` (e.g. ES-Net's BESM)::

    register_erasing_method("my erasing", apply, [Control("ratio", "float", 0.3, 0.0, 1.0, 0.05)])

where ``apply(image, *, generator, **params) -> (erased, mask)`` takes an image ``(3, H, W)`` in
``[0, 1]``, a ``torch.Generator`` and one keyword per control, and returns the erased image
``(3, H, W)`` and the mask ``(H, W)`` bool it applied. The explorer always erases (probability 1):
during training each method is applied with its probability ``p``.

:func:`besm_explorer` — ES-Net's BESM in the same explorer: a query's CG-RAM map for its pair with a
gallery image, BESM and random erasing of the same area on it, and Algorithm 1 on a training batch.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image as PILImage
from torch import Tensor

from reidlib.data.transforms import IMAGENET_MEAN, ProgressiveCutout, RandomErasing, RandomPolygonErasing, random_erasing_mask
from reidlib.saliency import besm, cg_ram, cg_ram_batch, erase_top, model_mode
from reidlib.viz.images import denormalize, normalize, overlay_heatmap

__all__ = ["BESMExplorer", "Control", "ERASING_METHODS", "ErasingExplorer", "ErasingMethod", "besm_explorer",
           "erasing_explorer", "register_erasing_method", "synthped_images", "to_png"]


# ---------------------------------------------------------------------------------------------
# the registry
@dataclass(frozen=True)
class Control:
    """One parameter of an erasing method and the widget that sets it.

    ``kind``: ``'float'`` / ``'int'`` (a slider from ``min`` to ``max`` by ``step``),
    ``'float_range'`` (a two-handle slider; ``value`` is ``(low, high)``), ``'choice'``
    (a dropdown over ``options``). ``label`` is shown beside it (default: ``name``).
    """

    name: str
    kind: Literal["float", "int", "float_range", "choice"]
    value: Any
    min: float = 0.0
    max: float = 1.0
    step: float = 0.01
    options: tuple[str, ...] = ()
    label: str | None = None

    def build(self) -> widgets.ValueWidget:
        common = dict(description=self.label or self.name, style={"description_width": "9em"},
                      layout=widgets.Layout(width="22em"), continuous_update=False)
        if self.kind == "float":
            return widgets.FloatSlider(value=self.value, min=self.min, max=self.max, step=self.step, **common)
        if self.kind == "int":
            return widgets.IntSlider(value=self.value, min=int(self.min), max=int(self.max), step=int(self.step),
                                     **common)
        if self.kind == "float_range":
            return widgets.FloatRangeSlider(value=tuple(self.value), min=self.min, max=self.max, step=self.step,
                                            **common)
        if self.kind == "choice":
            common.pop("continuous_update")
            return widgets.Dropdown(options=list(self.options), value=self.value, **common)
        raise ValueError(f"Control {self.name!r}: kind must be 'float', 'int', 'float_range' or 'choice', "
                         f"got {self.kind!r}")


@dataclass(frozen=True)
class ErasingMethod:
    """A named erasing method: ``apply(image, *, generator, **params) -> (erased, mask)`` and the
    controls of its parameters."""

    name: str
    apply: Callable[..., tuple[Tensor, Tensor]]
    controls: tuple[Control, ...] = field(default_factory=tuple)
    description: str = ""


ERASING_METHODS: dict[str, ErasingMethod] = {}


def register_erasing_method(name: str, apply: Callable[..., tuple[Tensor, Tensor]], controls: Sequence[Control] = (),
                            description: str = "", *, replace: bool = False) -> ErasingMethod:
    """Add a method to :data:`ERASING_METHODS` (shown by every explorer created afterwards)."""
    if name in ERASING_METHODS and not replace:
        raise ValueError(f"an erasing method named {name!r} is already registered (pass replace=True)")
    names = [c.name for c in controls]
    if len(set(names)) != len(names) or "generator" in names:
        raise ValueError(f"control names of {name!r} must be distinct and not 'generator', got {names}")
    method = ErasingMethod(name, apply, tuple(controls), description)
    ERASING_METHODS[name] = method
    return method


def _random_erasing(image: Tensor, *, generator: torch.Generator, area: tuple[float, float], r1: float,
                    fill: str) -> tuple[Tensor, Tensor]:
    return RandomErasing(1.0, scale=area, ratio=(r1, 1 / r1), fill=fill, generator=generator).forward_with_mask(image)


def _progressive_cutout(image: Tensor, *, generator: torch.Generator, progress: float, area: tuple[float, float],
                        start_max: float, regions: int) -> tuple[Tensor, Tensor]:
    start_max = min(max(start_max, area[0]), area[1])
    cut = ProgressiveCutout(1.0, scale=area, start_max=start_max, num_regions=regions, progress=progress,
                            generator=generator)
    return cut.forward_with_mask(image)


def _random_polygon_erasing(image: Tensor, *, generator: torch.Generator, n: int, area: tuple[float, float],
                            r: float, fill: str) -> tuple[Tensor, Tensor]:
    rpe = RandomPolygonErasing(1.0, n=n, sl=area[0], sh=area[1], r=r, fill=fill, generator=generator)
    return rpe.forward_with_mask(image)


register_erasing_method("random erasing", _random_erasing, [
    Control("area", "float_range", (0.02, 0.4), 0.01, 0.9, 0.01, label="area s_l–s_h"),
    Control("r1", "float", 0.3, 0.1, 1.0, 0.05, label="aspect r₁"),
    Control("fill", "choice", "random", options=("random", "mean", "zero")),
], "Zhong et al.: one rectangle, area fraction U(s_l, s_h), aspect U(r₁, 1/r₁).")
register_erasing_method("progressive cut-out", _progressive_cutout, [
    Control("progress", "float", 0.5, 0.0, 1.0, 0.05, label="progress t"),
    Control("area", "float_range", (0.02, 0.4), 0.01, 0.9, 0.01, label="area s_l–s_h"),
    Control("start_max", "float", 0.1, 0.01, 0.9, 0.01, label="s_max at t=0"),
    Control("regions", "int", 1, 1, 5, 1, label="regions"),
], "Re-ID done right: noise rectangles, area U(s_l, s_max(t)), s_max growing linearly with t.")
register_erasing_method("random polygon erasing", _random_polygon_erasing, [
    Control("n", "int", 20, 3, 60, 1, label="points n"),
    Control("area", "float_range", (0.02, 0.45), 0.01, 0.9, 0.01, label="box area s_l–s_h"),
    Control("r", "float", 0.35, 0.1, 1.0, 0.05, label="aspect r"),
    Control("fill", "choice", "constant", options=("constant", "random", "zero")),
], "HENet: convex hull of the box centre and n−1 uniform points in a box of sampled area and aspect.")


# ---------------------------------------------------------------------------------------------
# images
def to_png(image: Tensor, zoom: int = 1) -> bytes:
    """PNG bytes of ``image`` ``(3, H, W)`` / ``(H, W)`` (float in ``[0, 1]`` or bool), enlarged
    ``zoom`` times with nearest-neighbour (pixels stay visible)."""
    arr = image.detach().cpu()
    arr = arr.float() if arr.dtype == torch.bool else arr
    arr = (arr.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    pil = PILImage.fromarray(arr.transpose(1, 2, 0) if arr.ndim == 3 else arr)
    if zoom != 1:
        pil = pil.resize((pil.width * zoom, pil.height * zoom), PILImage.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def _as_image(item: Any) -> Tensor:
    """``(3, H, W)`` float in ``[0, 1]`` from a tensor, a PIL image or a path."""
    if isinstance(item, (str, Path)):
        from reidlib.data.image_dataset import read_image
        item = read_image(item)
    if isinstance(item, PILImage.Image):
        item = torch.from_numpy(np.asarray(item.convert("RGB")).copy()).permute(2, 0, 1)
    if not isinstance(item, Tensor) or item.dim() != 3 or item.shape[0] != 3:
        shape = tuple(item.shape) if isinstance(item, Tensor) else type(item).__name__
        raise ValueError(f"images must be RGB tensors (3, H, W), PIL images or paths, got {shape}")
    return item.float() / 255 if not item.is_floating_point() else item.float().clamp(0, 1)


def synthped_images(num: int = 6, preset: str = "tiny") -> tuple[list[Tensor], list[str]]:
    """The first training image of each of the first ``num`` identities of synthped ``preset``."""
    from reidlib.data import build_dataset, synthped
    ds = build_dataset("synthped", synthped.ensure(preset))
    first: dict[int, Any] = {}
    for rec in ds.train:
        first.setdefault(rec.pid, rec)
    recs = [first[pid] for pid in sorted(first)[:num]]
    labels = [f"synthped id {r.extra.get('orig_pid', r.pid)}, cam {r.camid + 1}" for r in recs]
    return [_as_image(r.path) for r in recs], labels


# ---------------------------------------------------------------------------------------------
# the explorer
class ErasingExplorer:
    """The app :func:`erasing_explorer` returns. Display it in a notebook (it is its ``widget``).

    Attributes:
        widget: the ipywidgets box.
        controls: current widgets by name: ``'image'``, ``'method'``, ``'seed'`` and the
            method's parameters (replaced when the method changes).
        views: the three ``ipywidgets.Image`` panels ``'original'``, ``'mask'``, ``'erased'``.
        image, mask, erased: the current image ``(3, H, W)``, mask ``(H, W)`` bool and erased image.
    """

    def __init__(self, images: Sequence[Tensor], labels: Sequence[str], *, method: str = "random erasing",
                 seed: int = 0, zoom: int = 3, methods: dict[str, ErasingMethod] | None = None) -> None:
        self.images, self.zoom = list(images), int(zoom)
        self.methods = dict(ERASING_METHODS if methods is None else methods)
        if method not in self.methods:
            raise ValueError(f"unknown erasing method {method!r}; registered: {sorted(self.methods)}")
        self.image_select = widgets.Dropdown(options=[(lab, i) for i, lab in enumerate(labels)], value=0,
                                             description="image", style={"description_width": "9em"},
                                             layout=widgets.Layout(width="22em"))
        self.method_select = widgets.Dropdown(options=list(self.methods), value=method, description="method",
                                              style={"description_width": "9em"}, layout=widgets.Layout(width="22em"))
        self.seed = widgets.IntSlider(value=int(seed), min=0, max=999, description="seed", continuous_update=False,
                                      style={"description_width": "9em"}, layout=widgets.Layout(width="22em"))
        self.seed.add_class("erasing-explorer-seed")
        self.param_box = widgets.VBox()
        self.info = widgets.HTML()
        self.views = {name: widgets.Image(format="png") for name in ("original", "mask", "erased")}
        panels = []
        for name, view in self.views.items():
            view.add_class(f"erasing-explorer-{name}")
            panels.append(widgets.VBox([widgets.HTML(f"<b>{name}</b>"), view],
                                       layout=widgets.Layout(margin="0 1em 0 0")))
        # controls left, panels right; the panels wrap below where the page is narrow (the book)
        self.widget = widgets.Box([
            widgets.VBox([self.image_select, self.method_select, self.seed, self.param_box, self.info],
                         layout=widgets.Layout(width="25em", margin="0 2em 1em 0", flex="0 0 auto")),
            widgets.HBox(panels, layout=widgets.Layout(flex="0 0 auto")),
        ], layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"))
        self.params: dict[str, widgets.ValueWidget] = {}
        self.image_select.observe(self._on_change, names="value")
        self.seed.observe(self._on_change, names="value")
        self.method_select.observe(self._on_method, names="value")
        self._build_params()
        self.update()

    @property
    def controls(self) -> dict[str, widgets.ValueWidget]:
        return {"image": self.image_select, "method": self.method_select, "seed": self.seed, **self.params}

    def _build_params(self) -> None:
        for w in self.params.values():
            w.unobserve(self._on_change, names="value")
        self.params = {c.name: c.build() for c in self.methods[self.method_select.value].controls}
        for w in self.params.values():
            w.observe(self._on_change, names="value")
        self.param_box.children = tuple(self.params.values())

    def _on_method(self, change: dict) -> None:
        self._build_params()
        self.update()

    def _on_change(self, change: dict) -> None:
        self.update()

    def update(self) -> None:
        """Erase the chosen image with the current method, parameters and seed; refresh the views."""
        method = self.methods[self.method_select.value]
        self.image = self.images[self.image_select.value]
        generator = torch.Generator().manual_seed(int(self.seed.value))
        params = {name: (tuple(w.value) if isinstance(w.value, (tuple, list)) else w.value)
                  for name, w in self.params.items()}
        self.erased, self.mask = method.apply(self.image, generator=generator, **params)
        self.views["original"].value = to_png(self.image, self.zoom)
        self.views["mask"].value = to_png(self.mask, self.zoom)
        self.views["erased"].value = to_png(self.erased, self.zoom)
        frac = float(self.mask.float().mean())
        self.info.value = (f"<small>{method.description}<br>erased {100 * frac:.1f}% of the image "
                           f"({int(self.mask.sum())} pixels)</small>")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def erasing_explorer(images: Sequence[Any] | None = None, *, labels: Sequence[str] | None = None,
                     method: str = "random erasing", seed: int = 0, zoom: int = 3,
                     num_images: int = 6) -> ErasingExplorer:
    """An ipywidgets app to explore the erasing methods of :data:`ERASING_METHODS`.

    Args:
        images: RGB tensors ``(3, H, W)`` (float in ``[0, 1]`` or uint8), PIL images or paths;
            default: the first training image of ``num_images`` identities of synthped's tiny preset
            (generated on first use, see :func:`reidlib.data.synthped.ensure`).
        labels: names of the images in the chooser.
        method: the method shown first; ``seed``: its random draw; ``zoom``: display enlargement.

    Returns the :class:`ErasingExplorer`; its ``controls`` and ``mask`` let code drive and read it.
    """
    if images is None:
        imgs, default_labels = synthped_images(num_images)
    else:
        imgs = [_as_image(x) for x in images]
        default_labels = [f"image {i}" for i in range(len(imgs))]
    if not imgs:
        raise ValueError("erasing_explorer needs at least one image")
    labels = list(labels) if labels is not None else default_labels
    if len(labels) != len(imgs):
        raise ValueError(f"got {len(labels)} labels for {len(imgs)} images")
    return ErasingExplorer(imgs, labels, method=method, seed=seed, zoom=zoom)


# ---------------------------------------------------------------------------------------------
# ES-Net: BESM in the explorer
class BESMExplorer:
    """The app :func:`besm_explorer` returns. Display it in a notebook (it is its ``widget``).

    Attributes:
        explorer: the :class:`ErasingExplorer` of the queries with the one method
            ``"BESM (CG-RAM)"`` (its ``controls``: ``'image'``, ``'seed'``, ``'ratio'``, ``'layer'``;
            its ``mask``: the query's erased pixels ``(H, W)`` bool).
        prob: the slider of the erasing probability ``P`` of the batch row.
        views: ``'cg_ram'`` (the query's map over the query), ``'random'`` (random erasing of the same
            area) and ``'batch'`` (a box of the batch's erased images).
        batch_result: the last :class:`~reidlib.saliency.BESMResult` of the batch.
    """

    METHOD = "BESM (CG-RAM)"

    def __init__(self, model: Callable[[Tensor], Any], queries: Tensor, partners: Tensor, layers: dict[str, Any],
                 batch: tuple[Tensor, Tensor], *, batch_fn: Callable[[Tensor], Any] | None = None,
                 labels: Sequence[str] | None = None, layer: str | None = None, ratio: float = 0.2,
                 prob: float = 0.5, seed: int = 0, zoom: int = 3) -> None:
        if len(queries) != len(partners) or not len(queries):
            raise ValueError(f"need one partner per query and at least one query, got {len(queries)} queries "
                             f"and {len(partners)} partners")
        if not layers:
            raise ValueError("layers must name at least one layer")
        self.model, self.layers, self.zoom = model, dict(layers), int(zoom)
        self.batch_fn = batch_fn or model
        self.batch_x, self.batch_pids = batch
        self.queries = [denormalize(q) for q in queries]           # (3, H, W) in [0, 1], as the explorer shows
        self.partners = list(partners)
        self._mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        layer = layer or list(self.layers)[-1]
        method = ErasingMethod(self.METHOD, self._apply, (
            Control("ratio", "float", ratio, 0.0, 0.5, 0.01, label="erasing ratio R"),
            Control("layer", "choice", layer, options=tuple(self.layers), label="layer L"),
        ), "ES-Net: the top R of the CG-RAM map of the pair (query, partner gallery image) erased.")
        labels = list(labels) if labels is not None else [f"query {i}" for i in range(len(self.queries))]
        self.explorer = ErasingExplorer(self.queries, labels, method=method.name, methods={method.name: method},
                                        seed=seed, zoom=zoom)
        self.prob = widgets.FloatSlider(value=prob, min=0.0, max=1.0, step=0.05, description="erasing prob. P",
                                        style={"description_width": "9em"}, layout=widgets.Layout(width="22em"),
                                        continuous_update=False)
        self.views = {"cg_ram": widgets.Image(format="png"), "random": widgets.Image(format="png"),
                      "batch": widgets.HBox()}
        ex = self.explorer
        for w in (ex.image_select, ex.seed, self.prob, *ex.params.values()):
            w.observe(self.refresh, names="value")

        def panel(title: str, view: widgets.Widget) -> widgets.VBox:
            return widgets.VBox([widgets.HTML(f"<b>{title}</b>"), view], layout=widgets.Layout(margin="0 1em 0 0"))

        n = len(self.batch_x)
        self.widget = widgets.VBox([
            ex.widget,
            widgets.HBox([panel("CG-RAM map (query)", self.views["cg_ram"]),
                          panel("random erasing, same area", self.views["random"])]),
            widgets.HTML(f"<b>Algorithm 1 on a training batch of {n}</b> (erasing probability P, same R and layer)"),
            self.prob, self.views["batch"],
        ])
        self.refresh()

    def _index(self, image: Tensor) -> int:
        return next(k for k, q in enumerate(self.queries) if q is image or torch.equal(q, image))

    def _apply(self, image: Tensor, *, generator: torch.Generator, ratio: float, layer: str) -> tuple[Tensor, Tensor]:
        # the explorer's images are in [0, 1]; CG-RAM runs on the normalised query and its partner
        i = self._index(image)
        res = cg_ram(self.model, normalize(image)[None], self.partners[i][None], self.layers[layer])
        _, mask = erase_top(image[None], res.query_map, ratio)
        return torch.where(mask, self._mean, image), mask[0]

    def refresh(self, change: dict | None = None) -> None:
        """Redraw the map, the random-erasing panel and the batch row for the current controls."""
        c = self.explorer.controls
        i, ratio, layer = c["image"].value, c["ratio"].value, c["layer"].value
        image = self.queries[i]
        res = cg_ram(self.model, normalize(image)[None], self.partners[i][None], self.layers[layer])
        self.views["cg_ram"].value = to_png(overlay_heatmap(image, res.query_map[0], alpha=0.5), self.zoom)
        g = torch.Generator().manual_seed(int(c["seed"].value))
        h, w = image.shape[1:]
        rmask = (random_erasing_mask(h, w, scale=(0.95 * ratio, 1.05 * ratio), generator=g) if ratio > 0
                 else torch.zeros(h, w, dtype=torch.bool))
        self.views["random"].value = to_png(torch.where(rmask, self._mean, image), self.zoom)
        with model_mode(self.model, "train"):  # the training-time batch version, as in a training step
            maps = cg_ram_batch(self.batch_fn, self.batch_x, self.batch_pids, self.layers[layer]).maps
        self.batch_result = besm(self.batch_x, maps, ratio, self.prob.value,
                                 generator=torch.Generator().manual_seed(int(c["seed"].value)))
        self.views["batch"].children = [widgets.Image(value=to_png(denormalize(im), 2), format="png")
                                        for im in self.batch_result.images]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def besm_explorer(model: Callable[[Tensor], Any], queries: Tensor, partners: Tensor, layers: dict[str, Any],
                  batch: tuple[Tensor, Tensor], **options: Any) -> BESMExplorer:
    """An ipywidgets app for ES-Net's BESM on top of :class:`ErasingExplorer`.

    Args:
        model: maps normalised images ``(N, 3, H, W)`` to retrieval descriptors ``(N, D)`` (eval mode).
        queries: normalised query images ``(Q, 3, H, W)`` (the explorer shows them de-normalised).
        partners: ``(Q, 3, H, W)``, for each query the gallery image whose pair CG-RAM explains
            (e.g. its best-matching gallery image of the same identity from another camera).
        layers: the layers the reader may choose, by display name (the last is shown first).
        batch: ``(images (B, 3, H, W) normalised, pids (B,))``: a training batch for Algorithm 1.
        options: ``batch_fn`` (what CG-RAM explains on the batch, default ``model``, e.g. one branch),
            ``labels``, ``layer``, ``ratio``, ``prob``, ``seed``, ``zoom``.

    The query panel shows BESM on the query (top ``R`` of its map set to the mean colour); beside it
    the map and random erasing of the same area; below, Algorithm 1 with probability ``P`` on the
    batch, with CG-RAM computed in train mode as in a training step.
    """
    return BESMExplorer(model, queries, partners, layers, batch, **options)
