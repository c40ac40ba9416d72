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

:func:`rpe_explorer` — HENet's random polygon erasing beside random erasing on a synthped image:
the number of points ``n``, the probability ``p`` and the area range on sliders, a row of draws each.

Live and static. Each explorer computes in Python as its controls move; that needs a kernel
(Jupyter, Voila). A built HTML page has none, so each also has a static mode (``static=True``):
the frames for a small grid of control values are computed when the page is built and the
controls pick among them in the browser (:mod:`reidlib.viz.frames`: stacks of images and
``jsdlink`` s, moved by the vendored widget manager; no script, no network). The book's pages show
the static explorer and, below it, the live call (its output left out of the HTML), with how to
run it. The grids are small and chosen per explorer (the erasing explorer's ``seeds`` and each
method's :class:`ErasingMethod` ``sweep``; :data:`RPE_GRID`; :data:`BESM_GRID`; each overridable):
a few values of the main parameters, the others at their defaults; only the grid's values can be
shown without a kernel. Images that change only where erased are stored as transparent overlays
of the erased pixels, so that a grid of some fifty settings adds a few hundred kB to a page.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image as PILImage
from torch import Tensor

from reidlib.data.transforms import IMAGENET_MEAN, ProgressiveCutout, RandomErasing, RandomPolygonErasing, random_erasing_mask
from reidlib.saliency import BESMResult, besm, cg_ram, cg_ram_batch, erase_top, model_mode
from reidlib.viz.frames import Axis, FrameGrid, StaticExplorer
from reidlib.viz.images import denormalize, normalize, overlay_heatmap

__all__ = ["BESMCore", "BESMExplorer", "BESM_GRID", "Control", "ERASING_METHODS", "ErasingExplorer", "ErasingMethod",
           "RPEDraws", "RPEExplorer", "RPE_GRID", "besm_explorer", "erasing_explorer", "register_erasing_method",
           "rpe_draws", "rpe_explorer", "synthped_images", "to_png"]


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
    """A named erasing method: ``apply(image, *, generator, **params) -> (erased, mask)``, the
    controls of its parameters, and ``sweep``: the :class:`~reidlib.viz.frames.Axis` (named as one
    of the controls) whose values the static explorer precomputes, the other parameters at their
    controls' values (None: only the seed varies)."""

    name: str
    apply: Callable[..., tuple[Tensor, Tensor]]
    controls: tuple[Control, ...] = field(default_factory=tuple)
    description: str = ""
    sweep: Axis | None = None

    def defaults(self) -> dict[str, Any]:
        """Each parameter at its control's initial value."""
        return {c.name: (tuple(c.value) if isinstance(c.value, (tuple, list)) else c.value) for c in self.controls}


ERASING_METHODS: dict[str, ErasingMethod] = {}


def register_erasing_method(name: str, apply: Callable[..., tuple[Tensor, Tensor]], controls: Sequence[Control] = (),
                            description: str = "", *, sweep: Axis | None = None, replace: bool = False) -> ErasingMethod:
    """Add a method to :data:`ERASING_METHODS` (shown by every explorer created afterwards);
    ``sweep``: the parameter values its static explorer precomputes (see :class:`ErasingMethod`)."""
    if name in ERASING_METHODS and not replace:
        raise ValueError(f"an erasing method named {name!r} is already registered (pass replace=True)")
    names = [c.name for c in controls]
    if len(set(names)) != len(names) or "generator" in names:
        raise ValueError(f"control names of {name!r} must be distinct and not 'generator', got {names}")
    if sweep is not None and sweep.name not in names:
        raise ValueError(f"the sweep of {name!r} must name one of its controls {names}, got {sweep.name!r}")
    method = ErasingMethod(name, apply, tuple(controls), description, sweep)
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
], "Zhong et al.: one rectangle, area fraction U(s_l, s_h), aspect U(r₁, 1/r₁).",
   sweep=Axis("area", ((0.02, 0.1), (0.02, 0.4), (0.2, 0.4), (0.4, 0.6)), value=(0.02, 0.4),
              description="area s_l–s_h"))
register_erasing_method("progressive cut-out", _progressive_cutout, [
    Control("progress", "float", 0.5, 0.0, 1.0, 0.05, label="progress t"),
    Control("area", "float_range", (0.02, 0.4), 0.01, 0.9, 0.01, label="area s_l–s_h"),
    Control("start_max", "float", 0.1, 0.01, 0.9, 0.01, label="s_max at t=0"),
    Control("regions", "int", 1, 1, 5, 1, label="regions"),
], "Re-ID done right: noise rectangles, area U(s_l, s_max(t)), s_max growing linearly with t.",
   sweep=Axis("progress", (0.0, 0.5, 1.0), value=0.5, description="progress t"))
