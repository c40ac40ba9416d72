"""The feature-fusion paper's printed tables as data, and the rank-1 audit (spec §2, §3.8).

What is here:

* :func:`paper_table` -- Tables II, III (the state of the art on Market-1501 and DukeMTMC-reID), VI, VII, VIII,
  IX and X as printed, one DataFrame each, rows in the paper's order (:data:`TABLE_COLUMNS`). Accuracy columns
  are named ``"<set> <metric>"``: the sets ``Market``, ``Duke``, ``Duke→Market`` and ``Market→Duke`` (Table
  VIII's direct transfer, evaluated on the set after the arrow), the metrics ``R1`` and ``mAP`` (%). Tables VI,
  VII, IX and X carry the ``variant`` of :data:`reidlib.papers.feature_fusion.TABLE_ROWS` that each row is; Table
  VIII's rows are Table VI's. Table VII's component columns are lost in the extraction; its rows are typed in the
  reconstructed order of the spec (Baseline, + Tricks, + MGO, + MPFE, + SAM, + CAM: :data:`RECONSTRUCTED`).
* :data:`DECIMALS` -- the decimals each table prints (Tables VIII and X print two; ``84.80`` is not ``84.8``
  to the audit).
* :func:`rank1_audit` -- every printed rank-1 cell against whole numbers of queries: with single-query
  evaluation rank-1 is ``k / Q`` for an integer ``k`` of hits, ``Q`` = 3,368 Market-1501 and 2,228
  DukeMTMC-reID queries (:data:`QUERIES`). A two-decimal cell need not be reachable: the values ``100 k / Q``
  are ``100 / Q`` apart (0.030 and 0.045 points), more than the 0.01 a two-decimal cell spans.
  :func:`impossible_rank1` lists the cells no ``k`` reproduces.

Rounding is half up to the printed decimals, in exact rational arithmetic (no float ties).
"""
from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from .feature_fusion import TABLE_ROWS as VARIANT_ROWS

__all__ = ["TABLE_NUMBERS", "TABLE_COLUMNS", "TABLE_ROWS", "DECIMALS", "RECONSTRUCTED", "QUERIES", "EVALUATED_ON",
           "paper_table", "rank1_cells", "rank1_audit", "impossible_rank1", "round_half_up", "reproducing_counts",
           "TABLE_BASE", "beside_ours"]

_SOTA = ("method", "backbone")
_TWO = ("Market R1", "Market mAP", "Duke R1", "Duke mAP")

#: Each table's columns (see the module docstring for the naming).
TABLE_COLUMNS: dict[int, tuple[str, ...]] = {
    2: (*_SOTA, "Market R1", "Market mAP"),
    3: (*_SOTA, "Duke R1", "Duke mAP"),
    6: ("model", "variant", *_TWO),
    7: ("model", "variant", "Duke R1", "Duke mAP"),
    8: ("model", "variant", "Duke→Market R1", "Duke→Market mAP", "Market→Duke R1", "Market→Duke mAP"),
    9: ("model", "variant", "Market R1", "Market mAP"),
    10: ("model", "variant", *_TWO),
}
TABLE_NUMBERS = tuple(TABLE_COLUMNS)
#: The decimals each table prints.
DECIMALS: dict[int, int] = {2: 1, 3: 1, 6: 1, 7: 1, 8: 2, 9: 1, 10: 2}
#: Tables whose row order is a reconstruction (the extraction lost Table VII's check marks).
RECONSTRUCTED = (7,)
#: Single-query test queries of the two sets (Sec. IV.B, Table I).
QUERIES = {"Market": 3368, "Duke": 2228}
#: The set each accuracy column's queries come from.
EVALUATED_ON = {"Market": "Market", "Duke": "Duke", "Duke→Market": "Market", "Market→Duke": "Duke"}

