"""Dataset parsers (reidlib.data.datasets) and the image dataset (reidlib.data.image_dataset).

Fixture trees hold empty files named as in the real datasets: Market-1501 from its real label
files (../shared/realdata/market1501_labels), the real CUHK03-NP subset, real sample crops, and
generated trees with the real naming patterns for the other datasets.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from conftest import realdata_path
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms import v2

from reidlib.data import (
    DatasetLayoutError,
    DatasetNotFoundError,
    ImageDataset,
    Record,
    ReIDDataset,
    UnreadableImageError,
    build_dataset,
    parse_filename,
)
from reidlib.data.datasets import DATASETS, relabel
from reidlib.data.image_dataset import read_image, verify_images


def touch(path: Path) -> None:
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def make_dirs(root: Path, *names: str) -> None:
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)


def mat_vector(path: Path) -> np.ndarray:
    data = scipy.io.loadmat(path)
    (value,) = [v for k, v in data.items() if not k.startswith("__")]
    return value.ravel().astype(np.int64)


# --------------------------------------------------------------------------------------------
# Market-1501 from its real labels (12,936 + 3,368 + 19,732 empty files)


@pytest.fixture(scope="module")
def market_labels() -> dict:
    labels = realdata_path("market1501_labels")
    train = {}
    for name in ("train.txt", "val.txt"):
        for line in (labels / name).read_text().splitlines():
            if line.strip():
                path, label = line.split()
                train[Path(path).name] = int(label)
    return {
        "train": train,
        "query": (mat_vector(labels / "queryID.mat"), mat_vector(labels / "queryCam.mat")),
        "gallery": (mat_vector(labels / "testID.mat"), mat_vector(labels / "testCam.mat")),
    }


def market_name(pid: int, cam: int, i: int) -> str:
    return f"{'-1' if pid == -1 else f'{pid:04d}'}_c{cam}s1_{i:06d}_00.jpg"


@pytest.fixture(scope="module")
def market_root(tmp_path_factory, market_labels) -> Path:
    root = tmp_path_factory.mktemp("market1501")
    make_dirs(root, "bounding_box_train", "bounding_box_test", "query")
    for name in market_labels["train"]:
        touch(root / "bounding_box_train" / name)
    for split, folder in (("query", "query"), ("gallery", "bounding_box_test")):
        pids, cams = market_labels[split]
        for i, (pid, cam) in enumerate(zip(pids, cams)):
            touch(root / folder / market_name(int(pid), int(cam), i))
    touch(root / "bounding_box_test" / "Thumbs.db")  # the real archive has these: not images
    return root


@pytest.fixture(scope="module")
def market(market_root) -> ReIDDataset:
    return build_dataset("market1501", market_root, verify="strict")


def test_market_counts_match_the_published_ones(market, market_labels):
    s = market.summary()
    assert list(s.index) == ["train", "query", "gallery"]
    assert list(s.columns) == ["images", "ids", "cameras"]
    assert s.loc["train"].tolist() == [12936, 751, 6]
    assert s.loc["query"].tolist() == [3368, 750, 6]
    gallery_pids = market_labels["gallery"][0]
    assert len(gallery_pids) == 19732  # before junk removal
    junk, distractors = int((gallery_pids == -1).sum()), int((gallery_pids == 0).sum())
    assert s.loc["gallery"].tolist() == [19732 - junk, 751, 6] == [15913, 751, 6]
    assert Counter(r.pid for r in market.gallery)[0] == distractors == 2798
    assert all(r.pid != -1 for r in market.gallery + market.query + market.train)
    assert market.num_train_pids == 751 and market.num_train_cams == 6


def test_market_relabelling_matches_the_official_train_labels(market, market_labels):
    # train.txt/val.txt label ids 0..750 in ascending order of the original id, as we do.
    assert sorted({r.pid for r in market.train}) == list(range(751))
    for r in market.train:
        assert r.pid == market_labels["train"][Path(r.path).name]
        assert r.extra["orig_pid"] == int(Path(r.path).name[:4])


def test_market_records_are_absolute_with_0_based_cameras(market, market_labels):
    pids, cams = market_labels["query"]
    assert sorted((r.pid, r.camid + 1) for r in market.query) == sorted(zip(pids.tolist(), cams.tolist()))
    assert {r.camid for r in market.gallery} == set(range(6))
    assert all(os.path.isabs(r.path) and os.path.exists(r.path) for r in market.query[:50])
    assert market.query[0].extra.keys() >= {"seq", "frame", "box"}


def test_market_repr_reports_every_split(market):
    text = repr(market)
    assert "market1501" in text
    for token in ("train", "query", "gallery", "12936", "3368", "15913", "751"):
        assert token in text


def test_market_attributes_map_onto_records(market_root):
    attr = realdata_path("market1501_attribute", "market_attribute.mat")
    ds = build_dataset("market1501", market_root, attribute_file=attr, verify="strict")
    assert set(ds.attributes) == {"train", "test"}
    assert set(ds.attributes["train"].index) == {r.extra["orig_pid"] for r in ds.train}
    assert set(ds.attributes["test"].index) == {r.pid for r in ds.query}
    assert all(len(r.extra["attributes"]) == 30 for r in ds.train + ds.query)
    # distractors have no labels; test ids do
    assert all(("attributes" in r.extra) == (r.pid != 0) for r in ds.gallery)
    first = ds.train[0]
    row = ds.attributes["train"].loc[first.extra["orig_pid"]]
    assert first.extra["attributes"]["female"] == int(row["gender"]) - 1
    targets = ds.attribute_targets("gallery")
    assert targets.shape == (15913, 31)  # pid + 30 binary attributes
    assert targets["pid"].tolist() == [r.pid for r in ds.gallery]
    assert targets.drop(columns="pid").isna().all(axis=1).sum() == 2798  # the distractors
    train_targets = ds.attribute_targets("train")
    assert train_targets.iloc[0, 1:].tolist() == list(first.extra["attributes"].values())
    with pytest.raises(ValueError, match="no attribute labels"):
        build_dataset("market1501", market_root, verify="off").attribute_targets("train")


def test_market_500k_distractors_join_the_gallery(tmp_path):
    root = tmp_path / "m"
    small_market(root)
    make_dirs(root, "images")
    for i in range(25):
        touch(root / "images" / f"0000_c{i % 6 + 1}s1_{i:06d}_00.jpg")
    plain = build_dataset("market1501", root, verify="off")
    big = build_dataset("market1501", root, market1501_500k=True, verify="off")
    assert big.name == "market1501+500k"
    assert len(big.gallery) == len(plain.gallery) + 25
    assert sum(r.extra.get("distractor_500k", False) for r in big.gallery) == 25
    assert big.query == plain.query and len(big.train) == len(plain.train)
    shutil.rmtree(root / "images")
    with pytest.raises(DatasetNotFoundError, match="images"):
        build_dataset("market1501", root, market1501_500k=True)


# --------------------------------------------------------------------------------------------
# Errors: missing folders, bad names, empty splits, wrong roots


def small_market(root: Path, ids: int = 4, cams: int = 3) -> None:
    make_dirs(root, "bounding_box_train", "bounding_box_test", "query")
    for pid in range(1, ids + 1):
        for cam in range(1, cams + 1):
            touch(root / "bounding_box_train" / f"{pid:04d}_c{cam}s1_{pid * 10 + cam:06d}_01.jpg")
            touch(root / "query" / f"{pid + 100:04d}_c{cam}s1_{pid * 10 + cam:06d}_00.jpg")
            touch(root / "bounding_box_test" / f"{pid + 100:04d}_c{cam}s2_{pid * 10 + cam:06d}_01.jpg")
    touch(root / "bounding_box_test" / "0000_c1s1_000001_00.jpg")
    touch(root / "bounding_box_test" / "-1_c2s1_000002_00.jpg")


def test_small_market_parses(tmp_path):
    small_market(tmp_path)
    with pytest.warns(UserWarning, match="published 12936"):
        ds = build_dataset("market", tmp_path)
    touch(tmp_path / "query" / "0001_c1s1_000099_00.jpg")  # a train id among the queries
    with pytest.warns(UserWarning, match="1 ids are both in train and test"):
        build_dataset("market", tmp_path)
    os.unlink(tmp_path / "query" / "0001_c1s1_000099_00.jpg")
    assert ds.summary()["images"].tolist() == [12, 12, 13]  # one distractor kept, one junk dropped
    assert {r.extra["orig_pid"] for r in ds.train} == {1, 2, 3, 4}
    with pytest.raises(DatasetLayoutError, match="published"):
        build_dataset("market1501", tmp_path, verify="strict")


@pytest.mark.parametrize("folder", ["bounding_box_train", "bounding_box_test", "query"])
def test_missing_folder_names_path_and_layout(tmp_path, folder):
    small_market(tmp_path)
    shutil.rmtree(tmp_path / folder)
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset("market1501", tmp_path)
    assert isinstance(err.value, FileNotFoundError)
    assert str(tmp_path / folder) in str(err.value)
    assert "Expected layout" in str(err.value) and "bounding_box_train/" in str(err.value)


def test_root_one_level_too_high_gets_a_hint(tmp_path):
    small_market(tmp_path / "Market-1501-v15.09.15")
    with pytest.raises(DatasetNotFoundError, match="Market-1501-v15.09.15: pass that folder as root"):
        build_dataset("market1501", tmp_path)


def test_missing_root(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        build_dataset("market1501", tmp_path / "nowhere")


@pytest.mark.parametrize("bad", ["0002_c1_000451_03.jpg", "x0002_c1s1_000451_03.jpg", "0002.jpg"])
def test_unparsable_name_is_named(tmp_path, bad):
    small_market(tmp_path)
    touch(tmp_path / "query" / bad)
    with pytest.raises(DatasetLayoutError) as err:
        build_dataset("market1501", tmp_path)
    assert str(tmp_path / "query" / bad) in str(err.value)
    assert "0002_c1s1_000451_03.jpg" in str(err.value)  # the expected pattern's example


def test_camera_out_of_range(tmp_path):
    small_market(tmp_path)
    touch(tmp_path / "query" / "0101_c7s1_000001_00.jpg")
    with pytest.raises(DatasetLayoutError, match="camera 7 is out of range"):
        build_dataset("market1501", tmp_path)


def test_empty_split(tmp_path):
    small_market(tmp_path)
    for f in (tmp_path / "query").iterdir():
        f.unlink()
    with pytest.raises(DatasetLayoutError, match=re.escape(f"{tmp_path / 'query'}: the query split of market1501 is empty")):
        build_dataset("market1501", tmp_path)


def test_distractor_outside_gallery(tmp_path):
    small_market(tmp_path)
    touch(tmp_path / "bounding_box_train" / "0000_c1s1_000009_00.jpg")
    with pytest.raises(DatasetLayoutError, match="distractor id 0 .* train"):
        build_dataset("market1501", tmp_path)


def test_unknown_dataset_lists_known_ones(tmp_path):
    with pytest.raises(ValueError, match="market1501"):
        build_dataset("imagenet", tmp_path)


def test_aliases_resolve(tmp_path):
    small_market(tmp_path)
    for alias in ("market", "Market-1501", "MARKET1501"):
        assert build_dataset(alias, tmp_path, verify="off").name == "market1501"
    assert set(DATASETS) == {"market1501", "dukemtmc", "msmt17", "cuhk03_np", "veri776", "vehicleid", "synthped"}


def test_bad_verify_option(tmp_path):
    small_market(tmp_path)
    with pytest.raises(ValueError, match="verify"):
        build_dataset("market1501", tmp_path, verify="maybe")


# --------------------------------------------------------------------------------------------
# File-name patterns (real sample names) and properties


@pytest.mark.parametrize("folder,pattern", [("market1501", "market1501"), ("dukemtmc_reid", "dukemtmc"),
                                            ("msmt17", "msmt17")])
def test_real_sample_names_parse(folder, pattern):
    names = sorted(os.listdir(realdata_path("samples", folder)))
    assert names
    for name in names:
        pid, camid, extra = parse_filename(name, pattern)
        assert pid == int(name.split("_")[0])
        cam_field = name.split("_")[2] if pattern == "msmt17" else name.split("_")[1][1:].split("s")[0]
        assert camid == int(cam_field) - 1


def test_sample_name_fields():
    assert parse_filename("0002_c1s1_000451_03.jpg", "market1501") == (2, 0, {"seq": 1, "frame": 451, "box": 3})
    assert parse_filename("-1_c3s2_000001_00.jpg", "market1501")[:2] == (-1, 2)
    assert parse_filename("0001_c2_f0046182.jpg", "dukemtmc") == (1, 1, {"frame": 46182})
    assert parse_filename("0002_c002_00030600_0.jpg", "veri776") == (2, 1, {"frame": 30600, "index": 0})
    pid, camid, extra = parse_filename("0000/0000_000_01_0303morning_0015_0.jpg", "msmt17")
    assert (pid, camid, extra["time"], extra["frame"]) == (0, 0, "0303morning", 15)
    with pytest.raises(DatasetLayoutError, match="camera 9"):
        parse_filename("0001_c9_f0046182.jpg", "dukemtmc")


@settings(max_examples=60, deadline=None)
@given(pid=st.one_of(st.just(-1), st.integers(0, 1501)), cam=st.integers(1, 6), seq=st.integers(1, 6),
       frame=st.integers(0, 999999), box=st.integers(0, 99))
def test_market_names_round_trip(pid, cam, seq, frame, box):
    name = f"{'-1' if pid == -1 else f'{pid:04d}'}_c{cam}s{seq}_{frame:06d}_{box:02d}.jpg"
    assert parse_filename(name, "market1501") == (pid, cam - 1, {"seq": seq, "frame": frame, "box": box})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=60))
def test_relabel_is_contiguous_and_order_preserving(pids):
    out = relabel(Record(f"/x/{i}.jpg", p, 0) for i, p in enumerate(pids))
    assert sorted({r.pid for r in out}) == list(range(len(set(pids))))
    for a, b in zip(out, pids):
        assert a.extra["orig_pid"] == b
    for a in out:
        for b in out:
            assert (a.pid < b.pid) == (a.extra["orig_pid"] < b.extra["orig_pid"])


# --------------------------------------------------------------------------------------------
# Real CUHK03-NP subset


@pytest.fixture(scope="module")
def cuhk03_root() -> Path:
    return realdata_path("cuhk03_np_pair1")


def test_cuhk03_np_labeled_subset(cuhk03_root):
    with pytest.warns(UserWarning, match="published 7368 of 767"):
        ds = build_dataset("cuhk03_np", cuhk03_root, split="labeled")
    s = ds.summary()
    assert s.loc["train"].tolist() == [4145, 427, 2]
    assert s.loc["gallery"].tolist() == [3200, 416, 2]
    assert s.loc["query"].tolist() == [832, 416, 2]
    assert ds.name == "cuhk03_np/labeled"
    assert not {r.extra["orig_pid"] for r in ds.train} & {r.pid for r in ds.gallery}
    # CUHK03-NP queries: one image per identity and camera
    assert Counter((r.pid, r.camid) for r in ds.query).most_common(1)[0][1] == 1


def test_cuhk03_np_variant_errors(cuhk03_root):
    with pytest.raises(DatasetNotFoundError, match="detected"):
        build_dataset("cuhk03_np", cuhk03_root, split="detected")
    with pytest.raises(ValueError, match="labeled"):
        build_dataset("cuhk03_np", cuhk03_root, split="both")


def test_cuhk03_images_load(cuhk03_root):
    ds = build_dataset("cuhk03_np", cuhk03_root, verify="off")
    images = ImageDataset(ds.query[:3])
    img, pid, camid, index = images[2]
    assert img.dtype == torch.float32 and img.shape[0] == 3 and img.shape[1] <= 256
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0
    assert (pid, camid, index) == (ds.query[2].pid, ds.query[2].camid, 2)


# --------------------------------------------------------------------------------------------
# ImageDataset on real sample crops


@pytest.fixture
def sample_market(tmp_path) -> Path:
    """A Market tree of the 50 real sample crops: distractor -> gallery, ids split train/test."""
    src = realdata_path("samples", "market1501")
    make_dirs(tmp_path, "bounding_box_train", "bounding_box_test", "query")
    names = sorted(os.listdir(src))
    test_ids = {int(n[:4]) for n in names if int(n[:4]) in (0, 51, 1285)}
    for n in names:
        pid = int(n[:4])
        folder = "bounding_box_train" if pid not in test_ids else "bounding_box_test"
        shutil.copy(src / n, tmp_path / folder / n)
    for n in ("0051_c3s1_005551_00.jpg", "1285_c1s5_053991_00.jpg"):
        shutil.move(tmp_path / "bounding_box_test" / n, tmp_path / "query" / n)
    return tmp_path


def test_image_dataset_loads_real_crops(sample_market):
    ds = build_dataset("market1501", sample_market, verify="off")
    assert ds.summary().loc["gallery", "ids"] == 3  # 0000 distractor + two ids
    plain = ImageDataset(ds.train)
    img, pid, camid, index = plain[5]
    assert img.dtype == torch.float32 and img.shape[0] == 3 and img.ndim == 3
    assert (pid, camid, index) == (ds.train[5].pid, ds.train[5].camid, 5)
    tf = v2.Compose([v2.ToImage(), v2.Resize((32, 16)), v2.ToDtype(torch.float32, scale=True)])
    batch = torch.utils.data.DataLoader(ImageDataset(ds.train, tf), batch_size=4)
    images, pids, camids, idx = next(iter(batch))
    assert images.shape == (4, 3, 32, 16) and idx.tolist() == [0, 1, 2, 3]
    # a transform that stays in PIL still yields a tensor
    assert ImageDataset(ds.train, v2.Resize((20, 10)))[0][0].shape == (3, 20, 10)
    verify_images(ds.query, progress=False)


def test_unreadable_image_names_the_file(tmp_path, sample_market):
    ds = build_dataset("market1501", sample_market, verify="off")
    bad = Path(ds.train[3].path)
    bad.write_bytes(b"")  # empty: PIL cannot identify it
    with pytest.raises(UnreadableImageError) as err:
        ImageDataset(ds.train)[3]
    assert str(bad) in str(err.value) and isinstance(err.value, ValueError)
    truncated = Path(ds.train[4].path)
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(UnreadableImageError, match=re.escape(str(truncated))):
        read_image(truncated)
    with pytest.raises(UnreadableImageError):
        verify_images(ds.train, progress=False)
    os.unlink(ds.train[5].path)
    with pytest.raises(DatasetNotFoundError, match=re.escape(ds.train[5].path)) as missing:
        ImageDataset(ds.train)[5]
    assert isinstance(missing.value, FileNotFoundError)


def test_empty_fixture_files_are_unreadable(market):
    with pytest.raises(UnreadableImageError, match="bounding_box_train"):
        ImageDataset(market.train)[0]


# --------------------------------------------------------------------------------------------
# Generated fixtures with the real naming patterns: DukeMTMC-reID, MSMT17, VeRi-776, VehicleID


def test_dukemtmc(tmp_path):
    make_dirs(tmp_path, "bounding_box_train", "bounding_box_test", "query")
    for pid in (1, 2, 5):
        for cam in (1, 2, 8):
            touch(tmp_path / "bounding_box_train" / f"{pid:04d}_c{cam}_f{pid * 1000 + cam:07d}.jpg")
    for pid in (3, 7):
        for cam in (2, 5):
            touch(tmp_path / "query" / f"{pid:04d}_c{cam}_f{pid * 1000 + cam:07d}.jpg")
            touch(tmp_path / "bounding_box_test" / f"{pid:04d}_c{cam}_f{pid * 1000 + cam + 50:07d}.jpg")
    touch(tmp_path / "bounding_box_test" / "5842_c7_f0053326.jpg")  # a distractor identity
    ds = build_dataset("duke", tmp_path, verify="off")
    assert ds.summary().loc["train"].tolist() == [9, 3, 3]
    assert ds.summary().loc["gallery"].tolist() == [5, 3, 3]
    assert {r.camid for r in ds.train} == {0, 1, 7}
    assert ds.gallery[-1].extra == {"frame": 53326}
    touch(tmp_path / "query" / "0003_c2s1_000001_00.jpg")  # a Market name in Duke
    with pytest.raises(DatasetLayoutError, match="0001_c2_f0046182.jpg"):
        build_dataset("dukemtmc", tmp_path)


def make_msmt(root: Path) -> None:
    make_dirs(root, "train", "test")
    lines = {"list_train.txt": [], "list_val.txt": [], "list_query.txt": [], "list_gallery.txt": []}
    for label in range(3):
        (root / "train" / f"{label:04d}").mkdir()
        for k, cam in enumerate((1, 4, 15)):
            rel = f"{label:04d}/{label:04d}_{k:03d}_{cam:02d}_0303morning_{k:04d}_{k}.jpg"
            touch(root / "train" / rel)
            lines["list_val.txt" if k == 2 else "list_train.txt"].append(f"{rel} {label}")
    for label in range(2):
        (root / "test" / f"{label:04d}").mkdir()
        for k, cam in enumerate((2, 3, 9, 10)):
            rel = f"{label:04d}/{label:04d}_{k:03d}_{cam:02d}_0113noon_{k:04d}_{k}{'_ex' if k == 3 else ''}.jpg"
            touch(root / "test" / rel)
            lines["list_query.txt" if k == 0 else "list_gallery.txt"].append(f"{rel} {label}")
    for name, content in lines.items():
        (root / name).write_text("\n".join(content) + "\n")


def test_msmt17(tmp_path):
    make_msmt(tmp_path)
    ds = build_dataset("msmt17", tmp_path, verify="off")
    assert ds.summary().loc["train"].tolist() == [9, 3, 3]
    assert ds.summary().loc["query"].tolist() == [2, 2, 1]
    assert ds.summary().loc["gallery"].tolist() == [6, 2, 3]
    assert {r.camid for r in ds.train} == {0, 3, 14}
    assert len(build_dataset("msmt17", tmp_path, include_val=False, verify="off").train) == 6
    with pytest.warns(UserWarning, match="published 32621") as record:
        build_dataset("msmt17", tmp_path)
    # train labels 0..2 and test labels 0..1 are different people in MSMT17's numbering
    assert not any("both in train and test" in str(w.message) for w in record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_dataset("msmt17", tmp_path, include_val=False)  # no published counts to compare


def test_msmt17_errors(tmp_path):
    make_msmt(tmp_path)
    os.unlink(tmp_path / "list_gallery.txt")
    with pytest.raises(DatasetNotFoundError, match="list_gallery.txt"):
        build_dataset("msmt17", tmp_path)
    make_msmt(tmp_path / "b")
    with open(tmp_path / "b" / "list_query.txt", "a") as f:
        f.write("0001/0001_009_02_0113noon_0009_0.jpg 1\n")  # listed, not on disk
    with pytest.raises(DatasetNotFoundError, match="1 listed images do not exist"):
        build_dataset("msmt17", tmp_path / "b")
    make_msmt(tmp_path / "c")
    with open(tmp_path / "c" / "list_train.txt", "a") as f:
        f.write("just-a-name\n")
    with pytest.raises(DatasetLayoutError, match=r"list_train.txt:7: expected"):
        build_dataset("msmt17", tmp_path / "c")


def test_veri776(tmp_path):
    make_dirs(tmp_path, "image_train", "image_query", "image_test")
    for vid in (2, 3, 10):
        for cam in (1, 2, 20):
            touch(tmp_path / "image_train" / f"{vid:04d}_c{cam:03d}_{vid * 100 + cam:08d}_0.jpg")
    for vid in (6, 13):
        touch(tmp_path / "image_query" / f"{vid:04d}_c005_00030600_0.jpg")
        for cam in (5, 12):
            touch(tmp_path / "image_test" / f"{vid:04d}_c{cam:03d}_{cam * 7:08d}_1.jpg")
    ds = build_dataset("veri", tmp_path, verify="off")
    assert ds.summary()["images"].tolist() == [9, 2, 4]
    assert {r.camid for r in ds.train} == {0, 1, 19}
    touch(tmp_path / "image_test" / "0006_c021_00000001_0.jpg")
    with pytest.raises(DatasetLayoutError, match="camera 21 is out of range"):
        build_dataset("veri776", tmp_path)


def make_vehicleid(root: Path, sizes=(800, 1600, 2400), train_ids: int = 5) -> None:
    make_dirs(root, "image", "train_test_split")
    n = 0

    def add(vid: int, count: int) -> list[str]:
        nonlocal n
        out = []
        for _ in range(count):
            n += 1
            touch(root / "image" / f"{n:07d}.jpg")
            out.append(f"{n:07d} {vid}")
        return out

    train = [line for vid in range(1, train_ids + 1) for line in add(vid, 3)]
    (root / "train_test_split" / "train_list.txt").write_text("\n".join(train) + "\n")
    test_lines: list[str] = []
    vids = 0
    for size in sizes:
        while vids < size:  # here each larger list extends the smaller one
            test_lines += add(100000 + vids, 2 + vids % 3)
            vids += 1
        (root / "train_test_split" / f"test_list_{size}.txt").write_text("\n".join(test_lines) + "\n")


@pytest.fixture(scope="module")
def vehicleid_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vehicleid")
    make_vehicleid(root)
    return root


@pytest.mark.parametrize("size", [800, 1600, 2400])
def test_vehicleid_test_sizes(vehicleid_root, size):
    with pytest.warns(UserWarning, match="published 110178"):
        ds = build_dataset("vehicleid", vehicleid_root, test_size=size)
    assert ds.name == f"vehicleid/{size}"
    s = ds.summary()
    assert s.loc["gallery"].tolist() == [size, size, 1]  # one gallery image per vehicle
    assert s.loc["query", "ids"] == size
    assert {r.camid for r in ds.query} == {0} and {r.camid for r in ds.gallery} == {1}
    assert ds.num_train_pids == 5 and len(ds.train) == 15
    assert not {r.path for r in ds.query} & {r.path for r in ds.gallery}


def test_vehicleid_split_is_seeded(vehicleid_root):
    a = build_dataset("vehicleid", vehicleid_root, verify="off", seed=1)
    b = build_dataset("vehicleid", vehicleid_root, verify="off", seed=1)
    c = build_dataset("vehicleid", vehicleid_root, verify="off", seed=2)
    assert a.gallery == b.gallery and a.gallery != c.gallery


def test_vehicleid_errors(tmp_path, vehicleid_root):
    with pytest.raises(ValueError, match="800, 1600, 2400"):
        build_dataset("vehicleid", vehicleid_root, test_size=1000)
    make_vehicleid(tmp_path, sizes=(800,), train_ids=2)
    with pytest.raises(DatasetNotFoundError, match="test_list_1600.txt"):
        build_dataset("vehicleid", tmp_path, test_size=1600)
    os.unlink(tmp_path / "image" / "0000001.jpg")
    with pytest.raises(DatasetNotFoundError, match="0000001.jpg"):
        build_dataset("vehicleid", tmp_path)


# --------------------------------------------------------------------------------------------
# synthped: the Market layout plus its attribute file and manifest


def write_market_attribute_mat(path: Path, train_ids, test_ids, seed: int = 0) -> None:
    """A file in the structure of market_attribute.mat (fields in a different order per split)."""
    from reidlib.data.attributes import MARKET_FIELDS

    rng = np.random.default_rng(seed)

    def split(ids, fields):
        s = {f: rng.integers(1, 5 if f == "age" else 3, size=(1, len(ids))).astype(np.uint8) for f in fields}
        s["image_index"] = np.array([f"{i:04d}" for i in ids], dtype=object).reshape(1, -1)
        return s

    scipy.io.savemat(path, {"market_attribute": {"train": split(train_ids, MARKET_FIELDS),
                                                 "test": split(test_ids, MARKET_FIELDS[::-1])}})


def test_synthped_layout(tmp_path):
    small_market(tmp_path)
    for f in list((tmp_path / "bounding_box_train").iterdir()):
        touch(f.with_name(f.stem + ".parts.png"))  # part masks beside the images
    write_market_attribute_mat(tmp_path / "market_attribute.mat", [1, 2, 3, 4], [101, 102, 103, 104])
    counts = {"train": {"images": 12, "ids": 4}, "gallery": {"images": 13}}
    (tmp_path / "manifest.json").write_text(json.dumps({"cameras": 6, "seed": 0, "counts": counts}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = build_dataset("synthped", tmp_path)
    assert ds.summary()["images"].tolist() == [12, 12, 13]
    assert ds.manifest["seed"] == 0
    assert set(ds.attributes) == {"train", "test"}
    assert all(len(r.extra["attributes"]) == 30 for r in ds.train + ds.query)
    assert "attributes" not in ds.gallery[0].extra  # the 0000 distractor
    counts["train"]["images"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps({"counts": counts}))
    with pytest.raises(DatasetLayoutError, match="manifest says 99"):
        build_dataset("synthped", tmp_path, verify="strict")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetLayoutError, match="manifest.json"):
        build_dataset("synthped", tmp_path)


def test_synthped_without_extras(tmp_path):
    small_market(tmp_path)
    ds = build_dataset("synthped", tmp_path)
    assert ds.attributes is None and ds.manifest is None
    assert build_dataset("synthped", tmp_path, verify="off").summary().equals(ds.summary())
    touch(tmp_path / "query" / "0101_c1s1_000011_00_m.png")  # masks under another suffix
    with pytest.raises(DatasetLayoutError, match="_m.png"):
        build_dataset("synthped", tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"part_masks": {"suffix": "_m.png"}}))
    assert build_dataset("synthped", tmp_path).summary().equals(ds.summary())


def test_synthped_generator_output_parses(tmp_path):
    synthped = pytest.importorskip("reidlib.data.synthped")
    root = tmp_path / "tiny"
    synthped.generate(root, num_train_ids=6, num_test_ids=5, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = build_dataset("synthped", root, verify="strict")  # counts agree with manifest.json
    counts = ds.manifest["counts"]
    for split in ("train", "query", "gallery"):
        assert ds.summary().loc[split, "images"] == counts[split]["images"]
    assert ds.num_train_pids == 6
    assert all(len(r.extra["attributes"]) == 30 for r in ds.train + ds.query)
    assert not ds.attribute_targets("query").isna().any().any()
    image, pid, camid, _ = ImageDataset(ds.query)[0]
    assert image.shape == (3, 128, 64) and (pid, camid) == (ds.query[0].pid, ds.query[0].camid)
