"""The geometry of HENet's Random Polygon Erasing (Zhang et al., Sec. 3.3, Algorithm 1): how much of its
box, and of the image, the erased convex hull covers.

Algorithm 1 draws a box (area ``S_e = U(s_l, s_h) S``, aspect ``r_e = U(r, 1/r)``) and erases the
convex hull of points in it. Two point laws are in circulation:

* ``"uniform"`` — Algorithm 1, lines 16-19: ``n`` points uniform in the box;
* ``"centre"`` — the authors' public code and :func:`~reidlib.data.transforms.sample_random_polygon`:
  the box centre ``P_c`` and ``n - 1`` points uniform in the box.

Both come from the library's sampler. One draw is ``sample_random_polygon(n=n_max + 1)``: its
``points[0]`` is the centre and ``points[1:]`` are ``n_max`` i.i.d. uniform points in the box (the box
is drawn before the points, so its law does not depend on ``n``). Prefixes of an i.i.d. sequence are
i.i.d., so ``points[:n]`` is a draw of the ``"centre"`` law with ``n`` points and ``points[1:n + 1]`` one
of the ``"uniform"`` law, for every ``n <= n_max`` at once (the estimates for different ``n`` share
their draws, so they are correlated across ``n``; each one alone is an ordinary Monte-Carlo mean).
Areas are those of the continuous hull (``scipy.spatial.ConvexHull``), not of its rasterised mask.

Two exact facts the estimates can be checked against:

* for ``n = 3`` uniform points in a parallelogram the mean triangle area is ``11/144`` of the
  parallelogram's (:data:`TRIANGLE_MEAN_AREA`);
* Efron's identity, ``E[area(K) - area(hull_n)] = area(K) E[V_{n+1}] / (n + 1)`` with ``V_m`` the
  number of hull vertices of ``m`` uniform points in ``K``; with Rényi–Sulanke's
  ``E[V_m] ~ (2k/3) log m`` for a convex polygon with ``k`` sides it gives the leading-order missed
  fraction :func:`missed_area_asymptote`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import ConvexHull

from .transforms import sample_random_polygon

__all__ = ["LAWS", "TRIANGLE_MEAN_AREA", "PolygonAreas", "missed_area_asymptote", "polygon_area_ratio",
           "sample_polygon_areas"]

#: The two point laws: Algorithm 1's ``n`` uniform points, and the public code's centre + ``n - 1``.
LAWS = ("uniform", "centre")
#: Mean area of the triangle of three uniform points in a parallelogram, as a fraction of its area.
TRIANGLE_MEAN_AREA = 11 / 144


def _check_count(name: str, value, low: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} ({what}) must be an int >= {low}, got {value!r}")
    return int(value)


def _mean_se(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over axis 0."""
    return x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(x.shape[0])


@dataclass(frozen=True)
class PolygonAreas:
    """``D`` Monte-Carlo draws for the point counts ``ns`` ``(K,)`` in an image of ``height x width``:
    ``box_area`` ``(D,)`` and, per law in :data:`LAWS`, ``hull_area[law]`` ``(D, K)`` (pixels²) and
    ``vertices[law]`` ``(D, K)`` (the hull's vertex count)."""

    ns: np.ndarray
    height: int
    width: int
    box_area: np.ndarray
    hull_area: dict[str, np.ndarray]
    vertices: dict[str, np.ndarray]

    def ratio(self, law: str) -> np.ndarray:
        """``(D, K)`` hull area / box area."""
        return self.hull_area[law] / self.box_area[:, None]

    def erased_fraction(self, law: str) -> np.ndarray:
        """``(D, K)`` hull area / image area: what RPE erases when it fires."""
        return self.hull_area[law] / (self.height * self.width)

    @property
    def box_fraction(self) -> np.ndarray:
        """``(D,)`` box area / image area: what a rectangle with the same box law (RE-like) erases."""
        return self.box_area / (self.height * self.width)

    def summary(self) -> list[dict[str, float]]:
        """Monte-Carlo means and standard errors, one row per law and ``n``: ``hull/box``, ``hull/image``
        (RPE's erased fraction), ``vertices``, and ``box/image`` (a rectangle's, the same in every row),
        each with its ``... se``."""
        box, box_se = _mean_se(self.box_fraction)
        rows = []
        for law in LAWS:
            stats = {name: _mean_se(x) for name, x in (("hull/box", self.ratio(law)),
                                                       ("hull/image", self.erased_fraction(law)),
                                                       ("vertices", self.vertices[law].astype(float)))}
            for k, n in enumerate(self.ns):
                row: dict[str, float] = {"law": law, "n": int(n)}
                for name, (m, se) in stats.items():
                    row[name], row[f"{name} se"] = float(m[k]), float(se[k])
                row["box/image"], row["box/image se"] = float(box), float(box_se)
                rows.append(row)
        return rows


