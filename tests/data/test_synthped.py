"""synthped: determinism, Market-1501 layout and names, the attribute file's structure, part
masks, query/gallery rules, hard groups, the cache (ensure) and bad input."""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from conftest import realdata_path
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from reidlib.data import _synthped_draw as draw
from reidlib.data import synthped

SMALL = dict(num_train_ids=8, num_test_ids=7, cameras=4, seed=3, hard_group_share=0.5, hard_group_size=2)
NAME = re.compile(r"^(-1|\d{4})_c([1-9])s(\d+)_(\d{6})_(\d{2})\.jpg$")
MARKET = re.compile(r"([-\d]+)_c(\d)")  # the standard Market-1501 parser's pattern
DETAILS = ("logo", "stripe", "shoes", "strap")


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _records(root: Path) -> dict[str, list[tuple[str, int, int]]]:
    """(name, pid, camera 1-based) per split, parsed from the names with the Market regex."""
    out = {}
    for split, folder in synthped.SPLIT_DIRS.items():
        recs = []
        for p in sorted((root / folder).glob("*.jpg")):
            pid, cam = MARKET.search(p.name).groups()
            recs.append((p.name, int(pid), int(cam)))
        out[split] = recs
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthped.generate(tmp_path_factory.mktemp("synthped") / "small", **SMALL, progress=False)


@pytest.fixture(scope="module")
def manifest(small: Path) -> dict:
    return json.loads((small / "manifest.json").read_text())


# ------------------------------------------------------------------------------------------
# Determinism


def test_same_seed_same_bytes_any_worker_count(small: Path, tmp_path: Path) -> None:
    again = synthped.generate(tmp_path / "again", **SMALL, workers=2, progress=False)
    a, b = _hashes(small), _hashes(again)
    assert len(a) > 100 and a == b


def test_other_seed_other_images(small: Path, tmp_path: Path) -> None:
    other = synthped.generate(tmp_path / "other", **{**SMALL, "seed": 4}, progress=False)
    a, b = _hashes(small), _hashes(other)
    assert a["market_attribute.mat"] != b["market_attribute.mat"]
    common = set(a) & set(b)
    assert sum(a[k] != b[k] for k in common if k.endswith(".jpg")) == sum(k.endswith(".jpg") for k in common)


# ------------------------------------------------------------------------------------------
# Layout, names, counts


def test_layout_names_and_counts(small: Path, manifest: dict) -> None:
    recs = _records(small)
    for split, folder in synthped.SPLIT_DIRS.items():
        names = [p.name for p in (small / folder).iterdir()]
        jpgs = [n for n in names if n.endswith(".jpg")]
        assert all(NAME.match(n) for n in jpgs), [n for n in jpgs if not NAME.match(n)][:3]
        # every image has its mask beside it, and nothing else is there
        assert sorted(names) == sorted(jpgs + [n[:-4] + synthped.MASK_SUFFIX for n in jpgs])
        assert {cam for _, _, cam in recs[split]} <= set(range(1, SMALL["cameras"] + 1))
    assert len({n for s in recs.values() for n, _, _ in s}) == sum(len(s) for s in recs.values())  # unique names
    counts = manifest["counts"]
    for split in ("train", "query"):
        assert counts[split] == {"images": len(recs[split]), "ids": len({p for _, p, _ in recs[split]})}
    gallery = [r for r in recs["gallery"] if r[1] != -1]
    assert counts["gallery"]["images"] == len(gallery)
    assert counts["gallery"]["ids"] == len({p for _, p, _ in gallery})
    assert counts["junk"]["images"] == sum(r[1] == -1 for r in recs["gallery"])
    assert manifest["cameras"] == SMALL["cameras"] and manifest["params"]["seed"] == SMALL["seed"]
    train_ids = {p for _, p, _ in recs["train"]}
    test_ids = {p for _, p, _ in recs["query"]}
    assert len(train_ids) == SMALL["num_train_ids"] and len(test_ids) == SMALL["num_test_ids"]
    assert not train_ids & test_ids and 0 not in train_ids | test_ids and -1 not in train_ids | test_ids
    with Image.open(small / "query" / recs["query"][0][0]) as im:
        assert im.size == (64, 128) and im.mode == "RGB"


