"""Attribute labels (reidlib.data.attributes) against the real Market-1501 and DukeMTMC-reID files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch
from conftest import realdata_path
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reidlib.data import DatasetLayoutError, DatasetNotFoundError, Record
from reidlib.data.attributes import (
    AGE_COLUMNS,
    DUKE_BINARY_COLUMNS,
    DUKE_FIELDS,
    MARKET_BINARY_COLUMNS,
    MARKET_FIELDS,
    attach_attributes,
    attribute_accuracy,
    attributes_for_records,
    load_attribute_file,
    load_attributes,
    to_binary,
)


@pytest.fixture(scope="module")
def market_file() -> Path:
    return realdata_path("market1501_attribute", "market_attribute.mat")


@pytest.fixture(scope="module")
def duke_file() -> Path:
    return realdata_path("dukemtmc_attribute", "duke_attribute.mat")


@pytest.fixture(scope="module")
def market(market_file) -> dict[str, pd.DataFrame]:
    return load_attribute_file(market_file)


@pytest.fixture(scope="module")
def duke(duke_file) -> dict[str, pd.DataFrame]:
    return load_attribute_file(duke_file)


def raw(path: Path, var: str) -> dict:
    return scipy.io.loadmat(path, simplify_cells=True)[var]


# --------------------------------------------------------------------------------------------
# Market-1501


def test_market_shapes_and_ids(market):
    assert market["train"].shape == (751, 27) and market["test"].shape == (750, 27)
    assert list(market["train"].columns) == list(MARKET_FIELDS)
    assert market["train"].index.name == "pid"
    assert market["train"].index[:3].tolist() == [2, 7, 10]
    assert market["test"].index[0] == 1 and market["test"].index[-1] == 1501
    assert not {0, -1} & set(market["test"].index)  # no entries for distractors or junk
    assert not set(market["train"].index) & set(market["test"].index)
    assert market["train"].attrs["dataset"] == "market"


def test_market_fields_read_by_name_not_position(market_file, market):
    data = raw(market_file, "market_attribute")
    train_order, test_order = list(data["train"]), list(data["test"])
    assert train_order != test_order  # the trap the README warns about
    assert sorted(train_order) == sorted(test_order)
    for split in ("train", "test"):
        for field in MARKET_FIELDS:
            assert market[split][field].astype(int).tolist() == data[split][field].astype(int).tolist(), (split, field)
    # reading test by the train file's positions would have mixed fields up
    assert test_order.index("clothes") != train_order.index("clothes")


def test_market_binary_is_the_hashing_papers_30(market):
    for split in ("train", "test"):
        table, binary = market[split], to_binary(market[split])
        assert binary.shape == (len(table), 30) and tuple(binary.columns) == MARKET_BINARY_COLUMNS
        assert binary.notna().all().all() and set(np.unique(binary.to_numpy(dtype=int))) <= {0, 1}
        assert (binary[list(AGE_COLUMNS)].sum(axis=1) == 1).all()  # age one-hot
        for code, col in enumerate(AGE_COLUMNS, 1):
            assert (binary[col] == (table["age"] == code)).all()
        assert (binary["female"] == table["gender"] - 1).all()
        assert (binary["long_hair"] == table["hair"] - 1).all()
        assert (binary["pants"] == table["clothes"] - 1).all()
        assert (binary["upred"] == table["upred"] - 1).all()


def test_market_known_quirks(market):
    train, test = to_binary(market["train"]), to_binary(market["test"])
    up = [c for c in MARKET_BINARY_COLUMNS if c.startswith("up")]
    down = [c for c in MARKET_BINARY_COLUMNS if c.startswith("down")]
    assert len(up) == 8 and len(down) == 9
    assert int(test["downpurple"].sum()) == 0  # test downpurple has no positives
    assert int(train["downpurple"].sum()) > 0
    assert int((train[up].sum(axis=1) == 0).sum()) == 78  # no upper colour set
    assert int((train[down].sum(axis=1) == 0).sum()) == 30  # no lower colour set
    assert int(train[up].sum(axis=1).max()) == 1  # at most one colour per identity


def test_load_one_split(market_file, market):
    assert load_attributes(market_file, "test").equals(market["test"])
    with pytest.raises(ValueError, match="split"):
        load_attributes(market_file, "val")


# --------------------------------------------------------------------------------------------
# DukeMTMC-reID


def test_duke_shapes_and_binary(duke, duke_file):
    assert duke["train"].shape == (702, 23) and duke["test"].shape == (1110, 23)
    assert list(duke["train"].columns) == list(DUKE_FIELDS)
    data = raw(duke_file, "duke_attribute")
    assert list(data["train"]) != list(data["test"])
    for field in DUKE_FIELDS:
        assert duke["test"][field].astype(int).tolist() == data["test"][field].astype(int).tolist()
    binary = to_binary(duke["test"])
    assert tuple(binary.columns) == DUKE_BINARY_COLUMNS and len(DUKE_BINARY_COLUMNS) == 23
    assert (binary["light_shoes"] == duke["test"]["shoes"] - 1).all()


def test_duke_unlabelled_top_is_missing_not_guessed(duke, duke_file):
    top = duke["train"]["top"]
    assert top.isna().sum() == 2
    assert sorted(top[top.isna()].index) == [370, 679]
    assert raw(duke_file, "duke_attribute")["train"]["top"].tolist().count(0) == 2
    assert duke["train"].drop(columns="top").notna().all().all()
    assert duke["test"].notna().all().all()
    binary = to_binary(duke["train"])
    assert binary.loc[[370, 679], "long_top"].isna().all()
    assert binary.loc[370].drop("long_top").notna().all()  # the identity keeps its other labels


# --------------------------------------------------------------------------------------------
# Mapping onto image records


def test_attributes_for_records_uses_original_ids(market):
    table = to_binary(market["train"])
    records = [Record("/a.jpg", 0, 0, {"orig_pid": 2}), Record("/b.jpg", 1, 3, {"orig_pid": 7}),
               Record("/c.jpg", 1, 1, {"orig_pid": 7})]
    rows = attributes_for_records(records, table)
    assert len(rows) == 3 and rows["pid"].tolist() == [2, 7, 7]
    assert rows.drop(columns="pid").iloc[0].tolist() == table.loc[2].tolist()
    assert rows.drop(columns="pid").iloc[2].tolist() == table.loc[7].tolist()
    gallery = [Record("/d.jpg", 1, 0), Record("/e.jpg", 0, 2)]  # id 0: distractor, no labels
    rows = attributes_for_records(gallery, to_binary(market["test"]))
    assert rows.drop(columns="pid").iloc[0].notna().all() and rows.drop(columns="pid").iloc[1].isna().all()


def test_attach_attributes(duke):
    records = [Record("/x.jpg", 5, 0, {"orig_pid": 370}), Record("/y.jpg", 6, 1, {"orig_pid": 1}),
               Record("/z.jpg", 7, 2, {"orig_pid": 99999})]
    out = attach_attributes(records, duke["train"])
    assert out[0].extra["attributes"]["long_top"] is None
    assert out[1].extra["attributes"]["female"] == int(duke["train"].loc[1, "gender"]) - 1
    assert out[2] is records[2] and "attributes" not in out[2].extra
    assert "attributes" not in records[0].extra  # inputs untouched


# --------------------------------------------------------------------------------------------
# Accuracy (Lin et al.: mean over attributes of the per-attribute accuracy over test images)


def test_accuracy_on_real_labels(market):
    target = to_binary(market["test"])
    perfect = attribute_accuracy(target.astype(float), target)
    assert perfect.mean == 1.0 and (perfect.per_attribute == 1.0).all()
    zeros = attribute_accuracy(np.zeros(target.shape), target)
    expected = 1.0 - target.astype(float).mean(axis=0)
    np.testing.assert_allclose(zeros.per_attribute.to_numpy(), expected.to_numpy())
    assert zeros.per_attribute["downpurple"] == 1.0  # no positives: all-negative is right
    assert zeros.mean == pytest.approx(expected.mean())
    assert list(zeros.per_attribute.index) == list(MARKET_BINARY_COLUMNS)


def test_accuracy_skips_unlabelled_targets(duke):
    target = to_binary(duke["train"])
    pred = target.astype(float).fillna(1.0)
    assert attribute_accuracy(pred, target).mean == 1.0
    pred_wrong = target.astype(float).fillna(0.0)  # wrong guesses at the unknowns do not count
    assert attribute_accuracy(pred_wrong, target).mean == 1.0
    flipped = 1.0 - pred
    assert attribute_accuracy(flipped, target).per_attribute["long_top"] == 0.0


def test_accuracy_small_example_and_inputs():
    target = np.array([[1, 0, np.nan], [1, 1, np.nan], [0, 1, np.nan], [0, 0, np.nan]])
    pred = torch.tensor([[0.9, 0.2, 0.1], [0.4, 0.7, 0.8], [0.1, 0.5, 0.3], [0.6, 0.1, 0.2]])
    acc = attribute_accuracy(pred, target, columns=["a", "b", "c"])
    assert acc.per_attribute["a"] == 0.5 and acc.per_attribute["b"] == 1.0  # 0.5 counts as 1
    assert np.isnan(acc.per_attribute["c"]) and acc.mean == 0.75
    assert attribute_accuracy(pred, target, threshold=0.8).per_attribute["attr0"] == 0.75
    with pytest.raises(ValueError, match="both be"):
        attribute_accuracy(pred[:, :2], target)
    with pytest.raises(ValueError, match="0/1"):
        attribute_accuracy(pred, target * 2)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 6)),
                  elements=st.floats(0, 1, allow_nan=False)),
       st.data())
def test_accuracy_equals_direct_count(pred, data):
    target = data.draw(hnp.arrays(np.float64, pred.shape, elements=st.sampled_from([0.0, 1.0, np.nan])))
    acc = attribute_accuracy(pred, target)
    per = []
    for j in range(pred.shape[1]):
        pairs = [(p >= 0.5, t == 1.0) for p, t in zip(pred[:, j], target[:, j]) if not np.isnan(t)]
        per.append(sum(a == b for a, b in pairs) / len(pairs) if pairs else np.nan)
    np.testing.assert_allclose(acc.per_attribute.to_numpy(), per)
    if not np.isnan(per).all():
        assert acc.mean == pytest.approx(np.nanmean(per))


# --------------------------------------------------------------------------------------------
# Bad files


def write_struct(path: Path, train: dict, test: dict, var: str = "market_attribute") -> None:
    scipy.io.savemat(path, {var: {"train": train, "test": test}})


def market_split(ids, fields=MARKET_FIELDS, value: int = 1) -> dict:
    s = {f: np.full((1, len(ids)), value, np.uint8) for f in fields}
    s["image_index"] = np.array([f"{i:04d}" for i in ids], dtype=object).reshape(1, -1)
    return s


def test_round_trip_of_a_written_file(tmp_path):
    write_struct(tmp_path / "a.mat", market_split([1, 2, 3]), market_split([4, 5], MARKET_FIELDS[::-1], 2))
    tables = load_attribute_file(tmp_path / "a.mat")
    assert tables["train"].index.tolist() == [1, 2, 3] and (tables["test"]["hat"] == 2).all()


def test_missing_field_is_named(tmp_path):
    write_struct(tmp_path / "a.mat", market_split([1, 2], MARKET_FIELDS[:-1]), market_split([3]))
    with pytest.raises(DatasetLayoutError, match=r"'train'.*missing=\['downbrown'\]"):
        load_attribute_file(tmp_path / "a.mat")


def test_bad_code_is_named(tmp_path):
    train = market_split([1, 2])
    train["hat"][0, 1] = 3
    write_struct(tmp_path / "a.mat", train, market_split([3]))
    with pytest.raises(DatasetLayoutError, match=r"field 'hat' has codes \[3\]"):
        load_attribute_file(tmp_path / "a.mat")


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        load_attribute_file(tmp_path / "none.mat")
    (tmp_path / "junk.mat").write_text("not a mat file")
    with pytest.raises(DatasetLayoutError, match="junk.mat"):
        load_attribute_file(tmp_path / "junk.mat")
    write_struct(tmp_path / "other.mat", market_split([1]), market_split([2]), var="something")
    with pytest.raises(DatasetLayoutError, match="dataset="):
        load_attribute_file(tmp_path / "other.mat")
    assert len(load_attribute_file(tmp_path / "other.mat", dataset="market")["train"]) == 1


def test_the_majority_rate_predicts_each_attributes_training_majority_for_every_image():
    from reidlib.data.attributes import majority_accuracy

    nan = float("nan")
    train = np.array([[1, 0, nan], [1, 0, nan], [0, 1, nan], [nan, 1, nan]])  # majorities 1, tie -> 1, unlabelled -> 1
    test = np.array([[1, 1, 0], [0, 1, 1], [1, 0, nan]])
    acc = majority_accuracy(train, test, columns=["a", "b", "c"])
    assert acc.per_attribute.to_dict() == {"a": 2 / 3, "b": 2 / 3, "c": 1 / 2}
    assert acc.mean == pytest.approx((2 / 3 + 2 / 3 + 1 / 2) / 3)
    with pytest.raises(ValueError, match="same A"):
        majority_accuracy(train[:, :2], test)
