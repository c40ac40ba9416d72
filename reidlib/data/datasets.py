"""Parsers for the re-ID datasets' standard layouts, behind one entry point, :func:`build_dataset`.

Every parser returns a :class:`ReIDDataset` whose ``train``, ``query`` and ``gallery`` are lists of
:class:`~reidlib.data.image_record.Record`. Conventions shared by all parsers:

* ``camid`` is 0-based (Market ``c1`` -> 0, VeRi ``c002`` -> 1, MSMT17 camera ``01`` -> 0).
* Train identities are relabelled ``0..N-1`` in ascending order of the original id, which is
  kept in ``record.extra["orig_pid"]``; query and gallery keep the ids of the file names.
* Market-style junk images (pid ``-1``) are dropped; distractors (pid ``0``) stay in the gallery.
* A missing folder or list file raises :class:`DatasetNotFoundError` (a ``FileNotFoundError``);
  an unparsable file name, a camera out of range or an empty split raises
  :class:`DatasetLayoutError` (a ``ValueError``). Both name the path and print the layout the
  parser expected.
* An attribute file whose identities are not the dataset's (another dataset's file, or the
  splits swapped) raises :class:`AttributeFileMismatchError` naming the file and the missing ids;
  an unknown option raises :class:`UnknownOptionError` listing the parser's options; option values
  of the wrong type or range are refused before any file is read.
* Counts are compared with the datasets' published statistics (``OFFICIAL_COUNTS``): a
  mismatch is a warning by default (subsets are legitimate), an error with ``verify="strict"``.

Layouts (``root`` is the folder that holds the dataset's own top folders):

=================  ============================================================================
``market1501``     ``bounding_box_train/ bounding_box_test/ query/`` (+ ``images/`` for +500k)
``dukemtmc``       ``bounding_box_train/ bounding_box_test/ query/``
``msmt17``         ``train/ test/ list_train.txt list_val.txt list_query.txt list_gallery.txt``
``cuhk03_np``      ``labeled/`` and/or ``detected/``, each in the Market layout
``veri776``        ``image_train/ image_query/ image_test/``
``vehicleid``      ``image/ train_test_split/{train_list,test_list_800,_1600,_2400}.txt``
``synthped``       the Market layout + ``market_attribute.mat`` + ``manifest.json``
=================  ============================================================================
"""
from __future__ import annotations

import difflib
import json
import os
import random
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from reidlib.registry import Registry, keyword_options

from .errors import (  # re-exported: their old home
    AttributeFileMismatchError,
    DatasetLayoutError,
    DatasetNotFoundError,
    UnknownOptionError,
)
from .image_record import Record

__all__ = [
    "DATASETS",
    "OFFICIAL_COUNTS",
    "AttributeFileMismatchError",
    "DatasetLayoutError",
    "DatasetNotFoundError",
    "UnknownOptionError",
    "NamePattern",
    "PATTERNS",
    "ReIDDataset",
    "build_dataset",
    "parse_filename",
    "parser_options",
    "register_dataset",
    "relabel",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
SPLITS = ("train", "query", "gallery")
Verify = Literal["warn", "strict", "off"]


# --------------------------------------------------------------------------------------------
# File-name patterns


@dataclass(frozen=True)
class NamePattern:
    """How a dataset encodes identity and camera in its file names.

    ``regex`` has named groups ``pid`` and ``cam``; any other named group is kept (as an int when
    it is numeric) in ``record.extra``. Cameras in names run ``cam_base..cam_base+num_cameras-1``.
    """

    regex: re.Pattern[str]
    example: str
    num_cameras: int | None
    cam_base: int = 1


PATTERNS: dict[str, NamePattern] = {
    # 0002_c1s1_000451_03.jpg: id, camera, sequence, frame, detection box; -1 = junk, 0000 = distractor.
    "market1501": NamePattern(
        re.compile(r"^(?P<pid>-1|\d+)_c(?P<cam>\d+)s(?P<seq>\d+)_(?P<frame>\d+)_(?P<box>\d+)\.(jpe?g|png)$", re.I),
        "0002_c1s1_000451_03.jpg", 6),
    # 0001_c2_f0046182.jpg: id, camera, frame.
    "dukemtmc": NamePattern(
        re.compile(r"^(?P<pid>-1|\d+)_c(?P<cam>\d+)_f(?P<frame>\d+)\.(jpe?g|png)$", re.I),
        "0001_c2_f0046182.jpg", 8),
    # 0000_000_01_0303morning_0015_0.jpg: id, index, camera, date+time, frame, box [, _ex].
    "msmt17": NamePattern(
        re.compile(r"^(?P<pid>\d+)_(?P<index>\d+)_(?P<cam>\d+)_(?P<time>\d{4}[a-z]+)_(?P<frame>\d+)_"
                   r"(?P<box>\d+)(?:_ex)?\.(jpe?g|png)$", re.I),
        "0000_000_01_0303morning_0015_0.jpg", 15),
    # CUHK03-NP in Market style: 0003_c1_1_003_1_02.png (id, camera, then the original CUHK03 name).
    "cuhk03_np": NamePattern(
        re.compile(r"^(?P<pid>-1|\d+)_c(?P<cam>\d+)_(?P<orig>[^.]+)\.(jpe?g|png)$", re.I),
        "0003_c1_1_003_1_02.png", 2),
    # 0002_c002_00030600_0.jpg: id, camera, frame, index.
    "veri776": NamePattern(
        re.compile(r"^(?P<pid>\d+)_c(?P<cam>\d+)_(?P<frame>\d+)_(?P<index>\d+)\.(jpe?g|png)$", re.I),
        "0002_c002_00030600_0.jpg", 20),
}
PATTERNS["synthped"] = NamePattern(PATTERNS["market1501"].regex, "0002_c1s1_000451_03.jpg", None)


def parse_filename(name: str, pattern: NamePattern | str) -> tuple[int, int, dict[str, Any]]:
    """Parse one file name into ``(pid, camid, extra)``; ``camid`` is 0-based.

    ``pattern`` is a :class:`NamePattern` or the name of one in :data:`PATTERNS` (dataset aliases
    such as ``"market"`` work too). Raises :class:`DatasetLayoutError` when the name does not match
    or the camera is out of range.
    """
    pattern = _name_pattern(pattern)
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"parse_filename: name must be a file name or path (str), got {type(name).__name__} {name!r}")
    m = pattern.regex.match(os.path.basename(os.fspath(name)))
    if m is None:
        raise DatasetLayoutError(
            f"{name}: file name does not match the expected pattern {pattern.regex.pattern!r} "
            f"(e.g. {pattern.example!r})")
    groups = m.groupdict()
    pid, cam = int(groups.pop("pid")), int(groups.pop("cam"))
    camid = cam - pattern.cam_base
    if camid < 0 or (pattern.num_cameras is not None and camid >= pattern.num_cameras):
        hi = "" if pattern.num_cameras is None else f"..{pattern.cam_base + pattern.num_cameras - 1}"
        raise DatasetLayoutError(f"{name}: camera {cam} is out of range (expected {pattern.cam_base}{hi})")
    extra = {k: int(v) if v.isdigit() else v for k, v in groups.items() if v is not None}
    return pid, camid, extra


