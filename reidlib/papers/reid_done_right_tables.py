"""Almazán et al. (2018), "Re-ID done right: towards good practices for person re-identification" (arXiv
1801.05339): its printed tables as data, typed once, and everything that can be recomputed exactly from them and
from the numbers of its text (spec §2-§4).

What is here:

* :func:`paper_table` -- Tables 1-4 as printed (:data:`TABLE_COLUMNS`, :data:`TABLE_ROWS`), one DataFrame each,
  rows in the paper's order. Accuracy columns are ``"<set> <metric>"``: the sets ``Market`` (Market-1501 single
  query), ``Market MQ`` (multi-query), ``MARS``, ``Duke`` (DukeMTMC-reID) and ``PS`` (Person Search, CUHK-SYSU);
  the metrics ``mAP``, ``R1``, ``R5`` (%). Tables 1-3 report mAP only. A cell printed "-" is NaN.
  Table 3 is one printed table in three blocks (a) pooling, (b) backbone, (c) pre-training: column ``part``.
* Table 4's reading (spec §2.4, §4.9): :data:`TABLE_4_UNCERTAIN`, :data:`TABLE_4_LOST_CELL`,
  :func:`table_4_as_extracted`.
* :func:`improvement_row`, :func:`improvement_readings` -- Table 4's "Improvement" row recomputed (spec §3.1).
* :func:`duke_discrepancy` -- Duke mAP 72.8 (Table 4, Sec. 4.3) vs 72.9 (Tables 1-3, spec §4.1).
* :func:`text_claims` -- the differences and values the text states, from the typed tables (spec §3.1).
* :func:`rerank_effect` -- Ours (re-rank) minus Ours per column (spec §2.4).
* :func:`schedule_values`, :func:`halvings` -- the ranking stage's learning rate (Sec. 4.1, spec §3.5).
* :func:`compute_counts` -- triplets, passes and pools of a ranking run (Sec. 4.1, spec §3.6).
* :func:`feature_map_sizes`, :func:`forward_map_sizes` -- the final map of a stride-32 ResNet (spec §3.7).
* :func:`image_size_statement` -- "256 x 128" (Sec. 4.2) against the crops' real sizes (spec §4.2).
* :func:`parameter_counts` -- ResNet trunks, the 2048 -> 2048 FC, the whole model (spec §3.8).
* :func:`dataset_sums` -- the dataset arithmetic of Sec. 4.1 against the releases' own figures (spec §3.9, §4.5).

Choices (the extraction is garbled or the paper silent):

* Table 4 follows the reader's notes (spec §2.4), checked cell by cell against the extraction: every comparison
  row (MG ... TriNet) has one cell fewer than the header in the text, and "Re-ranking [57]" one "-" misplaced
  (:data:`TABLE_4_LOST_CELL` says where the dropped "-" was, :func:`table_4_as_extracted` re-creates the
  extraction from the typed table). Cells whose
  column is not certain are named in the ``uncertain`` column (:data:`TABLE_4_UNCERTAIN`): MSCAN's three MARS
  cells and OIM's two Duke cells, as the notes mark them "?".
* ``type`` is the printed Type ("P", "A", "At"; "" where "-"); ``arxiv`` the printed "*" (arXiv-only methods).
* Differences are computed in exact decimal arithmetic from the printed one-decimal values; a stated figure
  matches when the difference, rounded half up to the stated decimals, is it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reidlib.data.synthped import PRESETS as SYNTHPED_PRESETS
from reidlib.engine.schedules import ExponentialHalving
from reidlib.paths import realdata_dir

from .results import paper_cell

__all__ = ["TABLE_NUMBERS", "TABLE_COLUMNS", "TABLE_ROWS", "METRICS", "TABLE_4_UNCERTAIN", "TABLE_4_LOST_CELL",
           "PAPER_SETTINGS", "TEXT_VALUES", "MARKET_STATED_SIZE", "DUKE_STATED_MEAN_SIZE", "MARKET_CROP_SIZE",
           "PAPER_INPUTS", "LARGEST_SIDES", "SCHEDULE_TIMES", "READINGS", "paper_table", "table_4_as_extracted",
           "improvement_row", "improvement_readings", "duke_discrepancy", "text_claims", "rerank_effect",
           "schedule_values", "halvings", "compute_counts", "feature_map_sizes", "forward_map_sizes",
           "image_size_statement", "parameter_counts", "dataset_sums"]

_NA = float("nan")

# ---- the printed tables ---------------------------------------------------------------------------------------
#: Table 4's accuracy columns, in the printed order: Market-1501 SQ and MQ, MARS, Duke-reID (mAP, rank-1,
#: rank-5 each) and Person Search (mAP).
METRICS: tuple[str, ...] = (*(f"{s} {m}" for s in ("Market", "Market MQ", "MARS", "Duke") for m in ("mAP", "R1", "R5")),
                            "PS mAP")
_TWO = ("Market mAP", "Duke mAP")

#: Each table's columns (see the module docstring for the naming).
TABLE_COLUMNS: dict[int, tuple[str, ...]] = {
    1: ("flip", "crop", "cut-out", *_TWO),
    2: ("largest side", *_TWO),
    3: ("part", "block", "setting", *_TWO),
    4: ("method", "type", "arxiv", "re-ranking", "uncertain", *METRICS),
}

_A = "a) pooling strategy"
_B = "b) backbone architecture"
_C = "c) pretraining for class."

#: Table 4's cells whose column is uncertain (the reader's notes mark them "?", spec §2.4): MSCAN's MARS cells
#: (the Improvement row needs 83.0 and 93.7 in MARS R1 and R5, which supports them; nothing else confirms the
#: attribution) and OIM's Duke cells (68.1 is read as rank-1: as mAP it would beat DPFL's 60.6 and break the
#: Improvement row's +12.2).
TABLE_4_UNCERTAIN: dict[str, tuple[str, ...]] = {
    "MSCAN [21]": ("MARS mAP", "MARS R1", "MARS R5"),
    "OIM [43]": ("Duke mAP", "Duke R1"),
}


def _row4(method: str, kind: str, arxiv: bool, values: Sequence[float], reranked: bool = False) -> tuple[Any, ...]:
    if len(values) != len(METRICS):  # pragma: no cover - a typing slip in this file
        raise AssertionError(f"Table 4, {method}: {len(values)} cells typed, {len(METRICS)} columns")
    return (method, kind, arxiv, reranked, ", ".join(TABLE_4_UNCERTAIN.get(method, ())), *values)


_n = _NA
#: Every table's rows as printed (spec §2, checked against the text), in the paper's order.
TABLE_ROWS: dict[int, list[tuple[Any, ...]]] = {
    # Table 1: data augmentation (flip, crop, cut-out), mAP
    1: [(False, False, False, 75.9, 69.6), (True, False, False, 77.2, 69.7), (False, True, False, 76.8, 69.4),
        (False, False, True, 81.2, 72.9), (True, True, True, 81.2, 72.9)],
    # Table 2: the largest image side (px), aspect ratio kept, mAP
    2: [(256, 78.2, 69.2), (416, 81.2, 72.9), (640, 81.2, 73.1)],
    # Table 3: (a) pooling, (b) backbone, (c) classification pre-training, mAP
    3: [("a", _A, "average", 80.1, 71.4), ("a", _A, "max", 81.2, 72.9),
        ("b", _B, "ResNet-50", 76.3, 67.6), ("b", _B, "ResNet-101", 81.2, 72.9), ("b", _B, "ResNet-152", 81.4, 74.0),
        ("c", _C, "no", 77.1, 71.1), ("c", _C, "yes", 81.2, 72.9)],
    # Table 4: the state of the art; the columns are METRICS
    4: [
        _row4("MG [41]", "", False, (39.6, 65.9, _n, 48.4, 76.0, _n, _n, _n, _n, _n, _n, _n, _n)),
        _row4("CRAFT [7]", "", False, (45.5, 71.8, _n, 54.3, 79.7, _n, _n, _n, _n, _n, _n, _n, _n)),
        _row4("SpindleNet [49]", "P", False, (_n, 76.9, 91.5, _n, _n, _n, _n, _n, _n, _n, _n, _n, _n)),
        _row4("Zheng et al. [51]", "", False, (_n, _n, _n, _n, _n, _n, 49.3, 68.3, 82.6, _n, _n, _n, _n)),
        _row4("Part-Aligned [50]", "A", False, (63.4, 81.0, 92.0, _n, _n, _n, _n, _n, _n, _n, _n, _n, _n)),
        _row4("OL-MANS [58]", "", False, (_n, 60.7, _n, _n, 66.8, _n, _n, _n, _n, _n, _n, _n, _n)),
        _row4("HydraPlus-Net [25]", "A", False, (_n, 76.9, 91.3, _n, _n, _n, _n, _n, _n, _n, _n, _n, _n)),
        _row4("MSCAN [21]", "P", False, (57.5, 80.3, _n, 66.7, 86.8, _n, 66.4, 83.0, 93.7, _n, _n, _n, _n)),
        _row4("OIM [43]", "", False, (_n, 82.1, _n, _n, _n, _n, _n, _n, _n, _n, 68.1, _n, 77.9)),
        _row4("PDC [37]", "P", False, (63.4, 84.1, 92.7, _n, _n, _n, _n, _n, _n, _n, _n, _n, _n)),
        _row4("Verif-Identif. [54]", "", False, (59.9, 79.5, _n, 70.3, 85.8, _n, _n, _n, _n, 49.3, 68.9, _n, _n)),
        _row4("LSRO [56]", "", False, (66.1, 84.0, _n, 76.1, 88.4, _n, _n, _n, _n, 47.1, 67.7, _n, _n)),
        _row4("SVDNet [39]", "", False, (62.1, 82.3, 92.3, _n, _n, _n, _n, _n, _n, 56.8, 76.7, 86.4, _n)),
        _row4("SSM [1]", "", False, (68.8, 82.2, _n, 76.2, 88.2, _n, _n, _n, _n, _n, _n, _n, _n)),
        _row4("DPFL [6]", "", False, (73.1, 88.9, 92.3, _n, _n, _n, _n, _n, _n, 60.6, 79.2, _n, _n)),
        _row4("DML [48]", "", True, (68.8, 87.7, _n, 77.1, 91.7, _n, _n, _n, _n, _n, _n, _n, _n)),
        _row4("APR [46]", "At", True, (64.7, 84.3, 93.2, _n, _n, _n, _n, _n, _n, 51.9, 70.7, _n, _n)),
        _row4("PAN [55]", "A", True, (63.3, 82.8, 93.5, _n, _n, _n, _n, _n, _n, 51.5, 71.6, 83.9, _n)),
        _row4("PBF [52]", "P", True, (56.0, 79.3, 90.8, _n, _n, _n, _n, _n, _n, _n, _n, _n, _n)),
        _row4("TriNet [17]", "", True, (69.1, 84.9, 94.2, 76.4, 90.5, 96.3, 67.7, 79.8, 91.4, _n, _n, _n, _n)),
        _row4("Ours", "", False, (81.2, 92.2, 97.9, 87.3, 94.7, 98.6, 79.7, 85.8, 96.5, 72.8, 85.2, 93.9, 92.6)),
        _row4("Improvement", "", False, (8.1, 3.3, 3.7, 10.2, 3.0, 2.3, 12.0, 2.8, 2.8, 12.2, 6.0, 7.5, 14.7)),
        _row4("Re-ranking [57]", "", False, (63.6, 77.1, _n, _n, _n, _n, 68.4, 73.9, _n, _n, _n, _n, _n), True),
        _row4("TriNet (re-rank) [17]", "", True, (81.1, 86.7, 93.4, 87.2, 91.8, 95.8, 77.4, 81.2, 90.8, _n, _n, _n, _n),
              True),
        _row4("Ours (re-rank)", "", False, (90.0, 93.0, 95.9, 91.2, 94.2, 96.9, 85.7, 87.2, 94.9, 85.6, 89.4, 93.6, _n),
              True),
    ],
}
#: The table numbers :func:`paper_table` knows.
TABLE_NUMBERS = tuple(sorted(TABLE_ROWS))

#: Where Table 4's extraction dropped a "-" from a row: the column of that cell (one "-" of a run of them; which
#: one of the run is immaterial). Every comparison row (MG ... TriNet) has one cell fewer than the header in the
#: text (a trailing empty field); "Re-ranking [57]" has the full count but a "-" too many at its end. Where the
#: dropped cell comes before a row's last value, a positional parse of the text moves the later values one
#: column to the left: Zheng et al., OIM, the rows with Duke numbers but no MARS ones, and Re-ranking [57]
#: (its MARS 68.4 / 73.9 would land under Market MQ R5 and MARS mAP).
TABLE_4_LOST_CELL: dict[str, str] = {
    "Re-ranking [57]": "Market MQ mAP",
    **dict.fromkeys(("MG [41]", "CRAFT [7]", "SpindleNet [49]", "Part-Aligned [50]", "OL-MANS [58]",
                     "HydraPlus-Net [25]", "MSCAN [21]", "PDC [37]", "SSM [1]", "DML [48]", "PBF [52]",
                     "TriNet [17]"), "PS mAP"),
    "Zheng et al. [51]": "Market mAP",
    "OIM [43]": "Duke mAP",
    **dict.fromkeys(("Verif-Identif. [54]", "LSRO [56]", "SVDNet [39]", "DPFL [6]", "APR [46]", "PAN [55]"), "MARS mAP"),
}


def paper_table(table: int) -> pd.DataFrame:
    """Table ``table`` (1-4) of the paper as printed: the columns of :data:`TABLE_COLUMNS`, one row per printed
    row in the paper's order (RangeIndex), "-" cells NaN.

    Table 1: data augmentation; Table 2: the largest image side; Table 3: (a) pooling, (b) backbone, (c)
    pre-training for classification (column ``part``); all mAP on Market-1501 (SQ) and Duke. Table 4: the
    comparison with the state of the art, its "Improvement" row and the re-ranked rows (``re-ranking`` True)
    included, with the reading of spec §2.4 (:data:`TABLE_4_UNCERTAIN`).

    Raises:
        ValueError: ``table`` is not one of :data:`TABLE_NUMBERS`.
    """
    if isinstance(table, bool) or not isinstance(table, (int, np.integer)) or int(table) not in TABLE_ROWS:
        raise ValueError(f"paper_table: table must be one of {list(TABLE_NUMBERS)}, got {table!r}")
    return pd.DataFrame(TABLE_ROWS[int(table)], columns=list(TABLE_COLUMNS[int(table)]))


def table_4_as_extracted() -> pd.DataFrame:
    """Table 4 with each comparison row's cells where the text extraction puts them: the cell of
    :data:`TABLE_4_LOST_CELL` removed and the rest moved left, a NaN last (spec §4.9). A test parses the
    extraction and compares it with this, which checks the typing of :func:`paper_table` (4) and the reading."""
    frame = paper_table(4)
    for i, method in enumerate(frame.method):
        lost = TABLE_4_LOST_CELL.get(method)
        if lost is None:
            continue
        values = frame.loc[i, list(METRICS)].tolist()
        del values[METRICS.index(lost)]
        frame.loc[i, list(METRICS)] = [*values, _NA]
    return frame


def _cell(table: int, column: str, **where: Any) -> float:
    """The one cell of ``column`` in the row of ``table`` that matches ``where`` (column=value)."""
    return paper_cell(paper_table(table), column, f"Table {table}", **where)


def _dec(x: float | int | str) -> Decimal:
    """A printed number as the Decimal it was printed as (``repr`` of the typed float: ``81.2`` -> ``81.2``)."""
    return Decimal(repr(float(x))) if not isinstance(x, str) else Decimal(x)


def _half_up(x: Decimal, places: int) -> Decimal:
    """``x`` rounded half up (away from zero at .5) to ``places`` decimals, exactly."""
    f = Fraction(x)
    scale = 10 ** places
    q = math.floor(abs(f) * scale + Fraction(1, 2))
    return (Decimal(-q if f < 0 else q) / Decimal(scale)).quantize(Decimal(1).scaleb(-places))


# ---- the Improvement row (spec §3.1) --------------------------------------------------------------------------
#: The readings of Table 4 under which :func:`improvement_row` recomputes the Improvement row: the paper's own
#: (every row above "Ours", arXiv-only methods included) and three plausible wrong ones.
READINGS: dict[str, str] = {
    "paper": "best of every row above Ours, arXiv (*) methods included, cells as spec §2.4 reads them",
    "published only": "as 'paper' without the arXiv-only (*) methods",
    "with re-ranked rows": "as 'paper' plus the re-ranked rows below Ours",
    "cells as extracted": "as 'paper' with each row's cells where the text extraction places them",
}


def _prior_rows(reading: str) -> pd.DataFrame:
    if reading not in READINGS:
        raise ValueError(f"improvement_row: reading must be one of {list(READINGS)}, got {reading!r}")
    frame = table_4_as_extracted() if reading == "cells as extracted" else paper_table(4)
    ours = int(np.flatnonzero(frame.method == "Ours")[0])
    rows = frame.iloc[:ours]
    if reading == "published only":
        rows = rows[~rows.arxiv]
    elif reading == "with re-ranked rows":
        rows = pd.concat([rows, frame[frame.method.isin(["Re-ranking [57]", "TriNet (re-rank) [17]"])]])
    return rows


def improvement_row(reading: str = "paper") -> pd.DataFrame:
    """Table 4's "Improvement" row recomputed from the table's own columns: Ours minus the best earlier entry of
    each column (Sec. 4.3, spec §3.1), under ``reading`` (:data:`READINGS`; the paper's by default).

    One row per column of :data:`METRICS`: ``column``, ``best prior value``, ``best prior method`` (ties joined
    with " / "; "?" after a method whose cell is uncertain, :data:`TABLE_4_UNCERTAIN`), ``computed`` (exact
    decimal difference, as float; NaN where no earlier entry exists), ``paper`` (the printed Improvement cell),
    ``equal`` (``computed`` is the printed value). Under "paper" all 13 are equal.
    """
    prior = _prior_rows(reading)
    table = paper_table(4).set_index("method")
    ours, printed = table.loc["Ours"], table.loc["Improvement"]
    out = []
    for column in METRICS:
        values = prior[column].dropna()
        if values.empty:
            best, who, computed = _NA, "", _NA
        else:
            best = float(values.max())
            names = prior.loc[values.index[values == best], ["method", "uncertain"]]
            who = " / ".join(m + ("?" if column in u.split(", ") else "") for m, u in names.itertuples(index=False))
            difference = _dec(ours[column]) - _dec(best)
            computed = float(difference)
        paper = float(printed[column])
        equal = not values.empty and difference == _dec(paper)
        out.append({"column": column, "best prior value": best, "best prior method": who, "computed": computed,
                    "paper": paper, "equal": equal})
    return pd.DataFrame(out)


def improvement_readings() -> pd.DataFrame:
    """How many of the 13 Improvement cells each reading of :data:`READINGS` reproduces: columns ``reading``,
    ``description``, ``equal`` (of 13), ``columns that differ``."""
    rows = []
    for reading, description in READINGS.items():
        r = improvement_row(reading)
        rows.append({"reading": reading, "description": description, "equal": int(r.equal.sum()),
                     "columns that differ": ", ".join(r.column[~r.equal])})
    return pd.DataFrame(rows)


# ---- the numbers of the text ----------------------------------------------------------------------------------
#: The numbers the text states (section, quantity) -> value, as printed (%, mAP).
TEXT_VALUES: dict[tuple[str, str], float] = {
    ("1", "Market mAP improvement over the state of the art"): 8.1,
    ("4.3", "Market mAP"): 81.2,
    ("4.3", "Market mAP improvement over [6]"): 8.1,
    ("4.3", "MARS mAP improvement over [17]"): 12.0,
    ("4.3", "Duke mAP"): 72.8,
    ("4.3", "Duke mAP improvement over [6]"): 12.2,
    ("4.3", "Market mAP with re-ranking"): 90,
    ("4.3", "Market mAP with re-ranking, above [17]"): 8.9,
    ("4.3", "PS mAP"): 92.6,
    ("4.3", "PS mAP improvement over [43]"): 14.7,
    ("4.2", "mAP gain from 256 to 416 px"): 3,
    ("4.2", "mAP gain of ResNet-101 over ResNet-50 (about)"): 5,
}


def duke_discrepancy() -> pd.DataFrame:
    """Where the default configuration's mAP appears (spec §4.1): one row per place, columns ``where``,
    ``Market mAP``, ``Duke mAP``. Market is 81.2 everywhere; Duke is 72.9 in Tables 1-3 (the default rows: cut-out
    only and all three augmentations of Table 1, 416 px, max pooling, ResNet-101, pre-training) and 72.8 in Table
    4's "Ours" row and in Sec. 4.3's text: a rounding or another run, the paper does not say."""
    rows = [
        ("Table 1: cut-out only", 1, {"flip": False, "crop": False, "cut-out": True}),
        ("Table 1: flip + crop + cut-out", 1, {"flip": True, "crop": True, "cut-out": True}),
        ("Table 2: largest side 416", 2, {"largest side": 416}),
        ("Table 3 (a): max pooling", 3, {"setting": "max"}),
        ("Table 3 (b): ResNet-101", 3, {"setting": "ResNet-101"}),
        ("Table 3 (c): pre-training yes", 3, {"setting": "yes"}),
        ("Table 4: Ours", 4, {"method": "Ours"}),
    ]
    out = [{"where": w, "Market mAP": _cell(t, "Market mAP", **k), "Duke mAP": _cell(t, "Duke mAP", **k)}
           for w, t, k in rows]
    out.append({"where": "Sec. 4.3 text", "Market mAP": TEXT_VALUES[("4.3", "Market mAP")],
                "Duke mAP": TEXT_VALUES[("4.3", "Duke mAP")]})
    return pd.DataFrame(out)


def _t4(column: str, method: str) -> Decimal:
    return _dec(_cell(4, column, method=method))


def text_claims() -> pd.DataFrame:
    """The text's claims about the tables, recomputed from :func:`paper_table` (spec §3.1, §2.1-§2.3): columns
    ``section``, ``claim``, ``computed`` (exact decimal arithmetic, as float), ``stated`` (NaN for a claim of
    direction only), ``rule`` and ``matches``.

    Rules: ``"equal"`` -- ``computed`` rounded half up to the stated decimals is the stated figure (so Table 3b's
    4.9 and 5.3 are "about +5"); ``"positive"`` -- ``computed`` > 0; ``"zero"`` -- ``computed`` == 0. Sec. 4.2's
    "improves mAP by 3%" is exact on Market (3.0) but not on Duke (3.7): both rows are here, the Duke one does
    not match.
    """
    rows: list[tuple[str, str, Decimal, float | int, str]] = []
    ours = "Ours"
    t = TEXT_VALUES
    rows += [
        ("1", "8.1% absolute mAP improvement on Market (Table 4: Ours - DPFL [6])",
         _t4("Market mAP", ours) - _t4("Market mAP", "DPFL [6]"), t[("1", "Market mAP improvement over the state of the art")],
         "equal"),
        ("4.3", "mAP of 81.2% on Market (Table 4)", _t4("Market mAP", ours), t[("4.3", "Market mAP")], "equal"),
        ("4.3", "8.1% over the best published result [6] on Market",
         _t4("Market mAP", ours) - _t4("Market mAP", "DPFL [6]"), t[("4.3", "Market mAP improvement over [6]")], "equal"),
        ("4.3", "12.0% mAP over [17] on MARS", _t4("MARS mAP", ours) - _t4("MARS mAP", "TriNet [17]"),
         t[("4.3", "MARS mAP improvement over [17]")], "equal"),
        ("4.3", "mAP of 72.8% on Duke (Table 4)", _t4("Duke mAP", ours), t[("4.3", "Duke mAP")], "equal"),
        ("4.3", "12.2% over the previous best Duke mAP [6]", _t4("Duke mAP", ours) - _t4("Duke mAP", "DPFL [6]"),
         t[("4.3", "Duke mAP improvement over [6]")], "equal"),
        ("4.3", "mAP of 90% on Market with re-ranking", _t4("Market mAP", "Ours (re-rank)"),
         t[("4.3", "Market mAP with re-ranking")], "equal"),
        ("4.3", "8.9% above the best re-ranked mAP [17] (90.0 - 81.1)",
         _t4("Market mAP", "Ours (re-rank)") - _t4("Market mAP", "TriNet (re-rank) [17]"),
         t[("4.3", "Market mAP with re-ranking, above [17]")], "equal"),
        ("4.3", "mAP of 92.6% on PS", _t4("PS mAP", ours), t[("4.3", "PS mAP")], "equal"),
        ("4.3", "14.7% over the previous best PS result [43]", _t4("PS mAP", ours) - _t4("PS mAP", "OIM [43]"),
         t[("4.3", "PS mAP improvement over [43]")], "equal"),
    ]
    best_prior = improvement_row().set_index("column")["best prior value"]
    for p in ("Market", "Duke"):
        rows.append(("4.3", f"the ResNet-50 model (Table 3b) still outperforms prior art, {p} (minus Table 4's best prior)",
                     _dec(_cell(3, f"{p} mAP", setting="ResNet-50")) - _dec(best_prior[f"{p} mAP"]), _NA, "positive"))
    for p in ("Market", "Duke"):
        c = f"{p} mAP"
        rows.append(("4.2", f"Table 2: 256 -> 416 px improves mAP by 3%, {p}",
                     _dec(_cell(2, c, **{"largest side": 416})) - _dec(_cell(2, c, **{"largest side": 256})),
                     t[("4.2", "mAP gain from 256 to 416 px")], "equal"))
    for p in ("Market", "Duke"):
        c = f"{p} mAP"
        rows += [
            ("4.2", f"Table 1: cut-out renders flip and crop superfluous (all three - cut-out only), {p}",
             _dec(_cell(1, c, flip=True, crop=True, **{"cut-out": True}))
             - _dec(_cell(1, c, flip=False, crop=False, **{"cut-out": True})), _NA, "zero"),
            ("4.2", f"Table 3a: max pooling performs better than average, {p}",
             _dec(_cell(3, c, setting="max")) - _dec(_cell(3, c, setting="average")), _NA, "positive"),
            ("4.2", f"Table 3b: ResNet-101 about +5 mAP over ResNet-50, {p}",
             _dec(_cell(3, c, setting="ResNet-101")) - _dec(_cell(3, c, setting="ResNet-50")),
             t[("4.2", "mAP gain of ResNet-101 over ResNet-50 (about)")], "equal"),
            ("4.2", f"Table 3c: pre-training for classification matters, {p}",
             _dec(_cell(3, c, setting="yes")) - _dec(_cell(3, c, setting="no")), _NA, "positive"),
        ]
    out = []
    for section, claim, value, stated, rule in rows:
        if rule == "equal":
            # the stated figure's own decimals: "12.0" keeps one, "90" and "3" (typed as ints) none
            places = 0 if isinstance(stated, int) else max(0, -_dec(stated).as_tuple().exponent)
            matches = _half_up(value, places) == _dec(stated)
        elif rule == "positive":
            matches = value > 0
        else:
            matches = value == 0
        out.append({"section": section, "claim": claim, "computed": float(value), "stated": float(stated), "rule": rule,
                    "matches": bool(matches)})
    return pd.DataFrame(out)


def rerank_effect() -> pd.DataFrame:
    """Ours (re-rank) minus Ours per Table 4 column that has both (spec §2.4): columns ``column``, ``Ours``,
    ``Ours (re-rank)``, ``difference``; and the same for TriNet [17] (k-reciprocal re-ranking [57], where
    "Ours (re-rank)" is query expansion + database augmentation, footnote 2): ``TriNet``, ``TriNet (re-rank)``,
    ``TriNet difference`` (NaN where TriNet has no value). Ours: mAP rises in every set, R5 falls in every set,
    Market MQ R1 falls."""
    table = paper_table(4).set_index("method")
    out = []
    for column in METRICS:
        a, b = table.loc["Ours", column], table.loc["Ours (re-rank)", column]
        if math.isnan(b):
            continue
        ta, tb = table.loc["TriNet [17]", column], table.loc["TriNet (re-rank) [17]", column]
        tri = _NA if math.isnan(ta) or math.isnan(tb) else float(_dec(tb) - _dec(ta))
        out.append({"column": column, "Ours": a, "Ours (re-rank)": b, "difference": float(_dec(b) - _dec(a)),
                    "TriNet": ta, "TriNet (re-rank)": tb, "TriNet difference": tri})
    return pd.DataFrame(out)


# ---- the ranking stage's numbers (Sec. 4.1) -------------------------------------------------------------------
#: Sec. 4.1 and 3.2's numbers of the ranking stage (and the pre-training input, the FC).
PAPER_SETTINGS: dict[str, Any] = {
    "base_lr": 1e-3, "half_life": 512, "iterations": 4096, "batch": 64, "pool": 5000, "refresh": 16, "top": 25,
    "margin": 0.1, "fc_dim": 2048, "largest_side": 416, "pretrain_size": (224, 224), "pretrain_batch": 128,
    "pretrain_lr": (1e-2, 1e-4), "momentum": 0.9, "weight_decay": 5e-5,
}
#: The iterations at which spec §3.5 gives the learning rate exactly.
SCHEDULE_TIMES = (0, 512, 1024, 2048, 4096)


def schedule_values(times: Iterable[int] = SCHEDULE_TIMES, *, base_lr: float = PAPER_SETTINGS["base_lr"],
                    half_life: int = PAPER_SETTINGS["half_life"]) -> pd.DataFrame:
    """The ranking stage's learning rate (Sec. 4.1: "a logarithmic rate that halves the learning rate every 512
    iterations", spec §1.4, §3.5) at iterations ``times``, both readings: ``continuous`` ``base_lr * 2^(-t/512)``
    and ``step`` ``base_lr * 2^(-floor(t/512))``; ``engine`` and ``engine step`` the library's
    :class:`~reidlib.engine.schedules.ExponentialHalving` (plain and staircase); ``halvings`` ``t / 512``;
    ``step exact`` the step reading in exact decimal (text: ``"0.00000390625"`` at 4096). At multiples of 512 all agree:
    1e-3, 5e-4, 2.5e-4, 6.25e-5, 3.90625e-6 at 0, 512, 1024, 2048, 4096."""
    smooth, stair = ExponentialHalving(base_lr, half_life=half_life), ExponentialHalving(base_lr, half_life, staircase=True)
    rows = []
    for t in times:
        t = int(t)
        if t < 0:
            raise ValueError(f"schedule_values: iterations must be >= 0, got {t}")
        k = t // half_life
        rows.append({"t": t, "halvings": t / half_life, "continuous": base_lr * 2.0 ** (-t / half_life),
                     "step": base_lr * 2.0 ** (-k), "engine": smooth.lr_at(0, t), "engine step": stair.lr_at(0, t),
                     "step exact": str((_dec(base_lr) / Decimal(2) ** k).normalize())})
    return pd.DataFrame(rows)


def halvings(iterations: int = PAPER_SETTINGS["iterations"], half_life: int = PAPER_SETTINGS["half_life"]) -> int | float:
    """How many times the learning rate halves over a run: ``iterations / half_life`` (4096 / 512 = 8, so the last
    rate is 1e-3 / 2^8; an int when whole)."""
    f = Fraction(iterations, half_life)
    return int(f) if f.denominator == 1 else float(f)


def compute_counts(iterations: int = PAPER_SETTINGS["iterations"], batch: int = PAPER_SETTINGS["batch"],
                   pool: int = PAPER_SETTINGS["pool"], refresh: int = PAPER_SETTINGS["refresh"]) -> pd.Series:
    """What a ranking run costs (Sec. 4.1, spec §3.6): ``iterations`` updates of ``batch`` triplets, a pool of
    ``pool`` images embedded anew every ``refresh`` updates. Entries (int): ``iterations``, ``triplets`` (= it x b),
    ``image passes`` (3 per triplet, forward and backward), ``pools`` (one at updates 0, k, 2k, ...: ceil(it / k)),
    ``pool embeddings`` (pools x N, forward only), ``triplets per pool`` (k x b), ``forward passes in all``.
    The paper's 4,096 x 64, N = 5,000, k = 16: 262,144 triplets, 786,432 passes, 256 pools, 1,280,000 embeddings,
    1,024 triplets per pool."""
    for name, v in (("iterations", iterations), ("batch", batch), ("pool", pool), ("refresh", refresh)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"compute_counts: {name} must be a positive integer, got {v!r}")
    triplets = iterations * batch
    pools = -(-iterations // refresh)
    counts = {"iterations": iterations, "triplets": triplets, "image passes": 3 * triplets, "pools": pools,
              "pool embeddings": pools * pool, "triplets per pool": refresh * batch,
              "forward passes in all": 3 * triplets + pools * pool}
    return pd.Series(counts, dtype="int64", name=f"{iterations} x {batch}, N = {pool}, k = {refresh}")


# ---- feature-map sizes (spec §3.7) ----------------------------------------------------------------------------
#: Market's 128 x 64 crops at the largest sides of Table 2 (aspect kept), and stage 1's 224 x 224 (H, W).
PAPER_INPUTS: tuple[tuple[int, int], ...] = ((256, 128), (416, 208), (640, 320), (224, 224))
#: Table 2's largest sides (px).
LARGEST_SIDES = (256, 416, 640)


def _stride2(n: int) -> int:
    # a stride-2 conv or pool with "same" padding (7x7 p3, 3x3 p1, 1x1 p0): out = floor((in - 1) / 2) + 1
    return (n - 1) // 2 + 1


def _sizes(inputs: Iterable[Sequence[int]]) -> list[tuple[int, int]]:
    out = []
    for hw in inputs:
        h, w = (int(v) for v in hw)
        if h < 1 or w < 1:
            raise ValueError(f"input sizes must be positive (H, W), got {tuple(hw)}")
        out.append((h, w))
    return out


def feature_map_sizes(inputs: Iterable[Sequence[int]] = PAPER_INPUTS, stride_layers: int = 5) -> pd.DataFrame:
    """The final feature map of a torchvision ResNet for inputs ``(H, W)``: ``stride_layers`` stride-2 layers
    (conv1, max pool, layer2-4: output stride 32; the paper keeps the standard stride, Sec. 3.1), each
    ``out = floor((in - 1) / 2) + 1``. Columns ``input`` (``"416x208"``), ``H``, ``W``, ``map H``, ``map W``,
    ``positions`` (how many locations the global max pooling takes the max over). 256x128 -> 8x4, 416x208 ->
    13x7, 640x320 -> 20x10, 224x224 -> 7x7."""
    rows = []
    for h, w in _sizes(inputs):
        mh, mw = h, w
        for _ in range(stride_layers):
            mh, mw = _stride2(mh), _stride2(mw)
        rows.append({"input": f"{h}x{w}", "H": h, "W": w, "map H": mh, "map W": mw, "positions": mh * mw})
    return pd.DataFrame(rows)


def forward_map_sizes(inputs: Iterable[Sequence[int]] = PAPER_INPUTS, arch: str = "resnet18") -> pd.DataFrame:
    """:func:`feature_map_sizes`'s columns measured: torchvision's ``arch`` (``weights=None``), its children up to
    ``layer4``, run on zeros of each size (the check that the closed form is torchvision's arithmetic)."""
    import torch
    import torchvision

    model = getattr(torchvision.models, arch)(weights=None).eval()
    body = torch.nn.Sequential(*list(model.children())[:-2])
    rows = []
    with torch.no_grad():
        for h, w in _sizes(inputs):
            mh, mw = body(torch.zeros(1, 3, h, w)).shape[2:]
            rows.append({"input": f"{h}x{w}", "H": h, "W": w, "map H": int(mh), "map W": int(mw),
                         "positions": int(mh * mw)})
    return pd.DataFrame(rows)


# ---- image sizes (spec §4.2) ----------------------------------------------------------------------------------
#: Sec. 4.2: "Images from the Market dataset have a fixed size of 256 x 128" (H x W).
MARKET_STATED_SIZE = (256, 128)
#: Sec. 4.2: "images from Duke have a variable size, with 256 x 128 pixels on average".
DUKE_STATED_MEAN_SIZE = (256, 128)
#: Market-1501's crops are 128 x 64 (H x W; 256 x 128 is the customary network input, spec §4.2).
MARKET_CROP_SIZE = (128, 64)


@lru_cache(maxsize=8)
def _header_sizes(folder: str) -> tuple[tuple[int, int], ...]:
    """(H, W) of every ``*.jpg``/``*.png`` under ``folder`` from its header (PIL opens lazily: no pixel is decoded)."""
    from PIL import Image

    out = []
    for p in sorted(q for q in Path(folder).rglob("*") if q.suffix.lower() in (".jpg", ".jpeg", ".png")):
        with Image.open(p) as im:
            w, h = im.size
        out.append((h, w))
    return tuple(out)


def _size_row(source: str, kind: str, sizes: Sequence[tuple[int, int]], sides: Sequence[int]) -> dict[str, Any]:
    hw = np.asarray(sizes, dtype=float).reshape(-1, 2)
    largest = float(np.median(hw.max(axis=1)))
    row = {"source": source, "kind": kind, "images": len(hw) if kind == "measured" else _NA,
           "H mean": float(hw[:, 0].mean()), "H median": float(np.median(hw[:, 0])),
           "W mean": float(hw[:, 1].mean()), "W median": float(np.median(hw[:, 1])), "largest side": largest}
    row.update({f"up-scale to {s}": s / largest for s in sides})
    return row


def image_size_statement(realdata: str | Path | None = None, sides: Sequence[int] = LARGEST_SIDES) -> pd.DataFrame:
    """Sec. 4.2's image sizes against the images' real sizes (spec §4.2), and the up-scaling each largest side of
    Table 2 means: one row per source, columns ``source``, ``kind`` (``stated`` by the paper, ``dataset`` as
    released, ``preset`` of synthped, ``measured`` from image headers), ``images``, ``H mean``, ``H median``,
    ``W mean``, ``W median``, ``largest side`` (median of each image's larger side) and ``up-scale to <side>``
    (side / largest side) for each of ``sides``.

    Market's crops are 128 x 64, not the stated 256 x 128: M = 416 up-scales them 3.25x, not 1.625x. synthped's
    presets (:data:`reidlib.data.synthped.PRESETS`) are Market's 128 x 64 ("large": 256 x 128). Measured rows,
    from ``realdata`` (default :func:`reidlib.paths.realdata_dir`), are left out where their folder is absent: the
    Market-1501 and DukeMTMC-reID sample crops (a few dozen, hand-picked: not the datasets' statistics) and the
    CUHK03-NP labeled camera-pair-1 subset (its images were downscaled to at most 256 px high when it was built).
    Only sizes are read, never pixels.
    """
    base = Path(realdata) if realdata is not None else realdata_dir()

    def measured(source: str, *parts: str) -> list[dict[str, Any]]:
        folder = base.joinpath(*parts)
        sizes = _header_sizes(str(folder.resolve())) if folder.is_dir() else ()
        return [_size_row(source, "measured", sizes, sides)] if sizes else []  # absent here: no row

    return pd.DataFrame([
        _size_row("Market-1501, as Sec. 4.2 states", "stated", [MARKET_STATED_SIZE], sides),
        _size_row("Market-1501 crops", "dataset", [MARKET_CROP_SIZE], sides),
        *measured("Market-1501 sample crops (realdata)", "samples", "market1501"),
        _size_row("DukeMTMC-reID, as Sec. 4.2 states (mean)", "stated", [DUKE_STATED_MEAN_SIZE], sides),
        *measured("DukeMTMC-reID sample crops (realdata)", "samples", "dukemtmc_reid"),
        *(_size_row(f"synthped '{name}'", "preset", [(p["height"], p["width"])], sides) for name, p in SYNTHPED_PRESETS.items()),
        *measured("CUHK03-NP labeled, camera pair 1 (realdata)", "cuhk03_np_pair1", "labeled"),
    ])


# ---- parameter counts (spec §3.8) -----------------------------------------------------------------------------
_BACKBONES = {"ResNet-50": "resnet50", "ResNet-101": "resnet101", "ResNet-152": "resnet152"}


def parameter_counts(device: str = "meta") -> pd.DataFrame:
    """The model's parameters per backbone (Sec. 3.1, 4.1; spec §3.8), from torchvision's definitions
    (``weights=None``; built on ``device``, the meta device by default: shapes without memory). One row per
    backbone: ``backbone``, ``torchvision total`` (with the ImageNet classifier), ``trunk`` (the children up to
    ``layer4``: no avgpool, no fc), ``FC with bias`` and ``FC without bias`` (the 2048 -> 2048 layer; the paper
    does not say which), ``whole with bias``, ``whole without bias`` and ``descriptor bytes`` (2048 float32).
    ResNet-50/101/152 trunks: 23,508,032 / 42,500,160 / 58,143,808; FC 4,196,352 / 4,194,304; whole (bias):
    27,704,384 / 46,696,512 / 62,340,160."""
    import torch
    import torchvision

    dim = PAPER_SETTINGS["fc_dim"]
    with torch.device(device):
        fc_bias = sum(p.numel() for p in torch.nn.Linear(dim, dim).parameters())
        fc_plain = sum(p.numel() for p in torch.nn.Linear(dim, dim, bias=False).parameters())
        rows = []
        for name, arch in _BACKBONES.items():
            model = getattr(torchvision.models, arch)(weights=None)
            total = sum(p.numel() for p in model.parameters())
            trunk = sum(p.numel() for c in list(model.children())[:-2] for p in c.parameters())
            rows.append({"backbone": name, "torchvision total": total, "trunk": trunk, "FC with bias": fc_bias,
                         "FC without bias": fc_plain, "whole with bias": trunk + fc_bias,
                         "whole without bias": trunk + fc_plain, "descriptor bytes": dim * 4})
    return pd.DataFrame(rows)


# ---- dataset arithmetic (spec §3.9, §4.5) ---------------------------------------------------------------------
_MARKET_SRC = "Zheng et al. 2015 [53]; the release's bounding_box_train / bounding_box_test / query"
_DUKE_SRC = "Zheng et al. 2017 [56]; the DukeMTMC-reID release (plus 408 distractor ids in the gallery)"
_PS_SRC = "Xiao et al. 2017 [43] (CUHK-SYSU)"
_MARS_SRC = "Zheng et al. 2016 [51]; the MARS release (bbox_train / bbox_test)"
#: (dataset, quantity, the paper's terms (a negative one is subtracted), the total the paper states or None,
#: the release's figure, where that figure comes from). The terms are Sec. 4.1's numbers.
_DATASET_ROWS: list[tuple[str, str, tuple[int, ...], int | None, int, str]] = [
    ("Market-1501", "identities (train + test)", (751, 750), 1501, 1501, _MARKET_SRC),
    ("Market-1501", "boxes (train + gallery)", (12_936, 19_732), None, 32_668, _MARKET_SRC),
    ("Market-1501", "images (train + gallery + query)", (12_936, 19_732, 3_368), None, 36_036, _MARKET_SRC),
    ("DukeMTMC-reID", "identities (train + test)", (702, 702), None, 1_404, _DUKE_SRC),
    ("DukeMTMC-reID", "images (train + query + gallery)", (16_522, 2_228, 17_661), None, 36_411, _DUKE_SRC),
    ("Person Search", "images (train + test)", (11_206, 6_978), 18_184, 18_184, _PS_SRC),
    ("Person Search", "identities (train + test)", (5_532, 2_900), 8_432, 8_432, _PS_SRC),
    ("MARS", "identities (train + test)", (631, 630), 1_261, 1_261, _MARS_SRC),
    ("MARS", "train identities", (631,), None, 625, _MARS_SRC),
    ("MARS", "test identities", (630,), None, 636, _MARS_SRC),
    ("MARS", "images", (1_067_516,), None, 1_191_003, _MARS_SRC),
    ("MARS", "train images", (518_000,), None, 509_914, _MARS_SRC),
    ("MARS", "test images (the remainder)", (1_067_516, -518_000), None, 681_089, _MARS_SRC),
]


def dataset_sums() -> pd.DataFrame:
    """The dataset arithmetic of Sec. 4.1 (spec §3.9) with each release's own figure beside it (spec §4.5): one
    row per quantity, columns ``dataset``, ``quantity``, ``terms`` (the paper's numbers, as text), ``computed``
    (their sum), ``paper total`` (the total the text itself states; NaN where it states none), ``sums`` (the
    terms add up to it; NaN where there is none), ``release``, ``agrees`` (``computed`` is the release's figure)
    and ``release source``. The sums are right everywhere; MARS's split is not the release's (631 / 630 ids and
    1,067,516 images, 518,000 for training, against 625 / 636 and 1,191,003 = 509,914 + 681,089): use the
    dataset's own split files, never the paper's counts."""
    rows = []
    for dataset, quantity, terms, stated, release, source in _DATASET_ROWS:
        text = f"{terms[0]:,}" + "".join(f" {'-' if v < 0 else '+'} {abs(v):,}" for v in terms[1:])
        computed = sum(terms)
        rows.append({"dataset": dataset, "quantity": quantity, "terms": text, "computed": computed,
                     "paper total": _NA if stated is None else stated,
                     "sums": _NA if stated is None else computed == stated, "release": release,
                     "agrees": computed == release, "release source": source})
    return pd.DataFrame(rows)
