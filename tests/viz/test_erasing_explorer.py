"""reidlib.viz.erasing_explorer driven from Python: moving a control changes the mask and the
displayed images; the method registry is an extension point."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from reidlib.viz import ERASING_METHODS, Control, erasing_explorer, register_erasing_method


def stripes(seed: int) -> torch.Tensor:
    """A small generated RGB image (3, 48, 24) in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(3, 1, 1, generator=g)
    rows = torch.linspace(0, 1, 48).view(1, 48, 1)
    return (0.5 * base + 0.5 * rows).expand(3, 48, 24).clone()


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.fixture
def explorer():
    return erasing_explorer([stripes(0), stripes(1), (stripes(2) * 255).to(torch.uint8)], seed=0, zoom=2)


def test_moving_the_seed_slider_changes_mask_and_display(explorer):
    mask0, shown0 = explorer.mask.clone(), explorer.views["erased"].value
    original0 = explorer.views["original"].value
    explorer.controls["seed"].value = 1
    assert not torch.equal(explorer.mask, mask0)
    assert explorer.views["erased"].value != shown0 and explorer.views["mask"].value
    assert explorer.views["original"].value == original0
    explorer.controls["seed"].value = 0
    assert torch.equal(explorer.mask, mask0) and explorer.views["erased"].value == shown0


def test_displayed_images_are_the_current_ones(explorer):
    mask_png = decode(explorer.views["mask"].value)
    assert mask_png.shape[:2] == (96, 48)  # zoom 2
    np.testing.assert_array_equal(mask_png[::2, ::2] > 127, explorer.mask.numpy())
    erased_png = decode(explorer.views["erased"].value)[::2, ::2]
    expect = (explorer.erased.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(erased_png, expect)
    assert explorer.mask.any() and not torch.equal(explorer.erased, explorer.image)


def test_area_slider_sets_the_erased_fraction(explorer):
    explorer.controls["area"].value = (0.3, 0.35)
    fractions = []
    for seed in range(5):
        explorer.controls["seed"].value = seed
        fractions.append(float(explorer.mask.float().mean()))
    assert all(0.3 <= f <= 0.35 for f in fractions if f > 0) and any(f > 0 for f in fractions)
    assert "erased" in explorer.info.value


def test_switching_method_rebuilds_the_controls(explorer):
    old_r1 = explorer.controls["r1"]
    explorer.controls["method"].value = "random polygon erasing"
    assert {"n", "area", "r", "fill"} <= set(explorer.controls) and "r1" not in explorer.controls
    mask = explorer.mask.clone()
    old_r1.value = 0.9  # a detached control no longer drives the app
    assert torch.equal(explorer.mask, mask)
    explorer.controls["n"].value = 3
    assert not torch.equal(explorer.mask, mask)
    rows, cols = explorer.mask.any(1).sum(), explorer.mask.any(0).sum()
    assert explorer.mask.sum() < rows * cols, "a 3-point polygon does not fill its bounding box"
    explorer.controls["method"].value = "progressive cut-out"
    explorer.controls["progress"].value = 0.0
    explorer.controls["area"].value = (0.02, 0.6)
    small = max(float(explorer.mask.float().mean()) for explorer.controls["seed"].value in range(8))
    assert small <= 0.1  # s_max(0) = start_max
    explorer.controls["progress"].value = 1.0
    large = max(float(explorer.mask.float().mean()) for explorer.controls["seed"].value in range(8))
    assert large > 0.2


def test_choosing_another_image(explorer):
    before = explorer.views["original"].value
    explorer.controls["image"].value = 2
    assert explorer.views["original"].value != before
    assert torch.allclose(explorer.image, stripes(2), atol=1 / 255)


def test_registry_is_an_extension_point():
    def top_rows(image, *, generator, rows):
        mask = torch.zeros(image.shape[1:], dtype=torch.bool)
        mask[:rows] = True
        return image.masked_fill(mask, 0.0), mask

    register_erasing_method("top rows", top_rows, [Control("rows", "int", 4, 0, 40, 1)], "test method")
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_erasing_method("top rows", top_rows)
        app = erasing_explorer([stripes(0)], method="top rows")
        assert int(app.mask.sum()) == 4 * 24
        app.controls["rows"].value = 10
        assert int(app.mask.sum()) == 10 * 24 and (app.erased[:, :10] == 0).all()
        assert "top rows" in app.controls["method"].options
    finally:
        ERASING_METHODS.pop("top rows", None)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="unknown erasing method"):
        erasing_explorer([stripes(0)], method="nope")
    with pytest.raises(ValueError, match="RGB tensors"):
        erasing_explorer([torch.rand(1, 8, 8)])
    with pytest.raises(ValueError, match="labels"):
        erasing_explorer([stripes(0)], labels=["a", "b"])
    with pytest.raises(ValueError, match="kind"):
        Control("x", "slider", 1).build()


def test_default_images_come_from_synthped():
    app = erasing_explorer(num_images=3)
    labels = [lab for lab, _ in app.controls["image"].options]
    assert len(labels) == 3 and all(lab.startswith("synthped id") for lab in labels)
    assert app.image.shape[0] == 3 and app.mask.any()