_TABLE_2 = [  # Market-1501 (Rank-1, mAP)
    ("DaRe (CVPR18)", "ResNet50", 86.4, 69.3), ("DaRe+RE (CVPR18)", "ResNet50", 88.5, 74.2),
    ("PSE+ECN (CVPR18)", "ResNet50", 90.4, 80.5), ("HA-CNN (CVPR18)", "ResNet50", 91.2, 75.7),
    ("DuATM (CVPR18)", "Inception-A", 91.4, 76.6), ("PCB+RPP (CVPR18)", "ResNet50", 93.8, 81.6),
    ("MHN-PCB (ICCV19)", "ResNet50", 95.1, 85.0), ("MGN (ACMMM18)", "ResNet50", 95.7, 86.9),
    ("HPM (AAAI19)", "ResNet50", 94.2, 82.7), ("AANet (CVPR19)", "ResNet152", 93.9, 83.4),
    ("DCDS (ICCV19)", "ResNet101", 94.8, 85.8), ("OSNet (ICCV19)", "OSNet", 94.8, 84.9),
    ("GCP (AAAI20)", "ResNet50", 94.8, 88.0), ("SAN (AAAI20)", "ResNet50", 95.1, 85.8),
    ("3DTANet (TCSVT20)", "–", 95.3, 86.9), ("HOReID (CVPR20)", "ResNet50", 94.2, 84.9),
    ("RGA-CS (CVPR20)", "ResNet50", 95.3, 87.8), ("Ours", "ResNet50", 95.7, 87.7),
]
_TABLE_3 = [  # DukeMTMC-reID (Rank-1, mAP)
    ("SPReID (CVPR18)", "ResNet152", 85.9, 73.3), ("PCB+RPP (ECCV18)", "ResNet50", 83.3, 69.2),
    ("DuATM (CVPR18)", "DenseNet121", 81.8, 64.6), ("PSE+ECN (CVPR18)", "ResNet50", 84.5, 75.7),
    ("AANet (CVPR19)", "ResNet152", 87.7, 74.3), ("DCDS (ICCV19)", "ResNet101", 87.6, 75.5),
    ("CASN (CVPR19)", "ResNet50", 87.7, 73.7), ("HPM (AAAI19)", "ResNet50", 86.6, 74.3),
    ("MHN-PCB (ICCV19)", "ResNet50", 89.1, 77.2), ("OSNet (ICCV19)", "OSNet", 88.6, 73.5),
    ("MGN (ACMMM18)", "ResNet50", 88.7, 78.4), ("ABDNet (ICCV19)", "ResNet50", 89.0, 78.6),
    ("GCP (AAAI20)", "ResNet50", 89.7, 78.6), ("SAN (AAAI20)", "ResNet50", 87.9, 75.5),
    ("3DTANet (TCSVT20)", "–", 89.9, 78.4), ("M3+ResNet50 (CVPR20)", "ResNet50", 84.7, 68.5),
    ("M3+DenseNet121 (CVPR20)", "DenseNet121", 84.9, 68.0), ("HOReID (CVPR20)", "ResNet50", 86.9, 75.6),
    ("Ours", "ResNet50", 90.2, 80.2),
]
_TABLE_6 = [  # Market-1501 (R1, mAP), DukeMTMC-reID (R1, mAP)
    (88.1, 71.1, 79.2, 63.7), (92.3, 81.9, 85.1, 69.5), (93.4, 83.4, 86.6, 73.5),
    (94.7, 86.5, 88.6, 77.9), (95.3, 87.2, 89.2, 78.1), (95.7, 87.7, 90.2, 80.2),
]
_TABLE_7 = [(79.2, 63.7), (85.1, 69.5), (84.9, 69.5), (83.6, 71.2), (84.3, 72.3), (85.1, 72.8)]  # Duke
_TABLE_8 = [  # Duke -> Market (R1, mAP), Market -> Duke (R1, mAP)
    (33.43, 12.65, 19.61, 9.19), (41.21, 17.13, 30.48, 15.95), (42.31, 18.90, 34.07, 18.22),
    (51.15, 24.68, 39.86, 23.01), (51.98, 25.16, 40.79, 23.96), (54.33, 26.43, 42.52, 25.37),
]
_TABLE_9 = [(94.7, 86.5), (94.9, 86.6), (95.1, 86.9), (94.8, 86.7), (95.3, 86.2), (95.3, 87.2), (95.0, 86.9),
            (95.5, 87.2), (95.7, 87.7)]  # Market
_TABLE_10 = [  # Market-1501 (R1, mAP), DukeMTMC-reID (R1, mAP)
    (84.80, 63.67, 74.69, 55.67), (90.62, 76.02, 82.50, 67.56), (93.89, 83.43, 87.93, 75.36),
    (93.72, 86.05, 88.63, 77.47), (90.80, 76.06, 82.23, 68.00), (94.42, 85.85, 88.33, 76.09),
    (95.24, 86.93, 88.78, 78.01), (95.65, 87.67, 90.17, 80.16),
]


def _with_variants(table: int, values: list[tuple[float, ...]], rows_of: int | None = None) -> list[tuple[Any, ...]]:
    rows = VARIANT_ROWS[rows_of or table]
    if len(rows) != len(values):  # pragma: no cover - a typing slip in this file
        raise AssertionError(f"Table {table}: {len(values)} rows typed, {len(rows)} variants")
    return [(label, variant, *v) for (variant, label), v in zip(rows.items(), values)]


#: Each table's rows as printed, in the paper's order.
TABLE_ROWS: dict[int, list[tuple[Any, ...]]] = {
    2: _TABLE_2, 3: _TABLE_3, 6: _with_variants(6, _TABLE_6), 7: _with_variants(7, _TABLE_7),
    8: _with_variants(8, _TABLE_8, rows_of=6), 9: _with_variants(9, _TABLE_9), 10: _with_variants(10, _TABLE_10),
}


def paper_table(table: int) -> pd.DataFrame:
    """Table ``table`` of the paper as printed (2, 3, 6, 7, 8, 9 or 10): the columns of :data:`TABLE_COLUMNS`,
    one row per printed row in the paper's order (RangeIndex).

    Raises:
        ValueError: ``table`` is not one of :data:`TABLE_NUMBERS`.
    """
    if isinstance(table, bool) or not isinstance(table, (int, np.integer)) or int(table) not in TABLE_ROWS:
        raise ValueError(f"paper_table: table must be one of {list(TABLE_NUMBERS)} (the paper's Tables II, III, VI, "
                         f"VII, VIII, IX, X), got {table!r}")
    return pd.DataFrame(TABLE_ROWS[int(table)], columns=list(TABLE_COLUMNS[int(table)]))