def test_build_dataset_parses_it(small: Path, manifest: dict) -> None:
    from reidlib.data import build_dataset
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a count mismatch with the manifest would warn
        ds = build_dataset("synthped", small)
    assert ds.num_train_pids == SMALL["num_train_ids"]
    assert len(ds.query) == manifest["counts"]["query"]["images"]
    assert len(ds.gallery) == manifest["counts"]["gallery"]["images"]
    assert {r.pid for r in ds.gallery} >= {0}


def test_query_and_gallery_rules(small: Path) -> None:
    recs = _records(small)
    per_id_cams = defaultdict(list)
    for _, pid, cam in recs["query"]:
        per_id_cams[pid].append(cam)
    gallery = Counter((pid, cam) for _, pid, cam in recs["gallery"])
    for pid, cams in per_id_cams.items():
        assert len(cams) == len(set(cams)), f"{pid}: more than one query in a camera"
        assert len(cams) >= 2, f"{pid} is seen by one camera only"
        for cam in cams:  # a cross-camera true match exists for every query
            assert any(gallery[(pid, c)] > 0 for c in cams if c != cam)
            assert gallery[(pid, cam)] > 0
    assert {pid for pid, _ in gallery} - set(per_id_cams) == {-1, 0}  # junk and distractors only
    train_cams = defaultdict(set)
    for _, pid, cam in recs["train"]:
        train_cams[pid].add(cam)
    assert all(len(c) >= 2 for c in train_cams.values())


@settings(max_examples=5, deadline=None)
@given(n_train=st.integers(1, 4), n_test=st.integers(1, 4), cameras=st.integers(2, 5), seed=st.integers(0, 10_000),
       junk=st.floats(0.0, 0.4), distractors=st.floats(0.0, 0.4))
def test_rules_hold_for_any_parameters(tmp_path_factory: pytest.TempPathFactory, n_train: int, n_test: int,
                                       cameras: int, seed: int, junk: float, distractors: float) -> None:
    root = synthped.generate(tmp_path_factory.mktemp("h") / "d", num_train_ids=n_train, num_test_ids=n_test,
                             cameras=cameras, height=64, width=32, seed=seed, junk_share=junk,
                             distractor_share=distractors, supersample=1, progress=False)
    recs = _records(root)
    q = Counter((pid, cam) for _, pid, cam in recs["query"])
    assert max(q.values()) == 1
    assert Counter(pid for pid, _ in q).most_common()[-1][1] >= 2
    assert len({p for _, p, _ in recs["train"]}) == n_train and len({p for p, _ in q}) == n_test
    n_good = sum(p > 0 for _, p, _ in recs["gallery"])
    n_junk = sum(p == -1 for _, p, _ in recs["gallery"])
    total = n_good / (1 - junk - distractors)
    assert n_junk == round(junk * total)


# ------------------------------------------------------------------------------------------
# The attribute file


def _load_struct(path: Path) -> dict:
    mat = scipy.io.loadmat(path)
    assert [k for k in mat if not k.startswith("__")] == ["market_attribute"]
    top = mat["market_attribute"]
    assert top.shape == (1, 1) and top.dtype.names == ("test", "train")
    return {split: top[0, 0][split][0, 0] for split in ("train", "test")}


