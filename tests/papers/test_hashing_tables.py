"""The hashing paper's printed tables as data and the checks that need no training (spec §2, §3, §4)."""
import numpy as np
import pandas as pd
import pytest

from reidlib.papers import hashing, hashing_search
from reidlib.papers import hashing_tables as ht
from reidlib.retrieval import afr_window


# ---- the printed tables ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("table, shape", [(1, (19, 6)), (2, (19, 4)), (3, (15, 6)), (4, (6, 5)), (5, (9, 7)),
                                          (6, (14, 12)), (7, (4, 12)), (8, (12, 8)), (9, (4, 7)), (10, (6, 9))])
def test_each_table_has_its_printed_shape_and_columns(table, shape):
    frame = ht.paper_table(table)
    assert frame.shape == shape
    assert list(frame.columns) == list(ht.TABLE_COLUMNS[table])
    metrics = [c for c in frame.columns if c.endswith((" R1", " mAP"))]
    values = frame[metrics].to_numpy(float)
    assert np.nanmin(values) > 0 and np.nanmax(values) < 100


def test_spot_values_are_the_printed_numbers():
    t1 = ht.paper_table(1)
    top = t1[(t1.method == "baseline(SSR)+AAB") & (t1.bits == 2048)].iloc[0]
    assert (top["Market R1"], top["Market mAP"], top["Market MQ R1"], top["Market MQ mAP"]) == (94.8, 86.0, 96.6, 90.2)
    assert t1.groupby("bits").size().to_dict() == {128: 8, 512: 6, 2048: 5}
    assert t1.loc[t1.method.isin(ht.TABLE_1_DOUBTFUL), "Market R1"].isna().all()
    t2 = ht.paper_table(2)
    assert t2.loc[(t2.method == "baseline(Sigmoid)") & (t2.bits == 2048), ["Duke R1", "Duke mAP"]].values.tolist() == \
        [[71.4, 53.0]]
    t3 = ht.paper_table(3)
    drsch = t3[t3.method == "DRSCH"].iloc[0]
    assert drsch["CUHK03-L R1"] == 25.4 and np.isnan(drsch["CUHK03-L mAP"])          # illegible "="
    t5 = ht.paper_table(5)
    afr = t5.iloc[-1]
    assert (afr.code, afr.w, afr["Market+500k R1"], afr["Market+500k mAP"], afr["storage MB"], afr["search ms"]) == \
        ("2078/binary", 1e5, 89.1, 78.3, 123.7, 107.2)
    t8 = ht.paper_table(8)
    cuhk_d = t8[(t8.dataset == "CUHK03-NP-D") & (t8["lower bits"] == 256)].iloc[0]
    assert cuhk_d[["AFR w", "AFR R1", "AFR mAP", "search ms", "lower R1", "lower mAP"]].tolist() == \
        [510, 67.5, 66.7, 0.69, 67.2, 59.4]
    t9 = ht.paper_table(9)
    assert t9.set_index("method").loc["ABD-Net+AFR", ["Market+500k mAP", "search ms"]].tolist() == [80.9, 811.6]
    assert ht.paper_table(10).set_index("method").loc["AGW(SSR)+AAB", "CUHK03-D mAP"] == 68.9
    assert ht.paper_table(4).set_index("method").loc["AANet", "Duke mAP"] == 72.6


def test_table_6_tells_the_teacher_from_the_student():
    t6 = ht.paper_table(6)
    assert t6.BN.tolist() == [False] * 7 + [True] * 7
    ssr = t6[t6.relaxation == "SSR"]
    assert ssr.descriptor.tolist() == ["teacher", "student"] * 2
    # Sec. 7.4: without BN DSH beats the teacher, the student beats DSH; with BN SSR beats DSH
    dsh = t6[(t6.relaxation == "DSH") & ~t6.BN].iloc[0]
    teacher, student = ssr.iloc[0], ssr.iloc[1]
    assert dsh["Market R1"] > teacher["Market R1"] and student["Market R1"] > dsh["Market R1"]
    four = [f"{p} {m}" for p in ("Market", "Duke", "CUHK03-L", "CUHK03-D") for m in ("R1", "mAP")]
    assert ssr.iloc[3][four].tolist() == [94.8, 86.0, 88.4, 78.6, 74.8, 71.6, 72.5, 66.9]
    # the variant keys are the recipe's rows (":teacher" names a run's teacher code)
    for frame in (t6, ht.paper_table(7)):
        assert {v.split(":")[0] for v in frame.variant} <= set(hashing.VARIANTS)


