"""synthped: a seeded, procedural pedestrian dataset in the Market-1501 layout.

The built-in default dataset of the book. :func:`generate` writes::

    <root>/
      bounding_box_train/  0002_c1s1_000451_03.jpg ...   training images (Market-1501 names)
      bounding_box_test/   gallery: identities, 0000_* distractors, -1_* junk
      query/               one image per test identity per camera it appears in
      *.parts.png          beside every image: its part masks (see below)
      market_attribute.mat per-identity labels in exactly the structure of Lin et al.'s file
      manifest.json        the generator's parameters, counts, camera settings, hard groups
      identities.csv       every identity's attributes and small details (ground truth)
      images.csv           every image's camera, view, occluder, crop offsets

Identities are combinations of Market-1501's 27 attributes plus four small identity-specific
details (a logo on the chest, a stripe across the top, shoe colour, a strap across the torso).
A share of identities (``hard_group_share``) come in groups of ``hard_group_size`` that share
every coarse attribute, colour shade and body shape and differ only in those details.
Cameras differ in light level and colour cast, viewpoint (front / back / side: a back view
shows the backpack and hides the logo), scale and crop misalignment, blur, noise, JPEG quality,
background texture and irregular occluders.

Part masks: ``<image stem>.parts.png`` is an 8-bit label image of the image's size whose pixel
value is the bit set of the *visible* parts there (:data:`PART_BITS`: head 1, upper_body 2,
lower_body 4, bag 8, logo 16, stripe 32, shoes 64, strap 128). A detail also carries the bit
of the coarse part it sits on, so ``logo`` is a subset of ``upper_body``. Occluded pixels carry
no part. :func:`load_part_masks` turns it into boolean masks.

Same parameters, same seed: the same bytes (every image draws from its own seeded generator,
so the result does not depend on the number of worker processes).
"""
from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
from PIL import Image
from tqdm.auto import tqdm

from . import _synthped_draw as draw
from ._synthped_draw import BACKGROUNDS, LOGO_SHAPES, PART_BITS, VIEWS, Camera, Look, Pose

__all__ = [
    "GENERATOR_VERSION", "MARKET_TEST_FIELDS", "MARKET_TRAIN_FIELDS", "PART_BITS", "PRESETS",
    "cache_dir", "ensure", "generate", "load_part_masks", "part_mask_path", "read_identities",
    "read_images",
]

GENERATOR_VERSION = 1

# Field order of the real market_attribute.mat (it differs between the splits).
MARKET_TRAIN_FIELDS: tuple[str, ...] = (
    "age", "backpack", "bag", "handbag", "downblack", "downblue", "downbrown", "downgray", "downgreen",
    "downpink", "downpurple", "downwhite", "downyellow", "upblack", "upblue", "upgreen", "upgray",
    "uppurple", "upred", "upwhite", "upyellow", "clothes", "down", "up", "hair", "hat", "gender",
    "image_index")
MARKET_TEST_FIELDS: tuple[str, ...] = (
    "age", "backpack", "bag", "handbag", "clothes", "down", "up", "hair", "hat", "gender", "upblack",
    "upwhite", "upred", "uppurple", "upyellow", "upgray", "upblue", "upgreen", "downblack", "downwhite",
    "downpink", "downpurple", "downyellow", "downgray", "downblue", "downgreen", "downbrown", "image_index")

# Market colour names -> RGB prototypes (each identity wears a jittered shade).
UP_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 32), "white": (232, 232, 226), "red": (190, 32, 38), "purple": (112, 52, 140),
    "yellow": (228, 200, 45), "gray": (128, 128, 128), "blue": (40, 72, 170), "green": (42, 128, 62)}
DOWN_COLORS: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 32), "white": (230, 230, 224), "pink": (228, 140, 170), "purple": (112, 52, 140),
    "yellow": (225, 198, 50), "gray": (125, 125, 128), "blue": (45, 70, 150), "green": (45, 120, 60),
    "brown": (118, 78, 45)}

# Label frequencies, rounded from Market-1501's train labels (Lin et al.); the book page puts
# the generated statistics next to the real ones. Colours are drawn as exactly one per garment.
PRIORS: dict[str, Any] = {
    "female": 0.43,
    "age": (0.02, 0.76, 0.21, 0.01),
    "long_hair_if_female": 0.75, "long_hair_if_male": 0.01,
    "dress_if_female": 0.34, "short_lower_if_dress": 0.86, "short_lower_if_pants": 0.56,
    "short_sleeves": 0.95, "hat": 0.03, "backpack": 0.27, "bag": 0.25, "handbag": 0.12,
    "up_color": {"black": 0.15, "white": 0.30, "red": 0.10, "purple": 0.04, "yellow": 0.05, "gray": 0.12,
                 "blue": 0.06, "green": 0.08},
    "down_color": {"black": 0.39, "white": 0.08, "pink": 0.04, "purple": 0.01, "yellow": 0.01, "gray": 0.16,
                   "blue": 0.16, "green": 0.02, "brown": 0.09},
    # details (not Market attributes)
    "logo": 0.6, "stripe": 0.5, "strap": 0.4,
}
SKIN = ((235, 200, 170), (215, 170, 135), (190, 140, 100), (150, 105, 70), (110, 75, 50))
HAIR = ((25, 20, 18), (60, 40, 25), (100, 70, 40), (190, 160, 100))
OLD_HAIR = ((170, 170, 170), (215, 215, 210))
ACCENTS = ((230, 40, 40), (40, 200, 60), (40, 90, 230), (250, 220, 30), (250, 130, 20), (200, 50, 200),
           (30, 210, 220), (245, 245, 245), (20, 20, 20), (150, 90, 40))