def test_attribute_file_structure(small: Path) -> None:
    splits = _load_struct(small / "market_attribute.mat")
    recs = _records(small)
    expect_ids = {"train": sorted({p for _, p, _ in recs["train"]}), "test": sorted({p for _, p, _ in recs["query"]})}
    fields = {"train": synthped.MARKET_TRAIN_FIELDS, "test": synthped.MARKET_TEST_FIELDS}
    for split, s in splits.items():
        assert s.dtype.names == fields[split]
        n = len(expect_ids[split])
        for f in fields[split]:
            v = s[f]
            assert v.shape == (1, n), f
            if f == "image_index":
                assert v.dtype == object
                assert all(e.dtype == np.dtype("<U4") and e.shape == (1,) for e in v[0])
                assert [int(e[0]) for e in v[0]] == expect_ids[split]
            else:
                assert v.dtype == np.uint8, f
                allowed = {1, 2, 3, 4} if f == "age" else {1, 2}
                assert set(np.unique(v)) <= allowed, f
        ups = sum(s[f] == 2 for f in fields[split] if f.startswith("up") and f != "up")
        downs = sum(s[f] == 2 for f in fields[split] if f.startswith("down") and f != "down")
        assert (ups == 1).all() and (downs == 1).all()  # one colour per garment


def test_attribute_file_loads_like_the_real_one(small: Path) -> None:
    real = _load_struct(realdata_path("market1501_attribute", "market_attribute.mat"))
    ours = _load_struct(small / "market_attribute.mat")
    for split in ("train", "test"):
        r, o = real[split], ours[split]
        assert o.dtype.names == r.dtype.names
        for f in r.dtype.names:
            assert (o[f].dtype, o[f].ndim, o[f].shape[0]) == (r[f].dtype, r[f].ndim, r[f].shape[0]), f
        assert type(o["image_index"][0, 0]) is type(r["image_index"][0, 0])
        assert o["image_index"][0, 0].dtype == r["image_index"][0, 0].dtype
        assert o["image_index"][0, 0].shape == r["image_index"][0, 0].shape


def test_attributes_match_identity_table(small: Path) -> None:
    ids = synthped.read_identities(small)
    splits = _load_struct(small / "market_attribute.mat")
    for s in splits.values():
        pids = [int(e[0]) for e in s["image_index"][0]]
        for f in s.dtype.names:
            if f != "image_index":
                np.testing.assert_array_equal(s[f][0], ids.loc[pids, f].to_numpy())


# ------------------------------------------------------------------------------------------
# Part masks


def _full_frame(row) -> bool:
    top = (1 - row.scale) / 2 + row.dy
    return top >= 0 and top + row.scale <= 1 and abs(row.dx) < 0.15


def test_part_masks_match_images_and_visibility(small: Path) -> None:
    images = synthped.read_images(small)
    ids = synthped.read_identities(small)
    checked = 0
    for row in images.itertuples():
        path = small / row.path
        masks = synthped.load_part_masks(path)
        with Image.open(path) as im:
            size = im.size[::-1]
        assert set(masks) == set(synthped.PART_BITS)
        assert all(m.shape == size and m.dtype == bool for m in masks.values())
        assert not (masks["logo"] & ~masks["upper_body"]).any() and not (masks["shoes"] & ~masks["lower_body"]).any()
        if row.view != "front":
            assert not masks["logo"].any(), f"{row.path}: logo visible in a {row.view} view"
        if row.view == "side":
            assert not masks["strap"].any()
        if row.kind != "identity":
            continue
        ident = ids.loc[row.pid]
        if ident.stripe_pos == "":
            assert not masks["stripe"].any()
        if ident.logo_shape == "":
            assert not masks["logo"].any()
        if (ident[["backpack", "bag", "handbag"]] == 1).all():
            assert not masks["bag"].any()
        if row.occluder != "none" or not _full_frame(row):
            continue
        checked += 1
        for part in ("head", "upper_body", "lower_body", "shoes"):
            assert masks[part].any(), f"{row.path}: {part} missing"
        behind_backpack = row.view == "back" and ident.backpack == 2  # hides the back of the shirt
        if ident.stripe_pos != "" and not behind_backpack:
            assert masks["stripe"].any()
        if ident.logo_shape != "" and row.view == "front":
            assert masks["logo"].any()
        if ident.strap_dir != "" and row.view in ("front", "back") and not behind_backpack:
            assert masks["strap"].any()
        if (ident[["backpack", "bag", "handbag"]] == 2).any():
            assert masks["bag"].any()
    assert checked > 50