register_erasing_method("random polygon erasing", _random_polygon_erasing, [
    Control("n", "int", 20, 3, 60, 1, label="points n"),
    Control("area", "float_range", (0.02, 0.45), 0.01, 0.9, 0.01, label="box area s_l–s_h"),
    Control("r", "float", 0.35, 0.1, 1.0, 0.05, label="aspect r"),
    Control("fill", "choice", "constant", options=("constant", "random", "zero")),
], "HENet: convex hull of the box centre and n−1 uniform points in a box of sampled area and aspect.",
   sweep=Axis("n", (3, 6, 20, 60), value=20, description="points n"))


# ---------------------------------------------------------------------------------------------
# images
def to_png(image: Tensor, zoom: int = 1, *, alpha: Tensor | None = None) -> bytes:
    """PNG bytes of ``image`` ``(3, H, W)`` / ``(H, W)`` (float in ``[0, 1]`` or bool), enlarged
    ``zoom`` times with nearest-neighbour (pixels stay visible).

    ``alpha`` ``(H, W)`` bool: an RGBA image, opaque where True and fully transparent (and black)
    elsewhere: the erased pixels alone, to lay over the image they were erased from."""
    arr = image.detach().cpu()
    arr = arr.float() if arr.dtype == torch.bool else arr
    arr = (arr.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    arr = arr.transpose(1, 2, 0) if arr.ndim == 3 else arr
    if alpha is not None:
        a = alpha.detach().cpu().bool().numpy()
        if arr.ndim != 3 or a.shape != arr.shape[:2]:
            raise ValueError(f"alpha must be (H, W) bool for an image (3, H, W), got {a.shape} for {tuple(image.shape)}")
        arr = np.dstack([arr * a[..., None], a.astype(np.uint8) * 255])
    pil = PILImage.fromarray(arr)
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
                     method: str = "random erasing", seed: int = 0, zoom: int = 3, num_images: int = 6,
                     static: bool = False, seeds: Sequence[int] = (0, 1, 2, 3),
                     sweeps: Mapping[str, Axis] | None = None) -> ErasingExplorer | StaticExplorer:
    """An ipywidgets app to explore the erasing methods of :data:`ERASING_METHODS`.

    Args:
        images: RGB tensors ``(3, H, W)`` (float in ``[0, 1]`` or uint8), PIL images or paths;
            default: the first training image of ``num_images`` identities of synthped's tiny preset
            (generated on first use, see :func:`reidlib.data.synthped.ensure`).
        labels: names of the images in the chooser.
        method: the method shown first; ``seed``: its random draw; ``zoom``: display enlargement.
        static: precompute the frames for a page without a kernel (see the module docstring): the
            first image, each method's ``sweep`` values (``sweeps`` overrides them by method name)
            times ``seeds``, the other parameters at their defaults.

    Returns the :class:`ErasingExplorer`, whose ``controls`` and ``mask`` let code drive and read it;
    with ``static=True`` a :class:`~reidlib.viz.frames.StaticExplorer` (views ``'original'``,
    ``'mask'``, ``'erased'``, ``'info'``; controls ``'method'``, ``'seed'`` and ``'<method>/<parameter>'``).
    """
    if images is None:
        imgs, default_labels = synthped_images(1 if static else num_images)
    else:
        imgs = [_as_image(x) for x in images]
        default_labels = [f"image {i}" for i in range(len(imgs))]
    if not imgs:
        raise ValueError("erasing_explorer needs at least one image")
    labels = list(labels) if labels is not None else default_labels
    if len(labels) != len(imgs):
        raise ValueError(f"got {len(labels)} labels for {len(imgs)} images")
    if static:
        return _static_erasing(imgs[0], labels[0], dict(ERASING_METHODS), method=method, seeds=seeds, zoom=zoom,
                               sweeps=sweeps or {})
    return ErasingExplorer(imgs, labels, method=method, seed=seed, zoom=zoom)


