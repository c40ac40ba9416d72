"""reidlib.data.transforms: the three erasers (properties, determinism, fills, v2 pipelines) and
build_transforms."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import stats
from scipy.spatial import ConvexHull
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from reidlib.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ProgressiveCutout,
    RandomErasing,
    RandomPolygonErasing,
    build_transforms,
    cutout_max_area,
    progressive_cutout_mask,
    random_erasing_mask,
    random_polygon_erasing_mask,
    sample_erasing_box,
    sample_random_polygon,
    set_progress,
)

sizes = st.tuples(st.integers(8, 96), st.integers(8, 64))
seeds = st.integers(0, 2**31 - 1)


@st.composite
def scales(draw, low=0.01, high=0.6):
    a = draw(st.floats(low, high))
    b = draw(st.floats(low, high))
    return (min(a, b), max(a, b))


def bbox(mask: torch.Tensor) -> tuple[int, int, int, int]:
    rows, cols = mask.any(1).nonzero().ravel(), mask.any(0).nonzero().ravel()
    return int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------
# random erasing and cut-out: rectangles with the configured area
@settings(max_examples=60, deadline=None)
@given(size=sizes, scale=scales(), r1=st.floats(0.2, 1.0), seed=seeds)
def test_random_erasing_mask_is_one_rectangle_with_area_in_range(size, scale, r1, seed):
    h, w = size
    mask = random_erasing_mask(h, w, scale=scale, ratio=(r1, 1 / r1), generator=gen(seed))
    assert mask.shape == (h, w) and mask.dtype == torch.bool
    n = int(mask.sum())
    if n == 0:  # no box accepted in 100 draws: allowed, the image stays unchanged
        return
    top, left, bh, bw = bbox(mask)
    assert n == bh * bw, "the erased pixels are not one full rectangle"
    assert scale[0] <= n / (h * w) <= scale[1]


def test_random_erasing_area_and_aspect_are_uniform_as_in_zhong():
    """s_e ~ U(s_l, s_h) and r_e = H_e / W_e ~ U(r_1, 1/r_1): on a large image (rounding and
    rejection negligible) the rounded boxes follow both uniform laws (KS test, fixed seed)."""
    g = gen(0)
    H = W = 1000
    boxes = [sample_erasing_box(H, W, scale=(0.02, 0.2), ratio=(0.3, 1 / 0.3), generator=g) for _ in range(2000)]
    area = np.array([b.height * b.width / (H * W) for b in boxes])
    aspect = np.array([b.height / b.width for b in boxes])
    assert stats.kstest(area, stats.uniform(0.02, 0.18).cdf).pvalue > 1e-3
    assert stats.kstest(aspect, stats.uniform(0.3, 1 / 0.3 - 0.3).cdf).pvalue > 1e-3
    # the inverse aspect is *not* uniform: the test can tell height from width
    assert stats.kstest(1 / aspect, stats.uniform(0.3, 1 / 0.3 - 0.3).cdf).pvalue < 1e-6


@settings(max_examples=40, deadline=None)
@given(size=sizes, t=st.floats(0.0, 1.0), seed=seeds)
def test_cutout_region_area_grows_with_progress_and_stays_in_range(size, t, seed):
    h, w = size
    s_max = cutout_max_area(t, scale=(0.02, 0.4), start_max=0.1)
    assert 0.1 <= s_max <= 0.4 and s_max == pytest.approx(0.1 + t * 0.3)
    mask = progressive_cutout_mask(h, w, progress=t, generator=gen(seed))
    n = int(mask.sum())
    if n:
        assert n == bbox(mask)[2] * bbox(mask)[3]
        assert 0.02 <= n / (h * w) <= s_max


def test_cutout_largest_regions_follow_the_schedule():
    cut = ProgressiveCutout(p=1.0, seed=0)
    areas = {}
    for t in (0.0, 0.5, 1.0):
        cut.set_progress(t)
        assert cut.max_area == pytest.approx(cutout_max_area(t))
        areas[t] = max(float(cut.sample_mask(128, 64).float().mean()) for _ in range(300))
    for t, a in areas.items():
        assert cutout_max_area(t) * 0.8 < a <= cutout_max_area(t)
    assert areas[0.0] < areas[0.5] < areas[1.0]


def test_cutout_several_regions_union():
    m = progressive_cutout_mask(128, 64, progress=1.0, num_regions=3, generator=gen(1))
    assert 0.02 <= m.float().mean() <= 3 * 0.4


# ---------------------------------------------------------------------------------------------
# random polygon erasing
def hull_signed_distance(hull_points: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """max over the hull's facets of (normal . x + offset): < 0 strictly inside, > 0 outside."""
    eq = ConvexHull(hull_points).equations
    return (xy @ eq[:, :2].T + eq[:, 2]).max(axis=1)


