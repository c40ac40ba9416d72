"""The good-practices paper's (Almazán et al. 2018) tables as data, and what is recomputed exactly from them."""
from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import realdata_path
from hypothesis import given
from hypothesis import strategies as st

from reidlib.data.synthped import PRESETS
from reidlib.papers import reid_done_right_tables as rt

PAPER_TEXT = Path(__file__).resolve().parents[2].parent / "shared" / "papers" / "001_45f436ed7b417745.txt"


def _text() -> str:
    if not PAPER_TEXT.is_file():
        pytest.skip(f"the paper's text is not available: {PAPER_TEXT} (see ../shared/papers/README.md)")
    return PAPER_TEXT.read_text(encoding="utf-8")


def _clean(cell: str) -> str:
    return re.sub(r"<[^>]+>", "", cell).strip()


def _number(cell: str) -> float:
    cell = _clean(cell)
    return math.nan if cell in ("-", "") else float(cell)


def _lines_after(text: str, header: str, n: int) -> list[list[str]]:
    lines = text.splitlines()
    start = lines.index(header)
    return [line.split("\t") for line in lines[start + 1: start + 1 + n]]


def _same(a, b) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


# ---- the printed tables ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("table, shape", [(1, (5, 5)), (2, (3, 3)), (3, (7, 5)), (4, (25, 18))])
def test_each_table_has_its_printed_shape_and_columns(table, shape):
    frame = rt.paper_table(table)
    assert frame.shape == shape and list(frame.columns) == list(rt.TABLE_COLUMNS[table])
    metrics = frame[[c for c in frame.columns if c.endswith(("mAP", "R1", "R5"))]].to_numpy(float)
    finite = metrics[np.isfinite(metrics)]
    assert finite.min() > 0 and finite.max() < 100


@pytest.mark.parametrize("bad", [0, 5, "4", 4.0, True, None])
def test_a_table_the_paper_does_not_have_is_a_value_error_naming_the_allowed(bad):
    with pytest.raises(ValueError, match=r"table must be one of \[1, 2, 3, 4\]"):
        rt.paper_table(bad)


def test_tables_1_to_3_are_the_text_cell_by_cell():
    text = _text()
    t1 = _lines_after(text, "flip\tcrop\tcut-out\tMarket\tDuke", 5)
    expected = [(c[0] == "✓", c[1] == "✓", c[2] == "✓", _number(c[3]), _number(c[4])) for c in t1]
    assert [tuple(r) for r in rt.paper_table(1).itertuples(index=False)] == expected
    t2 = _lines_after(text, "Largest dimension\tMarket\tDuke", 3)
    assert [tuple(r) for r in rt.paper_table(2).itertuples(index=False)] == [
        (int(c[0].split()[0]), _number(c[1]), _number(c[2])) for c in t2]
    t3 = _lines_after(text, "\t\tMarket\tDuke", 7)
    frame = rt.paper_table(3)
    assert frame.setting.tolist() == [c[1] for c in t3]
    assert _same(frame[["Market mAP", "Duke mAP"]], [[_number(c[2]), _number(c[3])] for c in t3])
    assert [b for b in frame.block.drop_duplicates()] == [c[0] for c in t3 if c[0]]


def _table_4_text(text: str) -> dict[str, list[str]]:
    """Table 4's rows of the extraction: the printed name (tags, "*" and spacing normalised) -> its cells."""
    rows = {}
    for line in text.splitlines():
        cells = line.split("\t")
        if len(cells) < 10 or not re.search(r"\[\d+\]\*?$|^Ours|^Improvement", _clean(cells[0])):
            continue
        name = re.sub(r"(\S)\[", r"\1 [", _clean(cells[0]).rstrip("*"))
        rows[name] = cells
    return rows


def test_table_4_as_extracted_is_the_text_cell_by_cell():
    rows = _table_4_text(_text())
    extracted = rt.table_4_as_extracted()
    assert list(rows) == extracted.method.tolist()
    for _, r in extracted.iterrows():
        cells = rows[r.method]
        assert len(cells) == 15, r.method  # name, type, 13 cells
        assert ("" if cells[1] == "-" else cells[1]) == r.type
        assert cells[0].endswith("*") == r.arxiv, r.method
        assert _same([_number(c) for c in cells[2:]], r[list(rt.METRICS)].tolist()), r.method
    # the rows one cell short (a trailing empty field) are the comparison rows; Re-ranking [57] is the one full
    # row with a dropped cell (and a "-" too many at its end)
    short = {name for name, cells in rows.items() if cells[-1] == ""}
    assert short == set(extracted.method[: extracted.method.tolist().index("Ours")])
    assert short | {"Re-ranking [57]"} == set(rt.TABLE_4_LOST_CELL) and rows["Re-ranking [57]"][-1] == "-"


