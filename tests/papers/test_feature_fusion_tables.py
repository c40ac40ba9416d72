"""The feature-fusion paper's printed tables as data, and the rank-1 audit against whole numbers of queries."""
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest

from reidlib.papers import feature_fusion as ff
from reidlib.papers import feature_fusion_tables as ft


@pytest.mark.parametrize("table, shape", [(2, (18, 4)), (3, (19, 4)), (6, (6, 6)), (7, (6, 4)), (8, (6, 6)),
                                          (9, (9, 4)), (10, (8, 6))])
def test_each_table_has_its_printed_shape_and_columns(table, shape):
    frame = ft.paper_table(table)
    assert frame.shape == shape and list(frame.columns) == list(ft.TABLE_COLUMNS[table])
    metrics = [c for c in frame.columns if c.endswith((" R1", " mAP"))]
    values = frame[metrics].to_numpy(float)
    assert np.isfinite(values).all() and values.min() > 0 and values.max() < 100
    if "variant" in frame:
        assert set(frame.variant) <= set(ff.VARIANTS)


def test_spot_values_are_the_printed_numbers():
    t2 = ft.paper_table(2).set_index("method")
    assert t2.loc["Ours", ["Market R1", "Market mAP"]].tolist() == [95.7, 87.7]
    assert t2.loc["GCP (AAAI20)", "Market mAP"] == 88.0 and t2.loc["RGA-CS (CVPR20)", "Market mAP"] == 87.8
    t3 = ft.paper_table(3).set_index("method")
    assert t3.loc["3DTANet (TCSVT20)", ["Duke R1", "Duke mAP"]].tolist() == [89.9, 78.4]
    assert t3.loc["Ours", "Duke R1"] == 90.2
    t6 = ft.paper_table(6).set_index("variant")
    assert t6.loc["baseline"].tolist()[1:] == [88.1, 71.1, 79.2, 63.7]
    assert t6.loc["full", "Market R1"] - t6.loc["baseline", "Market R1"] == pytest.approx(7.6)   # the text's +7.6
    assert t6.loc["full", "Market mAP"] - t6.loc["baseline", "Market mAP"] == pytest.approx(16.6)
    assert ft.paper_table(7).set_index("variant").loc["base+cam", "Duke mAP"] == 72.8
    t8 = ft.paper_table(8).set_index("variant")
    assert t8.loc["bmm", ["Duke→Market R1", "Duke→Market mAP"]].tolist() == [51.15, 24.68]
    assert t8.loc["tricks", "Duke→Market R1"] - t8.loc["baseline", "Duke→Market R1"] == pytest.approx(7.78)
    t9 = ft.paper_table(9).set_index("variant")
    assert t9.loc["C+S+cat", "Market mAP"] == 86.2 < t9.loc["bmm", "Market mAP"] == 86.5
    t10 = ft.paper_table(10).set_index("variant")
    assert t10.loc["stage4"].tolist()[1:] == [93.72, 86.05, 88.63, 77.47]
    assert t10.loc["full", "Duke R1"] == 90.17 and t10.loc["stage1-2", "Duke R1"] == 82.23


def test_the_rows_are_the_recipes_variants_in_order():
    for t in (6, 7, 9, 10):
        frame = ft.paper_table(t)
        assert frame.variant.tolist() == list(ff.TABLE_ROWS[t]) and frame.model.tolist() == list(ff.TABLE_ROWS[t].values())
    assert ft.paper_table(8).variant.tolist() == list(ff.TABLE_ROWS[6])


@pytest.mark.parametrize("bad", [1, 4, 5, 11, "6", 6.0, True, None])
def test_a_table_the_paper_does_not_have_here_is_a_value_error_naming_the_allowed(bad):
    with pytest.raises(ValueError, match=r"table must be one of \[2, 3, 6, 7, 8, 9, 10\]"):
        ft.paper_table(bad)


def test_round_half_up_is_exact():
    assert str(ft.round_half_up(Fraction(1, 8), 2)) == "0.13"
    assert str(ft.round_half_up(Fraction(3221 * 100, 3368), 2)) == "95.64"
    assert str(ft.round_half_up(Fraction(2009 * 100, 2228), 2)) == "90.17"


