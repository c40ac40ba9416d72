"""Records -> tables and claims, shared by the results pages: the verdict rule of the book."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reidlib.papers.results import difference_interval, judge_claims, paper_beside_ours


def _runs(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "seed": s, "mAP": m} for v, ms in values.items() for s, m in enumerate(ms)])


def test_interval_is_welchs_t():
    a, b = np.array([60.0, 62.0, 61.0, 63.0]), np.array([55.0, 58.0, 56.0])
    diff, low, high = difference_interval(a, b)
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert diff == pytest.approx(a.mean() - b.mean()) and (low, high) == pytest.approx((ci.low, ci.high))


def test_verdicts_follow_the_rules():
    runs = _runs({"a": [60, 61, 62], "b": [50, 51, 52], "c": [60, 70, 50], "d": [80], "e": [40, 41, 39]})
    claims = judge_claims([("a beats b", "a", "b"), ("a beats c", "a", "c"), ("d beats b", "d", "b"),
                           ("e beats a", "e", "a"), ("x beats a", "x", "a")], runs)
    assert claims.verdict.tolist() == ["held (seeds only)", "undecided (seeds only)", "undecided (< 3 seeds)",
                                       "did not hold (seeds only)", "no run"]
    assert claims.loc["d beats b", "difference"] == pytest.approx(29.0)  # shown, but one seed decides nothing
    assert claims.loc["a beats b", "seeds"] == "3 / 3"


def test_paper_row_beside_ours_with_aliases():
    paper = pd.DataFrame({"mAP": [80.0, 85.0, 88.0]}, index=["Base", "X", "Y"])
    runs = _runs({"base": [50, 52, 54], "x": [55], "x2": [57]})
    t = paper_beside_ours({"Base": "base", "X": ("x", "x2"), "Y": None}, paper, "mAP", runs, base="base",
                          paper_base=80.0)
    assert t.loc["X", "ours mAP"] == 56 and t.loc["X", "ours Δ vs Base"] == 4 and t.loc["X", "seeds"] == 2
    assert t.loc["X", "paper Δ vs Base"] == 5 and np.isnan(t.loc["Y", "ours mAP"]) and t.loc["Y", "seeds"] == 0


def _runs_with_queries(per_query: dict[str, list[np.ndarray]]) -> pd.DataFrame:
    return pd.DataFrame([{"variant": v, "seed": s, "mAP": float(q.mean()), "per-query AP": q}
                         for v, qs in per_query.items() for s, q in enumerate(qs)])


def test_a_claim_needs_both_intervals_above_zero():
    rng = np.random.default_rng(0)
    base = rng.uniform(20, 80, size=300)
    # "a" beats "b" by 5 points on every query: both intervals lie above 0
    # "c" beats "b" by 5 points on average, but only on a few queries (huge query noise): undecided
    spiky = np.zeros(300)
    spiky[:3] = 500.0
    runs = _runs_with_queries({
        "b": [base + d for d in (-0.1, 0.0, 0.1)],
        "a": [base + 5 + d for d in (-0.1, 0.0, 0.1)],
        "c": [base + spiky + d for d in (-0.1, 0.0, 0.1)],
    })
    claims = judge_claims([("a beats b", "a", "b"), ("c beats b", "c", "b"), ("b beats a", "b", "a"),
                           ("b beats b", "b", "b")], runs)
    assert claims.loc["c beats b", "95% low"] > 0  # over seeds alone it would hold
    assert claims.loc["c beats b", "queries 95% low"] <= 0
    assert claims.verdict.tolist() == ["held", "undecided", "did not hold", "undecided"]
    assert claims.loc["b beats b", ["queries 95% low", "queries 95% high"]].tolist() == [0.0, 0.0]