# ---- the rank-1 audit ----------------------------------------------------------------------------------------
def round_half_up(value: Fraction, decimals: int) -> Decimal:
    """``value`` rounded half up to ``decimals`` places, exactly (``Fraction(1, 8)`` to 2 places: ``0.13``)."""
    scaled = Fraction(value) * 10 ** decimals
    whole, rest = divmod(scaled, 1)
    up = int(whole) + (1 if rest >= Fraction(1, 2) else 0)
    return Decimal(up).scaleb(-decimals)


def _printed(value: float, decimals: int) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-decimals))


def reproducing_counts(printed: float, queries: int, decimals: int) -> list[int]:
    """Every count ``k`` in ``0..queries`` with ``100 k / queries`` rounding (half up, ``decimals``) to ``printed``.

    Only the counts within half a printed step of ``printed * queries / 100`` can round to it: they (and one more
    on each side) are checked exactly."""
    target = _printed(printed, decimals)
    half = Fraction(1, 2 * 10 ** decimals)
    lo = max(0, math.floor((Fraction(target) - half) * queries / 100) - 1)
    hi = min(queries, math.ceil((Fraction(target) + half) * queries / 100) + 1)
    return [k for k in range(lo, hi + 1) if round_half_up(Fraction(100 * k, queries), decimals) == target]


def rank1_cells() -> pd.DataFrame:
    """Every printed rank-1 cell of :data:`TABLE_NUMBERS` with the set its queries come from: columns ``table``,
    ``row`` (the method or model as printed), ``column``, ``set``, ``Q``, ``printed``, ``decimals``."""
    out = []
    for t in TABLE_NUMBERS:
        frame = paper_table(t)
        label = frame.columns[0]
        for column in (c for c in frame.columns if c.endswith(" R1")):
            evaluated = EVALUATED_ON[column[: -len(" R1")]]
            for _, r in frame.iterrows():
                out.append({"table": t, "row": r[label], "column": column, "set": evaluated,
                            "Q": QUERIES[evaluated], "printed": float(r[column]), "decimals": DECIMALS[t]})
    return pd.DataFrame(out)


def rank1_audit() -> pd.DataFrame:
    """:func:`rank1_cells` with, per cell: ``k`` (the whole number of queries nearest to ``printed * Q / 100``),
    ``k/Q·100`` (rounded half up to the printed decimals, as text, e.g. ``"95.64"``), ``k/Q·100 exact`` (float),
    ``counts`` (every integer ``k`` that reproduces the printed value, :func:`reproducing_counts`) and
    ``reproducible`` (whether there is one)."""
    cells = rank1_cells()
    ks, rounded, exact, counts = [], [], [], []
    for _, c in cells.iterrows():
        q, d = int(c.Q), int(c.decimals)
        k = round(Fraction(_printed(c.printed, d)) * q / 100)  # nearest integer (ties to even: none occur here)
        ks.append(int(k))
        rounded.append(str(round_half_up(Fraction(100 * k, q), d)))
        exact.append(100 * k / q)
        counts.append(reproducing_counts(c.printed, q, d))
    cells["k"], cells["k/Q·100"], cells["k/Q·100 exact"], cells["counts"] = ks, rounded, exact, counts
    cells["reproducible"] = [bool(c) for c in counts]
    return cells


def impossible_rank1() -> pd.DataFrame:
    """The rows of :func:`rank1_audit` that no whole number of queries reproduces."""
    audit = rank1_audit()
    return audit[~audit.reproducible].reset_index(drop=True)


#: The reference row of each ablation table: each row's difference is taken to it, in the paper and ours.
TABLE_BASE = {6: "baseline", 7: "baseline", 9: "bmm", 10: "stage4"}


def beside_ours(table: int, runs: pd.DataFrame) -> pd.DataFrame:
    """Table ``table`` (VI, VII, IX or X) as printed beside our runs
    (:func:`reidlib.papers.results.paper_beside_ours`): each printed row's mAP (Market-1501's; Table VII has
    only DukeMTMC-reID's) and its difference to the table's reference row (:data:`TABLE_BASE`), our mean over
    seeds of the row's variant and our difference to our reference row."""
    from .results import paper_beside_ours

    if table not in TABLE_BASE:
        raise ValueError(f"table must be one of {sorted(TABLE_BASE)} (the ablations), got {table!r}")
    paper = paper_table(table).set_index("model")
    column = "Duke mAP" if table == 7 else "Market mAP"
    rows = dict(zip(paper.index, paper.variant))
    base = paper.index[list(paper.variant).index(TABLE_BASE[table])]
    return paper_beside_ours(rows, paper, column, runs, base=TABLE_BASE[table], paper_base=paper.loc[base, column])