@settings(max_examples=60, deadline=None)
@given(size=sizes, n=st.integers(3, 60), scale=scales(0.02, 0.45), seed=seeds)
def test_random_polygon_is_convex_inside_its_box_and_rasterised_right(size, n, scale, seed):
    h, w = size
    poly = sample_random_polygon(h, w, n=n, scale=scale, r=0.35, generator=gen(seed))
    if poly is None:
        return
    b = poly.box
    assert 0 <= b.top and b.top + b.height <= h and 0 <= b.left and b.left + b.width <= w
    assert scale[0] <= b.height * b.width / (h * w) <= scale[1]
    pts = poly.points
    assert pts.shape == (n, 2)
    np.testing.assert_allclose(pts[0], [b.left + b.width / 2, b.top + b.height / 2])
    assert (pts[:, 0] >= b.left).all() and (pts[:, 0] <= b.left + b.width).all()
    assert (pts[:, 1] >= b.top).all() and (pts[:, 1] <= b.top + b.height).all()
    # convex and counter-clockwise: every turn is a left turn
    v = poly.hull
    e = np.roll(v, -1, axis=0) - v
    cross = e[:, 0] * np.roll(e, -1, axis=0)[:, 1] - e[:, 1] * np.roll(e, -1, axis=0)[:, 0]
    assert len(v) >= 3 and (cross > 0).all()
    assert (hull_signed_distance(v, pts) <= 1e-9).all(), "a sampled point lies outside the hull"
    # the rasterised mask: pixel centres clearly inside are erased, clearly outside are not
    mask = poly.mask(h, w).numpy()
    ii, jj = np.mgrid[0:h, 0:w]
    centres = np.stack([jj.ravel() + 0.5, ii.ravel() + 0.5], axis=1)
    d = hull_signed_distance(v, centres).reshape(h, w)
    assert mask[d < -1e-6].all() and not mask[d > 1e-6].any()
    box = b.mask(h, w).numpy()
    assert not (mask & ~box).any(), "mask leaves its box"
    assert 0.0 <= mask.mean() <= b.height * b.width / (h * w) <= scale[1]


def test_polygon_covers_more_of_its_box_as_n_grows():
    """HENet, Sec. 4.4: RPE tends to RE (the whole box) as the number of points grows."""
    def coverage(n: int) -> float:
        g = gen(3)
        polys = [sample_random_polygon(128, 64, n=n, generator=g) for _ in range(200)]
        return float(np.mean([p.mask(128, 64).sum().item() / (p.box.height * p.box.width) for p in polys]))

    c = [coverage(n) for n in (3, 10, 40)]
    assert c[0] < c[1] < c[2] < 1.0 and c[2] > 0.7


def test_polygon_rejects_bad_parameters():
    with pytest.raises(ValueError, match="n .* >= 3"):
        RandomPolygonErasing(n=2)
    with pytest.raises(ValueError, match="r "):
        random_polygon_erasing_mask(32, 16, r=1.5)
    with pytest.raises(ValueError, match="sl, sh"):
        RandomPolygonErasing(sl=0.5, sh=0.1)


# ---------------------------------------------------------------------------------------------
# the transforms: determinism, probability, fills, batches, v2 pipelines
ERASERS = {
    "random_erasing": lambda **kw: RandomErasing(**kw),
    "progressive_cutout": lambda **kw: ProgressiveCutout(progress=1.0, **kw),
    "random_polygon_erasing": lambda **kw: RandomPolygonErasing(**kw),
}


@pytest.mark.parametrize("name", ERASERS)
@settings(max_examples=15, deadline=None)
@given(seed=seeds)
def test_erasers_are_deterministic_under_a_seed(name, seed):
    x = torch.rand(2, 3, 64, 32, generator=gen(99))
    a, b = ERASERS[name](p=0.7, seed=seed), ERASERS[name](p=0.7, seed=seed)
    outs_a = [a.forward_with_mask(x) for _ in range(3)]
    outs_b = [b.forward_with_mask(x) for _ in range(3)]
    for (xa, ma), (xb, mb) in zip(outs_a, outs_b):
        assert torch.equal(xa, xb) and torch.equal(ma, mb)
    c = ERASERS[name](p=0.7, generator=gen(seed))
    assert all(torch.equal(c.forward_with_mask(x)[1], m) for _, m in outs_a)