def _name_pattern(pattern: NamePattern | str) -> NamePattern:
    if isinstance(pattern, NamePattern):
        return pattern
    if isinstance(pattern, str):
        if pattern in PATTERNS:
            return PATTERNS[pattern]
        if pattern in DATASETS and _canonical(pattern) in PATTERNS:
            return PATTERNS[_canonical(pattern)]
    raise ValueError(f"parse_filename: pattern must be a NamePattern or one of {sorted(PATTERNS)}, got {pattern!r}"
                     + (" (that dataset has no file-name pattern: its names carry no camera)"
                        if isinstance(pattern, str) and pattern in DATASETS else ""))


# --------------------------------------------------------------------------------------------
# Published statistics: (images, ids) per split.

OFFICIAL_COUNTS: dict[str, dict[str, tuple[int, int]]] = {
    # Zheng et al. 2015; gallery after junk removal, ids count the 0000 distractor class.
    "market1501": {"train": (12936, 751), "query": (3368, 750), "gallery": (15913, 751)},
    "dukemtmc": {"train": (16522, 702), "query": (2228, 702), "gallery": (17661, 1110)},
    # MSMT17 V1: train = list_train + list_val.
    "msmt17": {"train": (32621, 1041), "query": (11659, 3060), "gallery": (82161, 3060)},
    "cuhk03_np/labeled": {"train": (7368, 767), "query": (1400, 700), "gallery": (5328, 700)},
    "cuhk03_np/detected": {"train": (7365, 767), "query": (1400, 700), "gallery": (5332, 700)},
    "veri776": {"train": (37778, 576), "query": (1678, 200), "gallery": (11579, 200)},
}


# --------------------------------------------------------------------------------------------
# The dataset object


def relabel(records: Iterable[Record]) -> list[Record]:
    """Map train ids onto ``0..N-1`` (ascending original id); keep the original in ``extra["orig_pid"]``."""
    records = list(records)
    mapping = {pid: label for label, pid in enumerate(sorted({r.pid for r in records}))}
    return [Record(r.path, mapping[r.pid], r.camid, {**r.extra, "orig_pid": r.pid}) for r in records]


def _split_stats(records: Sequence[Record]) -> tuple[int, int, int]:
    return len(records), len({r.pid for r in records}), len({r.camid for r in records})


