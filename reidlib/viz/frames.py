"""Explorers that respond without a kernel: frames precomputed on a grid of control values.

A built HTML page has no Python behind it, so a live explorer's sliders do nothing there. The
static mode of the explorers (``erasing_explorer(static=True)``, ``rpe_explorer(static=True)``,
``besm_explorer(..., static=True)``) is built from a :class:`FrameGrid` instead:

* each control is an :class:`Axis`: a short, fixed list of values (a ``SelectionSlider`` or a
  ``Dropdown`` over their labels);
* each panel is rendered, when the page is built, for every combination of the values of the
  axes *it depends on* (the erased image on the area and the seed, the saliency map on the
  image and the layer), each frame an ``ipywidgets.Image`` (or an ``HTML`` caption);
* the frames sit in nested ``ipywidgets.Stack`` s, one level per axis, and every stack's
  ``selected_index`` follows its axis's control through an ``ipywidgets.jsdlink`` of the
  control's ``index``. Links and stacks are widget models of ``@jupyter-widgets/controls``, so
  the HTML manager that the book vendors moves them in the browser: the page needs neither a
  kernel nor a script of its own, and nothing from the network;
* an image that only part of changes between frames (an erased region on a fixed image) is an
  :meth:`FrameGrid.overlay`: the fixed image once, and above it, in the same grid cell, frames
  that are transparent outside the erased pixels (a few hundred bytes each instead of a whole
  image), which keeps a page with many frames small.

With a kernel (Jupyter, Voila) the same page's live explorer computes any value; the static one
shows only the grid's values. :meth:`FrameGrid.apply_links` does in Python what the links do in
the browser, so tests (and a kernel without a front end) can drive a static explorer.

Design choices. Links rather than a script of our own: the widget manager that renders the
saved widget state already runs ``jsdlink`` s without a kernel, an HTML widget's ``<script>``
would not run, and there is then nothing to vendor beyond what the book vendors. Two explorers
on a page rather than one that switches: while a page is built, the kernel cannot tell whether
a reader's front end will ever talk to it, so the page shows the static explorer, and the live
call sits in the next cell (output removed from the HTML by a ``remove-output`` tag), run by
Jupyter or Voila. Nested stacks rather than one flat stack: a link can only copy an index, not
combine several, so each axis gets its own level (``1 + n_1 + n_1 n_2 + ...`` links per panel).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any, Literal

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle

__all__ = ["Axis", "FrameGrid", "StaticExplorer", "displayed"]

_STYLE = {"description_width": "9em"}


@dataclass(frozen=True)
class Axis:
    """One control of a static explorer: the values its frames were computed for.

    ``labels`` are shown on the control (default ``str`` of each value); ``value`` is the one
    shown first (default the first); ``kind``: ``'slider'`` (``SelectionSlider``) or
    ``'dropdown'``. An axis with a single value has a hidden control and no stack level.
    """

    name: str
    values: tuple[Any, ...]
    labels: tuple[str, ...] | None = None
    value: Any = None
    description: str | None = None
    kind: Literal["slider", "dropdown"] = "slider"

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values:
            raise ValueError(f"axis {self.name!r} needs at least one value")
        labels = tuple(self.labels) if self.labels is not None else tuple(_label(v) for v in self.values)
        if len(labels) != len(self.values) or len(set(labels)) != len(labels):
            raise ValueError(f"axis {self.name!r}: need one distinct label per value, got {labels} for "
                             f"{len(self.values)} values")
        object.__setattr__(self, "labels", labels)
        if self.value is not None and self.value not in self.values:
            raise ValueError(f"axis {self.name!r}: initial value {self.value!r} is not one of {self.values}")
        if self.kind not in ("slider", "dropdown"):
            raise ValueError(f"axis {self.name!r}: kind must be 'slider' or 'dropdown', got {self.kind!r}")

    @property
    def index(self) -> int:
        """Position of the initial value."""
        return 0 if self.value is None else self.values.index(self.value)

    def build(self) -> widgets.SelectionSlider | widgets.Dropdown:
        """The control: its ``index`` is what the stacks follow."""
        common = dict(options=list(self.labels), index=self.index, description=self.description or self.name,
                      style=_STYLE, layout=widgets.Layout(width="22em"))
        if self.kind == "dropdown":
            w = widgets.Dropdown(**common)
        else:  # the frames are already there: let a dragged slider show them as it goes
            w = widgets.SelectionSlider(continuous_update=True, **common)
        if len(self.values) == 1:
            w.layout.display = "none"
        return w


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return f"{value[0]:g}–{value[1]:g}"
    return str(value)


def displayed(widget: widgets.Widget) -> widgets.Widget:
    """The frame a static view shows now: down each ``Stack`` to its selected child (an overlay's
    top layer for a ``GridBox``)."""
    while True:
        if isinstance(widget, widgets.Stack):
            widget = widget.children[widget.selected_index]
        elif isinstance(widget, widgets.GridBox) and widget.children:
            widget = widget.children[-1]
        else:
            return widget


class FrameGrid:
    """Frames of an explorer precomputed on the product of a few :class:`Axis` values.

    Attributes:
        axes: the axes by name; controls: their widgets by name (pass ``controls`` to share one,
            e.g. a seed slider that several grids follow).
        panels: the outermost stack (or the single frame) of each :meth:`panel` by name.
        frames: per panel, ``{(index along each of its axes): frame widget}``.
        links: every ``jsdlink`` (control ``index`` -> stack ``selected_index``).
    """

    def __init__(self, axes: Sequence[Axis], *, controls: Mapping[str, widgets.Widget] | None = None) -> None:
        self.axes = {a.name: a for a in axes}
        if len(self.axes) != len(axes):
            raise ValueError(f"axis names must be distinct, got {[a.name for a in axes]}")
        controls = dict(controls or {})
        self.controls = {name: controls.get(name) or axis.build() for name, axis in self.axes.items()}
        for name, w in self.controls.items():
            if tuple(getattr(w, "options", ())) != tuple(self.axes[name].labels):
                raise ValueError(f"control {name!r} must offer the axis's labels {self.axes[name].labels}")
        self.panels: dict[str, widgets.Widget] = {}
        self.frames: dict[str, dict[tuple[int, ...], widgets.Widget]] = {}
        self.links: list[widgets.DirectionalLink] = []
        self._layout = widgets.Layout()                  # one layout (and style) model shared by the frames
        self._html_style = HTMLStyle()
        self._cell = widgets.Layout(grid_area="frame")   # the layers of an overlay share one grid cell

    def _stack(self, axis: str, children: Sequence[widgets.Widget]) -> widgets.Stack:
        control = self.controls[axis]
        stack = widgets.Stack(list(children), selected_index=control.index, layout=self._layout)
        self.links.append(widgets.jsdlink((control, "index"), (stack, "selected_index")))
        return stack

    def panel(self, name: str, axes: Sequence[str], render: Callable[[dict[str, Any]], bytes | str]) -> widgets.Widget:
        """Render ``render(values)`` for every combination of the values of ``axes`` (``values``:
        axis name -> value, for ``axes`` and the single-valued axes; PNG bytes -> ``Image``, a string
        -> ``HTML``), nest the frames in stacks (``axes[0]`` outermost) linked to the controls, and
        return the outermost one (the frame itself where no axis varies)."""
        if name in self.panels:
            raise ValueError(f"a panel named {name!r} exists already")
        unknown = [a for a in axes if a not in self.axes]
        if unknown:
            raise ValueError(f"panel {name!r}: unknown axes {unknown}; the grid has {list(self.axes)}")
        fixed = {a.name: a.values[0] for a in self.axes.values() if len(a.values) == 1}
        varying = [a for a in axes if len(self.axes[a].values) > 1]
        frames: dict[tuple[int, ...], widgets.Widget] = {}
        for idx in product(*(range(len(self.axes[a].values)) for a in varying)):
            out = render({**fixed, **{a: self.axes[a].values[i] for a, i in zip(varying, idx)}})
            frames[idx] = (widgets.HTML(out, layout=self._layout, style=self._html_style) if isinstance(out, str)
                           else widgets.Image(value=out, format="png", layout=self._layout))

        def nest(prefix: tuple[int, ...]) -> widgets.Widget:
            if len(prefix) == len(varying):
                return frames[prefix]
            axis = varying[len(prefix)]
            return self._stack(axis, [nest(prefix + (i,)) for i in range(len(self.axes[axis].values))])

        self.frames[name] = frames
        self.panels[name] = nest(())
        return self.panels[name]

    def choose(self, axis: str, children: Sequence[widgets.Widget]) -> widgets.Stack:
        """A stack of arbitrary widgets, one per value of ``axis`` (e.g. each method's own
        controls and panels under a method dropdown), linked to its control."""
        if len(children) != len(self.axes[axis].values):
            raise ValueError(f"choose({axis!r}): need {len(self.axes[axis].values)} children, got {len(children)}")
        return self._stack(axis, children)

    def overlay(self, *layers: widgets.Widget) -> widgets.GridBox:
        """``layers`` drawn on top of each other in one grid cell (the last on top): a fixed image
        below, transparent frames above it."""
        for w in layers:
            w.layout = self._cell
        return widgets.GridBox(list(layers), layout=widgets.Layout(grid_template_areas='"frame"',
                                                                   justify_items="flex-start", align_items="flex-start"))

    def apply_links(self) -> None:
        """What the browser does: set each linked stack's ``selected_index`` from its control."""
        for link in self.links:
            (source, s_attr), (target, t_attr) = link.source, link.target
            setattr(target, t_attr, getattr(source, s_attr))

    def select(self, **labels: Any) -> None:
        """Move controls by value or label (``grid.select(seed=3)``) and follow the links."""
        for name, value in labels.items():
            axis = self.axes[name]
            index = axis.values.index(value) if value in axis.values else axis.labels.index(value)
            self.controls[name].index = index
        self.apply_links()

    @property
    def frame_count(self) -> int:
        """Number of precomputed frames (images and captions) over all panels."""
        return sum(len(f) for f in self.frames.values())

    @property
    def image_bytes(self) -> int:
        """Bytes of all the frames' PNGs (what the page embeds, before base64)."""
        return sum(len(w.value) for f in self.frames.values() for w in f.values() if isinstance(w, widgets.Image))


@dataclass
class StaticExplorer:
    """A static explorer: display it (it is its ``widget``).

    ``grid``: the :class:`FrameGrid` (its ``controls``, ``frames``, ``links``); ``views``: the
    displayed panels by name (:func:`displayed` gives the frame each shows now); ``images``: the
    fixed images of the overlays by name; ``settings``: how many settings of the controls were
    precomputed.
    """

    widget: widgets.Widget
    grid: FrameGrid
    views: dict[str, widgets.Widget] = field(default_factory=dict)
    images: dict[str, widgets.Image] = field(default_factory=dict)
    settings: int = 0

    @property
    def controls(self) -> dict[str, widgets.Widget]:
        return {name: w for name, w in self.grid.controls.items() if len(self.grid.axes[name].values) > 1}

    def shown(self, view: str) -> widgets.Widget:
        """The frame the view ``view`` shows now."""
        return displayed(self.views[view])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