@pytest.mark.parametrize("name", ERASERS)
def test_global_generator_is_used_without_seed(name):
    x = torch.rand(3, 64, 32)
    t = ERASERS[name](p=1.0)
    torch.manual_seed(5)
    m1 = t.forward_with_mask(x)[1]
    torch.manual_seed(5)
    m2 = t.forward_with_mask(x)[1]
    m3 = t.forward_with_mask(x)[1]
    assert torch.equal(m1, m2) and m1.any() and not torch.equal(m2, m3)


@pytest.mark.parametrize("name", ERASERS)
def test_mask_marks_exactly_the_changed_pixels_and_batches_draw_per_sample(name):
    x = torch.rand(6, 3, 128, 64, generator=gen(0))
    t = ERASERS[name](p=1.0, seed=1)
    out, mask = t.forward_with_mask(x)
    assert mask.shape == (6, 128, 64) and torch.equal(t.last_mask, mask)
    assert torch.equal(out[~mask.unsqueeze(1).expand_as(x)], x[~mask.unsqueeze(1).expand_as(x)])
    assert (mask.flatten(1).sum(1) > 0).all()
    assert len({m.numpy().tobytes() for m in mask}) == 6, "samples of a batch share a mask"
    single, m1 = t.forward_with_mask(x[0])
    assert single.shape == (3, 128, 64) and m1.shape == (128, 64)


@pytest.mark.parametrize("name", ERASERS)
def test_probability(name):
    x = torch.rand(400, 3, 64, 32)
    assert not ERASERS[name](p=0.0, seed=0).forward_with_mask(x)[1].any()
    rate = ERASERS[name](p=0.5, seed=0).forward_with_mask(x)[1].flatten(1).any(1).float().mean()
    assert 0.42 < rate < 0.58


@pytest.mark.parametrize("cls, fill, expect", [
    (RandomErasing, "zero", lambda v: (v == 0).all()),
    (RandomErasing, "mean", lambda v: torch.allclose(v, torch.tensor(IMAGENET_MEAN)[:, None].expand_as(v))),
    (RandomPolygonErasing, "constant", lambda v: torch.allclose(v, torch.tensor(IMAGENET_MEAN)[:, None].expand_as(v))),
    (RandomErasing, "random", lambda v: v.min() >= 0 and v.max() <= 1 and v.std() > 0.2),
    (RandomPolygonErasing, "random", lambda v: v.min() >= 0 and v.max() <= 1 and v.std() > 0.2),
    (ProgressiveCutout, "random", lambda v: v.min() >= 0 and v.max() <= 1 and v.std() > 0.2),
])
def test_fills(cls, fill, expect):
    x = torch.full((3, 128, 64), 0.25)
    out, mask = cls(p=1.0, fill=fill, seed=4).forward_with_mask(x)
    erased = out[:, mask]  # (3, n)
    assert erased.shape[1] > 0 and expect(erased)


def test_bad_fill_and_inputs_are_explained():
    with pytest.raises(ValueError, match="fill must be one of"):
        RandomErasing(fill="blue")
    with pytest.raises(ValueError, match="scale"):
        RandomErasing(scale=(0.5, 0.1))
    with pytest.raises(ValueError, match="p must be a probability"):
        RandomPolygonErasing(p=1.5)
    with pytest.raises(ValueError, match="generator or seed"):
        RandomErasing(seed=1, generator=gen(1))
    with pytest.raises(ValueError, match="the image has 4 channels"):
        RandomErasing(p=1, fill="mean", seed=0)(torch.rand(4, 32, 16))
    img = Image.new("RGB", (16, 32))
    with pytest.raises(TypeError, match="ToImage"):
        RandomErasing(p=1)(img)
    with pytest.raises(TypeError, match="ToDtype"):
        RandomErasing(p=1)(torch.zeros(3, 32, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="progress"):
        ProgressiveCutout().set_progress(1.2)


def test_erasers_in_a_v2_pipeline_keep_types_and_pass_masks_through():
    pipe = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), RandomErasing(p=1, seed=0),
                       RandomPolygonErasing(p=1, seed=0), ProgressiveCutout(p=1, seed=0, progress=1.0)])
    img = Image.fromarray(np.full((64, 32, 3), 200, dtype=np.uint8))
    seg = tv_tensors.Mask(torch.ones(64, 32, dtype=torch.uint8))
    out = pipe({"image": img, "parts": seg})
    assert isinstance(out["image"], tv_tensors.Image) and out["image"].shape == (3, 64, 32)
    assert (out["image"] != 200 / 255).any()
    assert torch.equal(out["parts"], seg)


# ---------------------------------------------------------------------------------------------
# progress reaches DataLoader workers
class _AreaDataset(Dataset):
    def __init__(self, cutout: ProgressiveCutout) -> None:
        self.cutout = cutout

    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int) -> float:
        torch.manual_seed(i)
        return float(self.cutout.forward_with_mask(torch.rand(3, 64, 32))[1].float().mean())