def test_table_7_modes():
    t7 = ht.paper_table(7).set_index("mode")
    assert list(t7.index) == ["a", "b", "c", "d"]
    assert t7.loc["c", "Market R1"] < t7.loc["a", "Market R1"]          # attribute learning alone hurts
    assert t7.loc["b", ["attribute learning", "AAB"]].tolist() == [False, True]


@pytest.mark.parametrize("bad", [0, 11, "5", 5.0, True, None])
def test_an_unknown_table_number_names_the_allowed_ones(bad):
    with pytest.raises(ValueError, match=r"table must be one of \[1, 2, 3, 4, 5, 6, 7, 8, 9, 10\]"):
        ht.paper_table(bad)


# ---- bit budgets -----------------------------------------------------------------------------------------------
def test_bit_splits_sum_to_their_totals():
    assert ht.BIT_SPLITS == {2048: (256, 512), 512: (64, 128), 128: (16, 32), 256: (32, 64)}
    for total, (s, g) in ht.BIT_SPLITS.items():
        assert 6 * s + g == total and g == 2 * s and ht.bit_split(total) == (s, g)
    checks = ht.bit_split_checks()
    assert checks["sums"].all()
    assert checks.index[~checks["stated"]].tolist() == [256] == sorted(ht.BIT_SPLIT_CHOICES)
    assert checks.attrs["AFR code bits"] == checks.attrs["AFR code printed"] == 2078


@pytest.mark.parametrize("total", [1024, 64, 0, -128, 2078, True])
def test_bit_split_refuses_other_totals_naming_the_allowed(total):
    with pytest.raises(ValueError, match=r"\[128, 256, 512, 2048\]"):
        ht.bit_split(total)


def test_bit_split_refuses_another_stripe_count():
    with pytest.raises(ValueError, match="6 stripes"):
        ht.bit_split(2048, stripes=4)


# ---- the AFR time budget ---------------------------------------------------------------------------------------
def test_the_ideal_window_of_sec_7_5_2():
    assert afr_window(128, 30, 15_912, 2048) == pytest.approx(761.4140625)
    assert ht.GALLERY_SIZES == {"Market-1501": 15_912, "DukeMTMC-reID": 17_661, "CUHK03-NP-L": 5_328, "CUHK03-NP-D": 5_332}
    ideal = ht.ideal_windows()
    market = ideal[(ideal.dataset == "Market-1501") & (ideal.b == 128) & (ideal.A == 30)].iloc[0]
    assert market["ideal w"] == pytest.approx(761.4, abs=0.05) and market["ideal w (rounded)"] == 761   # "W ≈ 761"
    assert market["Table 8 w"] == 553


def test_table_8_windows_are_below_the_ideal_except_cuhk03_at_128_bits():
    ideal = ht.ideal_windows(attribute_bits=(30, 27, 23))
    assert len(ideal) == 4 * 3 * 3
    assert np.allclose(ideal["ideal w"], (ideal.b - ideal.A) * ideal.N / 2048)
    above = ideal[~ideal["used < ideal"]]
    assert sorted(zip(above.dataset, above.b, above.A)) == [("CUHK03-NP-D", 128, 27), ("CUHK03-NP-D", 128, 30),
                                                             ("CUHK03-NP-L", 128, 27), ("CUHK03-NP-L", 128, 30)]
    cuhk = ideal[(ideal.dataset == "CUHK03-NP-L") & (ideal.b == 128)].set_index("A")["ideal w"]
    assert cuhk[30] == pytest.approx(255.0, abs=0.05) and cuhk[27] == pytest.approx(262.8, abs=0.05)
    # no printed w is its ideal to the integer: every one was reduced by measurement (or exceeds it)
    assert not (ideal["ideal w (rounded)"] == ideal["Table 8 w"]).any()
    # the same formula as the measurement module's
    assert ideal.loc[0, "ideal w"] == afr_window(128, 30, hashing_search.MARKET_GALLERY - 1, 2048)