def t_cells(frame: pd.DataFrame, method: str, columns: list[str]) -> list[float]:
    return frame.set_index("method").loc[method, columns].tolist()


def test_the_reading_moves_cells_only_in_the_rows_a_positional_parse_gets_wrong():
    typed, extracted = rt.paper_table(4), rt.table_4_as_extracted()
    moved = {m for m, a, b in zip(typed.method, typed[list(rt.METRICS)].to_numpy(), extracted[list(rt.METRICS)].to_numpy())
             if not _same(a, b)}
    assert moved == {"Zheng et al. [51]", "OIM [43]", "Verif-Identif. [54]", "LSRO [56]", "SVDNet [39]", "DPFL [6]",
                     "APR [46]", "PAN [55]", "Re-ranking [57]"}
    assert t_cells(extracted, "Re-ranking [57]", ["Market MQ R5", "MARS mAP"]) == [68.4, 73.9]
    t = typed.set_index("method")
    assert _same(t.loc["OIM [43]", ["Duke mAP", "Duke R1", "Duke R5", "PS mAP"]], [np.nan, 68.1, np.nan, 77.9])
    assert _same(extracted.set_index("method").loc["OIM [43]", ["Duke mAP", "Duke R1", "Duke R5", "PS mAP"]],
                 [68.1, np.nan, 77.9, np.nan])  # where the extraction's cells sit
    assert t.loc["OIM [43]", "uncertain"] == "Duke mAP, Duke R1"
    assert t.loc["MSCAN [21]", "uncertain"] == "MARS mAP, MARS R1, MARS R5"
    assert t.loc["Verif-Identif. [54]", ["Duke mAP", "Duke R1"]].tolist() == [49.3, 68.9]
    assert t.loc["Zheng et al. [51]", ["MARS mAP", "MARS R1", "MARS R5"]].tolist() == [49.3, 68.3, 82.6]


def test_table_4_spot_values_and_flags():
    t = rt.paper_table(4).set_index("method")
    assert t.loc["Ours", list(rt.METRICS)].tolist() == [81.2, 92.2, 97.9, 87.3, 94.7, 98.6, 79.7, 85.8, 96.5, 72.8, 85.2,
                                                        93.9, 92.6]
    assert t.loc["Improvement", list(rt.METRICS)].tolist() == [8.1, 3.3, 3.7, 10.2, 3.0, 2.3, 12.0, 2.8, 2.8, 12.2, 6.0,
                                                               7.5, 14.7]
    assert set(t.index[t.arxiv]) == {"DML [48]", "APR [46]", "PAN [55]", "PBF [52]", "TriNet [17]", "TriNet (re-rank) [17]"}
    assert set(t.index[t["re-ranking"]]) == {"Re-ranking [57]", "TriNet (re-rank) [17]", "Ours (re-rank)"}
    assert t.loc["APR [46]", "type"] == "At" and t.loc["MSCAN [21]", "type"] == "P" and t.loc["DPFL [6]", "type"] == ""
    assert math.isnan(t.loc["Ours (re-rank)", "PS mAP"])


# ---- the Improvement row --------------------------------------------------------------------------------------
def test_all_13_improvement_cells_reproduce():
    r = rt.improvement_row()
    assert r.column.tolist() == list(rt.METRICS) and bool(r.equal.all())
    assert _same(r.computed, r.paper)
    best = dict(zip(r.column, r["best prior method"]))
    assert best == {"Market mAP": "DPFL [6]", "Market R1": "DPFL [6]", "Market R5": "TriNet [17]",
                    "Market MQ mAP": "DML [48]", "Market MQ R1": "DML [48]", "Market MQ R5": "TriNet [17]",
                    "MARS mAP": "TriNet [17]", "MARS R1": "MSCAN [21]?", "MARS R5": "MSCAN [21]?",
                    "Duke mAP": "DPFL [6]", "Duke R1": "DPFL [6]", "Duke R5": "SVDNet [39]", "PS mAP": "OIM [43]"}
    assert r.set_index("column").loc["Market MQ mAP", "best prior value"] == 77.1


def test_plausible_wrong_readings_do_not_reproduce_the_row():
    counts = rt.improvement_readings().set_index("reading")["equal"].to_dict()
    assert counts == {"paper": 13, "published only": 8, "with re-ranked rows": 9, "cells as extracted": 8}
    published = rt.improvement_row("published only").set_index("column")
    assert published.loc["Market R5", "best prior method"] == "PDC [37]" and published.loc["Market R5", "computed"] == 5.2
    assert math.isnan(published.loc["Market MQ R5", "computed"]) and not published.loc["Market MQ R5", "equal"]
    with pytest.raises(ValueError, match="reading must be one of"):
        rt.improvement_row("all")


