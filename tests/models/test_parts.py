"""Part features (reidlib.models.parts): stripes, MGO's overlapping windows, PCB/MGN equal splits."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.models.parts import (
    POOLS,
    Stripes,
    Windows,
    contiguous_windows,
    equal_split_rows,
    horizontal_stripes,
    mgo_windows,
    pool_rows,
    stripe_rows,
    window_rows,
    windows,
)


def fmap(b: int, c: int, h: int, w: int, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(b, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def pooled_by_hand(x: torch.Tensor, start: int, stop: int, pool: str) -> torch.Tensor:
    """One region ``x[:, :, start:stop]`` pooled with loops over its rows and columns, ``(B, C)`` or ``(B, 2C)``."""
    b, c, _, w = x.shape
    avg = torch.zeros(b, c, dtype=x.dtype)
    mx = torch.full((b, c), float("-inf"), dtype=x.dtype)
    for r in range(start, stop):
        for col in range(w):
            avg += x[:, :, r, col]
            mx = torch.maximum(mx, x[:, :, r, col])
    avg /= (stop - start) * w
    return {"avg": avg, "max": mx, "avg+max": avg + mx, "max|avg": torch.cat([mx, avg], 1)}[pool]


# ---------------------------------------------------------------- stripes


def test_stripe_rows_are_equal_and_cover_the_map():
    assert stripe_rows(24, 6) == [(0, 4), (4, 8), (8, 12), (12, 16), (16, 20), (20, 24)]
    assert stripe_rows(12, 4) == [(0, 3), (3, 6), (6, 9), (9, 12)]
    assert stripe_rows(5, 1) == [(0, 5)]


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 3), c=st.integers(1, 4), parts=st.integers(1, 6), rows=st.integers(1, 3),
       w=st.integers(1, 4), pool=st.sampled_from(POOLS), seed=st.integers(0, 10_000))
def test_horizontal_stripes_pool_each_stripe_as_by_hand(b, c, parts, rows, w, pool, seed):
    x = fmap(b, c, parts * rows, w, seed, torch.float64)
    out = horizontal_stripes(x, parts, pool)
    width = 2 * c if pool == "max|avg" else c
    assert out.shape == (b, parts, width)
    for i in range(parts):
        torch.testing.assert_close(out[:, i], pooled_by_hand(x, i * rows, (i + 1) * rows, pool))
    torch.testing.assert_close(Stripes(parts, pool)(x), out)


def test_stripes_mean_is_the_slice_mean_and_adaptive_pooling_when_divisible():
    x = fmap(2, 3, 24, 8)
    out = horizontal_stripes(x, 6)
    torch.testing.assert_close(out[:, 2], x[:, :, 8:12].mean((2, 3)))
    torch.testing.assert_close(out, F.adaptive_avg_pool2d(x, (6, 1)).squeeze(-1).transpose(1, 2))
    torch.testing.assert_close(horizontal_stripes(x, 4, "max"), F.adaptive_max_pool2d(x, (4, 1)).squeeze(-1).mT)
    torch.testing.assert_close(horizontal_stripes(x, 1), x.mean((2, 3)).unsqueeze(1))  # one stripe = GAP


def test_stripes_gradcheck():
    x = fmap(2, 2, 6, 3, seed=3, dtype=torch.float64).requires_grad_(True)
    for pool in POOLS:
        assert torch.autograd.gradcheck(lambda t, pool=pool: horizontal_stripes(t, 3, pool), (x,))


@pytest.mark.parametrize(("height", "parts"), [(8, 6), (6, 4), (4, 6)])
def test_stripes_not_divisible_error_names_h_parts_and_the_fix(height, parts):
    x = torch.zeros(1, 2, height, 4)
    message = (rf"the feature map.s height H={height} is not divisible by parts={parts}.*choose an input height such "
               rf"that the last feature map's H is a multiple of {parts}.*multiple of {16 * parts}")
    with pytest.raises(ValueError, match=r"^horizontal_stripes: " + message):
        horizontal_stripes(x, parts)
    with pytest.raises(ValueError, match=r"^Stripes: " + message):
        Stripes(parts)(x)


def test_stripes_bad_arguments():
    with pytest.raises(ValueError, match=r"horizontal_stripes: expected a feature map of shape \(B, C, H, W\)"):
        horizontal_stripes(torch.zeros(2, 24), 6)
    with pytest.raises(ValueError, match=r"pool must be one of \('avg', 'max', 'avg\+max', 'max\|avg'\), got 'gem'"):
        Stripes(6, "gem")
    with pytest.raises(ValueError, match="Stripes: parts must be an integer >= 1, got 0"):
        Stripes(0)
    with pytest.raises(ValueError, match=r"row range \(2, 2\) must satisfy 0 <= start < stop <= H=4"):
        pool_rows(torch.zeros(1, 1, 4, 1), [(2, 2)])
    with pytest.raises(ValueError, match="at least one"):
        pool_rows(torch.zeros(1, 1, 4, 1), [])
    assert "parts=4, pool='max'" in repr(Stripes(4, "max"))
    assert not list(Stripes(4).parameters())


# ---------------------------------------------------------------- MGO windows


# The fusion paper's table (spec 003, Sec. 1.5), stripes 1-based and inclusive: level -> windows.
PAPER_WINDOWS = {
    1: [(1, 6)],
    2: [(1, 5), (2, 6)],
    3: [(1, 4), (2, 5), (3, 6)],
    4: [(1, 3), (2, 4), (3, 5), (4, 6)],
    5: [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6)],
    6: [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6)],
}


@pytest.mark.parametrize("level", range(1, 7))
def test_contiguous_windows_are_the_papers_table(level):
    got = contiguous_windows(6, level)
    assert [(a + 1, b) for a, b in got] == PAPER_WINDOWS[level]  # 0-based half-open -> 1-based inclusive
    assert all(b - a == 7 - level for a, b in got)


def test_mgo_has_21_windows_with_the_papers_heights():
    all_windows = mgo_windows(6)
    assert len(all_windows) == 21 == 1 + 2 + 3 + 4 + 5 + 6
    assert [(p, a + 1, b) for p, a, b in all_windows] == [(p, a, b) for p, ws in PAPER_WINDOWS.items() for a, b in ws]
    heights = {p: {b - a for q, a, b in window_rows(24) if q == p} for p in range(1, 7)}
    assert heights == {1: {24}, 2: {20}, 3: {16}, 4: {12}, 5: {8}, 6: {4}}  # rows at 24x8


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 9))
def test_window_arithmetic_for_any_number_of_stripes(k):
    all_windows = mgo_windows(k)
    assert len(all_windows) == k * (k + 1) // 2
    assert len(set(all_windows)) == len(all_windows)
    for p in range(1, k + 1):
        level = [(a, b) for q, a, b in all_windows if q == p]
        assert level == contiguous_windows(k, p)
        assert len(level) == p and all(b - a == k - p + 1 and 0 <= a < b <= k for a, b in level)
        assert {s for a, b in level for s in range(a, b)} == set(range(k))  # each level covers every stripe


def test_windows_values_against_slices():
    x = fmap(2, 3, 12, 4, seed=1)
    out = Windows(6)(x)
    assert out.shape == (2, 21, 3)
    torch.testing.assert_close(out[:, 0], x.mean((2, 3)))  # level 1: the global feature
    torch.testing.assert_close(out[:, 1], x[:, :, 0:10].mean((2, 3)))  # level 2: stripes 1-5 (2 rows each)
    torch.testing.assert_close(out[:, 2], x[:, :, 2:12].mean((2, 3)))  # level 2: stripes 2-6
    torch.testing.assert_close(out[:, 15:], horizontal_stripes(x, 6))  # level 6: the single stripes
    for i, (_, a, b) in enumerate(window_rows(12)):
        torch.testing.assert_close(out[:, i], pooled_by_hand(x, a, b, "avg"))
    cat = windows(x, pool="max|avg")
    assert cat.shape == (2, 21, 6)
    torch.testing.assert_close(cat[:, 5, :3], x[:, :, 4:12].amax((2, 3)))  # [GMP; GAP], MPFE's order
    torch.testing.assert_close(cat[:, 5, 3:], x[:, :, 4:12].mean((2, 3)))


def test_windows_levels_and_slices():
    module = Windows(6)
    assert module.num_parts == 21 and len(module.levels) == 21
    assert module.levels[:6] == (1, 2, 2, 3, 3, 3)
    for p in range(1, 7):
        sl = module.level_slice(p)
        assert sl.stop - sl.start == p and set(module.levels[sl]) == {p}
    with pytest.raises(ValueError, match="level must be in 1..6, got 7"):
        module.level_slice(7)
    assert "scheme='mgo'" in repr(module) and not list(module.parameters())


def test_windows_errors():
    with pytest.raises(ValueError, match=r"^Windows \(MGO windows\): the feature map's height H=8 is not divisible "
                                         r"by parts=6.*multiple of 96"):
        Windows(6)(torch.zeros(1, 2, 8, 4))  # 128x64 input at stride 16
    with pytest.raises(ValueError, match="contiguous_windows: level must be in 1..num_stripes=6, got level=7"):
        contiguous_windows(6, 7)
    with pytest.raises(ValueError, match="scheme must be 'mgo'"):
        Windows(6, scheme="mgn")
    with pytest.raises(ValueError, match="window_rows: scheme must be 'mgo'"):
        window_rows(24, 6, scheme="mgn")


# ---------------------------------------------------------------- equal splits per level (PCB/MGN): not MGO


def test_equal_split_also_has_21_parts_but_other_windows():
    equal, mgo = window_rows(60, scheme="equal"), window_rows(60, scheme="mgo")
    assert len(equal) == len(mgo) == 21
    for p in range(1, 7):
        eq = [(a, b) for q, a, b in equal if q == p]
        assert eq == [(i * 60 // p, (i + 1) * 60 // p) for i in range(p)]  # p equal, disjoint parts
        mg = [(a, b) for q, a, b in mgo if q == p]
        assert (eq == mg) == (p in (1, 6)), p  # they agree only on the whole map and on the single stripes
    assert [(a, b) for q, a, b in mgo if q == 2] == [(0, 50), (10, 60)]
    assert [(a, b) for q, a, b in equal if q == 2] == [(0, 30), (30, 60)]


def test_equal_split_outputs_differ_from_mgo():
    x = fmap(2, 3, 60, 2, seed=5)
    a, b = Windows(6, scheme="mgo")(x), Windows(6, scheme="equal")(x)
    assert a.shape == b.shape == (2, 21, 3)
    same = [torch.allclose(a[:, i], b[:, i]) for i in range(21)]
    assert same == [i == 0 or i >= 15 for i in range(21)]
    torch.testing.assert_close(b[:, 1], x[:, :, :30].mean((2, 3)))


def test_equal_split_exact_error_and_adaptive_bins():
    with pytest.raises(ValueError, match=r"equal split, level 5\): the feature map's height H=24 is not divisible by "
                                         r"parts=5.*multiple of 60.*exact=False"):
        window_rows(24, scheme="equal")
    x = fmap(2, 3, 24, 4, seed=2)
    out = Windows(6, scheme="equal", exact=False)(x)
    module = Windows(6, scheme="equal", exact=False)
    for p in range(1, 7):
        torch.testing.assert_close(out[:, module.level_slice(p)],
                                   F.adaptive_avg_pool2d(x, (p, 1)).squeeze(-1).transpose(1, 2))
    assert equal_split_rows(24, 5, exact=False) == [(0, 5), (4, 10), (9, 15), (14, 20), (19, 24)]  # overlapping
    with pytest.raises(ValueError, match="parts=6 is more than the map's H=4 rows"):
        equal_split_rows(4, 6, exact=False)


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 40), parts=st.integers(1, 8))
def test_adaptive_bins_match_torch(h, parts):
    if parts > h:
        return
    x = torch.arange(h, dtype=torch.float64).view(1, 1, h, 1)
    expected = F.adaptive_avg_pool2d(x, (parts, 1)).flatten()
    got = torch.tensor([x[0, 0, a:b, 0].mean().item() for a, b in equal_split_rows(h, parts, exact=False)],
                       dtype=torch.float64)
    torch.testing.assert_close(got, expected)