SHOE_COLORS = ((240, 240, 240), (25, 25, 25), (200, 30, 30), (40, 70, 200), (120, 75, 40), (130, 130, 130),
               (230, 200, 40), (40, 150, 60))
STRIPE_POSITIONS = (0.4, 0.6, 0.8)  # below long hair seen from the back

PRESETS: dict[str, dict[str, Any]] = {
    # tests: a few hundred images, about a second
    "tiny": dict(num_train_ids=16, num_test_ids=12, cameras=6, height=128, width=64),
    # the book's CPU runs
    "default": dict(num_train_ids=128, num_test_ids=100, cameras=6, height=128, width=64),
    # GPUs: Market-1501's numbers of identities at 256x128
    "large": dict(num_train_ids=751, num_test_ids=750, cameras=6, height=256, width=128),
    # distractors ("Re-ID done right", Fig. 7, Market + 500k): a gallery of ~5,000 badly framed passers-by
    # (pid 0000, Market's naming) beside a few identities, no junk; its distractors are added to another
    # preset's gallery (reidlib.papers.reid_done_right_demo.distractor_curve)
    "distractors": dict(num_train_ids=2, num_test_ids=130, cameras=6, height=128, width=64, distractor_share=0.85,
                        junk_share=0.0, hard_group_share=0.0),
}

SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
MASK_SUFFIX = ".parts.png"


# ------------------------------------------------------------------------------------------
# Identities


def _pick(rng: np.random.Generator, probs: dict[str, float]) -> str:
    names = list(probs)
    p = np.asarray([probs[n] for n in names], float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _accent(rng: np.random.Generator, avoid: tuple[int, int, int]) -> tuple[int, int, int]:
    """A vivid detail colour that stands out against ``avoid`` (the garment it sits on)."""
    options = [c for c in ACCENTS if draw.color_distance(c, avoid) > 120]
    return options[int(rng.integers(len(options)))]


def _sample_coarse(rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, str]]:
    """Coarse appearance (Look fields except details) and the Market colour names."""
    P = PRIORS
    female = bool(rng.random() < P["female"])
    age = int(rng.choice(4, p=P["age"])) + 1
    dress = female and bool(rng.random() < P["dress_if_female"])
    up, down = _pick(rng, P["up_color"]), _pick(rng, P["down_color"])
    coarse = dict(
        female=female, age=age,
        long_hair=bool(rng.random() < (P["long_hair_if_female"] if female else P["long_hair_if_male"])),
        short_sleeves=bool(rng.random() < P["short_sleeves"]), dress=dress,
        short_lower=bool(rng.random() < (P["short_lower_if_dress"] if dress else P["short_lower_if_pants"])),
        hat=bool(rng.random() < P["hat"]), backpack=bool(rng.random() < P["backpack"]),
        bag=bool(rng.random() < P["bag"]), handbag=bool(rng.random() < P["handbag"]),
        up_color=draw.jitter_color(rng, UP_COLORS[up]), down_color=draw.jitter_color(rng, DOWN_COLORS[down]),
        skin=SKIN[int(rng.integers(len(SKIN)))],
        hair_color=(OLD_HAIR if age == 4 else HAIR)[int(rng.integers(len(OLD_HAIR if age == 4 else HAIR)))],
        hat_color=draw.jitter_color(rng, ACCENTS[int(rng.integers(len(ACCENTS)))]),
        bag_color=draw.jitter_color(rng, ((40, 40, 45), (90, 60, 35), (30, 50, 110), (150, 30, 40))[int(rng.integers(4))]),
        build=float(np.round(rng.uniform(0.9, 1.12), 3)), bag_side=int(rng.choice([-1, 1])),
    )
    return coarse, {"up": up, "down": down}


def _sample_details(rng: np.random.Generator, up_color: tuple[int, int, int]) -> dict[str, Any]:
    P = PRIORS
    return dict(
        logo=(LOGO_SHAPES[int(rng.integers(len(LOGO_SHAPES)))], _accent(rng, up_color)) if rng.random() < P["logo"] else None,
        stripe=(STRIPE_POSITIONS[int(rng.integers(3))], _accent(rng, up_color)) if rng.random() < P["stripe"] else None,
        shoe_color=SHOE_COLORS[int(rng.integers(len(SHOE_COLORS)))],
        strap=(int(rng.choice([-1, 1])), _accent(rng, up_color)) if rng.random() < P["strap"] else None,
    )