def sample_polygon_areas(height: int = 384, width: int = 128, *, ns: Sequence[int] = (3, 4, 6, 10, 20, 30, 40, 100),
                         draws: int = 2000, scale: Sequence[float] = (0.02, 0.45), r: float = 0.35,
                         generator: torch.Generator | None = None, attempts: int = 100) -> PolygonAreas:
    """Draw ``draws`` polygons of HENet's Algorithm 1 with :func:`sample_random_polygon` and measure, for
    every ``n`` in ``ns`` and both point laws (module docstring), the box and the hull.

    Raises ``ValueError`` naming the parameter for bad ``ns`` or ``draws`` (the sampler checks the
    rest) and ``RuntimeError`` if a box draw fails ``attempts`` times."""
    if isinstance(ns, (str, bytes)) or not isinstance(ns, (Sequence, np.ndarray)) or len(ns) == 0:
        raise ValueError(f"ns (the numbers of points) must be a non-empty sequence of ints >= 3, got {ns!r}")
    ns_arr = np.array([_check_count("ns", n, 3, "each number of points") for n in ns])
    draws = _check_count("draws", draws, 2, "a standard error needs two draws")
    n_max = int(ns_arr.max())
    box_area = np.empty(draws)
    hull_area = {law: np.empty((draws, ns_arr.size)) for law in LAWS}
    vertices = {law: np.empty((draws, ns_arr.size), dtype=int) for law in LAWS}
    for i in range(draws):
        poly = sample_random_polygon(height, width, n=n_max + 1, scale=scale, r=r, generator=generator,
                                     attempts=attempts)
        if poly is None:
            raise RuntimeError(f"no box accepted in {attempts} attempts ({height}x{width}, scale={scale}, r={r})")
        box_area[i] = poly.box.height * poly.box.width
        for k, n in enumerate(ns_arr):
            for law, pts in (("uniform", poly.points[1:n + 1]), ("centre", poly.points[:n])):
                hull = ConvexHull(pts)
                hull_area[law][i, k] = hull.volume  # in 2-D, ``volume`` is the area
                vertices[law][i, k] = len(hull.vertices)
    return PolygonAreas(ns_arr, int(height), int(width), box_area, hull_area, vertices)


def polygon_area_ratio(ns: Sequence[int] = (3, 4, 6, 10, 20, 30, 40, 100), draws: int = 2000, *, height: int = 384,
                       width: int = 128, seed: int = 0, **options) -> list[dict[str, float]]:
    """:meth:`PolygonAreas.summary` of :func:`sample_polygon_areas` drawn with a generator seeded by ``seed``
    (``options``: ``scale``, ``r``, ``attempts``)."""
    g = torch.Generator().manual_seed(int(seed))
    return sample_polygon_areas(height, width, ns=ns, draws=draws, generator=g, **options).summary()


def missed_area_asymptote(n: int | Sequence[int] | np.ndarray, sides: int = 4) -> np.ndarray:
    """Leading-order ``E[1 - area(hull_n) / area(K)]`` for ``n`` uniform points in a convex polygon ``K``
    with ``sides`` sides: ``(2 sides / 3) log(n + 1) / (n + 1)`` (Efron's identity with Rényi–Sulanke's
    ``E[V_m] ~ (2k/3) log m``; the ``O(1)`` term of ``E[V_m]`` is dropped, so the value is off by
    ``O(1/n)``). Same shape as ``n``."""
    n = np.asarray(n, dtype=float)
    if not np.isfinite(n).all() or (n < 1).any():
        raise ValueError(f"n (number of points) must be >= 1, got {n!r}")
    sides = _check_count("sides", sides, 3, "of the convex polygon")
    return 2 * sides / 3 * np.log(n + 1) / (n + 1)
