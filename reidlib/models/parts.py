"""Part features: a feature map cut into horizontal regions, each pooled, ``(B, C, H, W) -> (B, P, C)``.

Shared by the chapters that use parts:

* **Stripes** (PCB, Sun et al. 2018): ``P`` equal horizontal stripes, ``H / P`` rows each. The hashing
  paper uses 6 stripes, HENet's partial branch 4.
* **MGO windows** (feature fusion paper, Sec. III.C, Fig. 5): the map is cut into ``k = 6`` stripes
  ``S_1..S_k``; level ``p = 1..k`` takes the ``p`` *overlapping* windows of ``k - p + 1`` consecutive
  stripes, ``G_{p,j} = [S_j; ...; S_{j+k-p}]``, ``j = 1..p``: ``k(k+1)/2 = 21`` windows in all, and all
  windows of a level have the same height ``(k - p + 1) H / k``. Level 1 is the whole map.
* **Equal splits per level** (PCB/MGN style): level ``p`` cuts the map into ``p`` equal parts. It also
  gives ``1 + 2 + ... + 6 = 21`` parts, but they do not overlap and their height is ``H / p``: it is
  *not* MGO (the two agree only at levels 1 and ``k``).

Regions are given as half-open row ranges ``(start, stop)`` of the map (``x[:, :, start:stop]``);
stripe ranges are half-open too and 0-based (the paper's stripes ``1-5`` are ``(0, 5)``).

Pooling of a region (``pool``): ``"avg"`` (mean over its rows and columns), ``"max"``, ``"avg+max"``
(their sum, same ``C``) or ``"max|avg"`` (the concatenation ``[GMP; GAP]``, ``2C`` channels, in the
order of the fusion paper's MPFE head).

Equal stripes need ``H`` divisible by the number of stripes: with last stride 1 a ResNet's map is
``H_in / 16`` high, so 6 stripes need an input height that is a multiple of 96 (96x32, 192x64,
384x128; not 128x64). The error says so rather than falling back to unequal adaptive bins silently.
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from reidlib.nn import check_shape

__all__ = [
    "POOLS",
    "Pool",
    "Scheme",
    "Stripes",
    "Windows",
    "contiguous_windows",
    "equal_split_rows",
    "horizontal_stripes",
    "mgo_windows",
    "pool_rows",
    "stripe_rows",
    "window_rows",
    "windows",
]

Pool = Literal["avg", "max", "avg+max", "max|avg"]
POOLS: tuple[str, ...] = ("avg", "max", "avg+max", "max|avg")
Scheme = Literal["mgo", "equal"]
BACKBONE_STRIDE = 16  # a ResNet with last stride 1: the map's height is the input height / 16


def _check_count(value: int, name: str, who: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{who}: {name} must be an integer >= 1, got {value!r}")
    return value


def _check_pool(pool: str, who: str) -> str:
    if pool not in POOLS:
        raise ValueError(f"{who}: pool must be one of {POOLS}, got {pool!r}")
    return pool


def _not_divisible(who: str, height: int, parts: int, multiple: int, why: str = "",
                   alternative: str = "") -> ValueError:
    return ValueError(
        f"{who}: the feature map's height H={height} is not divisible by parts={parts}, so it cannot be cut into "
        f"{parts} equal stripes; choose an input height such that the last feature map's H is a multiple of "
        f"{multiple}{why} (with a last-stride-1 ResNet, H = input height / {BACKBONE_STRIDE}: an input height that "
        f"is a multiple of {BACKBONE_STRIDE * multiple}){alternative}"
    )


def stripe_rows(height: int, parts: int, who: str = "stripe_rows") -> list[tuple[int, int]]:
    """Row ranges of ``parts`` equal horizontal stripes of a map ``height`` rows high: ``[(0, s), (s, 2s), ...]``.

    Raises ``ValueError`` (naming ``H`` and ``parts``) when ``height`` is not a multiple of ``parts``.
    """
    _check_count(parts, "parts", who)
    _check_count(height, "the height H", who)
    if height % parts:
        raise _not_divisible(who, height, parts, parts)
    step = height // parts
    return [(i * step, (i + 1) * step) for i in range(parts)]


def pool_rows(x: Tensor, rows: list[tuple[int, int]], pool: Pool = "avg", who: str = "pool_rows") -> Tensor:
    """Pool each row range ``(start, stop)`` of ``x`` over its rows and all columns.

    Shapes: ``(B, C, H, W) -> (B, P, C)`` with ``P = len(rows)`` (``(B, P, 2C)`` for ``"max|avg"``).
    """
    _, _, height, _ = check_shape(x, "B C H W", who=who, what="a feature map")
    _check_pool(pool, who)
    if not rows:
        raise ValueError(f"{who}: rows must hold at least one (start, stop) range")
    for start, stop in rows:
        if not 0 <= start < stop <= height:
            raise ValueError(f"{who}: row range ({start}, {stop}) must satisfy 0 <= start < stop <= H={height}")
    regions = [x[:, :, start:stop] for start, stop in rows]
    out = []
    if pool in ("max", "avg+max", "max|avg"):
        out.append(torch.stack([r.amax(dim=(2, 3)) for r in regions], dim=1))
    if pool in ("avg", "avg+max", "max|avg"):
        out.append(torch.stack([r.mean(dim=(2, 3)) for r in regions], dim=1))
    if pool == "avg+max":
        return out[0] + out[1]
    return torch.cat(out, dim=2) if len(out) == 2 else out[0]


def horizontal_stripes(x: Tensor, parts: int, pool: Pool = "avg") -> Tensor:
    """``parts`` equal horizontal stripes of ``x``, each pooled: ``(B, C, H, W) -> (B, parts, C)``.

    Stripe ``i`` covers rows ``[i H/parts, (i+1) H/parts)``; ``H`` must be a multiple of ``parts``.
    ``(B, parts, 2C)`` for ``pool="max|avg"``.
    """
    _, _, height, _ = check_shape(x, "B C H W", who="horizontal_stripes", what="a feature map")
    return pool_rows(x, stripe_rows(height, parts, who="horizontal_stripes"), pool, who="horizontal_stripes")


class Stripes(nn.Module):
    """:func:`horizontal_stripes` as a module (no parameters): ``(B, C, H, W) -> (B, parts, C)``.

    Args:
        parts: the number of equal stripes ``P`` (6 in PCB and the hashing paper, 4 in HENet).
        pool: ``"avg"`` (default, PCB), ``"max"``, ``"avg+max"`` or ``"max|avg"`` (``2C`` channels).
    """

    def __init__(self, parts: int, pool: Pool = "avg") -> None:
        super().__init__()
        self.parts = _check_count(parts, "parts", "Stripes")
        self.pool = _check_pool(pool, "Stripes")

    def forward(self, x: Tensor) -> Tensor:
        _, _, height, _ = check_shape(x, "B C H W", who="Stripes", what="a feature map")
        return pool_rows(x, stripe_rows(height, self.parts, who="Stripes"), self.pool, who="Stripes")

    def extra_repr(self) -> str:
        return f"parts={self.parts}, pool={self.pool!r}"


# ---------------------------------------------------------------- MGO windows and equal splits per level


def contiguous_windows(num_stripes: int, level: int) -> list[tuple[int, int]]:
    """MGO's windows at ``level`` ``p``: the ``p`` windows of ``k - p + 1`` consecutive stripes out of ``k``.

    Returned as half-open, 0-based stripe ranges ``[(0, k-p+1), (1, k-p+2), ..., (p-1, k)]``; e.g.
    ``contiguous_windows(6, 2) == [(0, 5), (1, 6)]``, the paper's stripes ``1~5`` and ``2~6``.
    """
    _check_count(num_stripes, "num_stripes", "contiguous_windows")
    _check_count(level, "level", "contiguous_windows")
    if level > num_stripes:
        raise ValueError(f"contiguous_windows: level must be in 1..num_stripes={num_stripes}, got level={level}")
    size = num_stripes - level + 1
    return [(j, j + size) for j in range(level)]


def mgo_windows(num_stripes: int = 6) -> list[tuple[int, int, int]]:
    """All MGO windows, level 1 first: ``[(level, start stripe, stop stripe), ...]``, ``k(k+1)/2`` (21 for 6)."""
    _check_count(num_stripes, "num_stripes", "mgo_windows")
    return [(p, a, b) for p in range(1, num_stripes + 1) for a, b in contiguous_windows(num_stripes, p)]


def equal_split_rows(height: int, parts: int, exact: bool = True) -> list[tuple[int, int]]:
    """Row ranges of ``parts`` equal parts of a map ``height`` rows high (PCB/MGN split; not MGO).

    ``exact=True``: ``height`` must be a multiple of ``parts`` (``ValueError`` otherwise).
    ``exact=False``: the bins of adaptive pooling (``nn.AdaptiveAvgPool2d((parts, 1))``),
    ``[floor(i H / parts), ceil((i+1) H / parts))``, which are unequal and may overlap when ``parts``
    does not divide ``H``.
    """
    _check_count(parts, "parts", "equal_split_rows")
    _check_count(height, "the height H", "equal_split_rows")
    if exact:
        return stripe_rows(height, parts, who="equal_split_rows")
    if parts > height:
        raise ValueError(f"equal_split_rows: parts={parts} is more than the map's H={height} rows")
    return [((i * height) // parts, -((-(i + 1) * height) // parts)) for i in range(parts)]


def window_rows(height: int, num_stripes: int = 6, scheme: Scheme = "mgo", exact: bool = True,
                who: str = "window_rows") -> list[tuple[int, int, int]]:
    """Row ranges of all the parts of a multi-level split, level 1 first: ``[(level, start, stop), ...]``.

    ``scheme="mgo"``: the overlapping windows of :func:`mgo_windows` on ``num_stripes`` equal stripes
    (``height`` must be a multiple of ``num_stripes``). ``scheme="equal"``: level ``p`` is ``p`` equal
    parts (:func:`equal_split_rows`; with ``exact=True`` ``height`` must be a multiple of every ``p``
    in ``1..num_stripes``, 60 for 6 levels). Both give ``k(k+1)/2`` parts.
    """
    _check_count(num_stripes, "num_stripes", who)
    if scheme == "mgo":
        stripes = stripe_rows(height, num_stripes, who=f"{who} (MGO windows)")
        return [(p, stripes[a][0], stripes[b - 1][1]) for p, a, b in mgo_windows(num_stripes)]
    if scheme == "equal":
        lcm = math.lcm(*range(1, num_stripes + 1))
        out = []
        for p in range(1, num_stripes + 1):
            if exact and height % p:
                raise _not_divisible(
                    f"{who} (equal split, level {p})", height, p, lcm, why=f", the lcm of the levels 1..{num_stripes}",
                    alternative="; or pass exact=False for the unequal bins of adaptive pooling",
                )
            out += [(p, a, b) for a, b in equal_split_rows(height, p, exact=exact)]
        return out
    raise ValueError(f"{who}: scheme must be 'mgo' (overlapping windows) or 'equal' (PCB/MGN), got {scheme!r}")


def windows(x: Tensor, num_stripes: int = 6, pool: Pool = "avg", scheme: Scheme = "mgo",
            exact: bool = True) -> Tensor:
    """Pool every part of :func:`window_rows`: ``(B, C, H, W) -> (B, k(k+1)/2, C)``, i.e. ``(B, 21, C)`` for 6.

    Parts are ordered by level, then top to bottom; ``(B, 21, 2C)`` for ``pool="max|avg"``.
    """
    _, _, height, _ = check_shape(x, "B C H W", who="windows", what="a feature map")
    rows = [(a, b) for _, a, b in window_rows(height, num_stripes, scheme, exact, who="windows")]
    return pool_rows(x, rows, pool, who="windows")


class Windows(nn.Module):
    """:func:`windows` as a module (no parameters): ``(B, C, H, W) -> (B, k(k+1)/2, C)``.

    Args:
        num_stripes: ``k``, the stripes (and levels): 6 in the fusion paper, giving 21 parts.
        pool: ``"avg"`` (default), ``"max"``, ``"avg+max"`` or ``"max|avg"`` (``[GMP; GAP]``, ``2C``, as MPFE).
        scheme: ``"mgo"`` (default; overlapping windows of the fusion paper) or ``"equal"`` (PCB/MGN).
        exact: for ``scheme="equal"``: require equal parts (default) or take adaptive-pooling bins.

    ``levels`` holds the level of each output part; ``level_slice(p)`` the parts of level ``p``
    (the fusion paper's triplet loss takes each level's parts concatenated).
    """

    def __init__(self, num_stripes: int = 6, pool: Pool = "avg", scheme: Scheme = "mgo", exact: bool = True) -> None:
        super().__init__()
        self.num_stripes = _check_count(num_stripes, "num_stripes", "Windows")
        self.pool = _check_pool(pool, "Windows")
        if scheme not in ("mgo", "equal"):
            raise ValueError(f"Windows: scheme must be 'mgo' (overlapping windows) or 'equal' (PCB/MGN), "
                             f"got {scheme!r}")
        self.scheme, self.exact = scheme, bool(exact)
        self.levels: tuple[int, ...] = tuple(p for p in range(1, num_stripes + 1) for _ in range(p))

    @property
    def num_parts(self) -> int:
        """``k(k+1)/2``: 21 for 6 stripes."""
        return len(self.levels)

    def level_slice(self, level: int) -> slice:
        """The parts of ``level`` ``p`` along dim 1 of the output: ``[p(p-1)/2, p(p+1)/2)``."""
        if not 1 <= level <= self.num_stripes:
            raise ValueError(f"Windows: level must be in 1..{self.num_stripes}, got {level!r}")
        return slice(level * (level - 1) // 2, level * (level + 1) // 2)

    def forward(self, x: Tensor) -> Tensor:
        _, _, height, _ = check_shape(x, "B C H W", who="Windows", what="a feature map")
        parts = window_rows(height, self.num_stripes, self.scheme, self.exact, who="Windows")
        rows = [(a, b) for _, a, b in parts]
        return pool_rows(x, rows, self.pool, who="Windows")

    def extra_repr(self) -> str:
        exact = "" if self.scheme == "mgo" else f", exact={self.exact}"
        return f"num_stripes={self.num_stripes}, pool={self.pool!r}, scheme={self.scheme!r}{exact}"
