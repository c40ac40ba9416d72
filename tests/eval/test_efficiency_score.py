"""HENet's Efficiency Score (Eq. 10-11): Table 1 recomputed from its own columns, the neighbouring
forms ruled out, properties of the formula, and bad tables."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reidlib.eval import ES_COLUMNS, efficiency_score, efficiency_score_terms
from reidlib.papers.henet import TABLE_1_ES, table_1


def test_table_1_is_reproduced_to_two_decimals():
    es = efficiency_score(table_1())
    assert es.attrs["m1"] == "HPM" and es.attrs["m2"] == "AlignedReID"  # largest V, lowest R1
    assert {m: round(v, 2) for m, v in es.items()} == TABLE_1_ES


def test_the_worked_example_by_hand():
    # AlignedReID, R1: 100 * 207^2 * 30^3 / 2048 over HPM's 356 * 82^2 * (94.2 - 91.8 + 30)^3 / 3840
    terms = efficiency_score_terms(table_1())
    by_hand = (100 * 207**2 * 30**3 / 2048) / (356 * 82**2 * 32.4**3 / 3840)
    assert terms.loc["AlignedReID", "Score_R1"] == pytest.approx(by_hand, rel=1e-12)
    assert terms.loc["HPM", ["Score_R1", "Score_mAP", "ES"]].tolist() == pytest.approx([1.0, 1.0, 1.0])


def _es_by_hand(a=1, b=2, c=3, d=1, thr=30.0, lam=1.0, m2="AlignedReID") -> pd.Series:
    """Eq. (10)-(11) with exponents V^a S^b (.)^c / FD^d, recomputed independently of the library."""
    t = table_1()
    m1 = t["V"].idxmax()

    def score(metric):
        g = t["V"] ** a * t["S"] ** b * (t[metric] - t.loc[m2, metric] + thr) ** c / t["FD"] ** d
        return g / g[m1]

    return (score("R1") + lam * score("mAP")) / (1 + lam)


def _reproduces(*form, **options) -> bool:
    es = _es_by_hand(*form, **options)
    return all(round(es[m], 2) == v for m, v in TABLE_1_ES.items())


def test_the_reconstruction_is_the_only_one_of_its_family():
    assert _reproduces()
    forms = [f for f in itertools.product((0, 1, 2), (0, 1, 2, 3), (0, 1, 2, 3, 4), (0, 1, 2), (10, 20, 30, 40, 50))
             if _reproduces(*f)]
    assert forms == [(1, 2, 3, 1, 30)]
    assert [t / 2 for t in range(40, 81) if _reproduces(thr=t / 2)] == [30.0]
    assert [lam for lam in (0, 0.5, 1, 2, 3) if _reproduces(lam=lam)] == [1]
    assert [m for m in TABLE_1_ES if _reproduces(m2=m)] == ["AlignedReID"]


@pytest.mark.parametrize("thr, lam", [(20.0, 0.5), (40.0, 2.0)])
def test_library_matches_the_independent_recomputation_for_other_options(thr, lam):
    lib = efficiency_score(table_1(), thr=thr, lam=lam)
    np.testing.assert_allclose(lib.to_numpy(), _es_by_hand(thr=thr, lam=lam).to_numpy(), rtol=1e-12)


def test_size_sits_in_the_numerator():
    # Table 1 marks V "lower is better"; the formula rewards it: doubling a non-reference model's V doubles
    # both its terms and so its ES
    t = table_1()
    bigger = t.copy()
    bigger.loc["PCB", "V"] *= 2
    assert efficiency_score(bigger)["PCB"] == pytest.approx(2 * efficiency_score(t)["PCB"])


def test_references_can_be_named_and_the_set_matters():
    t = table_1()
    fixed = efficiency_score(t, m1="MGN")
    assert fixed["MGN"] == pytest.approx(1.0) and fixed.attrs["m1"] == "MGN"
    # dropping the largest model changes M1, so every score
    without = efficiency_score(t.drop(index="HPM"))
    assert without.attrs["m1"] == "MGN"
    assert not np.allclose(without.to_numpy(), efficiency_score(t).drop(index="HPM").to_numpy())


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(50, 99), st.floats(30, 95), st.integers(64, 8192), st.floats(1, 500),
                          st.floats(1, 2000)), min_size=2, max_size=8))
def test_properties(rows):
    t = pd.DataFrame(rows, columns=list(ES_COLUMNS), index=[f"m{i}" for i in range(len(rows))])
    t = t[(t["mAP"] - t["mAP"].loc[t["R1"].idxmin()] + 30) > 1e-6]
    if len(t) < 2:
        return
    terms = efficiency_score_terms(t)
    assert terms.loc[terms.attrs["m1"], ["Score_R1", "Score_mAP", "ES"]].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert (terms["Score_R1"] > 0).all() and np.isfinite(terms.to_numpy()).all()
    # ES is the mean of the two terms (lam = 1), between them
    lo = terms[["Score_R1", "Score_mAP"]].min(axis=1)
    hi = terms[["Score_R1", "Score_mAP"]].max(axis=1)
    assert ((terms["ES"] >= lo * (1 - 1e-12)) & (terms["ES"] <= hi * (1 + 1e-12))).all()


@pytest.mark.parametrize("change, match", [
    (lambda t: t.drop(columns="S"), r"lacks the column\(s\) \['S'\]"),
    (lambda t: t.iloc[:1], "at least two models"),
    (lambda t: t.assign(V=t["V"].where(t.index != "PCB", 0.0)), r"column 'V' must be positive; models \['PCB'\]"),
    (lambda t: t.assign(FD=t["FD"].where(t.index != "MGN", -1)), r"column 'FD' must be positive; models \['MGN'\]"),
    (lambda t: t.assign(R1=t["R1"].where(t.index != "MGN", np.nan)), r"column 'R1' must be finite"),
    (lambda t: pd.concat([t, t.iloc[:1]]), "duplicates"),
    (lambda t: t.to_numpy(), "must be a pandas DataFrame"),
])
def test_bad_tables_are_named(change, match):
    with pytest.raises(ValueError, match=match):
        efficiency_score(change(table_1()))


def test_a_model_far_below_m2_is_refused():
    t = table_1()
    t.loc["weak", :] = [91.9, 40.0, 2048, 50, 100]  # mAP 39.3 below AlignedReID's: (T - T_M2 + 30)^3 < 0
    with pytest.raises(ValueError, match=r"models \['weak'\] have mAP 30.0 or more below M2"):
        efficiency_score(t)
    with pytest.raises(ValueError, match="m2='nobody' is not a model"):
        efficiency_score(table_1(), m2="nobody")