def _erased_caption(method: ErasingMethod, mask: Tensor, params: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{k} = {_fmt(v)}" for k, v in params.items())
    return (f"<small>{method.description}<br>{shown}<br>erased {100 * float(mask.float().mean()):.1f}% of the image "
            f"({int(mask.sum())} pixels)</small>")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "–".join(_fmt(v) for v in value)
    return str(value)


def _static_erasing(image: Tensor, label: str, methods: dict[str, ErasingMethod], *, method: str,
                    seeds: Sequence[int], zoom: int, sweeps: Mapping[str, Axis]) -> StaticExplorer:
    if method not in methods:
        raise ValueError(f"unknown erasing method {method!r}; registered: {sorted(methods)}")
    unknown = sorted(set(sweeps) - set(methods))
    if unknown:
        raise ValueError(f"sweeps for unknown methods {unknown}; registered: {sorted(methods)}")
    names = list(methods)
    sweep_of = {name: sweeps.get(name, methods[name].sweep) for name in names}
    axes = [Axis("method", tuple(names), value=method, description="method", kind="dropdown"),
            Axis("seed", tuple(int(s) for s in seeds), value=int(seeds[0]), description="seed")]
    for name, sw in sweep_of.items():
        if sw is not None:
            if sw.name not in {c.name for c in methods[name].controls}:
                raise ValueError(f"the sweep of {name!r} must name one of its controls, got {sw.name!r}")
            axes.append(Axis(f"{name}/{sw.name}", sw.values, sw.labels, sw.value, sw.description or sw.name, sw.kind))
    grid = FrameGrid(axes)
    grid.controls["seed"].add_class("erasing-frames-seed")
    original = widgets.Image(value=to_png(image, zoom), format="png")
    cache: dict[tuple, tuple[Tensor, Tensor, dict]] = {}

    def draw(name: str, values: dict[str, Any]) -> tuple[Tensor, Tensor, dict]:
        """(erased, mask, parameters) of method ``name`` at the grid point ``values`` (computed once)."""
        m, sw = methods[name], sweep_of[name]
        key = (name, values["seed"], values[f"{name}/{sw.name}"] if sw is not None else None)
        if key not in cache:
            kw = m.defaults() | ({sw.name: values[f"{name}/{sw.name}"]} if sw is not None else {})
            out, mask = m.apply(image, generator=torch.Generator().manual_seed(int(values["seed"])), **kw)
            cache[key] = out, mask, kw
        return cache[key]

    masks, erased, infos, params = [], [], [], []
    for name in names:
        sw = sweep_of[name]
        own = ((f"{name}/{sw.name}",) if sw is not None else ()) + ("seed",)
        masks.append(grid.panel(f"mask/{name}", own, lambda v, n=name: to_png(draw(n, v)[1], zoom)))
        erased.append(grid.panel(f"erased/{name}", own,
                                 lambda v, n=name: to_png(draw(n, v)[0], zoom, alpha=draw(n, v)[1])))
        infos.append(grid.panel(f"info/{name}", own,
                                lambda v, n=name: _erased_caption(methods[n], draw(n, v)[1], draw(n, v)[2])))
        if sw is not None:
            grid.controls[f"{name}/{sw.name}"].add_class("erasing-frames-param")
        params.append(widgets.VBox([grid.controls[f"{name}/{sw.name}"]] if sw is not None else []))
    views = {"original": original, "mask": grid.choose("method", masks)}
    views["erased"] = grid.overlay(original, grid.choose("method", erased))
    views["info"] = grid.choose("method", infos)
    for name, view in views.items():
        view.add_class(f"erasing-frames-{name}")
    settings = sum(len(sw.values) if sw is not None else 1 for sw in sweep_of.values()) * len(seeds)
    note = widgets.HTML(f"<small>{label}; {settings} settings precomputed (a kernel computes any: "
                        "<code>erasing_explorer()</code>)</small>")
    panels = [widgets.VBox([widgets.HTML(f"<b>{name}</b>"), views[name]], layout=widgets.Layout(margin="0 1em 0 0"))
              for name in ("original", "mask", "erased")]
    widget = widgets.Box([
        widgets.VBox([grid.controls["method"], grid.controls["seed"], grid.choose("method", params), views["info"], note],
                     layout=widgets.Layout(width="25em", margin="0 2em 1em 0", flex="0 0 auto")),
        widgets.HBox(panels, layout=widgets.Layout(flex="0 0 auto")),
    ], layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"))
    widget.add_class("erasing-frames")
    return StaticExplorer(widget, grid, views, {"original": original}, settings)


# ---------------------------------------------------------------------------------------------
# HENet: random polygon erasing beside random erasing
@dataclass
class RPEDraws:
    """``draws`` training-time draws of RPE and of random erasing on one image (see :func:`rpe_draws`).

    ``rpe`` / ``random``: erased images ``(K, 3, H, W)``; ``rpe_mask`` / ``random_mask``: ``(K, H, W)``
    bool; ``applied``: ``(K,)`` bool, the draws whose ``rand() < p`` (the same for both methods)."""

    rpe: Tensor
    rpe_mask: Tensor
    random: Tensor
    random_mask: Tensor
    applied: Tensor


def rpe_draws(image: Tensor, *, n: int = 20, p: float = 0.5, area: tuple[float, float] = (0.02, 0.45), r: float = 0.35,
              seed: int = 0, draws: int = 6) -> RPEDraws:
    """``draws`` draws of :class:`~reidlib.data.transforms.RandomPolygonErasing` (``n``, ``p``,
    ``(s_l, s_h) = area``, ``r``, the ImageNet mean colour) and of
    :class:`~reidlib.data.transforms.RandomErasing` with the same probability, area range and aspect
    law ``U(r, 1/r)`` (same colour), as the training pipeline applies them.

    Draw ``k`` runs both transforms from generators seeded alike (seeds drawn from ``seed``): the
    same ``rand() < p`` decides whether it erases, and random erasing's rectangle is the very box
    in which RPE drew its polygon, so the row shows what the polygon keeps of the rectangle; a
    larger ``p`` erases a superset of the draws, with the same shapes."""
    seeds = torch.randint(0, 2**31 - 1, (int(draws),), generator=torch.Generator().manual_seed(int(seed)))
    out: dict[str, list[Tensor]] = {"rpe": [], "rpe_mask": [], "random": [], "random_mask": []}
    applied = []
    for s in seeds.tolist():
        rpe = RandomPolygonErasing(p, n=n, sl=area[0], sh=area[1], r=r, fill="constant",
                                   generator=torch.Generator().manual_seed(s))
        re = RandomErasing(p, scale=area, ratio=(r, 1 / r), fill="mean", generator=torch.Generator().manual_seed(s))
        for key, transform in (("rpe", rpe), ("random", re)):
            erased, mask = transform.forward_with_mask(image)
            out[key].append(erased)
            out[f"{key}_mask"].append(mask)
        applied.append(bool(torch.rand((), generator=torch.Generator().manual_seed(s)) < p))
    return RPEDraws(*(torch.stack(out[k]) for k in ("rpe", "rpe_mask", "random", "random_mask")),
                    torch.tensor(applied))


def _row(images: Sequence[Tensor] | Tensor, gap: int = 2) -> Tensor:
    """Images ``(3, H, W)`` (white gaps) or masks ``(H, W)`` (False gaps) side by side."""
    images = list(images)
    pad = torch.ones if images[0].dim() == 3 else torch.zeros
    spacer = pad(*images[0].shape[:-1], gap, dtype=images[0].dtype)
    parts = [x for im in images for x in (im, spacer)][:-1]
    return torch.cat(parts, dim=-1)


def _rpe_caption(d: RPEDraws) -> str:
    k = int(d.applied.sum())
    if not k:
        return f"<small>none of the {len(d.applied)} draws erased (each erases with probability p)</small>"
    rpe = float(d.rpe_mask[d.applied].float().mean())
    box = float(d.random_mask[d.applied].float().mean())
    return (f"<small>{k} of {len(d.applied)} draws erased (each with probability p); of the image, RPE erased "
            f"{100 * rpe:.1f}% and random erasing {100 * box:.1f}% on average: the polygons keep "
            f"{100 * rpe / box:.0f}% of their boxes</small>")


class RPEExplorer:
    """The app :func:`rpe_explorer` returns (live). Display it in a notebook (it is its ``widget``).

    Attributes:
        controls: ``'n'``, ``'p'``, ``'area'``, ``'seed'``.
        views: ``'rpe'`` and ``'random'``: ``ipywidgets.Image`` rows of the draws; ``info``: a caption.
        draws: the current :class:`RPEDraws`.
    """

    def __init__(self, image: Tensor, label: str = "", *, n: int = 20, p: float = 0.5,
                 area: tuple[float, float] = (0.02, 0.45), r: float = 0.35, seed: int = 0, draws: int = 6,
                 zoom: int = 2) -> None:
        self.image, self.r, self.num_draws, self.zoom = image, float(r), int(draws), int(zoom)
        self.controls = {
            "n": Control("n", "int", int(n), 3, 100, 1, label="points n").build(),
            "p": Control("p", "float", float(p), 0.0, 1.0, 0.05, label="probability p").build(),
            "area": Control("area", "float_range", tuple(area), 0.01, 0.9, 0.01, label="area s_l–s_h").build(),
            "seed": widgets.IntSlider(value=int(seed), min=0, max=999, description="seed", continuous_update=False,
                                      style={"description_width": "9em"}, layout=widgets.Layout(width="22em")),
        }
        self.controls["seed"].add_class("rpe-explorer-seed")
        self.views = {"rpe": widgets.Image(format="png"), "random": widgets.Image(format="png")}
        for name, view in self.views.items():
            view.add_class(f"rpe-explorer-{name}")
        self.info = widgets.HTML()
        for w in self.controls.values():
            w.observe(self.update, names="value")
        self.widget = widgets.Box([
            widgets.VBox([widgets.HTML(f"<small>{label}</small>"), *self.controls.values(), self.info],
                         layout=widgets.Layout(width="25em", margin="0 2em 1em 0", flex="0 0 auto")),
            widgets.VBox([widgets.HTML("<b>random polygon erasing</b>"), self.views["rpe"],
                          widgets.HTML("<b>random erasing, the same boxes</b>"), self.views["random"]],
                         layout=widgets.Layout(flex="0 1 auto", max_width="100%")),  # rows shrink to the page
        ], layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"))
        self.update()

    def update(self, change: dict | None = None) -> None:
        """Draw again for the current controls; refresh the rows and the caption."""
        c = self.controls
        self.draws = rpe_draws(self.image, n=c["n"].value, p=c["p"].value, area=tuple(c["area"].value), r=self.r,
                               seed=c["seed"].value, draws=self.num_draws)
        self.views["rpe"].value = to_png(_row(self.draws.rpe), self.zoom)
        self.views["random"].value = to_png(_row(self.draws.random), self.zoom)
        self.info.value = _rpe_caption(self.draws)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


#: the static RPE explorer's grid: 4 x 4 x 3 settings
RPE_GRID: dict[str, Axis] = {
    "n": Axis("n", (3, 6, 20, 60), value=20, description="points n"),
    "p": Axis("p", (0.25, 0.5, 0.75, 1.0), value=0.5, description="probability p"),
    "area": Axis("area", ((0.02, 0.2), (0.02, 0.45), (0.3, 0.6)), value=(0.02, 0.45), description="area s_l–s_h"),
    "seed": Axis("seed", (0,), description="seed"),
}


def rpe_explorer(image: Any | None = None, *, label: str | None = None, static: bool = False,
                 grid: Mapping[str, Axis] | None = None, **options: Any) -> RPEExplorer | StaticExplorer:
    """HENet's random polygon erasing beside random erasing on one image: ``draws`` training-time
    draws of each (:func:`rpe_draws`), with ``n``, ``p``, the area range and the seed on sliders.

    Args:
        image: an RGB tensor, PIL image or path; default the first synthped ``tiny`` training image.
        options: ``n``, ``p``, ``area``, ``r``, ``seed``, ``draws`` (6), ``zoom`` (2).
        static: precompute the rows for the values of :data:`RPE_GRID` (``grid`` overrides axes by
            name), the initial values of the others taken from the axes; a
            :class:`~reidlib.viz.frames.StaticExplorer` with views ``'rpe'``, ``'random'``, ``'info'``.
    """
    if image is None:
        (img,), (default_label,) = synthped_images(1)
    else:
        img, default_label = _as_image(image), "image"
    label = default_label if label is None else label
    if not static:
        return RPEExplorer(img, label, **options)
    axes = dict(RPE_GRID) | dict(grid or {})
    unknown = sorted(set(axes) - set(RPE_GRID))
    if unknown:
        raise ValueError(f"rpe_explorer: unknown grid axes {unknown}; the axes are {list(RPE_GRID)}")
    bad = sorted(set(options) - {"r", "draws", "zoom"})
    if bad:
        raise ValueError(f"rpe_explorer(static=True): {bad} are set by the grid's axes; options left: r, draws, zoom")
    r, num, zoom = float(options.get("r", 0.35)), int(options.get("draws", 6)), int(options.get("zoom", 2))
    fg = FrameGrid([Axis(name, a.values, a.labels, a.value, a.description, a.kind) for name, a in axes.items()])
    fg.controls["n"].add_class("rpe-frames-n")
    cache: dict[tuple, RPEDraws] = {}

    def draw(v: dict[str, Any]) -> RPEDraws:
        key = (v["n"], v["p"], v["area"], v["seed"])
        if key not in cache:
            cache[key] = rpe_draws(img, n=v["n"], p=v["p"], area=v["area"], r=r, seed=v["seed"], draws=num)
        return cache[key]

    base = widgets.Image(value=to_png(_row([img] * num), zoom), format="png")
    rpe = fg.panel("rpe", ("n", "p", "area", "seed"),
                   lambda v: to_png(_row(draw(v).rpe), zoom, alpha=_row(draw(v).rpe_mask)))
    # random erasing does not depend on n: its frames are those of the first n (the same boxes)
    first_n = axes["n"].values[0]
    rand = fg.panel("random", ("p", "area", "seed"),
                    lambda v: to_png(_row(draw({**v, "n": first_n}).random), zoom,
                                     alpha=_row(draw({**v, "n": first_n}).random_mask)))
    info = fg.panel("info", ("n", "p", "area", "seed"), lambda v: _rpe_caption(draw(v)))
    views = {"rpe": fg.overlay(base, rpe), "random": fg.overlay(base, rand), "info": info}
    for name, view in views.items():
        view.add_class(f"rpe-frames-{name}")
    settings = int(np.prod([len(a.values) for a in axes.values()]))
    widget = widgets.Box([
        widgets.VBox([widgets.HTML(f"<small>{label}; {settings} settings precomputed (a kernel computes any: "
                                   "<code>rpe_explorer()</code>)</small>"),
                      *(fg.controls[name] for name in axes), info],
                     layout=widgets.Layout(width="25em", margin="0 2em 1em 0", flex="0 0 auto")),
        widgets.VBox([widgets.HTML("<b>random polygon erasing</b>"), views["rpe"],
                      widgets.HTML("<b>random erasing, the same boxes</b>"), views["random"]],
                     layout=widgets.Layout(flex="0 1 auto", max_width="100%")),  # rows shrink to the page
    ], layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start"))
    widget.add_class("rpe-frames")
    return StaticExplorer(widget, fg, views, {"draws": base}, settings)


# ---------------------------------------------------------------------------------------------
# ES-Net: BESM in the explorer
class BESMCore:
    """What the BESM explorers compute, shared by the live one and the static frames; the maps are
    cached (the model does not change while an explorer shows it).

    ``queries``: ``(3, H, W)`` in ``[0, 1]``; ``partners``: normalised; ``batch_x``: normalised."""

    def __init__(self, model: Callable[[Tensor], Any], queries: Sequence[Tensor], partners: Sequence[Tensor],
                 layers: dict[str, Any], batch: tuple[Tensor, Tensor],
                 batch_fn: Callable[[Tensor], Any] | None = None) -> None:
        self.model, self.layers = model, dict(layers)
        self.queries, self.partners = list(queries), list(partners)
        self.batch_x, self.batch_pids = batch
        self.batch_fn = batch_fn or model
        self._mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self._maps: dict[tuple, Tensor] = {}

    def query_map(self, i: int, layer: str) -> Tensor:
        """CG-RAM map ``(h, w)`` of query ``i`` for its pair with its partner, read at ``layer``."""
        key = (i, layer)
        if key not in self._maps:  # the explorer's images are in [0, 1]; CG-RAM runs on the normalised pair
            res = cg_ram(self.model, normalize(self.queries[i])[None], self.partners[i][None], self.layers[layer])
            self._maps[key] = res.query_map[0]
        return self._maps[key]

    def besm_query(self, i: int, ratio: float, layer: str) -> tuple[Tensor, Tensor]:
        """Query ``i`` with the top ``ratio`` of its map set to the mean colour, and the mask."""
        image = self.queries[i]
        _, mask = erase_top(image[None], self.query_map(i, layer)[None], ratio)
        return torch.where(mask[0], self._mean, image), mask[0]

    def random_same_area(self, i: int, ratio: float, seed: int) -> tuple[Tensor, Tensor]:
        """Random erasing of (about) the same area on query ``i``: area fraction in ``[0.95 R, 1.05 R]``."""
        image = self.queries[i]
        g = torch.Generator().manual_seed(int(seed))
        h, w = image.shape[1:]
        rmask = (random_erasing_mask(h, w, scale=(0.95 * ratio, 1.05 * ratio), generator=g) if ratio > 0
                 else torch.zeros(h, w, dtype=torch.bool))
        return torch.where(rmask, self._mean, image), rmask

    def batch_maps(self, layer: str) -> Tensor:
        """CG-RAM maps ``(B, h, w)`` of the training batch at ``layer``, in train mode as in a training step."""
        if ("batch", layer) not in self._maps:
            with model_mode(self.model, "train"):
                self._maps[("batch", layer)] = cg_ram_batch(self.batch_fn, self.batch_x, self.batch_pids,
                                                            self.layers[layer]).maps
        return self._maps[("batch", layer)]

    def batch(self, ratio: float, layer: str, prob: float, seed: int) -> BESMResult:
        """Algorithm 1 on the training batch."""
        return besm(self.batch_x, self.batch_maps(layer), ratio, prob, generator=torch.Generator().manual_seed(int(seed)))


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
        self.batch_x, self.batch_pids = batch
        self.queries = [denormalize(q) for q in queries]           # (3, H, W) in [0, 1], as the explorer shows
        self.partners = list(partners)
        self.core = BESMCore(model, self.queries, self.partners, self.layers, batch, batch_fn)
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
        return self.core.besm_query(self._index(image), ratio, layer)

    def refresh(self, change: dict | None = None) -> None:
        """Redraw the map, the random-erasing panel and the batch row for the current controls."""
        c = self.explorer.controls
        i, ratio, layer, seed = c["image"].value, c["ratio"].value, c["layer"].value, int(c["seed"].value)
        image = self.queries[i]
        self.views["cg_ram"].value = to_png(overlay_heatmap(image, self.core.query_map(i, layer), alpha=0.5), self.zoom)
        self.views["random"].value = to_png(self.core.random_same_area(i, ratio, seed)[0], self.zoom)
        self.batch_result = self.core.batch(ratio, layer, self.prob.value, seed)
        pngs = [to_png(denormalize(im), 2) for im in self.batch_result.images]
        if len(self.views["batch"].children) != len(pngs):   # new Image widgets only once: no leak per move
            self.views["batch"].children = [widgets.Image(format="png") for _ in pngs]
        for view, png in zip(self.views["batch"].children, pngs):
            view.value = png

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def besm_explorer(model: Callable[[Tensor], Any], queries: Tensor, partners: Tensor, layers: dict[str, Any],
                  batch: tuple[Tensor, Tensor], *, static: bool = False, grid: Mapping[str, Sequence[Any]] | None = None,
                  **options: Any) -> BESMExplorer | StaticExplorer:
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
        static: precompute the frames for a page without a kernel on the grid :data:`BESM_GRID`
            (``grid`` overrides its entries: ``'image'`` query indices, ``'ratio'``, ``'layer'``
            names, ``'prob'``, ``'seed'``); ``ratio``, ``layer``, ``prob``, ``seed`` pick the values
            shown first. Returns a :class:`~reidlib.viz.frames.StaticExplorer` with views
            ``'query'``, ``'mask'``, ``'erased'``, ``'cg_ram'``, ``'random'``, ``'batch'``, ``'info'``,
            ``'batch_info'``.

    The query panel shows BESM on the query (top ``R`` of its map set to the mean colour); beside it
    the map and random erasing of the same area; below, Algorithm 1 with probability ``P`` on the
    batch, with CG-RAM computed in train mode as in a training step.
    """
    if static:
        return _static_besm(model, queries, partners, layers, batch, grid=grid or {}, **options)
    if grid is not None:
        raise ValueError("besm_explorer: grid= is for static=True")
    return BESMExplorer(model, queries, partners, layers, batch, **options)


#: the static BESM explorer's grid (``None``: the first 3 queries / every layer)
BESM_GRID: dict[str, Any] = {"image": None, "ratio": (0.1, 0.2, 0.3, 0.5), "layer": None, "prob": (0.0, 0.5, 1.0),
                             "seed": (0,)}


def _static_besm(model: Callable[[Tensor], Any], queries: Tensor, partners: Tensor, layers: dict[str, Any],
                 batch: tuple[Tensor, Tensor], *, grid: Mapping[str, Sequence[Any]],
                 batch_fn: Callable[[Tensor], Any] | None = None, labels: Sequence[str] | None = None,
                 layer: str | None = None, ratio: float = 0.2, prob: float = 0.5, seed: int = 0,
                 zoom: int = 3) -> StaticExplorer:
    if len(queries) != len(partners) or not len(queries):
        raise ValueError(f"need one partner per query and at least one query, got {len(queries)} queries "
                         f"and {len(partners)} partners")
    if not layers:
        raise ValueError("layers must name at least one layer")
    unknown = sorted(set(grid) - set(BESM_GRID))
    if unknown:
        raise ValueError(f"besm_explorer: unknown grid entries {unknown}; the grid has {list(BESM_GRID)}")
    g = dict(BESM_GRID) | dict(grid)
    labels = list(labels) if labels is not None else [f"query {i}" for i in range(len(queries))]
    images = tuple(g["image"] if g["image"] is not None else range(min(3, len(queries))))
    names = tuple(g["layer"] if g["layer"] is not None else layers)
    layer = layer or list(layers)[-1]

    def first(values: Sequence[Any], wanted: Any) -> Any:
        return wanted if wanted in values else values[0]

    fg = FrameGrid([
        Axis("image", images, tuple(labels[i] for i in images), images[0], "image", "dropdown"),
        Axis("ratio", tuple(g["ratio"]), value=first(g["ratio"], ratio), description="erasing ratio R"),
        Axis("layer", names, value=first(names, layer), description="layer L", kind="dropdown"),
        Axis("prob", tuple(g["prob"]), value=first(g["prob"], prob), description="erasing prob. P"),
        Axis("seed", tuple(g["seed"]), value=first(g["seed"], seed), description="seed"),
    ])
    fg.controls["ratio"].add_class("besm-frames-ratio")
    core = BESMCore(model, [denormalize(q) for q in queries], list(partners), dict(layers), batch, batch_fn)
    h, w = core.queries[0].shape[1:]
    memo: dict[tuple, Any] = {}

    def once(key: tuple, fn: Callable[[], Any]) -> Any:
        if key not in memo:
            memo[key] = fn()
        return memo[key]

    def besm_q(v: dict) -> tuple[Tensor, Tensor]:
        return once(("q", v["image"], v["ratio"], v["layer"]), lambda: core.besm_query(v["image"], v["ratio"], v["layer"]))

    def rand_q(v: dict) -> tuple[Tensor, Tensor]:
        return once(("r", v["image"], v["ratio"], v["seed"]), lambda: core.random_same_area(v["image"], v["ratio"], v["seed"]))

    def batch_r(v: dict) -> BESMResult:
        return once(("b", v["ratio"], v["layer"], v["prob"], v["seed"]),
                    lambda: core.batch(v["ratio"], v["layer"], v["prob"], v["seed"]))

    query = fg.panel("query", ("image",), lambda v: to_png(core.queries[v["image"]], zoom))
    views: dict[str, widgets.Widget] = {"query": query}
    views["mask"] = fg.panel("mask", ("image", "ratio", "layer"), lambda v: to_png(besm_q(v)[1], zoom))
    views["erased"] = fg.overlay(query, fg.panel("erased", ("image", "ratio", "layer"),
                                                 lambda v: to_png(besm_q(v)[0], zoom, alpha=besm_q(v)[1])))
    views["cg_ram"] = fg.panel("cg_ram", ("image", "layer"), lambda v: to_png(
        overlay_heatmap(core.queries[v["image"]], core.query_map(v["image"], v["layer"]), alpha=0.5), zoom))
    views["random"] = fg.overlay(query, fg.panel("random", ("image", "ratio", "seed"),
                                                 lambda v: to_png(rand_q(v)[0], zoom, alpha=rand_q(v)[1])))
    views["info"] = fg.panel("info", ("image", "ratio", "layer"), lambda v: (
        f"<small>ES-Net: the top R of the CG-RAM map of the pair (query, partner gallery image) erased: "
        f"{int(besm_q(v)[1].sum())} pixels = round(R H W) = round({v['ratio']:g} × {h} × {w})</small>"))
    batch_base = widgets.Image(value=to_png(_row(denormalize(core.batch_x)), 2), format="png")
    views["batch"] = fg.overlay(batch_base, fg.panel("batch", ("ratio", "layer", "prob", "seed"), lambda v: to_png(
        _row(denormalize(batch_r(v).images)), 2, alpha=_row(batch_r(v).mask))))
    views["batch_info"] = fg.panel("batch_info", ("ratio", "layer", "prob", "seed"), lambda v: (
        f"<small>Algorithm 1 erased {int(batch_r(v).selected.sum())} of {len(core.batch_x)} images "
        f"(P = {v['prob']:g}, seed {v['seed']})</small>"))
    for name, view in views.items():
        view.add_class(f"besm-frames-{name}")
    settings = int(np.prod([len(a.values) for a in fg.axes.values()]))

    def panel(title: str, view: widgets.Widget) -> widgets.VBox:
        return widgets.VBox([widgets.HTML(f"<b>{title}</b>"), view], layout=widgets.Layout(margin="0 1em 0 0"))

    c = fg.controls
    widget = widgets.VBox([
        widgets.Box([
            widgets.VBox([c["image"], c["ratio"], c["layer"], c["seed"], views["info"],
                          widgets.HTML(f"<small>{settings} settings precomputed (a kernel computes any: "
                                       "<code>besm_explorer(...)</code>)</small>")],
                         layout=widgets.Layout(width="25em", margin="0 2em 1em 0", flex="0 0 auto")),
            widgets.HBox([panel("original", query), panel("mask", views["mask"]), panel("erased", views["erased"])],
                         layout=widgets.Layout(flex="0 0 auto")),
        ], layout=widgets.Layout(display="flex", flex_flow="row wrap", align_items="flex-start")),
        widgets.HBox([panel("CG-RAM map (query)", views["cg_ram"]), panel("random erasing, same area", views["random"])]),
        widgets.HTML(f"<b>Algorithm 1 on a training batch of {len(core.batch_x)}</b> (erasing probability P, same R and layer)"),
        c["prob"], views["batch"], views["batch_info"],
    ])
    widget.add_class("besm-frames")
    return StaticExplorer(widget, fg, views, {"batch": batch_base}, settings)