def test_a_mistyped_cell_breaks_the_improvement_check(monkeypatch):
    rows = list(rt.TABLE_ROWS[4])
    i = next(k for k, r in enumerate(rows) if r[0] == "DPFL [6]")
    j = rt.TABLE_COLUMNS[4].index("Market mAP")
    rows[i] = (*rows[i][:j], 73.2, *rows[i][j + 1:])
    monkeypatch.setitem(rt.TABLE_ROWS, 4, rows)
    r = rt.improvement_row().set_index("column")
    assert not r.loc["Market mAP", "equal"] and r.loc["Market mAP", "computed"] == 8.0
    assert int(r.equal.sum()) == 12


# ---- the text's numbers ---------------------------------------------------------------------------------------
def test_duke_discrepancy_values_and_places():
    d = rt.duke_discrepancy().set_index("where")
    assert (d["Market mAP"] == 81.2).all()
    tables_1_3 = d[d.index.str.match(r"Table [123]")]
    assert len(tables_1_3) == 6 and (tables_1_3["Duke mAP"] == 72.9).all()
    assert d.loc["Table 4: Ours", "Duke mAP"] == 72.8 and d.loc["Sec. 4.3 text", "Duke mAP"] == 72.8


def test_text_claims_match_and_the_one_that_does_not_is_duke_3_percent():
    c = rt.text_claims()
    assert len(c) == 22
    misses = c[~c.matches]
    assert misses.claim.tolist() == ["Table 2: 256 -> 416 px improves mAP by 3%, Duke"]
    assert misses.computed.tolist() == [3.7]
    by = c.set_index("claim").computed
    assert by["8.9% above the best re-ranked mAP [17] (90.0 - 81.1)"] == 8.9
    assert by["12.0% mAP over [17] on MARS"] == 12.0 and by["14.7% over the previous best PS result [43]"] == 14.7
    assert by["12.2% over the previous best Duke mAP [6]"] == 12.2
    assert by["Table 2: 256 -> 416 px improves mAP by 3%, Market"] == 3.0
    assert [by[f"Table 3b: ResNet-101 about +5 mAP over ResNet-50, {p}"] for p in ("Market", "Duke")] == [4.9, 5.3]
    assert set(c.rule) == {"equal", "positive", "zero"}


@pytest.mark.parametrize("key, snippet", [
    (("1", "Market mAP improvement over the state of the art"), "absolute improvement of 8.1% mAP in the Market-1501"),
    (("4.3", "Market mAP"), "mAP of 81.2% on Market, an 8.1% absolute improvement"),
    (("4.3", "MARS mAP improvement over [17]"), "outperform [17] by 12.0% mAP on MARS"),
    (("4.3", "Duke mAP"), "we achieve a mAP of 72.8%"),
    (("4.3", "Duke mAP improvement over [6]"), "reported mAP [6] by 12.2%"),
    (("4.3", "Market mAP with re-ranking"), "we achieve a mAP of 90%"),
    (("4.3", "Market mAP with re-ranking, above [17]"), "8.9% above the best previously-reported mAP from [17]"),
    (("4.3", "PS mAP"), "achieving a mAP of 92.6%"),
    (("4.3", "PS mAP improvement over [43]"), "14.7% absolute improvement"),
    (("4.2", "mAP gain from 256 to 416 px"), "improves mAP by 3%"),
    (("4.2", "mAP gain of ResNet-101 over ResNet-50 (about)"), "about +5 mAP for both datasets"),
])
def test_text_values_are_the_texts(key, snippet):
    text = _text()
    assert snippet in text
    value = rt.TEXT_VALUES[key]
    assert re.search(rf"(?<![\d.]){re.escape(str(value))}(?![\d])", snippet), (value, snippet)


def test_rerank_raises_every_map_and_lowers_every_r5_and_mq_r1():
    r = rt.rerank_effect().set_index("column")
    assert len(r) == 12 and "PS mAP" not in r.index
    maps = r.loc[[c for c in r.index if c.endswith("mAP")], "difference"]
    r5 = r.loc[[c for c in r.index if c.endswith("R5")], "difference"]
    assert maps.tolist() == [8.8, 3.9, 6.0, 12.8] and r5.tolist() == [-2.0, -1.7, -1.6, -0.3]
    assert r.loc["Market MQ R1", "difference"] == -0.5
    assert r.loc[["Market R1", "MARS R1", "Duke R1"], "difference"].tolist() == [0.8, 1.4, 4.2]
    assert r.loc["Market mAP", "TriNet difference"] == 12.0 and math.isnan(r.loc["Duke mAP", "TriNet difference"])


