"""Interactive widgets (ipywidgets).

:func:`erasing_explorer` — pick an image, an erasing method and its parameters, and see the
original, the mask and the erased image. Methods come from :data:`ERASING_METHODS`, a registry
that other chapters extend with :func:`register_erasing_method` (e.g. ES-Net's BESM)::

    register_erasing_method("my erasing", apply, [Control("ratio", "float", 0.3, 0.0, 1.0, 0.05)])

where ``apply(image, *, generator, **params) -> (erased, mask)`` takes an image ``(3, H, W)`` in
``[0, 1]``, a ``torch.Generator`` and one keyword per control, and returns the erased image
``(3, H, W)`` and the mask ``(H, W)`` bool it applied. The explorer always erases (probability 1):
during training each method is applied with its probability ``p``.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image as PILImage
from torch import Tensor

from reidlib.data.transforms import ProgressiveCutout, RandomErasing, RandomPolygonErasing

__all__ = ["Control", "ERASING_METHODS", "ErasingExplorer", "ErasingMethod", "erasing_explorer",
           "register_erasing_method", "to_png"]


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
