"""reidlib.viz.frames: the precomputed-frame grid behind the static explorers. Every combination of
control values shows the frame rendered for it, through the links alone (as in the browser)."""
from __future__ import annotations

from itertools import product

import ipywidgets as widgets
import pytest

from reidlib.viz.frames import Axis, FrameGrid, StaticExplorer, displayed


def make_grid() -> FrameGrid:
    return FrameGrid([Axis("a", (1, 2, 3)), Axis("b", ("x", "y"), kind="dropdown"), Axis("c", (0.5, 1.5, 2.5, 3.5)),
                      Axis("fixed", (7,))])


def caption(v: dict) -> str:
    return f"a={v['a']} b={v['b']} c={v['c']} fixed={v['fixed']}"


def test_a_panel_has_one_frame_per_combination_of_its_axes():
    grid = make_grid()
    grid.panel("all", ("a", "b", "c", "fixed"), caption)
    grid.panel("ab", ("a", "b"), lambda v: f"{v['a']}{v['b']}")
    grid.panel("none", (), lambda v: b"\x89PNG-not-really")
    assert len(grid.frames["all"]) == 3 * 2 * 4          # the single-value axis adds no level
    assert len(grid.frames["ab"]) == 6 and len(grid.frames["none"]) == 1
    assert grid.frame_count == 24 + 6 + 1
    assert isinstance(grid.panels["none"], widgets.Image) and grid.image_bytes == len(b"\x89PNG-not-really")
    assert len({w.value for w in grid.frames["all"].values()}) == 24   # all different
    # stacks: 1 over a, 3 over b, 6 over c; one link each
    assert len(grid.links) == (1 + 3 + 6) + (1 + 3)


def test_every_combination_shows_its_frame_through_the_links():
    grid = make_grid()
    view = grid.panel("all", ("a", "b", "c", "fixed"), caption)
    for ia, ib, ic in product(range(3), range(2), range(4)):
        grid.controls["a"].index, grid.controls["b"].index, grid.controls["c"].index = ia, ib, ic
        grid.apply_links()
        values = {"a": (1, 2, 3)[ia], "b": "xy"[ib], "c": (0.5, 1.5, 2.5, 3.5)[ic], "fixed": 7}
        assert displayed(view).value == caption(values)


def test_links_go_from_each_axis_control_to_the_stacks_of_its_level():
    grid = make_grid()
    view = grid.panel("ab", ("a", "b"), lambda v: f"{v['a']}{v['b']}")
    targets = {id(link.target[0]): link.source for link in grid.links}
    assert all(link.target[1] == "selected_index" and link.source[1] == "index" for link in grid.links)
    assert targets[id(view)][0] is grid.controls["a"]
    for child in view.children:
        assert isinstance(child, widgets.Stack) and targets[id(child)][0] is grid.controls["b"]
        assert all(isinstance(leaf, widgets.HTML) for leaf in child.children)


def test_controls_are_selection_widgets_over_the_labels():
    grid = make_grid()
    assert isinstance(grid.controls["a"], widgets.SelectionSlider)
    assert isinstance(grid.controls["b"], widgets.Dropdown)
    assert grid.controls["c"].options == ("0.5", "1.5", "2.5", "3.5")
    assert grid.controls["fixed"].layout.display == "none"            # one value: nothing to choose
    grid.panel("c", ("c",), lambda v: str(v["c"]))
    grid.select(c=2.5)
    assert displayed(grid.panels["c"]).value == "2.5"
    grid.select(c="0.5")                                              # by label too
    assert displayed(grid.panels["c"]).value == "0.5"


def test_initial_values_and_shared_controls():
    seed = Axis("seed", (0, 1, 2), value=1).build()
    g1 = FrameGrid([Axis("seed", (0, 1, 2), value=1)], controls={"seed": seed})
    g2 = FrameGrid([Axis("seed", (0, 1, 2), value=1)], controls={"seed": seed})
    p1, p2 = g1.panel("p", ("seed",), lambda v: f"one {v['seed']}"), g2.panel("p", ("seed",), lambda v: f"two {v['seed']}")
    assert displayed(p1).value == "one 1" and displayed(p2).value == "two 1"
    seed.index = 2
    g1.apply_links()
    g2.apply_links()
    assert displayed(p1).value == "one 2" and displayed(p2).value == "two 2"


def test_choose_and_overlay():
    grid = FrameGrid([Axis("method", ("m1", "m2"), kind="dropdown"), Axis("s", (0, 1))])
    base = widgets.Image(value=b"base", format="png")
    panels = [grid.panel(m, ("s",), lambda v, m=m: f"{m}:{v['s']}".encode()) for m in ("m1", "m2")]
    view = grid.overlay(base, grid.choose("method", panels))
    assert isinstance(view, widgets.GridBox) and view.layout.grid_template_areas == '"frame"'
    assert {w.layout.grid_area for w in view.children} == {"frame"}
    grid.select(method="m2", s=1)
    assert displayed(view).value == b"m2:1" and view.children[0] is base
    with pytest.raises(ValueError, match="children"):
        grid.choose("method", panels[:1])
    explorer = StaticExplorer(view, grid, {"v": view})
    assert explorer.shown("v").value == b"m2:1" and set(explorer.controls) == {"method", "s"}


def test_bad_axes_and_panels():
    with pytest.raises(ValueError, match="at least one value"):
        Axis("a", ())
    with pytest.raises(ValueError, match="distinct label"):
        Axis("a", (1, 2), labels=("x", "x"))
    with pytest.raises(ValueError, match="initial value"):
        Axis("a", (1, 2), value=3)
    with pytest.raises(ValueError, match="kind"):
        Axis("a", (1,), kind="knob")
    with pytest.raises(ValueError, match="distinct"):
        FrameGrid([Axis("a", (1,)), Axis("a", (2,))])
    with pytest.raises(ValueError, match="labels"):
        FrameGrid([Axis("a", (1, 2))], controls={"a": widgets.Dropdown(options=["1", "3"])})
    grid = make_grid()
    with pytest.raises(ValueError, match="unknown axes"):
        grid.panel("p", ("a", "zzz"), caption)
    grid.panel("p", ("a",), lambda v: str(v["a"]))
    with pytest.raises(ValueError, match="exists"):
        grid.panel("p", ("a",), lambda v: str(v["a"]))