class ReIDDataset:
    """A parsed dataset: ``train`` (relabelled ids), ``query`` and ``gallery`` record lists.

    Attributes:
        name: registry name (``"market1501"``, ...), with the split where there is one.
        root: the folder that was parsed.
        train, query, gallery: lists of :class:`Record`.
        attributes: per-identity attribute tables ``{"train": DataFrame, "test": DataFrame}``
            indexed by original pid (see :mod:`reidlib.data.attributes`), or ``None``.
        manifest: the dataset's ``manifest.json`` (synthped), or ``None``.
        layout: the expected layout, printed by errors; ``sources`` (constructor only) maps each
            split to the folder or list file it came from, named when that split is empty.
    """

    def __init__(self, name: str, root: str | Path, train: Sequence[Record], query: Sequence[Record],
                 gallery: Sequence[Record], *, layout: str = "",
                 sources: Mapping[str, str | Path] | None = None,
                 attributes: Mapping[str, pd.DataFrame] | None = None,
                 manifest: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.root = Path(root)
        self.layout = layout
        self.train = relabel(train)
        self.query = list(query)
        self.gallery = list(gallery)
        self.attributes = dict(attributes) if attributes is not None else None
        self.manifest = dict(manifest) if manifest is not None else None
        for split in SPLITS:
            if not getattr(self, split):
                where = (sources or {}).get(split, self.root)
                raise DatasetLayoutError(
                    f"{where}: the {split} split of {name} is empty. Expected layout:\n{layout}")

    @property
    def num_train_pids(self) -> int:
        return len({r.pid for r in self.train})

    @property
    def hard_pids(self) -> frozenset[int]:
        """The identities of synthped's hard groups (members share every coarse attribute and differ in
        small details), from ``manifest["hard_groups"]``, in the original (un-relabelled) ids of the
        query and gallery records; empty for a dataset without them."""
        groups = (self.manifest or {}).get("hard_groups") or []
        return frozenset(int(pid) for group in groups for pid in group)

    @property
    def num_train_cams(self) -> int:
        return len({r.camid for r in self.train})

    def split(self, name: str) -> list[Record]:
        """The records of ``"train"``, ``"query"`` or ``"gallery"``."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def attribute_targets(self, split: str) -> pd.DataFrame:
        """Binary attributes of each record of ``split``: ``(N, A)`` nullable ``Int8`` (``<NA>`` for
        identities without labels, e.g. distractors), rows in record order, plus a ``pid`` column.

        Train records are looked up in the ``train`` table, query and gallery in the ``test`` table.
        """
        if self.attributes is None:
            raise ValueError(f"{self.name} at {self.root} has no attribute labels (no attribute file was loaded)")
        from .attributes import attributes_for_records, to_binary  # attributes imports this module
        table = self.attributes["train" if split == "train" else "test"]
        return attributes_for_records(self.split(split), to_binary(table))

    def summary(self) -> pd.DataFrame:
        """Images, identities and cameras per split (index ``train, query, gallery``)."""
        rows = {s: _split_stats(self.split(s)) for s in SPLITS}
        return pd.DataFrame.from_dict(rows, orient="index", columns=["images", "ids", "cameras"]).rename_axis("split")

    def __repr__(self) -> str:
        table = self.summary().reset_index().to_string(index=False)
        return f"ReIDDataset({self.name!r}, root='{self.root}')\n" + "\n".join("  " + line for line in table.splitlines())


# --------------------------------------------------------------------------------------------
# Registry

DATASETS: Registry[Callable[..., ReIDDataset]] = Registry(
    "dataset", normalize=lambda s: s.lower().replace("-", "").replace("_", ""))


def register_dataset(name: str, *aliases: str) -> Callable[[Callable[..., ReIDDataset]], Callable[..., ReIDDataset]]:
    """Decorator registering a parser ``fn(root, **options) -> ReIDDataset`` under ``name``
    (case, ``-`` and ``_`` are ignored when a name is looked up)."""
    return DATASETS.register(name, *aliases)


def _canonical(name: str) -> str:
    return DATASETS.canonical(name)


def build_dataset(name: str, root: str | os.PathLike[str], **options: Any) -> ReIDDataset:
    """Parse the dataset ``name`` found under ``root``.

    Args:
        name: one of :data:`DATASETS` (``market1501``, ``dukemtmc``, ``msmt17``, ``cuhk03_np``,
            ``veri776``, ``vehicleid``, ``synthped``) or an alias (``market``, ``duke``, ``veri``...).
        root: the folder holding the dataset's own top folders.
        **options: parser options (``market1501_500k``, ``split``, ``test_size``, ``verify``...).
    """
    parser = DATASETS.get(name)
    _check_options(_canonical(name), parser, options)
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"build_dataset: root must be a folder path (str or os.PathLike), got "
                        f"{type(root).__name__} {root!r}")
    root = Path(root).expanduser()
    if root.is_file():
        raise DatasetNotFoundError(f"dataset root {root} is a file, not a folder: pass the folder that holds "
                                   f"the dataset's own top folders")
    if not root.is_dir():
        raise DatasetNotFoundError(f"dataset root {root} does not exist or is not a folder")
    return parser(root.resolve(), **options)


def parser_options(name: str) -> list[str]:
    """The options (keyword arguments) the parser of dataset ``name`` takes."""
    return sorted(_known_options(DATASETS.get(name)) or [])


def _known_options(parser: Callable[..., Any]) -> set[str] | None:
    """Keyword options of ``parser`` after its root (``None`` where it takes ``**kwargs``)."""
    known = keyword_options(parser)
    return None if known is None else set(known)


def _check_options(name: str, parser: Callable[..., Any], options: Mapping[str, Any]) -> None:
    known = _known_options(parser)
    if known is None:
        return
    if unknown := sorted(set(options) - known):
        others = {d: _known_options(DATASETS.get(d)) or set() for d in DATASETS.names() if d != name}
        hints = []
        for key in unknown:
            if close := difflib.get_close_matches(key, known, n=1):
                hints.append(f"{key!r}: did you mean {close[0]!r}?")
                continue
            for guess in [key] + difflib.get_close_matches(key, set().union(*others.values()), n=1):
                if elsewhere := sorted(d for d, opts in others.items() if guess in opts):
                    hints.append(f"{guess!r} is an option of {', '.join(elsewhere)} only")
                    break
        raise UnknownOptionError(
            f"build_dataset({name!r}): unknown option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}; the options of {name} are {sorted(known)}"
            + (f" ({'; '.join(hints)})" if hints else ""))


def _check_verify(verify: Any, name: str) -> None:
    if not isinstance(verify, str) or verify not in ("warn", "strict", "off"):
        raise ValueError(f"verify must be 'warn', 'strict' or 'off' (option 'verify' of {name}), got {verify!r}")


def _check_flag(option: str, value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"option {option!r} of {name} must be True or False, got {value!r}")
    return bool(value)


def _check_int_option(option: str, value: Any, name: str) -> int:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValueError(f"option {option!r} of {name} must be an int, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# Shared helpers


def _require_dir(path: Path, layout: str) -> Path:
    if not path.is_dir():
        hint = _hint(path)
        raise DatasetNotFoundError(f"missing folder {path}{hint}. Expected layout:\n{layout}")
    return path


def _require_file(path: Path, layout: str) -> Path:
    if not path.is_file():
        raise DatasetNotFoundError(f"missing file {path}{_hint(path)}. Expected layout:\n{layout}")
    return path


def _hint(path: Path) -> str:
    """Point at a subfolder of the root that has what was missing (a common mistake: root one level up)."""
    parent = path.parent
    if not parent.is_dir():
        return ""
    found = [d for d in sorted(parent.iterdir()) if d.is_dir() and (d / path.name).exists()]
    return f" (found it under {found[0]}: pass that folder as root)" if found else ""


def _read_folder(folder: Path, pattern: NamePattern, layout: str, *, drop_junk: bool = True,
                 ignore: re.Pattern[str] | None = None, extra: Mapping[str, Any] | None = None) -> list[Record]:
    """Records of every image file in ``folder`` (not recursive), sorted by name.

    Files without an image extension (``Thumbs.db``, ...) and names matching ``ignore`` are
    skipped; any other image whose name does not parse is an error.
    """
    _require_dir(folder, layout)
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it if e.is_file() and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)
    records = []
    for name in names:
        if ignore is not None and ignore.search(name):
            continue
        try:
            pid, camid, fields = parse_filename(name, pattern)
        except DatasetLayoutError as err:
            raise DatasetLayoutError(f"{folder / name}: {str(err).split(': ', 1)[1]}. Expected layout:\n{layout}") from None
        if pid == -1 and drop_junk:
            continue
        records.append(Record(str(folder / name), pid, camid, {**fields, **(extra or {})}))
    return records


def _verify_counts(ds: ReIDDataset, key: str | None, verify: Verify, *, skip: Sequence[str] = (),
                   disjoint: bool = True) -> None:
    """Compare per-split (images, ids) with the published numbers; warn or raise on a mismatch.

    Also checks that every query id has gallery images and, where train and test ids share one
    id space (``disjoint``), that no id is in both.
    """
    if verify not in ("warn", "strict", "off"):
        raise ValueError(f"verify must be 'warn', 'strict' or 'off', got {verify!r}")
    if verify == "off":
        return
    problems = []
    if key is not None and key in OFFICIAL_COUNTS:
        for split, (images, ids) in OFFICIAL_COUNTS[key].items():
            if split in skip:
                continue
            got_images, got_ids, _ = _split_stats(ds.split(split))
            if (got_images, got_ids) != (images, ids):
                problems.append(f"{split}: {got_images} images of {got_ids} ids, published {images} of {ids}")
    # Structural checks every dataset must pass.
    train_ids = {r.extra.get("orig_pid", r.pid) for r in ds.train}
    query_ids = {r.pid for r in ds.query}
    gallery_ids = {r.pid for r in ds.gallery}
    if missing := query_ids - gallery_ids:
        problems.append(f"{len(missing)} query ids have no gallery image (e.g. {sorted(missing)[:5]})")
    if disjoint and (overlap := train_ids & (query_ids | gallery_ids) - {0}):
        problems.append(f"{len(overlap)} ids are both in train and test (e.g. {sorted(overlap)[:5]})")
    if not problems:
        return
    message = f"{ds.name} at {ds.root}: counts differ from the expected ones:\n  " + "\n  ".join(problems)
    if verify == "strict":
        raise DatasetLayoutError(message + f"\nExpected layout:\n{ds.layout}")
    warnings.warn(message, UserWarning, stacklevel=4)


def _attach_attribute_file(path: Path | None, train: list[Record], query: list[Record],
                           gallery: list[Record], *, name: str, expected: str, root: Path,
                           fix: str | None = None
                           ) -> tuple[dict[str, pd.DataFrame] | None, tuple[list[Record], ...]]:
    """Load an attribute file (train ids -> train split, test ids -> query and gallery) where given.

    The file must hold ``expected`` (``"market"`` / ``"duke"``) labels, and every train identity must
    be in its train split and every query identity in its test split (gallery-only identities,
    e.g. Duke's distractor ids, may be unlabelled): otherwise it is another dataset's file, and an
    :class:`AttributeFileMismatchError` names it.
    """
    if path is None:
        return None, (train, query, gallery)
    from .attributes import _identity_problem, attach_attributes, load_attribute_file  # attributes imports this module
    tables = load_attribute_file(path)
    problems = [problem for records, split, what in ((train, "train", "training"), (query, "test", "query"))
                if (problem := _identity_problem(records, tables[split], what=what))]
    kind = tables["train"].attrs.get("dataset")
    if kind != expected:
        problems.insert(0, f"it holds {kind}-attribute labels (variable '{kind}_attribute'), but the dataset is "
                           f"{name}, whose labels are '{expected}_attribute' ({expected}_attribute.mat)")
    if problems:
        raise AttributeFileMismatchError(
            f"{path}: this attribute file does not belong to the {name} dataset at {root}:\n  "
            + "\n  ".join(problems) + f"\nFix: {fix or f'pass the attribute file of {name} (option attribute_file)'}.")
    return tables, (attach_attributes(train, tables["train"]), attach_attributes(query, tables["test"]),
                    attach_attributes(gallery, tables["test"]))


def _attribute_path(root: Path, option: str | os.PathLike[str] | None, default_name: str) -> Path | None:
    if option is not None:
        if not isinstance(option, (str, os.PathLike)):
            raise ValueError(f"option 'attribute_file' must be a path to {default_name} (str or os.PathLike), "
                             f"got {type(option).__name__} {option!r}")
        path = Path(option).expanduser()
        if not path.exists() and not path.is_absolute() and (root / path).is_file():
            raise DatasetNotFoundError(f"attribute file {path} does not exist (relative paths are relative to the "
                                       f"working directory, not to root); found {root / path}: pass that path")
        return path
    return root / default_name if (root / default_name).is_file() else None


def _check_no_distractors(records: Sequence[Record], split: str, layout: str) -> None:
    if bad := [r.path for r in records if r.pid == 0]:
        raise DatasetLayoutError(
            f"{bad[0]}: distractor id 0 found in the {split} split ({len(bad)} files); distractors "
            f"belong in the gallery only. Expected layout:\n{layout}")


# --------------------------------------------------------------------------------------------
# Market-1501 style datasets

MARKET_LAYOUT = """<root>/
  bounding_box_train/   training images, 0002_c1s1_000451_03.jpg = id 0002, camera 1, sequence 1, frame, box
  bounding_box_test/    gallery images; 0000_* are distractors (kept), -1_* junk (dropped)
  query/                query images
  images/               only with market1501_500k=True: the 500k distractor images (Market names)"""


def _market_sources(root: Path) -> dict[str, Path]:
    return {"train": root / "bounding_box_train", "query": root / "query", "gallery": root / "bounding_box_test"}


def _parse_market_layout(root: Path, pattern: NamePattern, layout: str, *,
                         ignore: re.Pattern[str] | None = None,
                         extra_gallery: Path | None = None) -> tuple[list[Record], list[Record], list[Record]]:
    dirs = {s: _require_dir(root / d, layout) for s, d in
            (("train", "bounding_box_train"), ("query", "query"), ("gallery", "bounding_box_test"))}
    train = _read_folder(dirs["train"], pattern, layout, ignore=ignore)
    query = _read_folder(dirs["query"], pattern, layout, ignore=ignore)
    gallery = _read_folder(dirs["gallery"], pattern, layout, ignore=ignore)
    _check_no_distractors(train, "train", layout)
    _check_no_distractors(query, "query", layout)
    if extra_gallery is not None:
        extra = _read_folder(_require_dir(extra_gallery, layout), pattern, layout, ignore=ignore,
                             extra={"distractor_500k": True})
        if not extra:
            raise DatasetLayoutError(f"{extra_gallery}: no distractor images found. Expected layout:\n{layout}")
        gallery += extra
    return train, query, gallery


@register_dataset("market1501", "market", "market-1501")
def market1501(root: Path, *, market1501_500k: bool = False, distractors_dir: str = "images",
               attribute_file: str | os.PathLike[str] | None = None, verify: Verify = "warn") -> ReIDDataset:
    """Market-1501 (Zheng et al., ICCV 2015): 6 cameras, 751 train / 750 test ids.

    Args:
        market1501_500k: add the Market-1501+500k distractor images (folder ``distractors_dir``,
            Market file names) to the gallery; the published gallery count is then not checked.
        attribute_file: Lin et al.'s ``market_attribute.mat``; by default ``<root>/market_attribute.mat``
            where it exists. Its labels go to ``ds.attributes`` and ``record.extra["attributes"]``.
        verify: ``"warn"`` | ``"strict"`` | ``"off"``: what a count mismatch does.
    """
    _check_verify(verify, "market1501")
    if _check_flag("market1501_500k", market1501_500k, "market1501"):
        if not isinstance(distractors_dir, (str, os.PathLike)) or not os.fspath(distractors_dir):
            raise ValueError(f"option 'distractors_dir' of market1501 must be a folder name under root, "
                             f"got {distractors_dir!r}")
    extra = root / distractors_dir if market1501_500k else None
    attribute_path = _attribute_path(root, attribute_file, "market_attribute.mat")
    train, query, gallery = _parse_market_layout(root, PATTERNS["market1501"], MARKET_LAYOUT,
                                                 extra_gallery=extra)
    tables, (train, query, gallery) = _attach_attribute_file(attribute_path, train, query, gallery,
                                                             name="market1501", expected="market", root=root)
    ds = ReIDDataset("market1501" + ("+500k" if market1501_500k else ""), root, train, query, gallery,
                     layout=MARKET_LAYOUT, sources=_market_sources(root), attributes=tables)
    _verify_counts(ds, "market1501", verify, skip=("gallery",) if market1501_500k else ())
    return ds


DUKE_LAYOUT = """<root>/
  bounding_box_train/   training images, 0001_c2_f0046182.jpg = id 0001, camera 2, frame 46182
  bounding_box_test/    gallery images (702 test ids + 408 distractor ids)
  query/                query images"""


@register_dataset("dukemtmc", "duke", "dukemtmc-reid", "dukemtmcreid")
def dukemtmc(root: Path, *, attribute_file: str | os.PathLike[str] | None = None,
             verify: Verify = "warn") -> ReIDDataset:
    """DukeMTMC-reID (Zheng et al., ICCV 2017): 8 cameras, 702 train ids, 1,110 gallery ids.

    ``attribute_file``: ``duke_attribute.mat`` (default ``<root>/duke_attribute.mat`` where it exists).
    """
    _check_verify(verify, "dukemtmc")
    attribute_path = _attribute_path(root, attribute_file, "duke_attribute.mat")
    train, query, gallery = _parse_market_layout(root, PATTERNS["dukemtmc"], DUKE_LAYOUT)
    tables, (train, query, gallery) = _attach_attribute_file(attribute_path, train, query, gallery,
                                                             name="dukemtmc", expected="duke", root=root)
    ds = ReIDDataset("dukemtmc", root, train, query, gallery, layout=DUKE_LAYOUT,
                     sources=_market_sources(root), attributes=tables)
    _verify_counts(ds, "dukemtmc", verify)
    return ds


CUHK03_LAYOUT = """<root>/
  labeled/     bounding_box_train/ bounding_box_test/ query/   (hand-drawn boxes)
  detected/    bounding_box_train/ bounding_box_test/ query/   (DPM boxes)
  names in Market style: 0003_c1_1_003_1_02.png = id 0003, camera 1, original CUHK03 name"""


@register_dataset("cuhk03_np", "cuhk03", "cuhk03-np", "cuhk03np")
def cuhk03_np(root: Path, *, split: str = "labeled", verify: Verify = "warn", variant: str | None = None
              ) -> ReIDDataset:
    """CUHK03 under the new protocol (Zhong et al., CVPR 2017), ``split='labeled'|'detected'``.

    ``variant`` is the old name of ``split`` (deprecated: ``variant`` now means a paper's ablation row).
    """
    if variant is not None:
        warnings.warn("cuhk03_np(variant=...) is deprecated; use split=...", DeprecationWarning, stacklevel=3)
        split = variant
    _check_verify(verify, "cuhk03_np")
    if not isinstance(split, str) or split not in ("labeled", "detected"):
        raise ValueError(f"split must be 'labeled' or 'detected' (option 'split' of cuhk03_np), got {split!r}")
    variant = split
    sub = _require_dir(root / variant, CUHK03_LAYOUT)
    train, query, gallery = _parse_market_layout(sub, PATTERNS["cuhk03_np"], CUHK03_LAYOUT)
    ds = ReIDDataset(f"cuhk03_np/{variant}", root, train, query, gallery, layout=CUHK03_LAYOUT,
                     sources=_market_sources(sub))
    _verify_counts(ds, f"cuhk03_np/{variant}", verify)
    return ds


VERI_LAYOUT = """<root>/
  image_train/   training images, 0002_c002_00030600_0.jpg = id 0002, camera 002, frame, index
  image_query/   query images
  image_test/    gallery images (cameras c001..c020)"""


@register_dataset("veri776", "veri", "veri-776")
def veri776(root: Path, *, verify: Verify = "warn") -> ReIDDataset:
    """VeRi-776 (Liu et al., ICME 2016 / ECCV 2016): 20 cameras, 576 train / 200 test vehicles."""
    _check_verify(verify, "veri776")
    pattern = PATTERNS["veri776"]
    train = _read_folder(root / "image_train", pattern, VERI_LAYOUT)
    query = _read_folder(root / "image_query", pattern, VERI_LAYOUT)
    gallery = _read_folder(root / "image_test", pattern, VERI_LAYOUT)
    ds = ReIDDataset("veri776", root, train, query, gallery, layout=VERI_LAYOUT,
                     sources={"train": root / "image_train", "query": root / "image_query", "gallery": root / "image_test"})
    _verify_counts(ds, "veri776", verify)
    return ds


# --------------------------------------------------------------------------------------------
# List-file datasets

MSMT_LAYOUT = """<root>/                       (MSMT17_V1)
  train/0000/0000_000_01_0303morning_0015_0.jpg ...   id, index, camera 01..15, date+time, frame, box
  test/...
  list_train.txt  list_val.txt                  lines "0000/0000_000_01_0303morning_0015_0.jpg 0" (under train/)
  list_query.txt  list_gallery.txt              same format (under test/)"""


def _read_list(list_file: Path, image_dir: Path, pattern: NamePattern, layout: str) -> list[Record]:
    """Records of a ``<relative path> <label>`` list; the camera comes from the file name."""
    _require_file(list_file, layout)
    records, missing = [], []
    for lineno, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DatasetLayoutError(f"{list_file}:{lineno}: expected '<relative path> <id>', got {line!r}. "
                                     f"Expected layout:\n{layout}")
        path = image_dir / parts[0]
        try:
            _, camid, fields = parse_filename(parts[0], pattern)
        except DatasetLayoutError as err:
            raise DatasetLayoutError(f"{list_file}:{lineno}: {err}. Expected layout:\n{layout}") from None
        if not path.is_file():
            missing.append(str(path))
        records.append(Record(str(path), int(parts[1]), camid, fields))
    if missing:
        raise DatasetNotFoundError(f"{list_file}: {len(missing)} listed images do not exist under {image_dir} "
                                   f"(first: {missing[0]}). Expected layout:\n{layout}")
    return records


@register_dataset("msmt17", "msmt", "msmt17_v1")
def msmt17(root: Path, *, include_val: bool = True, verify: Verify = "warn") -> ReIDDataset:
    """MSMT17 V1 (Wei et al., CVPR 2018) from its list files; 15 cameras.

    Args:
        include_val: train on ``list_train + list_val`` (the official 32,621-image training set;
            the val list holds more images of the train identities). ``False``: ``list_train`` only.
    """
    _check_verify(verify, "msmt17")
    include_val = _check_flag("include_val", include_val, "msmt17")
    train_dir = _require_dir(root / "train", MSMT_LAYOUT)
    test_dir = _require_dir(root / "test", MSMT_LAYOUT)
    pattern = PATTERNS["msmt17"]
    train = _read_list(root / "list_train.txt", train_dir, pattern, MSMT_LAYOUT)
    if include_val:
        train += _read_list(root / "list_val.txt", train_dir, pattern, MSMT_LAYOUT)
    query = _read_list(root / "list_query.txt", test_dir, pattern, MSMT_LAYOUT)
    gallery = _read_list(root / "list_gallery.txt", test_dir, pattern, MSMT_LAYOUT)
    ds = ReIDDataset("msmt17", root, train, query, gallery, layout=MSMT_LAYOUT,
                     sources={"train": root / "list_train.txt", "query": root / "list_query.txt",
                              "gallery": root / "list_gallery.txt"})
    # Train labels (0..1040) and test labels (0..3059) are separate numberings of different people.
    _verify_counts(ds, "msmt17" if include_val else None, verify, disjoint=False)
    return ds


VEHICLEID_LAYOUT = """<root>/                       (VehicleID_V1.0)
  image/0000001.jpg ...
  train_test_split/train_list.txt              lines "<image name without .jpg> <vehicle id>"
  train_test_split/test_list_800.txt  test_list_1600.txt  test_list_2400.txt"""
VEHICLEID_TEST_SIZES = (800, 1600, 2400)


def _read_vehicleid_list(list_file: Path, image_dir: Path, names: set[str]) -> list[tuple[str, int]]:
    _require_file(list_file, VEHICLEID_LAYOUT)
    items, missing = [], []
    for lineno, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise DatasetLayoutError(f"{list_file}:{lineno}: expected '<image name> <vehicle id>', got {line!r}. "
                                     f"Expected layout:\n{VEHICLEID_LAYOUT}")
        if parts[0] + ".jpg" not in names:
            missing.append(parts[0])
        items.append((parts[0], int(parts[1])))
    if missing:
        raise DatasetNotFoundError(f"{list_file}: {len(missing)} listed images are not in {image_dir} "
                                   f"(first: {image_dir / (missing[0] + '.jpg')}). Expected layout:\n{VEHICLEID_LAYOUT}")
    return items


@register_dataset("vehicleid", "vehicle-id", "pku-vehicleid")
def vehicleid(root: Path, *, test_size: int = 800, seed: int = 0, verify: Verify = "warn") -> ReIDDataset:
    """PKU VehicleID (Liu et al., CVPR 2016): 13,164 train vehicles; test sets of 800/1,600/2,400.

    VehicleID has no query/gallery split and no camera labels. The common protocol: per test
    vehicle one image, drawn at random (seeded here), is the gallery and the rest are queries;
    queries get ``camid`` 0 and gallery images ``camid`` 1, so that the usual same-camera
    filtering of evaluation removes nothing. Train images get ``camid`` 0.
    """
    _check_verify(verify, "vehicleid")
    if isinstance(test_size, bool) or test_size not in VEHICLEID_TEST_SIZES:
        raise ValueError(f"test_size must be one of {VEHICLEID_TEST_SIZES} (option 'test_size' of vehicleid), "
                         f"got {test_size!r}")
    seed = _check_int_option("seed", seed, "vehicleid")
    image_dir = _require_dir(root / "image", VEHICLEID_LAYOUT)
    split_dir = _require_dir(root / "train_test_split", VEHICLEID_LAYOUT)
    with os.scandir(image_dir) as it:
        names = {e.name for e in it}
    train_items = _read_vehicleid_list(split_dir / "train_list.txt", image_dir, names)
    test_items = _read_vehicleid_list(split_dir / f"test_list_{test_size}.txt", image_dir, names)
    train = [Record(str(image_dir / f"{n}.jpg"), vid, 0, {"image": n}) for n, vid in train_items]
    by_vid: dict[int, list[str]] = defaultdict(list)
    for n, vid in test_items:
        by_vid[vid].append(n)
    rng = random.Random(seed)
    query, gallery = [], []
    for vid in sorted(by_vid):
        images = sorted(by_vid[vid])
        pick = rng.randrange(len(images))
        for i, n in enumerate(images):
            rec = Record(str(image_dir / f"{n}.jpg"), vid, 1 if i == pick else 0, {"image": n})
            (gallery if i == pick else query).append(rec)
    ds = ReIDDataset(f"vehicleid/{test_size}", root, train, query, gallery, layout=VEHICLEID_LAYOUT,
                     sources={"train": split_dir / "train_list.txt", "query": split_dir / f"test_list_{test_size}.txt",
                              "gallery": split_dir / f"test_list_{test_size}.txt"})
    if verify != "off":
        problems = []
        if (got := _split_stats(ds.train)[:2]) != (110178, 13164):
            problems.append(f"train: {got[0]} images of {got[1]} ids, published 110178 of 13164")
        if len(by_vid) != test_size:
            problems.append(f"test_list_{test_size}.txt has {len(by_vid)} vehicles, expected {test_size}")
        if single := sum(len(v) == 1 for v in by_vid.values()):
            problems.append(f"{single} test vehicles have a single image (no query left)")
        if problems:
            message = f"{ds.name} at {root}:\n  " + "\n  ".join(problems)
            if verify == "strict":
                raise DatasetLayoutError(message + f"\nExpected layout:\n{VEHICLEID_LAYOUT}")
            warnings.warn(message, UserWarning, stacklevel=3)
    return ds


# --------------------------------------------------------------------------------------------
# synthped

SYNTHPED_LAYOUT = """<root>/
  bounding_box_train/   training images in Market-1501 names, 0002_c1s1_000451_03.jpg
  bounding_box_test/    gallery images; 0000_* are distractors (kept), -1_* junk (dropped)
  query/                query images
  market_attribute.mat  per-identity attributes, in the structure of Market-1501's attribute file
  manifest.json         the generator's parameters
  part masks beside the images (<image stem>.parts.png, or the manifest's part_masks.suffix) are skipped"""


def _synthped_ignore(manifest: Mapping[str, Any] | None) -> re.Pattern[str]:
    """Part-mask files the generator writes beside the images are not images of the dataset."""
    suffix = ((manifest or {}).get("part_masks") or {}).get("suffix", ".parts.png")
    return re.compile(re.escape(suffix) + "$", re.I)


def _manifest_counts_problems(ds: ReIDDataset) -> list[str]:
    """Compare with ``manifest["counts"][split] = {"images": n, "ids": m}`` where the manifest has it."""
    counts = (ds.manifest or {}).get("counts")
    problems = []
    if isinstance(counts, Mapping):
        for split in SPLITS:
            want = counts.get(split)
            if not isinstance(want, Mapping):
                continue
            images, ids, _ = _split_stats(ds.split(split))
            for key, got in (("images", images), ("ids", ids)):
                if key in want and int(want[key]) != got:
                    problems.append(f"{split}: {got} {key}, manifest says {want[key]}")
    return problems


@register_dataset("synthped")
def synthped(root: Path, *, attributes: bool = True, verify: Verify = "warn") -> ReIDDataset:
    """The built-in synthetic dataset (:mod:`reidlib.data.synthped`), parsed as Market-1501.

    Loads ``market_attribute.mat`` (when present and ``attributes``) into ``ds.attributes`` and
    puts each identity's binary attributes into ``record.extra["attributes"]``; loads
    ``manifest.json`` into ``ds.manifest`` and checks the counts it records, if any.
    """
    _check_verify(verify, "synthped")
    attributes = _check_flag("attributes", attributes, "synthped")
    manifest = None
    if (root / "manifest.json").is_file():
        try:
            manifest = json.loads((root / "manifest.json").read_text())
        except json.JSONDecodeError as err:
            raise DatasetLayoutError(f"{root / 'manifest.json'}: not valid JSON ({err})") from None
    pattern = PATTERNS["synthped"]
    cameras = (manifest or {}).get("cameras")
    if isinstance(cameras, int):
        pattern = NamePattern(pattern.regex, pattern.example, cameras)
    train, query, gallery = _parse_market_layout(root, pattern, SYNTHPED_LAYOUT, ignore=_synthped_ignore(manifest))
    attr_file = root / "market_attribute.mat"
    tables, (train, query, gallery) = _attach_attribute_file(
        attr_file if attributes and attr_file.is_file() else None, train, query, gallery,
        name="synthped", expected="market", root=root,
        fix="regenerate the dataset (synthped.generate(..., overwrite=True)) or pass attributes=False")
    ds = ReIDDataset("synthped", root, train, query, gallery, layout=SYNTHPED_LAYOUT,
                     sources=_market_sources(root), attributes=tables, manifest=manifest)
    if verify != "off":
        _verify_counts(ds, None, verify)
        if problems := _manifest_counts_problems(ds):
            message = f"synthped at {root}: counts differ from manifest.json:\n  " + "\n  ".join(problems)
            if verify == "strict":
                raise DatasetLayoutError(message)
            warnings.warn(message, UserWarning, stacklevel=3)
    return ds