# ---- Table 8's time column ---------------------------------------------------------------------------------------
def test_table_8_times_are_linear_in_bits_times_gallery():
    times = ht.table_8_times()
    assert times["ns per item-bit"].between(0.505, 0.514).all()
    market = times[times.dataset == "Market-1501"]
    assert market["XOR-only AFR ms"].round(2).tolist() == [0.82, 1.36, 3.49]
    assert market["implied AFR overhead ms"].round(2).tolist() == [0.22, 0.71, 0.66]
    cuhk = times[(times.dataset == "CUHK03-NP-L") & (times["lower bits"] == 128)].iloc[0]
    assert cuhk["XOR-only AFR ms"] > cuhk["search ms"]          # 0.36 > 0.35: AFR faster than its own XORs


def test_one_cost_per_bit_reproduces_table_8_and_table_5_at_500k():
    iv = ht.bit_cost_intervals().set_index("source")
    assert iv.loc["Table 8, all rows", "non-empty"] and iv.loc["Table 8 and Table 5 (N = 500,000)", "non-empty"]
    assert 0.5087 < iv.loc["Table 8, all rows", "T low ns"] < iv.loc["Table 8, all rows", "T high ns"] < 0.5093
    # the whole gallery (515,913) needs 0.493 ns: outside Table 8's interval
    assert iv.loc["Table 5 2048/binary, N = 515,913", "T high ns"] < iv.loc["Table 8, all rows", "T low ns"]


# ---- storage -----------------------------------------------------------------------------------------------------
def test_storage_check_matches_the_pure_id_rows_only():
    storage = ht.storage_check()
    assert len(storage) == 13 and storage.table.tolist() == [5] * 9 + [9] * 4
    assert storage.loc[~storage["attribute bits"], "matches"].all()
    plus30 = storage[storage["attribute bits"]]
    assert len(plus30) == 3 and not plus30["matches"].any()
    assert sorted(set(plus30["recomputed MB"])) == [123.9, 3908.0]
    assert not storage["matches (gallery)"].any()                 # n = 515,913: none of them
    # half up: 3906.25 -> 3906.3 (Python's round gives 3906.2)
    apr = storage.set_index("method").loc["APR"]
    assert apr["exact MB"] == 3906.25 and apr["recomputed MB"] == 3906.3 != round(3906.25, 1)


def test_only_27_or_28_attribute_bits_reproduce_the_plus_30_rows():
    assert ht.attribute_bits_that_match() == [27, 28]
    sweep = ht.attribute_bits_sweep().set_index("A")
    assert list(sweep.index) == list(range(65))
    assert sweep.index[sweep["Table 5 matches"]].tolist() == [27, 28] == sweep.index[sweep["Table 9 matches"]].tolist()
    assert sweep.loc[30, ["Table 5 MB", "Table 9 MB"]].tolist() == [123.9, 3908.0]


# ---- search times ------------------------------------------------------------------------------------------------
def test_search_times_model_and_the_afr_lower_bound():
    times = ht.search_times()
    assert times.index.names == ["method", "code", "w"]
    afr = times.loc[("AFR", "30+2048/binary", 1e5)]
    assert afr["paper ms"] == 107.2
    assert round(afr["model ms (N = 515,913)"], 1) == 108.6 and round(afr["model ms (N = 500,000)"], 1) == 111.9
    mgn = times.loc[("AFR, float stage 2", "2048/float+30/binary", 1e5)]
    assert round(mgn["model ms (N = 515,913)"], 1) == 791.2 and round(mgn["model ms (N = 500,000)"], 1) == 816.1
    assert np.isnan(times.loc[("exact Hamming", "128/binary", np.nan), "paper ms"])
    checks = ht.search_time_checks().set_index("quantity")
    assert checks.loc["2Stream 4096/float = 2 x APR 2048/float (ms)", "agree"]
    assert checks.loc["TriNet 128/float = APR / 16 (ms)", "recomputed"] == pytest.approx(252.65)
    assert checks.loc["TriNet 128/float = APR / 16 (ms)", "agree"]            # 252.65 half up -> 252.7
    bounds = checks[checks.index.str.startswith("AFR (w = 1e5)")]
    assert len(bounds) == 2 and not bounds["agree"].astype(bool).any()        # 107.2 ms is below both bounds
    assert checks.loc["time saved by AFR, 1 - 107.2 / 521.1 (%)", "recomputed"] == pytest.approx(79.43, abs=0.005)
    assert checks.loc["float-2048 / binary-2048 time", "recomputed"] == pytest.approx(7.757, abs=5e-4)


