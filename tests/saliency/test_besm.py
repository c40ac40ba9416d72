"""BESM, ES-Net Algorithm 1: exact erased-pixel counts, only selected images, top of M*, ties."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.saliency import besm, draw_selection, erase_top
from reidlib.saliency.besm import upsample_saliency


@settings(max_examples=60, deadline=None)
@given(
    b=st.integers(1, 5), h=st.integers(4, 40), w=st.integers(2, 24), mh=st.integers(1, 6), mw=st.integers(1, 4),
    ratio=st.floats(0.0, 1.0), levels=st.integers(1, 4), seed=st.integers(0, 10_000),
)
def test_besm_erases_exactly_round_RHW_pixels_of_selected_images_only(b, h, w, mh, mw, ratio, levels, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(b, 3, h, w, generator=g) + 5.0  # no pixel is 0 before erasing
    # few distinct values: many ties in M and in its upsampled M*
    saliency = torch.randint(0, levels, (b, mh, mw), generator=g).float()
    selected = torch.rand(b, generator=g) < 0.5
    out = besm(images, saliency, ratio, prob=0.5, selected=selected)
    count = round(ratio * h * w)
    erased_pixels = (out.images != images).any(1)
    assert torch.equal(erased_pixels, out.mask)
    for i in range(b):
        if selected[i]:
            assert int(out.mask[i].sum()) == count
            assert (out.images[i][:, out.mask[i]] == 0).all()  # all channels of an erased pixel
        else:
            assert not out.mask[i].any()
            assert torch.equal(out.images[i], images[i])
    # the erased pixels are the top of M*: nothing left standing is more salient than what went
    star = upsample_saliency(saliency, (h, w))
    for i in torch.nonzero(selected).flatten().tolist():
        m = out.mask[i]
        if 0 < count < h * w:
            assert star[i][m].min() >= star[i][~m].max()
    # deterministic (ties by raster order), input untouched
    again = besm(images, saliency, ratio, prob=0.5, selected=selected)
    assert torch.equal(again.mask, out.mask)
    assert (images != 0).all()


def test_ties_break_in_raster_order():
    images = torch.ones(1, 3, 4, 4)
    _, mask = erase_top(images, torch.zeros(1, 2, 2), 0.25)  # constant map: 4 pixels, the first row
    assert mask[0, 0].all() and int(mask.sum()) == 4
    res = besm(images, torch.zeros(1, 2, 2), 0.25, 1.0)
    assert bool(res.flat[0])


def test_top_region_follows_the_map():
    saliency = torch.zeros(2, 8, 4)
    saliency[0, 6:, :] = 1.0  # bottom of image 0 is salient
    saliency[1, :2, :] = 1.0  # top of image 1
    _, mask = erase_top(torch.randn(2, 3, 32, 16), saliency, 0.1)
    rows = torch.arange(32)[None, :, None].expand(2, 32, 16)
    assert rows[0][mask[0]].float().mean() > 24 and rows[1][mask[1]].float().mean() < 8


def test_selection_probability():
    g = torch.Generator().manual_seed(0)
    n, p = 20_000, 0.3
    sel = draw_selection(n, p, generator=g)
    assert abs(float(sel.float().mean()) - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert draw_selection(50, 1.0).all() and not draw_selection(50, 0.0).any()


def test_fill_and_bad_input():
    images = torch.randn(2, 3, 8, 4)
    out, mask = erase_top(images, torch.rand(2, 2, 1), 0.5, fill=-1.5)
    assert (out.permute(1, 0, 2, 3)[:, mask] == -1.5).all()
    black = (-0.5, -1.0, -2.0)
    out, mask = erase_top(images, torch.rand(2, 2, 1), 0.25, fill=black)
    assert torch.equal(out.permute(1, 0, 2, 3)[:, mask], torch.tensor(black)[:, None].expand(3, int(mask.sum())))
    assert torch.equal(out.permute(1, 0, 2, 3)[:, ~mask], images.permute(1, 0, 2, 3)[:, ~mask])
    with pytest.raises(ValueError, match="one per channel"):
        erase_top(images, torch.rand(2, 2, 1), 0.25, fill=(0.0, 1.0))
    with pytest.raises(ValueError, match="ratio R"):
        erase_top(images, torch.rand(2, 2, 1), 1.5)
    with pytest.raises(ValueError, match=r"\(B, h, w\)"):
        erase_top(images, torch.rand(3, 2, 1), 0.2)
    with pytest.raises(ValueError, match="probability P"):
        besm(images, torch.rand(2, 2, 1), 0.2, prob=-0.1)
