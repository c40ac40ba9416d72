"""Bad inputs at the entry points of reidlib.data (dataset parsers and their options, attribute
files, erasers and the transform pipeline, the PK sampler, the image dataset, parse_filename):
each is refused with the exception type asserted and a message that names the argument, the
option or the file, and says what was expected."""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from conftest import realdata_path

from reidlib.data import ImageDataset, Record, build_dataset, parse_filename
from reidlib.data import attributes as A
from reidlib.data.errors import (
    AttributeFileMismatchError,
    DatasetLayoutError,
    DatasetNotFoundError,
    UnknownOptionError,
)
from reidlib.data.image_dataset import read_image
from reidlib.data.samplers import PKSampler
from reidlib.data.transforms import (
    ProgressiveCutout,
    RandomErasing,
    RandomPolygonErasing,
    apply_erasing,
    build_transforms,
    random_erasing_mask,
)


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def market_name(pid: int, cam: int, i: int) -> str:
    return f"{pid:04d}_c{cam}s1_{i:06d}_00.jpg"


def duke_name(pid: int, cam: int, i: int) -> str:
    return f"{pid:04d}_c{cam}_f{i:07d}.jpg"


def layout(root: Path, train_ids, test_ids, name=market_name) -> Path:
    """A Market-style tree of empty files: two images per train id, a query and a gallery image per test id."""
    for d in ("bounding_box_train", "bounding_box_test", "query"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i, pid in enumerate(train_ids):
        touch(root / "bounding_box_train" / name(int(pid), 1, 2 * i))
        touch(root / "bounding_box_train" / name(int(pid), 2, 2 * i + 1))
    for i, pid in enumerate(test_ids):
        touch(root / "query" / name(int(pid), 1, i))
        touch(root / "bounding_box_test" / name(int(pid), 2, i))
    return root


def write_market_attribute_mat(path: Path, train_ids, test_ids) -> Path:
    """A file in the structure of market_attribute.mat."""
    rng = np.random.default_rng(0)

    def split(ids):
        s = {f: rng.integers(1, 5 if f == "age" else 3, size=(1, len(ids))).astype(np.uint8) for f in A.MARKET_FIELDS}
        s["image_index"] = np.array([f"{i:04d}" for i in ids], dtype=object).reshape(1, -1)
        return s

    scipy.io.savemat(path, {"market_attribute": {"train": split(train_ids), "test": split(test_ids)}})
    return path


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    """Train ids 1..4, test ids 101..104, and a matching market_attribute.mat beside the folders."""
    root = layout(tmp_path / "small", [1, 2, 3, 4], [101, 102, 103, 104])
    write_market_attribute_mat(root / "market_attribute.mat", [1, 2, 3, 4], [101, 102, 103, 104])
    return root


def quiet_build(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # published counts differ on fixtures: a warning, not the point here
        return build_dataset(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# 1. An attribute file of another dataset


def test_duke_attribute_file_on_market_records_is_refused(tmp_path: Path) -> None:
    duke_file = realdata_path("dukemtmc_attribute", "duke_attribute.mat")
    market = A.load_attribute_file(realdata_path("market1501_attribute", "market_attribute.mat"))
    root = layout(tmp_path / "market", market["train"].index[:60], market["test"].index[:60])
    assert quiet_build("market1501", root, attribute_file=realdata_path(
        "market1501_attribute", "market_attribute.mat")).attributes is not None  # its own file fits
    with pytest.raises(AttributeFileMismatchError, match=r"duke_attribute\.mat: this attribute file does not belong "
                                                         r"to the market1501 dataset") as info:
        quiet_build("market1501", root, attribute_file=duke_file)
    message = str(info.value)
    assert "holds duke-attribute labels" in message
    assert "of the 60 training identities of the dataset are missing" in message
    assert isinstance(info.value, ValueError)


def test_market_attribute_file_on_duke_records_is_refused(tmp_path: Path) -> None:
    market_file = realdata_path("market1501_attribute", "market_attribute.mat")
    duke = A.load_attribute_file(realdata_path("dukemtmc_attribute", "duke_attribute.mat"))
    root = layout(tmp_path / "duke", duke["train"].index[:50], duke["test"].index[:50], name=duke_name)
    shutil.copy(market_file, root / "duke_attribute.mat")  # the default file name, the wrong content
    with pytest.raises(AttributeFileMismatchError, match=r"duke_attribute\.mat: .*dukemtmc dataset"):
        quiet_build("dukemtmc", root)
    with pytest.raises(AttributeFileMismatchError, match=r"(?s)market_attribute\.mat.*holds market-attribute.*"
                                                         r"of the 50 training identities .* missing .*e\.g\. \d{4}"):
        quiet_build("dukemtmc", root, attribute_file=market_file)


def test_market_structured_file_of_other_identities_is_refused(small: Path, tmp_path: Path) -> None:
    other = write_market_attribute_mat(tmp_path / "other_market_attribute.mat", [1, 2, 7, 8], [101, 102, 103, 104])
    with pytest.raises(AttributeFileMismatchError,
                       match=r"other_market_attribute\.mat: .*\n  2 of the 4 training identities of the dataset are "
                             r"missing from the attribute file \(its 'train' split\), e\.g\. 0003, 0004"):
        quiet_build("market1501", small, attribute_file=other)


def test_swapped_splits_are_refused(small: Path) -> None:
    write_market_attribute_mat(small / "market_attribute.mat", [101, 102, 103, 104], [1, 2, 3, 4])
    with pytest.raises(AttributeFileMismatchError, match=r"(?s)market_attribute\.mat: .*4 of the 4 query identities"):
        quiet_build("market1501", small)


def test_synthped_folder_with_a_foreign_attribute_file_is_refused(small: Path, tmp_path: Path) -> None:
    write_market_attribute_mat(small / "market_attribute.mat", [11, 12, 13, 14], [101, 102, 103, 104])
    with pytest.raises(AttributeFileMismatchError, match=r"(?s)market_attribute\.mat: .*synthped dataset.*"
                                                         r"attributes=False"):
        quiet_build("synthped", small)
    assert quiet_build("synthped", small, attributes=False).attributes is None


def test_attach_attributes_strict_names_the_file(small: Path) -> None:
    tables = A.load_attribute_file(small / "market_attribute.mat")
    records = [Record("/a.jpg", 0, 0, {"orig_pid": 1}), Record("/b.jpg", 1, 0, {"orig_pid": 99})]
    assert "attributes" not in A.attach_attributes(records, tables["train"])[1].extra  # default: unchanged
    with pytest.raises(AttributeFileMismatchError, match=r"market_attribute\.mat: 1 of the 2 identities .* e\.g\. 0099"):
        A.attach_attributes(records, tables["train"], strict=True)
    with pytest.raises(AttributeFileMismatchError, match=r"market_attribute\.mat: .*'test' split"):
        A.attributes_for_records(records, tables["test"], strict=True)
    gallery = [Record("/c.jpg", 101, 0), Record("/d.jpg", 0, 1)]  # a distractor (0) needs no labels
    A.check_identities(gallery, tables["test"])


def test_attach_attributes_refuses_a_table_that_is_not_one(small: Path) -> None:
    tables = A.load_attribute_file(small / "market_attribute.mat")
    with pytest.raises(TypeError, match=r"attach_attributes: table must be a pandas DataFrame .* got dict"):
        A.attach_attributes([], tables)  # both splits instead of one


def test_attribute_file_of_the_other_dataset_kind(small: Path) -> None:
    with pytest.raises(DatasetLayoutError, match=r"market_attribute\.mat: holds 'market_attribute'.*not 'duke_attribute'"):
        A.load_attribute_file(small / "market_attribute.mat", dataset="duke")
    with pytest.raises(DatasetNotFoundError, match=r"attribute file .*small is a folder \(it holds market_attribute\.mat\)"):
        A.load_attribute_file(small)


# --------------------------------------------------------------------------------------------
# 4. build_dataset and its parsers' options


def test_unknown_option_is_named_with_the_known_ones(small: Path) -> None:
    with pytest.raises(UnknownOptionError, match=r"unknown option 'spilt'; the options of market1501 are "
                                                 r"\['attribute_file', 'distractors_dir', 'market1501_500k', 'verify'\]"
                                                 r".*'split' is an option of cuhk03_np only") as info:
        build_dataset("market1501", small, spilt="x")
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    with pytest.raises(UnknownOptionError, match=r"'atribute_file': did you mean 'attribute_file'\?"):
        build_dataset("market", small, atribute_file="x")


@pytest.mark.parametrize("name, options, pattern", [
    ("market1501", {"verify": "yes"}, r"verify must be 'warn', 'strict' or 'off' \(option 'verify' of market1501\), got 'yes'"),
    ("market1501", {"market1501_500k": "no"}, r"option 'market1501_500k' of market1501 must be True or False, got 'no'"),
    ("market1501", {"attribute_file": 3}, r"option 'attribute_file' must be a path to market_attribute\.mat"),
    ("market1501", {"market1501_500k": True, "distractors_dir": None}, r"option 'distractors_dir' of market1501"),
    ("dukemtmc", {"verify": None}, r"option 'verify' of dukemtmc"),
    ("msmt17", {"include_val": "yes"}, r"option 'include_val' of msmt17 must be True or False"),
    ("vehicleid", {"seed": "a"}, r"option 'seed' of vehicleid must be an int, got 'a'"),
    ("vehicleid", {"test_size": "800"}, r"test_size must be one of \(800, 1600, 2400\) \(option 'test_size' of vehicleid\)"),
    ("cuhk03_np", {"split": 1}, r"split must be 'labeled' or 'detected' \(option 'split' of cuhk03_np\), got 1"),
    ("synthped", {"attributes": "no"}, r"option 'attributes' of synthped must be True or False"),
    ("veri776", {"verify": "strict!"}, r"option 'verify' of veri776"),
])
def test_bad_option_values_are_named_before_any_file_is_read(tmp_path: Path, name: str, options: dict,
                                                             pattern: str) -> None:
    # tmp_path is empty: a folder error would come first if the options were checked after parsing
    with pytest.raises(ValueError, match=pattern):
        build_dataset(name, tmp_path, **options)


def test_bad_roots_are_named(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"build_dataset: root must be a folder path .* got NoneType None"):
        build_dataset("market1501", None)
    (tmp_path / "data.zip").write_bytes(b"PK")
    with pytest.raises(DatasetNotFoundError, match=r"dataset root .*data\.zip is a file, not a folder"):
        build_dataset("market1501", tmp_path / "data.zip")


def test_relative_attribute_file_under_root_gets_a_hint(small: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"attribute file market_attribute\.mat does not exist \(relative "
                                                   r"paths are relative to the working directory.*found .*small"):
        build_dataset("market1501", small, attribute_file="market_attribute.mat")


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: parse_filename("0002_c1s1_000451_03.jpg", "markt"), ValueError,
     r"parse_filename: pattern must be a NamePattern or one of \['cuhk03_np', .*got 'markt'"),
    (lambda: parse_filename("0002_c1s1_000451_03.jpg", "vehicleid"), ValueError,
     r"got 'vehicleid' \(that dataset has no file-name pattern"),
    (lambda: parse_filename(2, "market1501"), TypeError, r"parse_filename: name must be a file name .* got int 2"),
    (lambda: parse_filename("0002_c7s1_000451_03.jpg", "market1501"), DatasetLayoutError,
     r"0002_c7s1_000451_03\.jpg: camera 7 is out of range \(expected 1\.\.6\)"),
])
def test_parse_filename_bad_input(call, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        call()


def test_parse_filename_takes_dataset_aliases_and_paths() -> None:
    assert parse_filename("0002_c1s1_000451_03.jpg", "market") == parse_filename("0002_c1s1_000451_03.jpg", "market1501")
    assert parse_filename(Path("/x/0001_c2_f0046182.jpg"), "duke")[:2] == (1, 1)


# --------------------------------------------------------------------------------------------
# 2. Tensor layouts of the erasers


@pytest.mark.parametrize("cls", [RandomErasing, ProgressiveCutout, RandomPolygonErasing])
def test_erasers_refuse_channels_last(cls) -> None:
    eraser = cls(p=1.0, seed=0)
    with pytest.raises(ValueError, match=rf"{cls.__name__} expects channels first.*got shape \(64, 32, 3\).*"
                                         r"channels-last.*image\.permute\(2, 0, 1\)"):
        eraser(torch.rand(64, 32, 3))
    with pytest.raises(ValueError, match=rf"{cls.__name__} .*\(4, 64, 32, 3\).*image\.permute\(0, 3, 1, 2\)"):
        eraser(torch.rand(4, 64, 32, 3))
    with pytest.raises(ValueError, match=rf"{cls.__name__} expects an image \(C, H, W\) with C = 1 or 3 .*"
                                         r"\(16, 64, 32\): 16 channels"):
        eraser(torch.rand(16, 64, 32))


@pytest.mark.parametrize("cls", [RandomErasing, ProgressiveCutout, RandomPolygonErasing])
def test_erasers_erase_across_height_and_width_of_channels_first_images(cls) -> None:
    image = torch.rand(64, 32, 3)
    out, mask = cls(p=1.0, seed=1, fill="zero").forward_with_mask(image.permute(2, 0, 1))  # the fix the error names
    assert mask.shape == (64, 32) and mask.any()
    assert (out[:, mask] == 0).all() and torch.equal(out[:, ~mask], image.permute(2, 0, 1)[:, ~mask])
    grey = torch.rand(1, 64, 32)
    assert cls(p=1.0, seed=1, fill="zero")(grey).shape == (1, 64, 32)


@pytest.mark.parametrize("args, pattern", [
    ((torch.rand(64, 32, 3), torch.zeros(64, 32, dtype=torch.bool), torch.zeros(3, 1, 1)),
     r"apply_erasing expects channels first.*\(64, 32, 3\).*permute\(2, 0, 1\)"),
    ((torch.rand(3, 64, 32), torch.zeros(32, 64, dtype=torch.bool), torch.zeros(3, 1, 1)),
     r"apply_erasing: mask must have shape \(64, 32\) .* got \(32, 64\)"),
    ((torch.rand(3, 64, 32), torch.zeros(64, 32), torch.zeros(3, 1, 1)),
     r"apply_erasing: mask must be a bool tensor .* got dtype torch\.float32"),
    ((torch.rand(3, 64, 32), torch.zeros(64, 32, dtype=torch.bool), torch.zeros(4, 1, 1)),
     r"apply_erasing: fill_values of shape \(4, 1, 1\) do not broadcast to the image's shape \(3, 64, 32\)"),
])
def test_apply_erasing_checks_its_arguments(args, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        apply_erasing(*args)


@pytest.mark.parametrize("make, pattern", [
    (lambda: RandomErasing(scale=0.3), r"scale must be \(low, high\) area fractions .* got 0\.3"),
    (lambda: RandomErasing(ratio="wide"), r"ratio must be \(low, high\) aspect ratios .* got 'wide'"),
    (lambda: RandomErasing(value=0.5), r"RandomErasing: value must be one fill number per channel .* got 0\.5"),
    (lambda: RandomErasing(attempts=0), r"attempts must be an int >= 1, got 0"),
    (lambda: RandomErasing(p=None), r"p must be a probability in \[0, 1\] .* got NoneType None"),
    (lambda: RandomPolygonErasing(n="20"), r"n \(number of polygon points\) must be >= 3, got '20'"),
    (lambda: ProgressiveCutout(num_regions=1.5), r"num_regions must be >= 1, got 1\.5"),
    (lambda: ProgressiveCutout().set_progress("half"), r"progress t must be in \[0, 1\], got 'half'"),
    (lambda: random_erasing_mask(64.5, 32), r"image size must be positive ints, got height=64\.5"),
])
def test_eraser_parameters_are_named(make, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize("options, pattern", [
    (dict(height="256"), r"image size must be positive ints, got height='256'"),
    (dict(width=0), r"got width=0"),
    (dict(random_erasing=1.5), r"random_erasing must be a probability in \[0, 1\], got 1\.5"),
    (dict(flip=True), r"flip must be a probability in \[0, 1\] \(a number; True/False are not probabilities\)"),
    (dict(progressive_cutout=float("nan")), r"progressive_cutout must be a probability in \[0, 1\], got nan"),
    (dict(padding=-2), r"padding must be an int >= 0, got -2"),
    (dict(padding="10"), r"padding must be an int >= 0, got '10'"),
    (dict(std=(0.229, 0.0, 0.225)), r"std must be > 0 in every channel \(Normalize divides by it\)"),
    (dict(mean=(0.5, 0.5)), r"mean must be 3 numbers, one per RGB channel .* got \(0\.5, 0\.5\)"),
    (dict(erasing_fill="grey"), r"erasing_fill must be one of \('mean', 'zero', 'random'\), got 'grey'"),
    (dict(progressive_cutout=0.5, cutout_options={"p": 1.0}), r"cutout_options: \['p'\] cannot be set here"),
    (dict(progressive_cutout=0.5, cutout_options={"sclae": (0.1, 0.2)}),
     r"cutout_options: unknown ProgressiveCutout option\(s\) \['sclae'\]; known: \['attempts'"),
    (dict(random_polygon_erasing=0.5, polygon_options="n=10"), r"polygon_options must be a dict .* got str 'n=10'"),
])
def test_build_transforms_bad_arguments_are_named(options: dict, pattern: str) -> None:
    args = dict(height=256, width=128, train=True) | options
    with pytest.raises(ValueError, match=pattern):
        build_transforms(**args)


# --------------------------------------------------------------------------------------------
# PK sampler


PIDS = np.repeat(np.arange(4), 4)


@pytest.mark.parametrize("call, pattern", [
    (lambda: PKSampler(PIDS, 2.5, 2), r"P and K must be ints >= 1 .* got p=2\.5, k=2"),
    (lambda: PKSampler(PIDS, 2, "4"), r"P and K must be ints >= 1 .* got p=2, k='4'"),
    (lambda: PKSampler(PIDS, 5, 2), r"P=5 identities per batch, but the dataset has only 4 identities: lower p"),
    (lambda: PKSampler([], 2, 2), r"pids is empty"),
    (lambda: PKSampler(None, 2, 2), r"pids must be a 1-D sequence of integer identity labels .* got NoneType"),
    (lambda: PKSampler(PIDS, 2, 2, seed=0.5), r"seed must be an int >= 0, got 0\.5"),
    (lambda: PKSampler(PIDS, 2, 2, rank="0", world_size=1), r"rank must be an int \(or None"),
    (lambda: PKSampler(PIDS, 2, 2).set_epoch(-1), r"epoch must be an int >= 0, got -1"),
    (lambda: PKSampler(PIDS, 2, 2).epoch_batches(rank=1), r"rank must be in 0\.\.0 \(world_size=1\), got 1"),
])
def test_pk_sampler_bad_arguments(call, pattern) -> None:
    with pytest.raises(ValueError, match=pattern):
        call()


# --------------------------------------------------------------------------------------------
# Image dataset


def test_image_dataset_missing_file_is_named(tmp_path: Path) -> None:
    ds = ImageDataset([Record(str(tmp_path / "0001_c1s1_000001_00.jpg"), 1, 0)])
    with pytest.raises(DatasetNotFoundError, match=r"image file .*0001_c1s1_000001_00\.jpg does not exist"):
        ds[0]
    with pytest.raises(IndexError, match=r"ImageDataset index 5 is out of range: the dataset has 1 images"):
        ds[5]
    with pytest.raises(DatasetLayoutError, match=r".*: is a folder, not an image file"):
        read_image(tmp_path)


def test_image_dataset_bad_records_and_transform(small: Path) -> None:
    parsed = quiet_build("market1501", small)
    with pytest.raises(TypeError, match=r"pass ds\.train, ds\.query or ds\.gallery, not the ReIDDataset"):
        ImageDataset(parsed)
    with pytest.raises(TypeError, match=r"ImageDataset: records\[1\] is a str \('b\.jpg'\), not a Record"):
        ImageDataset([parsed.train[0], "b.jpg"])
    with pytest.raises(TypeError, match=r"ImageDataset: transform must be callable .* got tuple"):
        ImageDataset(parsed.train, transform=(256, 128))
