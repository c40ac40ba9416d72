"""The explorers' static mode (frames precomputed for a page without a kernel) and the RPE explorer:
the frame grids' sizes, that the frames differ across control values, that the links show the
frame of the chosen values, and that each frame is what the live explorer computes there."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from test_besm_explorer import Tiny
from test_erasing_explorer import stripes

from reidlib.viz import ERASING_METHODS, besm_explorer, erasing_explorer, normalize, rpe_draws, rpe_explorer, to_png
from reidlib.viz.frames import Axis, StaticExplorer


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def shown_png(app: StaticExplorer, view: str) -> bytes:
    return app.shown(view).value


# ---------------------------------------------------------------------------------------------
# PNG overlays
def test_to_png_with_alpha_keeps_only_the_masked_pixels():
    image = torch.rand(3, 6, 4, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(6, 4, dtype=torch.bool)
    mask[1:3, 2:] = True
    rgba = decode(to_png(image, 2, alpha=mask))
    assert rgba.shape == (12, 8, 4)
    np.testing.assert_array_equal(rgba[::2, ::2, 3], mask.numpy() * 255)
    expect = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(rgba[::2, ::2, :3][mask.numpy()], expect[mask.numpy()])
    assert (rgba[::2, ::2, :3][~mask.numpy()] == 0).all()
    with pytest.raises(ValueError, match="alpha"):
        to_png(image, alpha=torch.zeros(3, 3, dtype=torch.bool))


# ---------------------------------------------------------------------------------------------
# the erasing explorer
@pytest.fixture(scope="module")
def erasing_static() -> StaticExplorer:
    return erasing_explorer([stripes(0)], static=True, zoom=2)


def test_erasing_frame_grid_size(erasing_static):
    grid = erasing_static.grid
    sweeps = {name: len(m.sweep.values) for name, m in ERASING_METHODS.items()}
    assert sweeps == {"random erasing": 4, "progressive cut-out": 3, "random polygon erasing": 4}
    for name, n in sweeps.items():
        for kind in ("mask", "erased", "info"):
            assert len(grid.frames[f"{kind}/{name}"]) == n * 4    # x 4 seeds
    assert grid.frame_count == 3 * 11 * 4 and erasing_static.settings == 11 * 4
    assert set(erasing_static.controls) == {"method", "seed", *(f"{n}/{m.sweep.name}" for n, m in ERASING_METHODS.items())}
    assert 20_000 < grid.image_bytes < 400_000


def test_erasing_frames_differ_across_seeds_and_parameters(erasing_static):
    for name in ERASING_METHODS:
        frames = erasing_static.grid.frames[f"mask/{name}"]
        n_sweep = max(k[0] for k in frames) + 1
        for i in range(n_sweep):
            assert len({frames[(i, s)].value for s in range(4)}) == 4, f"{name}: seeds give equal masks"
        for s in range(4):
            assert len({frames[(i, s)].value for i in range(n_sweep)}) > 1, f"{name}: the sweep changes nothing"


def test_erasing_frames_are_what_the_live_explorer_computes(erasing_static):
    app, live = erasing_static, erasing_explorer([stripes(0)], zoom=2)
    assert app.shown("erased") is app.grid.frames["erased/random erasing"][(1, 0)]   # the defaults, seed 0
    app.grid.select(method="random polygon erasing", seed=3, **{"random polygon erasing/n": 6})
    live.controls["method"].value = "random polygon erasing"
    live.controls["seed"].value, live.controls["n"].value = 3, 6
    np.testing.assert_array_equal(decode(shown_png(app, "mask")), decode(live.views["mask"].value))
    rgba = decode(shown_png(app, "erased"))                            # the erased pixels over the original
    mask = decode(live.views["mask"].value) > 127
    np.testing.assert_array_equal(rgba[..., 3] > 0, mask)
    np.testing.assert_array_equal(rgba[..., :3][mask], decode(live.views["erased"].value)[mask])
    assert app.images["original"].value == live.views["original"].value
    assert "n = 6" in app.shown("info").value and f"({int(live.mask.sum())} pixels)" in app.shown("info").value


def test_the_method_dropdown_switches_controls_and_panels(erasing_static):
    app = erasing_static
    app.grid.select(method="progressive cut-out", seed=0, **{"progressive cut-out/progress": 1.0})
    assert app.shown("mask") is app.grid.frames["mask/progressive cut-out"][(2, 0)]
    params = [link.target[0] for link in app.grid.links if link.source[0] is app.grid.controls["method"]]
    assert len(params) == 4                        # the parameter box, mask, erased and info stacks
    box = next(s for s in params if all(hasattr(c, "children") and len(c.children) <= 1 for c in s.children))
    assert box.children[box.selected_index].children[0] is app.grid.controls["progressive cut-out/progress"]


def test_erasing_static_options():
    app = erasing_explorer([stripes(1)], static=True, seeds=(5, 6), method="random polygon erasing",
                           sweeps={"random erasing": Axis("r1", (0.3, 0.9))})
    assert app.grid.controls["method"].value == "random polygon erasing"
    assert len(app.grid.frames["mask/random erasing"]) == 2 * 2
    assert app.grid.axes["seed"].values == (5, 6)
    with pytest.raises(ValueError, match="unknown methods"):
        erasing_explorer([stripes(1)], static=True, sweeps={"nope": Axis("x", (1,))})
    with pytest.raises(ValueError, match="controls"):
        erasing_explorer([stripes(1)], static=True, sweeps={"random erasing": Axis("x", (1,))})


# ---------------------------------------------------------------------------------------------
# RPE beside random erasing
def test_rpe_draws_share_boxes_and_decisions():
    image = stripes(0)
    d = rpe_draws(image, n=6, p=0.5, area=(0.1, 0.4), seed=1, draws=8)
    assert d.rpe.shape == (8, 3, 48, 24) and d.rpe_mask.shape == d.random_mask.shape == (8, 48, 24)
    assert 0 < int(d.applied.sum()) < 8
    assert not d.rpe_mask[~d.applied].any() and not d.random_mask[~d.applied].any()
    assert d.random_mask[d.applied].flatten(1).any(1).all()
    assert not (d.rpe_mask & ~d.random_mask).any(), "a polygon outside its box"
    assert d.rpe_mask.sum() < d.random_mask.sum()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1)
    for k in torch.nonzero(d.applied).flatten():      # both fill the ImageNet mean colour
        assert torch.allclose(d.rpe[k][:, d.rpe_mask[k]], mean.expand(3, int(d.rpe_mask[k].sum())))
        assert torch.allclose(d.random[k][:, d.random_mask[k]], mean.expand(3, int(d.random_mask[k].sum())))
    more = rpe_draws(image, n=6, p=0.9, area=(0.1, 0.4), seed=1, draws=8)   # a larger p: a superset, same shapes
    assert (more.applied | ~d.applied).all() and more.applied.sum() > d.applied.sum()
    assert torch.equal(more.rpe_mask[d.applied], d.rpe_mask[d.applied])
    other_n = rpe_draws(image, n=40, p=0.5, area=(0.1, 0.4), seed=1, draws=8)
    assert torch.equal(other_n.random_mask, d.random_mask) and not torch.equal(other_n.rpe_mask, d.rpe_mask)


def test_the_live_rpe_explorer_follows_its_sliders():
    app = rpe_explorer(stripes(0), draws=4)
    assert set(app.controls) == {"n", "p", "area", "seed"} and app.controls["n"].value == 20
    rpe, random = app.views["rpe"].value, app.views["random"].value
    assert decode(rpe).shape == (96, 4 * 48 + 3 * 4, 3)             # 4 draws, zoom 2, 2-pixel gaps
    app.controls["n"].value = 3
    assert app.views["rpe"].value != rpe and app.views["random"].value == random
    app.controls["p"].value = 1.0
    assert app.draws.applied.all() and "4 of 4 draws erased" in app.info.value
    app.controls["p"].value = 0.0
    assert not app.draws.applied.any() and "none of the 4" in app.info.value
    app.controls["area"].value = (0.3, 0.35)
    app.controls["p"].value = 1.0
    assert ((app.draws.random_mask.flatten(1).float().mean(1) - 0.325).abs() <= 0.03).all()


@pytest.fixture(scope="module")
def rpe_static() -> StaticExplorer:
    return rpe_explorer(stripes(0), static=True, draws=4)


def test_rpe_frame_grid(rpe_static):
    grid = rpe_static.grid
    assert {name: len(a.values) for name, a in grid.axes.items()} == {"n": 4, "p": 4, "area": 3, "seed": 1}
    assert len(grid.frames["rpe"]) == 48 and len(grid.frames["info"]) == 48 and rpe_static.settings == 48
    assert len(grid.frames["random"]) == 12                           # random erasing does not depend on n
    assert set(rpe_static.controls) == {"n", "p", "area"}
    frames = grid.frames["rpe"]
    for ip in range(4):
        for ia in range(3):
            assert len({frames[(i, ip, ia)].value for i in range(4)}) == 4, "n changes nothing"
    random = grid.frames["random"]
    for ip in range(4):
        assert len({random[(ip, ia)].value for ia in range(3)}) == 3, "the area range changes nothing"
    for ia in range(3):   # p = 0.25 and p = 1 (every draw erased) differ (with 4 draws, 0.75 may equal 1)
        assert random[(0, ia)].value != random[(3, ia)].value


def test_rpe_static_frames_match_the_draws(rpe_static):
    app = rpe_static
    app.grid.select(n=6, p=1.0, area=(0.3, 0.6))
    d = rpe_draws(stripes(0), n=6, p=1.0, area=(0.3, 0.6), draws=4)
    alpha = decode(shown_png(app, "rpe"))[..., 3][::2, ::2]
    masks = np.split(alpha[:, [c for c in range(alpha.shape[1]) if c % 26 < 24]], 4, axis=1)
    for k in range(4):
        np.testing.assert_array_equal(masks[k] > 0, d.rpe_mask[k].numpy())
    assert "4 of 4 draws erased" in app.shown("info").value
    app.grid.select(p=0.25)
    assert app.shown("rpe") is app.grid.frames["rpe"][(1, 0, 2)]
    with pytest.raises(ValueError, match="grid"):
        rpe_explorer(stripes(0), static=True, n=5)
    with pytest.raises(ValueError, match="unknown grid"):
        rpe_explorer(stripes(0), static=True, grid={"q": Axis("q", (1,))})


# ---------------------------------------------------------------------------------------------
# BESM
@pytest.fixture(scope="module")
def besm_inputs():
    model = Tiny().eval()
    g = torch.Generator().manual_seed(0)
    queries = normalize(torch.rand(4, 3, 16, 8, generator=g))
    partners = normalize(torch.rand(4, 3, 16, 8, generator=g))
    batch = normalize(torch.rand(6, 3, 16, 8, generator=g)), torch.tensor([0, 0, 1, 1, 2, 2])
    return model, queries, partners, {"layer1": model.layer1, "layer2": model.layer2}, batch


def test_besm_frame_grid(besm_inputs):
    app = besm_explorer(*besm_inputs, static=True, batch_fn=None)
    grid = app.grid
    assert {n: len(a.values) for n, a in grid.axes.items()} == {"image": 3, "ratio": 4, "layer": 2, "prob": 3, "seed": 1}
    counts = {name: len(f) for name, f in grid.frames.items()}
    assert counts == {"query": 3, "mask": 24, "erased": 24, "cg_ram": 6, "random": 12, "info": 24, "batch": 24,
                      "batch_info": 24}
    assert grid.controls["layer"].value == "layer2" and app.settings == 3 * 4 * 2 * 3  # the last layer first
    masks = grid.frames["mask"]
    assert len({masks[(0, r, 1)].value for r in range(4)}) == 4        # R changes the mask
    assert masks[(0, 1, 0)].value != masks[(0, 1, 1)].value            # so does the layer
    sel = [grid.frames["batch_info"][(1, 1, p)].value for p in range(3)]
    assert "erased 0 of 6" in sel[0] and "erased 6 of 6" in sel[2]


def test_besm_frames_are_what_the_live_explorer_computes(besm_inputs):
    app = besm_explorer(*besm_inputs, static=True, grid={"ratio": (0.1, 0.25)})
    live = besm_explorer(*besm_inputs, ratio=0.25, prob=1.0, labels=[f"query {i}" for i in range(4)])
    app.grid.select(image=2, ratio=0.25, layer="layer1", prob=1.0)
    ex = live.explorer
    ex.controls["image"].value, ex.controls["layer"].value = 2, "layer1"
    np.testing.assert_array_equal(decode(shown_png(app, "mask")), decode(ex.views["mask"].value))
    assert shown_png(app, "cg_ram") == live.views["cg_ram"].value
    rgba = decode(shown_png(app, "random"))
    np.testing.assert_array_equal(rgba[..., :3][rgba[..., 3] > 0], decode(live.views["random"].value)[rgba[..., 3] > 0])
    alpha = decode(shown_png(app, "batch"))[..., 3][::2, ::2]
    cols = [c for c in range(alpha.shape[1]) if c % 10 < 8]            # 8-pixel images, 2-pixel gaps
    for k, m in enumerate(np.split(alpha[:, cols], 6, axis=1)):
        np.testing.assert_array_equal(m > 0, live.batch_result.mask[k].numpy())
    with pytest.raises(ValueError, match="unknown grid"):
        besm_explorer(*besm_inputs, static=True, grid={"zoom": (1,)})
    with pytest.raises(ValueError, match="static"):
        besm_explorer(*besm_inputs, grid={"ratio": (0.1,)})