# ---- schedule, counts, sizes, parameters ----------------------------------------------------------------------
def test_schedule_values_are_exact_and_the_readings_differ_between_halvings():
    s = rt.schedule_values()
    expected = [1e-3, 5e-4, 2.5e-4, 6.25e-5, 3.90625e-6]
    for column in ("continuous", "step", "engine", "engine step"):
        assert s[column].tolist() == expected, column
    assert [Decimal(x) for x in s["step exact"]] == [Decimal("0.001") / 2 ** k for k in (0, 1, 2, 4, 8)]
    assert Decimal(s["step exact"].iloc[-1]) == Decimal("3.90625E-6")
    assert rt.halvings() == 8 and rt.halvings(600, 75) == 8 and rt.halvings(100, 64) == 1.5625
    mid = rt.schedule_values([256, 768]).set_index("t")
    assert mid.loc[256, "step"] == 1e-3 and mid.loc[256, "continuous"] == pytest.approx(1e-3 / math.sqrt(2), rel=1e-15)
    assert mid.loc[768, "engine"] == mid.loc[768, "continuous"] != mid.loc[768, "step"] == mid.loc[768, "engine step"]
    with pytest.raises(ValueError, match=">= 0"):
        rt.schedule_values([-1])


def test_compute_counts_of_the_paper_and_of_a_scaled_recipe():
    c = rt.compute_counts()
    assert c.to_dict() == {"iterations": 4096, "triplets": 262_144, "image passes": 786_432, "pools": 256,
                           "pool embeddings": 1_280_000, "triplets per pool": 1_024, "forward passes in all": 2_066_432}
    scaled = rt.compute_counts(iterations=600, batch=32, pool=2000, refresh=16)
    assert scaled["image passes"] == 57_600 and scaled["pools"] == 38 and scaled["pool embeddings"] == 76_000
    for bad in ({"batch": 0}, {"refresh": 2.0}, {"pool": True}):
        with pytest.raises(ValueError, match="positive integer"):
            rt.compute_counts(**bad)


def test_feature_map_sizes_of_the_paper():
    f = rt.feature_map_sizes()
    assert list(zip(f["map H"], f["map W"])) == [(8, 4), (13, 7), (20, 10), (7, 7)]
    assert f.positions.tolist() == [32, 91, 200, 49] and f.input.tolist() == ["256x128", "416x208", "640x320", "224x224"]
    assert rt.feature_map_sizes([(416, 208)], stride_layers=4)[["map H", "map W"]].iloc[0].tolist() == [26, 13]