def _brute_force_impossible() -> set[tuple[int, str, str]]:
    """Every count 0..Q, rounded by Decimal's own half-up quantize, against every printed cell."""
    out = set()
    with localcontext() as ctx:
        ctx.prec = 40
        for t in ft.TABLE_NUMBERS:
            frame, d = ft.paper_table(t), ft.DECIMALS[t]
            step = Decimal(1).scaleb(-d)
            for column in (c for c in frame.columns if c.endswith(" R1")):
                q = ft.QUERIES[ft.EVALUATED_ON[column.removesuffix(" R1")]]
                reachable = {(Decimal(100 * k) / Decimal(q)).quantize(step, rounding=ROUND_HALF_UP) for k in range(q + 1)}
                for _, r in frame.iterrows():
                    if Decimal(repr(float(r[column]))).quantize(step) not in reachable:
                        out.add((t, r.iloc[0], column))
    return out


def test_the_audit_flags_exactly_what_a_brute_force_over_k_finds():
    audit = ft.rank1_audit()
    assert len(audit) == sum(len(ft.paper_table(t)) * sum(c.endswith(" R1") for c in ft.TABLE_COLUMNS[t])
                             for t in ft.TABLE_NUMBERS)
    flagged = {(r.table, r.row, r.column) for r in ft.impossible_rank1().itertuples()}
    assert flagged == _brute_force_impossible()
    assert flagged == {(8, "+ MGO", "Duke→Market R1"), (8, "+ SAM", "Duke→Market R1"), (8, "+ SAM", "Market→Duke R1"),
                       (8, "+ CAM", "Market→Duke R1"), (10, "stage 3", "Market R1"), (10, "stage 4", "Market R1"),
                       (10, "stage 2-4", "Market R1"), (10, "All stage", "Market R1"), (10, "stage 4", "Duke R1")}
    # one-decimal cells span 3.4 / 2.2 queries: every one of them is reachable
    assert audit[audit.decimals == 1].reproducible.all()


def test_the_audit_cells():
    audit = ft.rank1_audit().set_index(["table", "row", "column"])
    full = audit.loc[(10, "All stage", "Market R1")]
    assert (full.k, full["k/Q·100"], full.Q, full.counts) == (3221, "95.64", 3368, [])
    assert 3221 / 3368 * 100 < 95.645 and 3222 / 3368 * 100 > 95.655       # 95.65 falls between two counts
    duke = audit.loc[(10, "All stage", "Duke R1")]
    assert (duke.k, duke["k/Q·100"], duke.counts, duke.reproducible) == (2009, "90.17", [2009], True)
    ours = audit.loc[(2, "Ours", "Market R1")]
    assert ours.counts == list(range(3222, 3225)) and ours.k == 3223
    assert audit.loc[(8, "+ CAM", "Duke→Market R1"), "set"] == "Market"
    assert audit.loc[(8, "+ CAM", "Market→Duke R1"), "Q"] == 2228


def test_beside_ours_sets_each_printed_row_by_its_variant_and_differences_to_the_reference_row():
    import pandas as pd

    from reidlib.papers.feature_fusion_tables import beside_ours

    runs = pd.DataFrame({"variant": ["baseline", "baseline", "tricks"], "mAP": [40.0, 42.0, 50.0]})
    t7 = beside_ours(7, runs)
    assert t7.loc["Baseline", "paper mAP"] == 63.7 and t7.loc["+ Tricks", "paper Δ vs Base"] == pytest.approx(5.8)
    assert t7.loc["+ Tricks", "ours mAP"] == 50.0 and t7.loc["+ Tricks", "ours Δ vs Base"] == 9.0
    assert t7.loc["Baseline", "seeds"] == 2 and t7.loc["+ MGO", "seeds"] == 0
    t9 = beside_ours(9, runs)
    assert t9.loc["+ S + © + C", "paper Δ vs Base"] == pytest.approx(87.7 - 86.5)  # Market, to BaselineBMM
    with pytest.raises(ValueError, match="table must be one of"):
        beside_ours(8, runs)
