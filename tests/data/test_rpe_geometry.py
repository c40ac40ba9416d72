"""reidlib.data.rpe_geometry: the hull/box area of HENet's random polygons against exact results
(11/144 for a triangle, Efron's identity), monotonicity in n, the two point laws, bad arguments."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from reidlib.data.rpe_geometry import (
    LAWS,
    TRIANGLE_MEAN_AREA,
    missed_area_asymptote,
    polygon_area_ratio,
    sample_polygon_areas,
)


def table(**kw) -> pd.DataFrame:
    return pd.DataFrame(polygon_area_ratio(**kw)).set_index(["law", "n"])


def test_triangle_of_three_uniform_points_covers_11_144_of_its_box():
    t = table(ns=(3,), draws=3000, height=96, width=64, seed=1)
    uni, cen = t.loc[("uniform", 3)], t.loc[("centre", 3)]
    assert abs(uni["hull/box"] - TRIANGLE_MEAN_AREA) < 4 * uni["hull/box se"]
    # the public code's law (centre + 2 points) is a different, smaller triangle: the check can tell them apart
    assert TRIANGLE_MEAN_AREA - cen["hull/box"] > 10 * cen["hull/box se"]
    assert (t["vertices"] == 3).all()


def test_efron_identity_missed_area_equals_vertices_of_one_more_point():
    # E[1 - area(hull_n)/area(box)] = E[V_{n+1}] / (n + 1) for n uniform points
    t = table(ns=(10, 11), draws=1500, height=96, width=64, seed=2)
    missed, se = 1 - t.loc[("uniform", 10), "hull/box"], t.loc[("uniform", 10), "hull/box se"]
    v, v_se = t.loc[("uniform", 11), "vertices"], t.loc[("uniform", 11), "vertices se"]
    assert abs(missed - v / 11) < 4 * (se + v_se / 11)


def test_ratio_grows_with_n_towards_one_like_the_asymptote():
    ns = (3, 6, 20, 60, 200)
    t = table(ns=ns, draws=400, height=96, width=64, seed=3)
    for law in LAWS:
        ratio = t.loc[law, "hull/box"].to_numpy()
        assert (np.diff(ratio) > 0).all() and ratio[-1] < 1
        erased = t.loc[law, "hull/image"].to_numpy()
        assert (np.diff(erased) > 0).all() and (erased < t.loc[law, "box/image"].to_numpy()).all()
    # at n = 200 the missed area is within 15 % of its leading-order asymptote
    missed = 1 - t.loc[("uniform", 200), "hull/box"]
    assert abs(missed / missed_area_asymptote(200) - 1) < 0.15


def test_laws_share_their_boxes_and_their_hulls_nest():
    a = sample_polygon_areas(96, 64, ns=(3, 4, 20), draws=200, generator=torch.Generator().manual_seed(4))
    assert a.box_area.shape == (200,) and a.hull_area["uniform"].shape == (200, 3)
    assert (0.02 <= a.box_fraction).all() and (a.box_fraction <= 0.45).all()
    for law in LAWS:
        assert (a.hull_area[law] <= a.box_area[:, None] + 1e-9).all()
        assert (np.diff(a.hull_area[law], axis=1) >= -1e-9).all()  # prefixes: more points, larger hull
    # the centre law with n points contains the uniform law's n - 1 points: its hull is at least as large
    assert (a.hull_area["centre"][:, 1] >= a.hull_area["uniform"][:, 0] - 1e-9).all()
    assert (a.hull_area["centre"][:, 1] > a.hull_area["uniform"][:, 0] + 1e-9).any()


def test_seeded_runs_repeat():
    assert polygon_area_ratio(ns=(5,), draws=20, seed=7) == polygon_area_ratio(ns=(5,), draws=20, seed=7)
    assert polygon_area_ratio(ns=(5,), draws=20, seed=7) != polygon_area_ratio(ns=(5,), draws=20, seed=8)


def test_asymptote_formula():
    n = np.array([1, 10, 100])
    np.testing.assert_allclose(missed_area_asymptote(n), 8 / 3 * np.log(n + 1) / (n + 1))
    np.testing.assert_allclose(missed_area_asymptote(n, sides=3), 0.75 * missed_area_asymptote(n))


@pytest.mark.parametrize("call, match", [
    (lambda: sample_polygon_areas(ns=()), "ns"),
    (lambda: sample_polygon_areas(ns=(2, 5)), "ns"),
    (lambda: sample_polygon_areas(ns=(3.5,)), "ns"),
    (lambda: sample_polygon_areas(ns="345"), "ns"),
    (lambda: sample_polygon_areas(ns=(3,), draws=1), "draws"),
    (lambda: sample_polygon_areas(ns=(3,), draws=2, r=1.5), "r "),
    (lambda: polygon_area_ratio(ns=(3,), draws=2, scale=(0.5, 0.1)), "scale"),
    (lambda: missed_area_asymptote(0), "n "),
    (lambda: missed_area_asymptote(10, sides=2), "sides"),
])
def test_bad_arguments_raise_naming_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_no_box_raises():
    # a 2 x 2 image has no box of area fraction in [0.3, 0.31]
    with pytest.raises(RuntimeError, match="no box accepted"):
        sample_polygon_areas(2, 2, ns=(3,), draws=2, scale=(0.3, 0.31), attempts=3)