def _plain_camera() -> draw.Camera:
    return draw.Camera(index=0, gain=1.0, cast=(1.0, 1.0, 1.0), gradient=(0.0, 0.0), view_probs=(1.0, 0.0, 0.0),
                       scale=0.9, misalign=0.0, blur=0.0, noise=0.0, jpeg_quality=95, background="wall",
                       occluder_prob=0.0)


def _look(**kw) -> draw.Look:
    base = dict(female=False, age=3, long_hair=False, short_sleeves=False, dress=False, short_lower=False, hat=False,
                backpack=True, bag=False, handbag=False, up_color=(200, 30, 40), down_color=(30, 60, 160),
                skin=(215, 170, 135), hair_color=(25, 20, 18), hat_color=(0, 0, 0), bag_color=(90, 60, 35),
                build=1.0, bag_side=1, logo=("square", (250, 220, 30)), stripe=(0.5, (40, 200, 60)),
                shoe_color=(240, 240, 240), strap=(1, (30, 210, 220)))
    return draw.Look(**{**base, **kw})


def _clean(look: draw.Look, view: str, ss: int = 2) -> tuple[np.ndarray, np.ndarray]:
    bg = np.full((256, 128, 3), 100.0, np.float32)
    noise = np.zeros_like(bg)
    rgb, parts, _ = draw.render(look, draw.Pose(view, -1 if view == "back" else 1, 0.01, 0.0), _plain_camera(),
                                bg, noise, np.random.default_rng(0), height=128, width=64, supersample=ss,
                                scale=0.9, dx=0.0, dy=0.0, occlude=False, camera_effects=False)
    return rgb.astype(int), parts