def test_set_progress_reaches_persistent_workers():
    pipe = v2.Compose([ProgressiveCutout(p=1.0, start_max=0.05)])
    loader = DataLoader(_AreaDataset(pipe.transforms[0]), batch_size=40, num_workers=1, persistent_workers=True)
    early = next(iter(loader))
    assert set_progress(pipe, 1.0) == 1
    late = next(iter(loader))
    assert early.max() <= 0.05 < late.max()


# ---------------------------------------------------------------------------------------------
# the standard pipeline
def test_build_transforms_train_and_test():
    img = Image.fromarray(np.full((100, 40, 3), 128, dtype=np.uint8))
    test = build_transforms(64, 32, train=False)
    y = test(img)
    assert y.shape == (3, 64, 32) and y.dtype == torch.float32
    expect = (128 / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(y[:, 10, 10], expect)
    assert not any(isinstance(t, (RandomErasing, v2.RandomHorizontalFlip)) for t in test.transforms)

    train = build_transforms(64, 32, train=True, random_erasing=0.5, progressive_cutout=0.3,
                             random_polygon_erasing=0.4, polygon_options={"n": 10})
    kinds = [type(t) for t in train.transforms]
    assert kinds.index(v2.ToDtype) < kinds.index(RandomErasing) < kinds.index(v2.Normalize)
    expected = {RandomErasing, RandomPolygonErasing, ProgressiveCutout, v2.RandomHorizontalFlip, v2.RandomCrop}
    assert expected <= set(kinds)
    rpe = train.transforms[kinds.index(RandomPolygonErasing)]
    assert rpe.p == 0.4 and rpe.n == 10
    torch.manual_seed(0)
    outs = torch.stack([train(img) for _ in range(20)])
    assert outs.shape == (20, 3, 64, 32)
    assert (outs != y).flatten(1).any(1).float().mean() > 0.3  # pad-crop and erasing changed most
    assert set_progress(train, 0.5) == 1
    plain = build_transforms(64, 32, train=True, random_erasing=0.0, flip=0.0, padding=0)
    assert torch.equal(plain(img), y)
    with pytest.raises(ValueError, match="random_erasing"):
        build_transforms(64, 32, train=True, random_erasing=2.0)


def test_a_misaligned_box_is_the_plain_one_shifted_with_its_edges_replicated():
    from reidlib.data.transforms import build_misaligned_transforms

    rows = torch.arange(64, dtype=torch.uint8).repeat_interleave(2).view(1, 128, 1).expand(3, 128, 64).contiguous()
    plain = build_transforms(128, 64, train=False)(rows)
    assert torch.equal(build_misaligned_transforms(128, 64, 0.0)(rows), plain)
    torch.manual_seed(0)
    shifted = [build_misaligned_transforms(128, 64, 0.25)(rows) for _ in range(20)]
    offsets = set()
    for out in shifted:
        # every output row is a row of the plain image (the first or last one in the replicated border)
        match = [int(torch.nonzero((plain[0, :, 0] - out[0, r, 0]).abs() < 1e-6)[0]) for r in (40, 41, 80)]
        offsets.add(match[2] - 80)
        assert match[1] - match[0] in (0, 1, 2)
    assert len(offsets) > 1 and all(abs(o) <= 32 for o in offsets), "offsets of up to a quarter of 128 rows, drawn"
    for bad in (-0.1, 1.0, True, "0.2"):
        with pytest.raises(ValueError, match="misalignment amount"):
            build_misaligned_transforms(128, 64, bad)


def test_occluded_boxes_erase_one_region_of_the_asked_area_on_every_image():
    from reidlib.data.transforms import build_occluded_transforms

    x = torch.full((3, 192, 64), 200, dtype=torch.uint8)
    plain = build_transforms(192, 64, train=False)(x)
    torch.manual_seed(0)
    for eraser, low, high in (("random_erasing", 0.27, 0.33), ("rpe", 0.05, 0.3)):
        tf = build_occluded_transforms(192, 64, eraser, 0.3)
        shares = torch.tensor([((tf(x) - plain).abs().sum(0) > 1e-4).float().mean() for _ in range(30)])
        assert (shares >= low).all() and (shares <= high).all(), (eraser, shares)  # every image, within 10 %
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="occlusion area"):
            build_occluded_transforms(192, 64, "rpe", bad)
    with pytest.raises(ValueError, match="eraser must be"):
        build_occluded_transforms(192, 64, "progressive_cutout", 0.3)