def test_search_times_join_a_measured_table():
    # rows as reidlib.retrieval.search_timings writes them, w read back from CSV as float (NaN: plain search)
    measured = pd.DataFrame({"method": ["exact Hamming", "AFR", "AFR"],
                             "code": ["2048/binary", "30+2048/binary", "30+2048/binary"],
                             "w": [np.nan, 553.0, 1e5], "ms_per_query": [1.0, 0.1, 0.2]})
    joined = measured.set_index(["method", "code", "w"])[["ms_per_query"]].join(ht.search_times(), how="left")
    assert joined["paper ms"].tolist()[0] == 521.1 and np.isnan(joined["paper ms"].iloc[1])
    assert joined["paper ms"].iloc[2] == 107.2


# ---- stated differences --------------------------------------------------------------------------------------------
def test_stated_differences_agree_except_where_the_spec_finds_them_wrong():
    diffs = ht.stated_differences()
    wrong = diffs[~diffs.agree]
    assert sorted(zip(wrong.claim, wrong.metric)) == sorted([
        ("SSR vs Sigmoid, Duke, 2048 bits", "mAP"),
        ("SSR vs Sigmoid, CUHK03-L, 2048 bits", "R1"), ("SSR vs Sigmoid, CUHK03-L, 2048 bits", "mAP"),
        ("SSR vs Sigmoid, CUHK03-D, 2048 bits", "R1"), ("SSR vs Sigmoid, CUHK03-D, 2048 bits", "mAP"),
        ("AFR vs TriNet, Market+500k", "R1"),
        ("AFR saves retrieval time vs MGN(Hardtanh), Market+500k", "time saved %")])
    by = diffs.set_index(["claim", "metric"])["recomputed"]
    assert by[("SSR vs Sigmoid, Duke, 2048 bits", "mAP")] == pytest.approx(25.0)
    assert by[("AFR vs TriNet, Market+500k", "R1")] == pytest.approx(14.4)
    assert by[("mode b vs a, mean of the four datasets", "mAP")] == pytest.approx(0.125)
    assert by[("SSR vs Sigmoid, Market, 2048 bits", "mAP")] == pytest.approx(14.9)
    assert len(diffs) == 47 and diffs.agree.sum() == 40


# ---- cross-table identities, Sec. 7.5.2's best mAP, other facts ---------------------------------------------------
def test_rows_shared_by_tables_are_equal_except_the_known_ones():
    cross = ht.cross_table_checks()
    differ = cross[~cross.equal]
    assert len(differ) == 4
    t8 = differ[differ.check.str.startswith("Table 8")]
    assert t8[["metric", "left", "right"]].values.tolist() == [["R1", 89.2, 89.1]]      # Market 128 bits
    assert set(differ.check.str.split(" vs ").str[0]) == {"Table 8 Market-1501 128 bits", "Table 6 Sigmoid without BN",
                                                         "Fig. 6(b) beta = 0 with AAB (Sec. 7.5.1)"}


def test_the_cuhk03_best_map_points_are_consistent_only_swapped():
    best = ht.best_map_check().set_index(["reading", "dataset"])
    printed, swapped = best.loc["as printed"], best.loc["CUHK03 L and D swapped"]
    assert printed["consistent"].tolist() == [True, True, False, False]
    assert swapped["consistent"].all()
    assert not printed.loc["CUHK03-NP-L", "mAP >= Table 8"]            # 68.2 < 71.7 at w = 951
    assert not printed.loc["CUHK03-NP-D", "R1 <= plain"]               # 74.2 > 72.5 without AFR


def test_other_checks():
    other = ht.other_checks().set_index("quantity")["value"]
    assert other["Market-1501 gallery entries - junk"] == 15_913 == ht.MARKET_GALLERY_TEXT["Sec. 7.1.1"]
    assert round(other["images/s, 350 epochs of 12,936 images in 145 min"]) == 520
    assert round(other["images/s, 350 identity-epochs of 751 x 4 images in 145 min"]) == 121