@pytest.mark.parametrize("ss", [1, 2])
def test_masks_align_with_pixels(ss: int) -> None:
    look = _look()
    rgb, parts = _clean(look, "front", ss)
    bits = synthped.PART_BITS

    def inner(mask: np.ndarray) -> np.ndarray:  # away from anti-aliased edges
        return ndimage.binary_erosion(mask, iterations=1)

    def dist(sel: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
        return np.abs(rgb[sel] - np.asarray(color)).max(-1)

    # each labelled region shows only the colours of what it labels
    for value, colors in (((bits["upper_body"]), (look.up_color, look.skin)),   # shirt, hands
                          (bits["upper_body"] | bits["logo"], (look.logo[1],)),
                          (bits["upper_body"] | bits["stripe"], (look.stripe[1],)),
                          (bits["upper_body"] | bits["strap"], (look.strap[1],)),
                          (bits["lower_body"], (look.down_color,)),
                          (bits["lower_body"] | bits["shoes"], (look.shoe_color,)),
                          (bits["bag"], (look.bag_color,)),
                          (bits["head"], (look.skin, look.hair_color)),
                          (0, ((100, 100, 100),))):
        sel = inner(parts == value)
        assert sel.sum() >= 3, value
        if len(colors) == 1:
            err = dist(sel, colors[0])
        else:  # two colours meet inside the part (sleeve/skin, hair/face): anti-aliased mixtures
            a, b = (np.asarray(c, float) for c in colors)
            t = np.clip((rgb[sel] - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)[:, None]
            err = np.abs(rgb[sel] - (a + t * (b - a))).max(-1)
        # without anti-aliasing exactly; with it, sub-pixel slivers (a gap between arm and
        # torso) tint a few interior pixels
        assert (err <= 3).mean() >= (1.0 if ss == 1 else 0.97), value
    shirt = inner(parts == bits["upper_body"])
    assert (dist(shirt, look.up_color) <= 2).mean() > 0.7


def test_back_view_shows_backpack_and_hides_logo() -> None:
    look = _look()
    bag = synthped.PART_BITS["bag"]
    _, front = _clean(look, "front")
    _, back = _clean(look, "back")
    _, side = _clean(look, "side")
    assert ((front & synthped.PART_BITS["logo"]) > 0).sum() > 10 and not (back & synthped.PART_BITS["logo"]).any()
    assert ((back & bag) > 0).sum() > 3 * ((front & bag) > 0).sum() > 0
    assert ((side & bag) > 0).sum() > 0 and not (side & synthped.PART_BITS["strap"]).any()


def test_load_part_masks_errors(tmp_path: Path) -> None:
    img = tmp_path / "0001_c1s1_000001_00.jpg"
    Image.new("RGB", (64, 128)).save(img)
    with pytest.raises(FileNotFoundError, match=r"0001_c1s1_000001_00\.parts\.png"):
        synthped.load_part_masks(img)
    Image.new("RGB", (64, 128)).save(synthped.part_mask_path(img))
    with pytest.raises(ValueError, match="mode 'RGB'"):
        synthped.load_part_masks(img)


# ------------------------------------------------------------------------------------------
# Identities and hard groups


def test_hard_groups_share_coarse_attributes_only(small: Path, manifest: dict) -> None:
    ids = synthped.read_identities(small)
    groups = manifest["hard_groups"]
    n = SMALL["num_train_ids"], SMALL["num_test_ids"]
    expected = sum(int(round(SMALL["hard_group_share"] * k)) // SMALL["hard_group_size"] for k in n)
    assert len(groups) == expected > 0
    coarse = [f for f in synthped.MARKET_TRAIN_FIELDS if f != "image_index"] + [
        "up_rgb", "down_rgb", "skin_rgb", "hair_rgb", "build", "split"]
    details = ["logo_shape", "logo_rgb", "stripe_pos", "stripe_rgb", "shoe_rgb", "strap_dir", "strap_rgb"]
    for g in groups:
        members = ids.loc[g]
        assert len(g) == SMALL["hard_group_size"]
        assert (members[coarse].nunique() == 1).all(), members[coarse].nunique()
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                assert (members.iloc[i][details] != members.iloc[j][details]).sum() >= 2
    assert set(ids.index[ids.group >= 0]) == {p for g in groups for p in g}


def test_dataset_hard_pids_are_the_hard_groups_in_query_ids(small: Path, manifest: dict) -> None:
    from reidlib.data import ReIDDataset, build_dataset
    from reidlib.data.image_record import Record

    ds = build_dataset("synthped", small)
    hard = ds.hard_pids
    assert isinstance(hard, frozenset) and hard == {p for g in manifest["hard_groups"] for p in g}
    ids = synthped.read_identities(small)
    test = ids[ids.split == "test"]
    hard_test = set(test.index[test.group >= 0])
    assert hard_test and hard & set(test.index) == hard_test
    # in the ids of the query and gallery records (not relabelled), which the evaluator filters on
    query_pids = {r.pid for r in ds.query}
    assert hard_test <= query_pids and hard_test <= {r.pid for r in ds.gallery}
    assert set(test.index[test.group < 0]) & hard == set()
    rec = Record(str(small / "x.jpg"), 1, 0)
    assert ReIDDataset("plain", small, [rec], [rec], [rec]).hard_pids == frozenset()


def test_no_hard_groups_when_share_is_zero(tmp_path: Path) -> None:
    root = synthped.generate(tmp_path / "d", num_train_ids=6, num_test_ids=3, cameras=2, hard_group_share=0.0,
                             height=64, width=32, supersample=1, progress=False)
    assert json.loads((root / "manifest.json").read_text())["hard_groups"] == []


def test_cameras_differ(manifest: dict) -> None:
    cams = manifest["camera_settings"]
    assert len(cams) == SMALL["cameras"]
    for key in ("gain", "blur", "jpeg_quality", "cast"):
        assert len({json.dumps(c[key]) for c in cams}) == len(cams), key
    assert {np.argmax(c["view_probs"]) for c in cams} == {0, 1, 2}


# ------------------------------------------------------------------------------------------
# The cache


@pytest.fixture
def tiny_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REIDLIB_DATA", str(tmp_path / "cache"))
    monkeypatch.setitem(synthped.PRESETS, "tiny", dict(num_train_ids=3, num_test_ids=2, cameras=2, height=64, width=32))
    return tmp_path / "cache"


def test_ensure_generates_once_then_reuses(tiny_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = synthped.ensure("tiny", seed=5)
    assert path == tiny_cache / "synthped-tiny-s5" and (path / "manifest.json").is_file()
    before = _hashes(path)

    def boom(*a, **k):
        raise AssertionError("regenerated a valid cached dataset")
    monkeypatch.setattr(synthped, "generate", boom)
    assert synthped.ensure("tiny", seed=5) == path
    assert _hashes(path) == before
    assert [p.name for p in tiny_cache.iterdir()] == ["synthped-tiny-s5"]  # no temporaries left


def test_ensure_regenerates_a_stale_dataset(tiny_cache: Path) -> None:
    path = synthped.ensure("tiny")
    good = _hashes(path)
    m = json.loads((path / "manifest.json").read_text())
    m["params"]["num_train_ids"] = 99
    (path / "manifest.json").write_text(json.dumps(m))
    (path / "stray.txt").write_text("left from an older version")
    assert synthped.ensure("tiny") == path
    assert _hashes(path) == good


def test_interrupted_generation_leaves_no_half_dataset(tiny_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = synthped._render_one

    def flaky(job):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(job)
    monkeypatch.setattr(synthped, "_render_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        synthped.ensure("tiny")
    assert not tiny_cache.exists() or list(tiny_cache.iterdir()) == []
    monkeypatch.setattr(synthped, "_render_one", real)
    assert (synthped.ensure("tiny") / "manifest.json").is_file()


def test_ensure_rejects_unknown_preset() -> None:
    with pytest.raises(ValueError, match="'huge'.*default.*large.*tiny"):
        synthped.ensure("huge")


def test_presets() -> None:
    assert set(synthped.PRESETS) == {"tiny", "default", "large", "distractors"}
    assert (synthped.PRESETS["default"]["height"], synthped.PRESETS["default"]["width"]) == (128, 64)
    assert synthped.PRESETS["large"]["height"] in (256, 384)


# ------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_train_ids=0), "num_train_ids"),
    (dict(num_test_ids=-1), "num_test_ids"),
    (dict(cameras=1), "cameras"),
    (dict(cameras=10), "cameras"),
    (dict(height=16), "height"),
    (dict(hard_group_share=1.5), "hard_group_share"),
    (dict(hard_group_size=1), "hard_group_size"),
    (dict(junk_share=0.6, distractor_share=0.5), "junk_share"),
    (dict(train_images_per_camera=(3, 1)), "train_images_per_camera"),
    (dict(gallery_images_per_camera=5), "gallery_images_per_camera"),
    (dict(supersample=0), "supersample"),
    (dict(workers=0), "workers"),
])
def test_bad_parameters_are_named(tmp_path: Path, kwargs: dict, name: str) -> None:
    args = dict(num_train_ids=2, num_test_ids=2, progress=False) | kwargs
    with pytest.raises(ValueError, match=name):
        synthped.generate(tmp_path / "d", **args)
    assert not (tmp_path / "d").exists()


def test_existing_root_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        synthped.generate(tmp_path / "d", num_train_ids=2, num_test_ids=2, progress=False)
    assert (tmp_path / "d" / "keep.txt").read_text() == "mine"


def test_the_distractor_preset_is_mostly_market_style_distractors(monkeypatch, tmp_path):
    """The 'distractors' preset (scaled down here): a gallery of pid-0000 passers-by in Market's naming."""
    from reidlib.data import build_dataset

    small = {**synthped.PRESETS["distractors"], "num_test_ids": 6}
    monkeypatch.setitem(synthped.PRESETS, "distractors", small)
    ds = build_dataset("synthped", synthped.ensure("distractors", root=tmp_path))
    distractors = [r for r in ds.gallery if r.pid == 0]
    assert len(distractors) >= 0.8 * len(ds.gallery) and not any(r.pid == -1 for r in ds.gallery)
    assert all(Path(r.path).name.startswith("0000_c") for r in distractors)
