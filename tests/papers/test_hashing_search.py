"""The hashing chapter's search-time record: its tables, the CSV round trip, the equal-time reading."""
import numpy as np
import pandas as pd
import pytest

from reidlib.papers import hashing_search as hs


@pytest.fixture(scope="module")
def record():
    return hs.measure_search(n_gallery=4000, market_gallery=1500, queries=8, curve=[100, 400, 1200], repeat=1)


def test_the_record_holds_the_three_tables(record):
    scale = hs.search_frame(record, "scale")
    assert set(scale.method) == {"exact Hamming", "AFR", "exact Hamming, batch", "exact float (inner product)"}
    assert sorted(scale[scale.method == "AFR"].w.astype(int)) == [553, 761, 1067, 3105]   # 1e5 > N: left out
    assert (scale.ms_per_query > 0).all() and record["device"] == "cpu" and record["device_name"]
    curve = hs.search_frame(record, "afr_curve")
    assert sorted(set(curve.N)) == [1500, 4000]
    assert curve[curve.N == 1500].w.tolist() == [100, 400, 1200, 1500]        # the whole gallery is the last point
    t8 = hs.search_frame(record, "table8")
    assert t8.bits.tolist() == [128, 256, 512]
    assert np.allclose(t8.ideal_w, (t8.bits - 30) * 1500 / 2048)
    with pytest.raises(ValueError, match="table must be one of"):
        hs.search_frame(record, "table5")


def test_csv_round_trip(record, tmp_path):
    path = tmp_path / "hashing" / "search_times" / "cpu.csv"
    path.parent.mkdir(parents=True)
    hs.to_frame(record).to_csv(path, index=False)
    (back,) = hs.load_search_records(tmp_path)
    assert back["device_name"] == record["device_name"] and back["git_commit"] == record["git_commit"]
    for name in record["tables"]:
        a, b = hs.search_frame(record, name), hs.search_frame(back, name)
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b[a.columns].reset_index(drop=True), check_dtype=False)


def test_equal_time_windows_interpolates_where_the_curves_cross():
    record = {"market_gallery": 1000, "tables": {
        "afr_curve": [{"N": 1000, "w": w, "afr_ms": t} for w, t in ((100, 0.1), (300, 0.3), (900, 0.9))],
        "table8": [{"N": 1000, "bits": 128, "plain_ms": 0.2, "ideal_w": 47.85},
                   {"N": 1000, "bits": 512, "plain_ms": 5.0, "ideal_w": 235.4},
                   {"N": 1000, "bits": 256, "plain_ms": 0.05, "ideal_w": 110.4}]}}
    out = hs.equal_time_windows(record)
    assert out.equal_time_w.iloc[0] == pytest.approx(200.0)
    assert np.isnan(out.equal_time_w.iloc[1]) and np.isnan(out.equal_time_w.iloc[2])   # never slower / always slower


def test_scale_beside_paper_sets_both_machines_relative_to_their_own_plain_search(record):
    beside = hs.scale_beside_paper(record)
    plain = ("exact Hamming", "2048/binary", np.nan)
    assert beside.loc[plain, "here / plain 2048"] == 1.0 and beside.loc[plain, "paper ms"] == 521.1
    float_row = ("exact float (inner product)", "2048/float", np.nan)
    assert beside.loc[float_row, "paper / plain 2048"] == pytest.approx(4042.4 / 521.1)
    assert beside.loc[float_row, "here / plain 2048"] == pytest.approx(
        beside.loc[float_row, "ms here"] / beside.loc[plain, "ms here"])
    # the batch row is per query of a batch, not one query: it is not set beside the paper's single queries
    assert "exact Hamming, batch" not in beside.index.get_level_values("method")


def test_afr_breakeven_reads_where_afr_passes_the_plain_search_and_splits_its_time():
    curve = [{"N": 1000, "w": w, "afr_ms": t, "gather_ms": g, "scan_of_candidates_ms": sc, "plain_2048_ms": 0.5}
             for w, t, g, sc in ((100, 0.2, 0.01, 0.02), (300, 0.4, 0.05, 0.05), (1000, 1.0, 0.3, 0.1))]
    out = hs.afr_breakeven({"tables": {"afr_curve": curve}}).loc[1000]
    assert out["break-even w"] == pytest.approx(300 + 0.1 * 700 / 0.6)
    assert out["stage 1 ms (AFR - gather - scan)"] == pytest.approx(0.17)
    assert (out["gather ms at w = N"], out["scan ms at w = N"]) == (0.3, 0.1)
    never = [{**r, "plain_2048_ms": 5.0} for r in curve]
    assert np.isnan(hs.afr_breakeven({"tables": {"afr_curve": never}}).loc[1000, "break-even w"])
