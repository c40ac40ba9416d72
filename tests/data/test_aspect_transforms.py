"""Aspect-preserving inputs ("Re-ID done right", Sec. 3.2): the largest side resized, the aspect kept, a
pad-and-crop at the image's own size, and batches of images of different sizes kept as lists."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.data import collate_images
from reidlib.data.transforms import ProgressiveCutout, RandomPadCrop, build_aspect_transforms, set_progress


@settings(max_examples=30, deadline=None)
@given(h=st.integers(20, 300), w=st.integers(20, 300), side=st.integers(32, 256))
def test_the_largest_side_is_resized_and_the_aspect_kept(h, w, side):
    out = build_aspect_transforms(side, train=False)(torch.rand(3, h, w))
    assert out.shape[0] == 3 and max(out.shape[1:]) == side
    small = min(out.shape[1:])
    assert abs(small - side * min(h, w) / max(h, w)) <= 1  # rounding of the shorter side


def test_pad_crop_keeps_the_size_and_shifts_the_content():
    img = torch.arange(2 * 9 * 7, dtype=torch.float32).view(2, 9, 7)
    torch.manual_seed(0)
    outs = [RandomPadCrop(2)(img) for _ in range(20)]
    assert all(o.shape == img.shape for o in outs)
    assert any(not torch.equal(o, img) for o in outs)
    assert torch.equal(RandomPadCrop(0)(img), img)
    torch.manual_seed(3)
    a = RandomPadCrop(2)(img)
    torch.manual_seed(3)
    assert torch.equal(a, RandomPadCrop(2)(img))


def test_training_pipeline_holds_the_cutout_and_its_progress():
    tf = build_aspect_transforms(64, train=True, flip=0.5, padding=2, progressive_cutout=1.0,
                                 cutout_options={"scale": (0.02, 0.5), "start_max": 0.02, "fill": "random"})
    cutouts = [t for t in tf.transforms if isinstance(t, ProgressiveCutout)]
    assert len(cutouts) == 1 and set_progress(tf, 0.75) == 1 and cutouts[0].progress == 0.75
    names = [type(t).__name__ for t in tf.transforms]
    assert names.index("ProgressiveCutout") < names.index("Normalize")  # noise on [0, 1] values
    assert tf(torch.rand(3, 128, 64)).shape == (3, 64, 32)


def test_collate_stacks_equal_sizes_and_lists_different_ones():
    same = [(torch.zeros(3, 8, 4), i, 0, i) for i in range(3)]
    images, pids, camids, idx = collate_images(same)
    assert images.shape == (3, 3, 8, 4) and pids.tolist() == [0, 1, 2] and idx.dtype == torch.long
    mixed = [(torch.zeros(3, 8, 4), 0, 1, 0), (torch.zeros(3, 8, 6), 1, 2, 1)]
    images, pids, camids, _ = collate_images(mixed)
    assert isinstance(images, list) and [im.shape[-1] for im in images] == [4, 6] and camids.tolist() == [1, 2]


@pytest.mark.parametrize("call, match", [
    (lambda: build_aspect_transforms(0, train=True), "largest_side"),
    (lambda: build_aspect_transforms(64, train=True, padding=-1), "padding"),
    (lambda: build_aspect_transforms(64, train=True, flip=2.0), "flip"),
    (lambda: build_aspect_transforms(64, train=True, cutout_options={"p": 0.5}), "cutout_options"),
    (lambda: collate_images([]), "empty batch"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