def _details_differ_enough(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two group members differ in >= 2 details, one of them visible from every view."""
    diff = [k for k in ("logo", "stripe", "shoe_color", "strap") if a[k] != b[k]]
    return len(diff) >= 2 and ("stripe" in diff or "shoe_color" in diff)


def _make_identities(rng: np.random.Generator, n: int, share: float, size: int, first_group: int
                     ) -> list[tuple[Look, dict[str, str], int]]:
    """``n`` identities ``(look, colour names, group)``; ``group`` = -1 outside hard groups."""
    n_groups = int(round(share * n)) // size if size >= 2 else 0
    out: list[tuple[Look, dict[str, str], int]] = []
    for g in range(n_groups):
        coarse, names = _sample_coarse(rng)
        members: list[dict[str, Any]] = []
        while len(members) < size:
            d = _sample_details(rng, coarse["up_color"])
            if all(_details_differ_enough(d, m) for m in members):
                members.append(d)
        out += [(Look(**coarse, **d), names, first_group + g) for d in members]
    while len(out) < n:
        coarse, names = _sample_coarse(rng)
        out.append((Look(**coarse, **_sample_details(rng, coarse["up_color"])), names, -1))
    order = rng.permutation(len(out))  # groups are not contiguous in pid order
    return [out[i] for i in order]


def market_attributes(look: Look, names: dict[str, str]) -> dict[str, int]:
    """The 27 Market-1501 labels of a look (1 = no, 2 = yes; age 1..4; see the real file's notes)."""
    yes = lambda b: 2 if b else 1  # noqa: E731
    attrs = {"age": look.age, "backpack": yes(look.backpack), "bag": yes(look.bag), "handbag": yes(look.handbag),
             "clothes": 1 if look.dress else 2, "down": yes(look.short_lower), "up": yes(look.short_sleeves),
             "hair": yes(look.long_hair), "hat": yes(look.hat), "gender": yes(look.female)}
    attrs.update({f"up{c}": yes(names["up"] == c) for c in UP_COLORS})
    attrs.update({f"down{c}": yes(names["down"] == c) for c in DOWN_COLORS})
    return attrs


# ------------------------------------------------------------------------------------------
# Cameras


def _make_cameras(rng: np.random.Generator, n: int, occlusion: float) -> list[Camera]:
    cams = []
    for i in range(n):
        dominant = i % 3
        probs = np.full(3, 0.2)
        probs[dominant] = 0.6
        cams.append(Camera(
            index=i, gain=round(float(rng.uniform(0.6, 1.3)), 3),
            cast=tuple(round(float(x), 3) for x in rng.uniform(0.85, 1.15, 3)),  # type: ignore[arg-type]
            gradient=(round(float(rng.uniform(-0.35, 0.35)), 3), round(float(rng.uniform(-0.25, 0.25)), 3)),
            view_probs=tuple(float(p) for p in probs),  # type: ignore[arg-type]
            scale=round(float(rng.uniform(0.82, 0.97)), 3), misalign=round(float(rng.uniform(0.02, 0.07)), 3),
            blur=round(float(rng.uniform(0.0, 1.2)), 3), noise=round(float(rng.uniform(1.0, 6.0)), 2),
            jpeg_quality=int(rng.integers(55, 96)), background=BACKGROUNDS[(i + int(rng.integers(2))) % len(BACKGROUNDS)],
            occluder_prob=round(float(min(1.0, rng.uniform(0.05, 0.35) * occlusion)), 3)))
    return cams


# ------------------------------------------------------------------------------------------
# Planning: which image shows whom, where, under which name


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_range(name: str, value: Any) -> tuple[int, int]:
    pair = value if isinstance(value, (tuple, list, np.ndarray)) else None
    if pair is None or len(pair) != 2 or not all(
            _is_int(v) or (_is_real(v) and np.isfinite(v) and float(v).is_integer()) for v in pair):
        raise ValueError(f"{name} must be a (low, high) pair of ints, got {value!r}")
    lo, hi = (int(v) for v in pair)
    if not 1 <= lo <= hi:
        raise ValueError(f"{name} must satisfy 1 <= low <= high, got {value!r}")
    return lo, hi


def _plan(rng: np.random.Generator, train_pids: Sequence[int], test_pids: Sequence[int], cameras: int,
          train_range: tuple[int, int], gallery_range: tuple[int, int], junk_share: float,
          distractor_share: float) -> list[dict[str, Any]]:
    """Every image: split, pid (-1 junk, 0 distractor), camera (0-based), kind. Names come later."""
    shots: list[dict[str, Any]] = []

    def cams_for_id() -> list[int]:
        k = int(rng.integers(2, cameras + 1))  # every identity is seen by >= 2 cameras
        return sorted(int(c) for c in rng.choice(cameras, size=k, replace=False))

    for pid in train_pids:
        for cam in cams_for_id():
            n = int(rng.integers(train_range[0], train_range[1] + 1))
            shots += [dict(split="train", pid=pid, cam=cam, kind="identity")] * n
    good = 0
    for pid in test_pids:
        for cam in cams_for_id():
            shots.append(dict(split="query", pid=pid, cam=cam, kind="identity"))  # one query per id per camera
            n = int(rng.integers(gallery_range[0], gallery_range[1] + 1))
            shots += [dict(split="gallery", pid=pid, cam=cam, kind="identity")] * n
            good += n
    total = good / max(1e-9, 1.0 - junk_share - distractor_share)
    for kind, pid, share in (("junk", -1, junk_share), ("distractor", 0, distractor_share)):
        for _ in range(int(round(share * total))):
            shots.append(dict(split="gallery", pid=pid, cam=int(rng.integers(cameras)), kind=kind))
    return [dict(s) for s in shots]


def _name_shots(rng: np.random.Generator, shots: list[dict[str, Any]], cameras: int) -> None:
    """Market-1501 names ``{pid:04d}_c{cam}s{seq}_{frame:06d}_{box:02d}.jpg``, unique per camera.

    Images of one identity in one camera are a track: nearby frames of one sequence.
    """
    frame = [0] * cameras
    seq = [1] * cameras
    last_track: list[tuple[int, str] | None] = [None] * cameras
    for s in shots:
        cam = s["cam"]
        track = (s["pid"], s["split"] if s["split"] == "train" else "test")
        step = int(rng.integers(5, 60)) if (track == last_track[cam] and s["pid"] > 0) else int(rng.integers(200, 4000))
        last_track[cam] = track
        frame[cam] += step
        if frame[cam] > 999_999:
            seq[cam], frame[cam] = seq[cam] + 1, step
        pid = "-1" if s["pid"] == -1 else f"{s['pid']:04d}"
        s["name"] = f"{pid}_c{cam + 1}s{seq[cam]}_{frame[cam]:06d}_{int(rng.integers(0, 4)):02d}.jpg"


# ------------------------------------------------------------------------------------------
# Rendering (optionally in worker processes)

_WORKER: dict[str, Any] = {}


def _init_worker(root: str, seed: int, cameras: list[Camera], backgrounds: list[np.ndarray],
                 noises: list[np.ndarray], height: int, width: int, supersample: int) -> None:
    _WORKER.update(root=Path(root), seed=seed, cameras=cameras, backgrounds=backgrounds, noises=noises,
                   height=height, width=width, supersample=supersample)


def _random_pose(rng: np.random.Generator, camera: Camera) -> Pose:
    view = VIEWS[int(rng.choice(3, p=np.asarray(camera.view_probs)))]
    facing = int(rng.choice([-1, 1])) if view == "side" else 1
    stride = float(rng.uniform(0.02, 0.08)) if view == "side" else float(rng.uniform(0.0, 0.015))
    swing = float(rng.uniform(-0.05, 0.05)) if view == "side" else float(rng.uniform(-0.02, 0.03))
    return Pose(view=view, facing=-1 if view == "back" else facing, stride=stride, swing=swing)


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _render_one(job: tuple[int, dict[str, Any], Look | None]) -> dict[str, Any]:
    index, shot, look = job
    W = _WORKER
    rng = np.random.default_rng([W["seed"], 7, index])  # one stream per image: worker-count independent
    cam = W["cameras"][shot["cam"]]
    kw: dict[str, Any] = {}
    if shot["kind"] != "identity":
        coarse, _ = _sample_coarse(rng)
        look = Look(**coarse, **_sample_details(rng, coarse["up_color"]))
        if shot["kind"] == "distractor":  # a badly framed passer-by
            kw = dict(scale=float(rng.uniform(0.55, 1.35)), dx=float(rng.normal(0, 0.2)), dy=float(rng.normal(0, 0.12)))
        elif rng.random() < 0.5:  # junk: a fragment of a person
            kw = dict(scale=float(rng.uniform(1.8, 3.0)), dx=float(rng.uniform(-0.6, 0.6)), dy=float(rng.uniform(-1.0, 0.2)))
        else:  # junk: background with at most a sliver of a person
            kw = dict(scale=float(rng.uniform(0.6, 1.0)), dx=float(rng.choice([-1, 1]) * rng.uniform(0.7, 0.95)), dy=0.0)
    assert look is not None
    pose = _random_pose(rng, cam)
    rgb, parts, meta = draw.render(look, pose, cam, W["backgrounds"][shot["cam"]], W["noises"][shot["cam"]], rng,
                                   height=W["height"],
                                   width=W["width"], supersample=W["supersample"], **kw)
    path = W["root"] / SPLIT_DIRS[shot["split"]] / shot["name"]
    _write(path, draw.encode_jpeg(rgb, cam.jpeg_quality))
    _write(part_mask_path(path), draw.encode_parts(parts))
    visible = int(np.bitwise_or.reduce(parts, axis=None)) if parts.size else 0
    return dict(path=f"{SPLIT_DIRS[shot['split']]}/{shot['name']}", split=shot["split"], pid=shot["pid"],
                camid=shot["cam"], kind=shot["kind"], visible_parts=visible, **meta)


# ------------------------------------------------------------------------------------------
# The .mat file


def _savemat_deterministic(path: Path, mdict: dict[str, Any]) -> None:
    """``scipy.io.savemat`` with a fixed header (scipy writes the creation time into it)."""
    buf = io.BytesIO()
    scipy.io.savemat(buf, mdict, format="5", oned_as="row")
    data = bytearray(buf.getvalue())
    header = b"MATLAB 5.0 MAT-file, written by reidlib.data.synthped"
    data[:116] = header.ljust(116, b" ")
    path.write_bytes(bytes(data))


def _attribute_struct(rows: list[dict[str, int]], pids: list[int], fields: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        if f == "image_index":
            cell = np.empty((1, len(pids)), dtype=object)
            for i, p in enumerate(pids):
                cell[0, i] = f"{p:04d}"
            out[f] = cell
        else:
            out[f] = np.asarray([[r[f] for r in rows]], dtype=np.uint8)
    return out


# ------------------------------------------------------------------------------------------
# Public API


def _params(num_train_ids: int, num_test_ids: int, cameras: int, height: int, width: int, seed: int,
            **extra: Any) -> dict[str, Any]:
    # allow_nan=False: the manifest must be valid JSON (NaN and Infinity are not); _validated refuses them first
    return json.loads(json.dumps(dict(num_train_ids=num_train_ids, num_test_ids=num_test_ids, cameras=cameras,
                                      height=height, width=width, seed=seed, **extra), allow_nan=False))


#: Largest ``hard_group_size``: members of a group must differ in their (stripe, shoe colour) pair,
#: which has a few dozen values, and are drawn by rejection, so much larger groups never finish.
MAX_HARD_GROUP_SIZE = 20


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (what JSON and the manifest hold); anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _validated(p: dict[str, Any]) -> dict[str, Any]:
    """The generator's parameters checked (types and ranges; each error names its parameter) and
    with numpy scalars turned into Python numbers; the values and their order are otherwise kept."""
    p = {k: _plain(v) for k, v in p.items()}

    def integer(key: str, low: int, high: int | None = None, why: str = "") -> None:
        v = p[key]
        if not _is_int(v) or v < low or (high is not None and v > high):
            span = f">= {low}" if high is None else f"in {low}..{high}"
            raise ValueError(f"{key} must be an int {span}{why}, got {v!r}")

    def number(key: str, low: float, high: float | None = None, why: str = "") -> None:
        v = p[key]
        span = f"a number >= {low}" if high is None else f"a number in [{low}, {high}]"
        if not _is_real(v) or not np.isfinite(v):
            raise ValueError(f"{key} must be {span}{why} (a finite int or float), got {type(v).__name__} {v!r}")
        if v < low or (high is not None and v > high):
            raise ValueError(f"{key} must be {span}{why}, got {v!r}")

    for key in ("num_train_ids", "num_test_ids"):
        if not _is_int(p[key]) or p[key] < 1:
            raise ValueError(f"{key} must be a positive int, got {p[key]!r}")
    if p["num_train_ids"] + p["num_test_ids"] > 9999:
        raise ValueError(f"num_train_ids + num_test_ids must be <= 9999 (4-digit Market ids), "
                         f"got {p['num_train_ids'] + p['num_test_ids']}")
    integer("cameras", 2, 9, " (one digit in Market names, >= 2 for cross-camera queries)")
    integer("height", 32)
    integer("width", 16)
    integer("seed", 0, why=" (numpy's generators take non-negative seeds)")
    number("hard_group_share", 0.0, 1.0, " (the share of identities in hard groups)")
    integer("hard_group_size", 2, MAX_HARD_GROUP_SIZE, " (identities per hard group)")
    number("junk_share", 0.0, 0.9)
    number("distractor_share", 0.0, 0.9)
    if not p["junk_share"] + p["distractor_share"] < 0.9:
        raise ValueError(f"junk_share and distractor_share must be >= 0 with a sum < 0.9, "
                         f"got {p['junk_share']!r}, {p['distractor_share']!r}")
    number("occlusion", 0.0, why=" (a factor on every camera's occluder probability, 0 = no occluders)")
    if not _is_int(p["supersample"]) or p["supersample"] not in (1, 2, 3, 4):
        raise ValueError(f"supersample must be 1, 2, 3 or 4, got {p['supersample']!r}")
    for key in ("train_images_per_camera", "gallery_images_per_camera"):
        p[key] = list(_check_range(key, p[key]))
    return p


def _validate(p: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming the first bad parameter of ``p`` (see :func:`_validated`)."""
    _validated(p)


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_root(root: Any, what: str = "root",
                hint: str = "pass the path of a folder (absent, empty, or with overwrite=True)") -> Path:
    """``root`` as a Path: a folder path that is not an existing file and not below one."""
    if not isinstance(root, (str, os.PathLike)) or not os.fspath(root):
        raise ValueError(f"{what} must be a folder path (str or os.PathLike), got {type(root).__name__} {root!r}")
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is an existing file, not a folder: synthped writes a dataset folder "
                         f"there; {hint}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} {path} lies below {parent}, which is a file, not a folder")
            break
    return path


def generate(root: str | os.PathLike[str], *, num_train_ids: int, num_test_ids: int, cameras: int = 6,
             height: int = 128, width: int = 64, seed: int = 0, hard_group_share: float = 0.3,
             hard_group_size: int = 3, train_images_per_camera: tuple[int, int] = (1, 4),
             gallery_images_per_camera: tuple[int, int] = (1, 3), junk_share: float = 0.19,
             distractor_share: float = 0.14, occlusion: float = 1.0, supersample: int = 2,
             workers: int = 1, overwrite: bool = False, progress: bool = True) -> Path:
    """Write a synthped dataset to ``root`` (atomically: into a temporary sibling, then renamed).

    Args:
        num_train_ids, num_test_ids: identities in the training and the test split (disjoint;
            their 4-digit pids are interleaved like Market's).
        cameras: 2..9. height, width: image size (128 x 64 like Market's crops).
        seed: an int >= 0; everything random follows from it; same arguments, same bytes.
        hard_group_share: share of identities that belong to hard groups (members share every
            coarse attribute and differ only in small details); ``hard_group_size`` per group
            (2..:data:`MAX_HARD_GROUP_SIZE`).
        train_images_per_camera: (low, high) images of a train id in each camera it is seen by.
        gallery_images_per_camera: (low, high) gallery images of a test id per camera, besides
            the one query image per camera.
        junk_share, distractor_share: shares of the gallery that are junk (pid -1, Market's
            bad detections) and distractors (pid 0000); Market-1501 has 19% and 14%.
        occlusion: multiplies every camera's occluder probability (0 = no occluders).
        supersample: anti-aliasing factor of the drawing.
        workers: processes (the bytes do not depend on it). overwrite: replace an existing root.

    Returns:
        ``Path(root)``.

    Raises:
        ValueError: a parameter of the wrong type or out of range (the message names it; numbers
        must be finite: NaN passed every range check once and reached the manifest as invalid JSON),
        or ``root`` is an existing file. FileExistsError: ``root`` exists, is not empty and
        ``overwrite`` is false.
    """
    params = _params(**_validated(dict(
        num_train_ids=num_train_ids, num_test_ids=num_test_ids, cameras=cameras, height=height, width=width,
        seed=seed, hard_group_share=hard_group_share, hard_group_size=hard_group_size,
        train_images_per_camera=train_images_per_camera, gallery_images_per_camera=gallery_images_per_camera,
        junk_share=junk_share, distractor_share=distractor_share, occlusion=occlusion, supersample=supersample)))
    if not _is_int(workers) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    workers = int(workers)
    overwrite, progress = _check_flag("overwrite", overwrite), _check_flag("progress", progress)
    root = _check_root(root)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root} exists and is not empty; pass overwrite=True or choose another root")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        _generate_into(tmp, params, workers, progress)
        _move_into_place(tmp, root, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


_GENERATE_DEFAULTS = {k: v.default for k, v in inspect.signature(generate).parameters.items()
                      if v.default is not inspect.Parameter.empty}


def _generate_into(out: Path, p: dict[str, Any], workers: int, progress: bool) -> None:
    seed, n_train, n_test = p["seed"], p["num_train_ids"], p["num_test_ids"]
    rng_ids = np.random.default_rng([seed, 0])
    pids = rng_ids.permutation(np.arange(1, n_train + n_test + 1))
    train_pids, test_pids = sorted(int(x) for x in pids[:n_train]), sorted(int(x) for x in pids[n_train:])
    train_ids = _make_identities(rng_ids, n_train, p["hard_group_share"], p["hard_group_size"], 0)
    n_train_groups = max([g for *_, g in train_ids] + [-1]) + 1
    test_ids = _make_identities(rng_ids, n_test, p["hard_group_share"], p["hard_group_size"], n_train_groups)
    identities = dict(zip(train_pids + test_pids, train_ids + test_ids))

    cameras = _make_cameras(np.random.default_rng([seed, 2]), p["cameras"], p["occlusion"])
    backgrounds = [draw.make_background(np.random.default_rng([seed, 3, c.index]), c.background, p["height"], p["width"])
                   for c in cameras]
    noises = [draw.make_noise(np.random.default_rng([seed, 5, c.index]), c, p["height"], p["width"]) for c in cameras]
    rng_plan = np.random.default_rng([seed, 4])
    shots = _plan(rng_plan, train_pids, test_pids, p["cameras"], tuple(p["train_images_per_camera"]),
                  tuple(p["gallery_images_per_camera"]), p["junk_share"], p["distractor_share"])
    _name_shots(rng_plan, shots, p["cameras"])

    for d in SPLIT_DIRS.values():
        (out / d).mkdir()
    jobs = [(i, s, identities[s["pid"]][0] if s["kind"] == "identity" else None) for i, s in enumerate(shots)]
    init = (str(out), seed, cameras, backgrounds, noises, p["height"], p["width"], p["supersample"])
    bar = dict(total=len(jobs), desc="synthped", unit="img", disable=not progress)
    if workers == 1:
        _init_worker(*init)
        rows = [_render_one(j) for j in tqdm(jobs, **bar)]
    else:
        import multiprocessing as mp
        with mp.get_context().Pool(workers, initializer=_init_worker, initargs=init) as pool:
            rows = list(tqdm(pool.imap(_render_one, jobs, chunksize=16), **bar))

    _write_tables(out, p, identities, train_pids, test_pids, rows, cameras)


def _write_tables(out: Path, p: dict[str, Any], identities: dict[int, tuple[Look, dict[str, str], int]],
                  train_pids: list[int], test_pids: list[int], rows: list[dict[str, Any]],
                  cameras: list[Camera]) -> None:
    attrs = {pid: market_attributes(look, names) for pid, (look, names, _) in identities.items()}
    _savemat_deterministic(out / "market_attribute.mat", {"market_attribute": {
        "test": _attribute_struct([attrs[q] for q in test_pids], test_pids, MARKET_TEST_FIELDS),
        "train": _attribute_struct([attrs[q] for q in train_pids], train_pids, MARKET_TRAIN_FIELDS)}})

    with open(out / "identities.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        attr_names = [f for f in MARKET_TRAIN_FIELDS if f != "image_index"]
        w.writerow(["pid", "split", "group", *attr_names, "up_rgb", "down_rgb", "logo_shape", "logo_rgb",
                    "stripe_pos", "stripe_rgb", "shoe_rgb", "strap_dir", "strap_rgb", "skin_rgb", "hair_rgb",
                    "build"])
        hexc = lambda c: "" if c is None else "#{:02x}{:02x}{:02x}".format(*c)  # noqa: E731
        for split, pids in (("train", train_pids), ("test", test_pids)):
            for pid in pids:
                look, _, group = identities[pid]
                w.writerow([pid, split, group, *(attrs[pid][a] for a in attr_names), hexc(look.up_color),
                            hexc(look.down_color), look.logo[0] if look.logo else "", hexc(look.logo[1] if look.logo else None),
                            look.stripe[0] if look.stripe else "", hexc(look.stripe[1] if look.stripe else None),
                            hexc(look.shoe_color), look.strap[0] if look.strap else "",
                            hexc(look.strap[1] if look.strap else None), hexc(look.skin), hexc(look.hair_color), look.build])

    columns = ["path", "split", "pid", "camid", "kind", "view", "occluder", "occluded_fraction", "scale", "dx", "dy",
               "visible_parts"]
    with open(out / "images.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            w.writerow([r[c] for c in columns])

    def count(split: str, keep: Any = lambda r: True) -> dict[str, int]:
        sel = [r for r in rows if r["split"] == split and keep(r)]
        return {"images": len(sel), "ids": len({r["pid"] for r in sel})}

    groups: dict[int, list[int]] = {}
    for pid, (_, _, g) in sorted(identities.items()):
        if g >= 0:
            groups.setdefault(g, []).append(pid)
    manifest = {
        "name": "synthped",
        "generator_version": GENERATOR_VERSION,
        "code_fingerprint": code_fingerprint(),
        "params": p,
        "cameras": p["cameras"],
        # counts as build_dataset('synthped', root) parses them: the gallery without junk (-1)
        "counts": {"train": count("train"), "query": count("query"),
                   "gallery": {**count("gallery", lambda r: r["pid"] != -1),
                               "distractor_images": sum(r["kind"] == "distractor" for r in rows)},
                   "junk": {"images": sum(r["kind"] == "junk" for r in rows)}},
        "camera_settings": [asdict(c) for c in cameras],
        "part_masks": {"suffix": MASK_SUFFIX, "format": "8-bit PNG, pixel = OR of the visible parts' bits",
                       "bits": PART_BITS},
        "hard_groups": [groups[g] for g in sorted(groups)],
        "files": {"identities": "identities.csv", "images": "images.csv", "attributes": "market_attribute.mat"},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, allow_nan=False) + "\n")


def _move_into_place(tmp: Path, root: Path, overwrite: bool) -> None:
    """Rename ``tmp`` to ``root``; an old ``root`` is swapped out first when ``overwrite``."""
    old = None
    if root.exists():
        if any(root.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{root} appeared while generating (another process?); not replacing it")
            old = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
            os.replace(root, old / "x")
        else:
            root.rmdir()
    os.rename(tmp, root)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def cache_dir() -> Path:
    """``$REIDLIB_DATA`` or ``~/.cache/reidlib`` (:func:`reidlib.paths.cache_dir`)."""
    from reidlib.paths import cache_dir as _cache_dir

    return _cache_dir()


def code_fingerprint() -> str:
    """A hash of the generator's source: a cached dataset from other code is regenerated."""
    h = hashlib.sha256()
    for mod in (__file__, draw.__file__):
        h.update(Path(mod).read_bytes())
    return h.hexdigest()[:16]


def _read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((root / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def ensure(preset: str = "tiny", root: str | os.PathLike[str] | None = None, seed: int = 0, *,
           workers: int = 1, progress: bool = False) -> Path:
    """The dataset of a preset, generated once into ``<root>/synthped-<preset>-s<seed>``.

    ``root`` defaults to :func:`cache_dir`. An existing folder is reused when its manifest has
    the same parameters and generator version, and regenerated otherwise. Generation is atomic,
    so an interrupted run never leaves a half dataset, and concurrent callers are safe.
    """
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(f"unknown synthped preset {preset!r}; expected one of {sorted(PRESETS)}")
    seed = _plain(seed)
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an int >= 0 (numpy's generators take non-negative seeds), got {seed!r}")
    seed = int(seed)
    if not _is_int(workers) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    progress = _check_flag("progress", progress)
    base = _check_root(root, hint="pass the folder that holds (or will hold) the synthped-<preset>-s<seed> "
                                  "datasets") if root is not None else cache_dir()
    target = base / f"synthped-{preset}-s{seed}"
    if target.exists() and not target.is_dir():
        raise ValueError(f"{target} is an existing file, not a folder: synthped.ensure keeps the {preset!r} "
                         f"dataset there; move the file away or pass another root")
    kwargs = dict(PRESETS[preset], seed=seed)

    def valid() -> bool:
        m = _read_manifest(target)
        return (m is not None and m.get("generator_version") == GENERATOR_VERSION
                and m.get("code_fingerprint") == code_fingerprint()
                and m.get("params") == _expected_params(**kwargs)
                and all((target / d).is_dir() for d in SPLIT_DIRS.values()))

    if valid():
        return target
    _remove_stale_temporaries(base, target.name)
    try:
        generate(target, **kwargs, workers=workers, progress=progress, overwrite=target.exists())
    except FileExistsError:
        if not valid():  # someone else wrote something else there meanwhile
            raise
    return target


def _remove_stale_temporaries(base: Path, name: str, max_age_s: float = 6 * 3600) -> None:
    """Temporary folders of generations that were killed (not just interrupted) long ago."""
    for tmp in list(base.glob(f".{name}.tmp-*")) + list(base.glob(f".{name}.old-*")):
        try:
            if time.time() - tmp.stat().st_mtime > max_age_s:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def _expected_params(**kwargs: Any) -> dict[str, Any]:
    """The ``params`` a manifest of ``generate(**kwargs)`` holds (defaults filled in)."""
    full = {**_GENERATE_DEFAULTS, **kwargs}
    for k in ("workers", "overwrite", "progress"):
        full.pop(k, None)
    full["train_images_per_camera"] = list(full["train_images_per_camera"])
    full["gallery_images_per_camera"] = list(full["gallery_images_per_camera"])
    keys = ("num_train_ids", "num_test_ids", "cameras", "height", "width", "seed")
    return _params(**{k: full.pop(k) for k in keys}, **full)


def part_mask_path(image_path: str | os.PathLike[str]) -> Path:
    """``.../0002_c1s1_000451_03.jpg`` -> ``.../0002_c1s1_000451_03.parts.png``."""
    p = Path(image_path)
    return p.with_name(p.stem + MASK_SUFFIX)


def load_part_masks(image_path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The part masks of one synthped image: ``{part: bool array (H, W)}`` for every part in
    :data:`PART_BITS` (all-False where the part is absent, hidden or occluded)."""
    path = part_mask_path(image_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no part-mask file beside {image_path} (synthped writes "
                                f"'<image stem>{MASK_SUFFIX}', an 8-bit PNG of part bits {PART_BITS})")
    with Image.open(path) as im:
        if im.mode != "L":
            raise ValueError(f"{path}: expected an 8-bit grey ('L') PNG of part bits, got mode {im.mode!r}")
        bits = np.asarray(im)
    return {name: (bits & b) != 0 for name, b in PART_BITS.items()}


def read_identities(root: str | os.PathLike[str]) -> Any:
    """``identities.csv`` as a pandas DataFrame indexed by pid (attributes, details, hard group)."""
    import pandas as pd
    return pd.read_csv(Path(root) / "identities.csv", index_col="pid", keep_default_na=False)


def read_images(root: str | os.PathLike[str]) -> Any:
    """``images.csv`` as a pandas DataFrame (path relative to root, split, pid, camid, view, ...)."""
    import pandas as pd
    return pd.read_csv(Path(root) / "images.csv", keep_default_na=False)


def iter_images(root: str | os.PathLike[str], split: str) -> Iterator[Path]:
    """Image paths of one split (``train``, ``query``, ``gallery``), sorted by name."""
    if split not in SPLIT_DIRS:
        raise ValueError(f"split must be one of {sorted(SPLIT_DIRS)}, got {split!r}")
    yield from sorted((Path(root) / SPLIT_DIRS[split]).glob("*.jpg"))