@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(0, 8))
def test_k_stride_2_layers_are_a_ceiling_division_by_2_to_the_k(h, w, k):
    row = rt.feature_map_sizes([(h, w)], stride_layers=k).iloc[0]
    assert (row["map H"], row["map W"]) == (-(-h // 2 ** k), -(-w // 2 ** k)) and row.positions == row["map H"] * row["map W"]


def test_feature_map_sizes_are_a_real_resnet18_forward():
    sizes = [*rt.PAPER_INPUTS, (64, 32), (104, 52), (160, 80), (97, 45), (33, 17), (1, 1)]
    closed, measured = rt.feature_map_sizes(sizes), rt.forward_map_sizes(sizes)
    pd.testing.assert_frame_equal(closed, measured)
    assert list(zip(closed["map H"][4:7], closed["map W"][4:7])) == [(2, 1), (4, 2), (5, 3)]


def test_parameter_counts_from_torchvision():
    p = rt.parameter_counts().set_index("backbone")
    assert p.trunk.tolist() == [23_508_032, 42_500_160, 58_143_808]
    assert p["torchvision total"].tolist() == [25_557_032, 44_549_160, 60_192_808]
    assert p["torchvision total"].sub(p.trunk).eq(2048 * 1000 + 1000).all()  # the ImageNet classifier
    assert set(p["FC with bias"]) == {4_196_352} and set(p["FC without bias"]) == {4_194_304}
    assert p["whole with bias"].tolist() == [27_704_384, 46_696_512, 62_340_160]
    assert p["whole without bias"].tolist() == [27_702_336, 46_694_464, 62_338_112]
    assert set(p["descriptor bytes"]) == {8192}


def test_meta_counts_are_the_counts_of_a_real_model():
    import torchvision

    model = torchvision.models.resnet50(weights=None)
    trunk = sum(p.numel() for c in list(model.children())[:-2] for p in c.parameters())
    assert trunk == rt.parameter_counts().set_index("backbone").loc["ResNet-50", "trunk"]


# ---- image sizes ----------------------------------------------------------------------------------------------
def test_image_size_statement_paper_market_and_synthped(tmp_path):
    s = rt.image_size_statement(realdata=tmp_path).set_index("source")  # an empty realdata: no measured rows
    assert (s.kind != "measured").all()
    stated, crops = s.loc["Market-1501, as Sec. 4.2 states"], s.loc["Market-1501 crops"]
    assert (stated["H median"], stated["W median"], crops["H median"], crops["W median"]) == (256, 128, 128, 64)
    assert stated["up-scale to 416"] == 1.625 and crops["up-scale to 416"] == 3.25 and crops["up-scale to 640"] == 5.0
    for name, preset in PRESETS.items():
        row = s.loc[f"synthped '{name}'"]
        assert (row["H mean"], row["W mean"]) == (preset["height"], preset["width"])
        assert row["up-scale to 416"] == Fraction(416, max(preset["height"], preset["width"]))
    assert s.loc["synthped 'default'", "up-scale to 416"] == 3.25 and s.loc["synthped 'large'", "up-scale to 416"] == 1.625


def test_image_size_statement_market_samples_are_128_by_64():
    folder = realdata_path("samples", "market1501")
    row = rt.image_size_statement().set_index("source").loc["Market-1501 sample crops (realdata)"]
    assert row.images == len(list(folder.glob("*.jpg"))) > 0
    assert (row["H mean"], row["W mean"], row["up-scale to 416"]) == (128, 64, 3.25)


def test_image_size_statement_cuhk03_subset():
    from PIL import Image

    folder = realdata_path("cuhk03_np_pair1", "labeled")
    files = sorted(folder.rglob("*.jpg"))
    row = rt.image_size_statement().set_index("source").loc["CUHK03-NP labeled, camera pair 1 (realdata)"]
    assert row.kind == "measured" and row.images == len(files) > 0
    for p in files[:: max(1, len(files) // 40)]:  # a few decoded in full: the header's size is the image's
        with Image.open(p) as im:
            header = im.size
            im.load()
            assert im.size == header == (im.width, im.height) and im.height <= 256  # downscaled to <= 256 px high
    assert row["H mean"] <= row["H median"] <= 256 and row["W median"] < row["H median"] == row["largest side"]
    assert row["up-scale to 416"] == 416 / row["largest side"] and row["up-scale to 416"] >= 1.625


# ---- datasets -------------------------------------------------------------------------------------------------
def test_dataset_sums_and_the_mars_split():
    d = rt.dataset_sums()
    stated = d[d["paper total"].notna()]
    assert stated.sums.astype(bool).all() and len(stated) == 4
    by = d.set_index(["dataset", "quantity"])
    assert by.loc[("Market-1501", "boxes (train + gallery)"), "computed"] == 32_668
    assert by.loc[("DukeMTMC-reID", "images (train + query + gallery)"), "computed"] == 36_411
    assert by.loc[("Person Search", "images (train + test)"), "computed"] == 18_184
    assert by.loc[("Person Search", "identities (train + test)"), "computed"] == 8_432
    assert by.loc[("MARS", "identities (train + test)"), "computed"] == 1_261
    assert by.loc[("MARS", "test images (the remainder)"), "computed"] == 549_516
    wrong = d[~d.agrees]
    assert set(wrong.dataset) == {"MARS"} and len(wrong) == 5
    mars = by.loc["MARS"]
    release = mars.release
    assert release["train images"] + release["test images (the remainder)"] == release["images"] == 1_191_003
    assert mars.loc["train identities", "release"] + mars.loc["test identities", "release"] == 1_261


def test_market_release_figures_are_the_real_label_files():
    import scipy.io as sio

    root = realdata_path("market1501_labels")
    train = [line for f in ("train.txt", "val.txt") for line in (root / f).read_text().splitlines() if line.strip()]
    query = sio.loadmat(root / "queryID.mat")["queryID"].ravel()
    gallery = sio.loadmat(root / "testID.mat")["testID"].ravel()
    by = rt.dataset_sums().set_index(["dataset", "quantity"]).release
    assert len(train) + len(gallery) == by[("Market-1501", "boxes (train + gallery)")]
    assert len(train) + len(gallery) + len(query) == by[("Market-1501", "images (train + gallery + query)")]
    assert len({line.split("/")[-1][:4] for line in train}) + len(set(query)) == by[("Market-1501", "identities (train + test)")]
