"""reidlib.viz.images: de-normalising, overlays, image grids and rank rows (matplotlib Agg)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

from reidlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms  # noqa: E402
from reidlib.viz import (  # noqa: E402
    RANK_COLORS,
    denormalize,
    image_grid,
    normalize,
    overlay_heatmap,
    rank_row,
    show_image,
    to_rgb_array,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def rgb(seed: int, shape=(3, 16, 8)) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_denormalize_inverts_the_test_pipeline():
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (32, 16, 3), generator=g, dtype=torch.uint8).numpy()
    normalised = build_transforms(32, 16, train=False)(Image.fromarray(pixels))  # same size: no resampling
    expect = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    assert normalised.abs().max() > 1.5  # it really was normalised
    assert (denormalize(normalised) - expect).abs().max() < 1e-6
    batch = torch.stack([normalised, normalised.flip(-1)])
    back = denormalize(batch)
    assert back.shape == (2, 3, 32, 16)
    assert (back[1] - expect.flip(-1)).abs().max() < 1e-6


def test_denormalize_uses_the_imagenet_constants_per_channel():
    zero = torch.zeros(3, 2, 2)
    assert torch.allclose(denormalize(zero)[:, 0, 0], torch.tensor(IMAGENET_MEAN))
    one = torch.ones(3, 1, 1)
    assert torch.allclose(denormalize(one, clamp=False)[:, 0, 0], torch.tensor(IMAGENET_MEAN) + torch.tensor(IMAGENET_STD))
    assert denormalize(torch.full((3, 2, 2), 10.0)).max() == 1.0                 # clamped
    assert denormalize(torch.full((3, 2, 2), 10.0), clamp=False).max() > 1.0
    with pytest.raises(ValueError, match="C = 3"):
        denormalize(torch.zeros(4, 2, 2))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_normalize_and_denormalize_are_inverse(seed):
    x = rgb(seed, (2, 3, 5, 4))
    assert torch.allclose(denormalize(normalize(x)), x, atol=1e-6)
    original = x.clone()
    normalize(x), denormalize(x)
    assert torch.equal(x, original)  # inputs untouched


def test_to_rgb_array_accepts_tensors_arrays_pil_and_paths(tmp_path):
    img = rgb(1)
    arr = to_rgb_array(img)
    assert arr.shape == (16, 8, 3) and arr.dtype == np.float32
    np.testing.assert_allclose(arr, img.permute(1, 2, 0).numpy())
    np.testing.assert_allclose(to_rgb_array(normalize(img), normalized=True), arr, atol=1e-6)
    u8 = (img * 255).round().to(torch.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(u8.permute(1, 2, 0).numpy()).save(path)
    for item in (u8, u8.permute(1, 2, 0).numpy(), Image.open(path), path, str(path)):
        np.testing.assert_allclose(to_rgb_array(item), u8.permute(1, 2, 0).numpy() / 255, atol=1e-6)
    mask = torch.zeros(4, 3, dtype=torch.bool)
    mask[1, 2] = True
    assert to_rgb_array(mask).shape == (4, 3) and to_rgb_array(mask)[1, 2] == 1.0
    with pytest.raises(ValueError):
        to_rgb_array(torch.zeros(2, 4, 4))


def test_overlay_shape_range_and_blend():
    img = rgb(2, (3, 32, 16))
    heat = torch.rand(4, 2, generator=torch.Generator().manual_seed(3)) * 7 - 2    # any scale, a coarse map
    out = overlay_heatmap(img, heat, alpha=0.4)
    assert out.shape == (3, 32, 16) and out.min() >= 0 and out.max() <= 1
    assert torch.allclose(overlay_heatmap(img, heat, alpha=0.0), img)
    # alpha = 1: the colour map of the min-max scaled, bilinearly upsampled map
    up = torch.nn.functional.interpolate(heat[None, None], size=(32, 16), mode="bilinear", align_corners=False)[0, 0]
    scaled = (up - up.min()) / (up.max() - up.min())
    jet = torch.from_numpy(matplotlib.colormaps["jet"](scaled.numpy())[..., :3]).float().permute(2, 0, 1)
    assert torch.allclose(overlay_heatmap(img, heat, alpha=1.0), jet, atol=1e-6)
    hottest = np.unravel_index(int(up.argmax()), up.shape)
    assert overlay_heatmap(torch.zeros(3, 32, 16), heat, alpha=1.0)[:, hottest[0], hottest[1]].argmax() == 0  # red
    # a constant map is "cold" everywhere rather than a division by zero
    flat = overlay_heatmap(img, torch.ones(4, 2), alpha=1.0)
    assert torch.isfinite(flat).all() and torch.allclose(flat, flat[:, :1, :1].expand_as(flat))
    # batches, and normalised inputs
    batch = overlay_heatmap(torch.stack([img, img]), torch.stack([heat, -heat]), alpha=0.4)
    assert batch.shape == (2, 3, 32, 16) and torch.allclose(batch[0], out)
    assert torch.allclose(overlay_heatmap(normalize(img), heat, alpha=0.4, normalized=True), out, atol=1e-6)
    with pytest.raises(ValueError):
        overlay_heatmap(img, torch.rand(2, 4, 2))


def test_show_image_has_no_ticks_and_draws_border_and_labels():
    fig, ax = plt.subplots()
    show_image(ax, rgb(4), title="t", label="below", border="tab:red")
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    assert ax.get_title() == "t" and ax.get_xlabel() == "below"
    assert all(s.get_visible() and mcolors.same_color(s.get_edgecolor(), "tab:red") for s in ax.spines.values())
    shown = ax.get_images()[0].get_array()
    np.testing.assert_allclose(shown, rgb(4).permute(1, 2, 0).numpy())
    fig, ax = plt.subplots()
    show_image(ax, rgb(4), heat=torch.rand(2, 2))
    assert not any(s.get_visible() for s in ax.spines.values())
    assert not np.allclose(ax.get_images()[0].get_array(), shown)  # the overlay changed the pixels


def test_rank_row_draws_k_plus_one_axes_with_border_colours():
    k = 4
    matches = [True, False, None, True]
    axes = rank_row(rgb(0), [rgb(i + 1) for i in range(k)], matches, titles=[f"rank {i + 1}" for i in range(k)])
    assert len(axes) == k + 1 and len(axes[0].figure.axes) == k + 1
    expected = [RANK_COLORS["query"], "tab:green", "tab:red", "0.55", "tab:green"]
    for ax, colour in zip(axes, expected):
        assert len(ax.get_images()) == 1
        assert all(mcolors.same_color(s.get_edgecolor(), colour) for s in ax.spines.values()), colour
    assert [ax.get_title() for ax in axes] == ["query"] + [f"rank {i + 1}" for i in range(k)]
    # the query comes first and each gallery image in its rank's axis
    np.testing.assert_allclose(axes[2].get_images()[0].get_array(), rgb(2).permute(1, 2, 0).numpy())


def test_rank_row_into_given_axes_and_with_heat_maps():
    fig, axes = plt.subplots(2, 3)
    gallery = torch.stack([normalize(rgb(5)), normalize(rgb(6))])
    used = rank_row(normalize(rgb(7)), gallery, [False, True], axes=axes[1], normalized=True,
                    heats=[torch.rand(2, 2), None])
    assert used == list(axes[1]) and all(not ax.get_images() for ax in axes[0])
    np.testing.assert_allclose(used[2].get_images()[0].get_array(), rgb(6).permute(1, 2, 0).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="k \\+ 1"):
        rank_row(rgb(0), [rgb(1)], [True], axes=axes[0])
    with pytest.raises(ValueError, match="match flags"):
        rank_row(rgb(0), [rgb(1), rgb(2)], [True])


def test_image_grid_rows_blanks_and_labels():
    fig = image_grid([[rgb(0), rgb(1), None], [rgb(2)]], titles=[["a", "b", None], ["c"]],
                     row_labels=["first", "second"], borders=[[None, "tab:green", None], [None]])
    axes = fig.grid_axes
    assert axes.shape == (2, 3)
    drawn = [[bool(ax.get_images()) for ax in row] for row in axes]
    assert drawn == [[True, True, False], [True, False, False]]
    assert axes[0, 1].get_title() == "b" and axes[0, 0].get_ylabel() == "first" and axes[1, 0].get_ylabel() == "second"
    assert all(mcolors.same_color(s.get_edgecolor(), "tab:green") for s in axes[0, 1].spines.values())
    flat = image_grid([rgb(i) for i in range(5)], ncols=2, titles=[str(i) for i in range(5)])
    assert flat.grid_axes.shape == (3, 2) and flat.grid_axes[2, 0].get_title() == "4"
    assert not flat.grid_axes[2, 1].get_images()
    with pytest.raises(ValueError, match="shape"):
        image_grid([rgb(0), rgb(1)], titles=["only one"])
